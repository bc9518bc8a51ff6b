/*
 * test_stuck_stderr.c - cluster-run's own lines never hold its loop.
 *
 * cluster-run's stderr is a pipe (shrunk to one page) that the test stops
 * reading once worker 1 listens.  Workers 2 and 3 fail at once, again and
 * again (--restart-delay 20:20), and while the test's "flood" file exists
 * each first writes 200 KB of lines on its stderr (--prefix: they come out
 * on cluster-run's, through the same sink as its own lines), so cluster-run
 * has lines to write all the time, more than its queue holds.  For STUCK_MS the test makes rr requests to worker
 * 1, one after another.  A blocking fprintf(stderr) would sit in
 * pipe_write for ever and no rr connection would be handed out; through
 * the non-blocking sink, every request is answered within ANSWER_MS,
 * lines are dropped and counted, and once the test reads again a note
 * says how many were dropped.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PIPE_SIZE 4096
#define STUCK_MS 3000       /* requests with stderr unread */
#define ANSWER_MS 1000      /* each request, while stderr is stuck */
#define NOTE_MS 5000

TestSuite(stuck_stderr, .fini = ops_fini, .timeout = 90);

static size_t unread(int fd)
{
	int n = 0;

	cr_assert(ioctl(fd, FIONREAD, &n) == 0, "FIONREAD: %s", strerror(errno));
	return (size_t)n;
}

/* One request to worker 1 within ANSWER_MS; how long it took. */
static long long ask(struct hx_cluster *c, const struct hx_target *t)
{
	struct hx_answer ans;
	long long t0 = hx_now_ms();
	int rc = hx_query(t, ANSWER_MS, &ans);

	hx_assert(c, rc == 0, "a request to the healthy worker failed (%s) "
		  "with cluster-run's stderr stuck", strerror(-rc));
	hx_assert(c, ans.id == 1, "answered by worker %d, want 1", ans.id);
	return hx_now_ms() - t0;
}

Test(stuck_stderr, rr_goes_on_and_the_drop_is_said)
{
	static char port[16], flood[256];
	struct hx_target target = { .proto = HX_TCP, .host = "127.0.0.1" };
	const char *args[] = {
		"-n", "3", "--sched", "rr", "--restart-delay", "20:20",
		"--crash-limit", "1000:1", "--prefix",
		"--control", ops_path("ctl.sock"), "--", "/bin/sh", "-c",
		"[ \"$CLUSTER_WORKER_ID\" = 1 ] || { [ ! -e \"$2\" ] || "
		"yes \"flood from worker $CLUSTER_WORKER_ID\" | "
		"head -c 200000 >&2; exit 3; }; exec \"$0\" --port \"$1\"",
		hx_fixture("fx_blocking_accept"), port, flood, NULL
	};
	const char *note[] = { "lines of output dropped", "stderr was full",
			       NULL };
	struct hx_cluster *c;
	long long worst = 0, t;
	int64_t deadline;
	size_t i, k;

	snprintf(flood, sizeof(flood), "%s", ops_path("flood"));
	target.port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", target.port);
	c = hx_start(0, args);
	hx_assert(c, hx_wait_event(c, HX_LISTENING, 1, 0, 0, HX_START_MS),
		  "worker 1 is not listening");
	/* From here on nobody reads cluster-run's stderr, and workers 2 and
	 * 3 flood it (before, the flood could crowd out the line awaited). */
	fclose(fopen(flood, "w"));
	fcntl(c->err.fd, F_SETPIPE_SZ, PIPE_SIZE); /* EBUSY: it fills anyway */
	deadline = hx_now_ms() + STUCK_MS;
	for (i = 0; hx_now_ms() < deadline; i++) {
		t = ask(c, &target);
		worst = t > worst ? t : worst;
	}
	cr_log_info("%zu requests in %d ms with stderr unread: the slowest "
		    "took %lld ms", i, STUCK_MS, worst);
	hx_assert(c, unread(c->err.fd) > 0, "cluster-run wrote nothing?");

	/* Reading again, the floods over (the harness reads until a pipe is
	 * empty: an endless flood would keep it reading): the queue goes
	 * out, then the note. */
	cr_assert(unlink(flood) == 0);
	deadline = hx_now_ms() + NOTE_MS;
	for (size_t seen = 0;;) {
		bool said = false;

		for (i = seen; i < c->err.n_lines && !said; i++) {
			for (k = 0; note[k] && strstr(c->err.lines[i], note[k]); k++)
				;
			said = !note[k];
		}
		seen = i;
		if (said)
			break;
		hx_assert(c, hx_now_ms() < deadline, "no \"N lines of output "
			  "dropped ... stderr was full\" line within %d ms of "
			  "reading again", NOTE_MS);
		hx_pump(c, (int)(deadline - hx_now_ms()));
	}
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) == 0,
		  "cluster-run did not exit 0 after SIGTERM");
	hx_assert_workers_gone(c);
	hx_free(c);
}
