/*
 * test_inflight.c - the per-user limit on fds in flight (ETOOMANYREFS) is
 * back-pressure in rr, never a failure.  cluster-run runs as nobody (the
 * limit does not bind root) with RLIMIT_NOFILE at what -n 10 needs (114):
 * nine stopped workers could hold 9 x 16 connections unread, more than the
 * user may have in flight.  With 150 connections opened at once and the
 * nine stopped, the one running worker answers every new request; a
 * stopped worker SIGKILLed is replaced and its replacement's bind() and
 * listen() succeed; once the others continue, every one of the 150 is
 * answered and every worker answers again within seconds (none left the
 * rotation for good).  The server is fx_vfork (a backlog of 128, and no
 * check at start that would mind the held connections a restarted worker
 * is dealt at once).
 */
#include "shim_tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 10
#define NOFILE "114"  /* supervisor/main.c: FDS_BASE + 5 per worker */
#define HELD 150
#define REQUESTS 20

TestSuite(inflight, .fini = hx_cleanup, .timeout = 90);

static int connect_now(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
		  errno == EINPROGRESS, "connect: %s", strerror(errno));
	return fd;
}

/* The answer on a held connection, within the deadline. */
static bool answered(struct hx_cluster *c, int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct hx_answer ans;
	char buf[64];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(buf) - 1 && hx_now_ms() < deadline) {
		hx_pump(c, 0);
		if (poll(&pfd, 1, 50) != 1)
			continue;
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return hx_parse_answer(buf, &ans) && ans.id >= 1 && ans.id <= WORKERS;
}

static void signal_workers(struct hx_cluster *c, int sig)
{
	for (int id = 2; id <= WORKERS; id++)
		kill(hx_worker_pid(c, id), sig);
}

Test(inflight, etoomanyrefs_is_back_pressure_rr)
{
	static char port[16], control[64];
	const char *args[] = { "--reuid=65534", "--regid=65534",
			       "--clear-groups", "/usr/bin/prlimit",
			       "--nofile=" NOFILE ":" NOFILE, "--",
			       getenv("CLUSTER_RUN_BIN"), "-n", "10",
			       "--control", control, "--",
			       hx_fixture("fx_vfork"), port, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1" };
	struct hx_load load = { .targets = &t, .n_targets = 1,
				.requests = REQUESTS, .workers = WORKERS };
	struct hx_tally tally;
	struct hx_cluster *c;
	const struct hx_event *ev;
	int held[HELD], p = hx_free_port(SOCK_STREAM), lost = 0, distinct = 0;
	bool seen[WORKERS + 1];
	size_t from;
	pid_t old2;

	if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0 ||
	    access("/usr/bin/prlimit", X_OK) != 0)
		cr_skip_test("needs root, setpriv and prlimit to run "
			     "cluster-run as another user with few fds");
	snprintf(port, sizeof(port), "%d", p);
	snprintf(control, sizeof(control), "/tmp/cluster-inflight-%d.sock",
		 (int)getpid());
	t.port = p;
	setenv("CLUSTER_RUN_BIN", "/usr/bin/setpriv", 1);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	setenv("CLUSTER_RUN_BIN", args[6], 1);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, WORKERS, HX_START_MS) &&
		  hx_wait_stdout_lines(c, WORKERS, HX_START_MS), "not serving");
	signal_workers(c, SIGSTOP);
	for (int i = 0; i < HELD; i++)
		held[i] = connect_now(p);
	/* the running worker serves on while the others hold the budget */
	hx_run_load(c, &load, &tally);
	hx_assert(c, tally.served[1] == REQUESTS, "worker 1 served %d of %d",
		  tally.served[1], REQUESTS);
	/* a restarted worker can bind and listen */
	from = c->n_events;
	old2 = hx_worker_pid(c, 2);
	kill(old2, SIGKILL);
	ev = hx_wait_event(c, HX_LISTENING, 2, old2, from, HX_START_MS);
	hx_assert(c, ev != NULL, "worker 2's replacement did not listen");
	signal_workers(c, SIGCONT);
	for (int i = 0; i < HELD; i++) {
		lost += !answered(c, held[i], hx_now_ms() + HX_QUERY_MS);
		close(held[i]);
	}
	hx_assert(c, lost == 0, "%d of %d held connections not answered",
		  lost, HELD);
	/* a worker whose queue was taken back sits out a second, then is
	 * dealt connections again */
	memset(seen, 0, sizeof(seen));
	for (int64_t end = hx_now_ms() + HX_START_MS;
	     distinct < WORKERS && hx_now_ms() < end;) {
		struct hx_answer ans;
		int err = hx_query(&t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);
		hx_assert(c, err == 0 && ans.id >= 1 && ans.id <= WORKERS,
			  "request after SIGCONT: %s", strerror(-err));
		distinct += !seen[ans.id];
		seen[ans.id] = true;
	}
	hx_assert(c, distinct == WORKERS, "%d of %d workers answered within "
		  "%d ms after SIGCONT: one left the rotation", distinct,
		  WORKERS, HX_START_MS);
	st_stop(c);
	unlink(control);
}
