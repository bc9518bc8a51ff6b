/*
 * test_scale.c - scaling by hundreds: the supervisor never waits for a
 * worker's exec, so `ctl scale 200` and `ctl status` are answered while the
 * workers start, a SIGTERM in the middle stops every worker (started or
 * still queued) and leaves no process behind; a scale the fd limit cannot
 * carry is refused in one line.  Under reuseport a scale-down closes the
 * removed slots' sockets (the kernel stops hashing connections to them),
 * and with net.ipv4.tcp_migrate_req (set by cluster-run as root) what was
 * queued in them is served by the others; a reload keeps them.
 */
#include "ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(scale, .fini = ops_fini, .timeout = 90);

/* What "answered at once" means on a loaded 2-core machine: the issue's
 * target is 100 ms for the loop; a ctl process must also start. */
#define ANSWER_MS 1000
#define MANY 200

/* ctl ARGS succeeds with stdout want; how long it took, in ms. */
static int64_t timed_ctl(struct ops_cluster *oc, const char *const *args,
			 const char *want)
{
	struct ops_run r;
	int64_t t0 = hx_now_ms(), ms;

	ops_ctl(oc->c, oc->sock, args, &r);
	ms = hx_now_ms() - t0;
	hx_assert(oc->c, ops_exit_code(&r) == 0 &&
		  (!want || strcmp(r.out, want) == 0),
		  "ctl %s: exit %d, stdout \"%s\", stderr \"%s\"", args[0],
		  ops_exit_code(&r), r.out, r.err);
	ops_run_free(&r);
	return ms;
}

Test(scale, hundreds_answered_and_stopped_by_sigterm)
{
	struct ops_cluster oc;
	int64_t scale_ms, status_ms, t0;
	long line;
	size_t mark, listening;
	int status;

	ops_start(&oc, 1, NULL);
	mark = oc.c->err.n_lines;
	scale_ms = timed_ctl(&oc, (const char *[]){ "scale", "200", NULL },
			     "scale: 1 -> 200 workers\n");
	status_ms = timed_ctl(&oc, (const char *[]){ "status", NULL }, NULL);
	listening = hx_count(oc.c, HX_LISTENING);
	cr_log_info("scale %d answered in %lld ms, status in %lld ms, with "
		    "%zu workers listening", MANY, (long long)scale_ms,
		    (long long)status_ms, listening);
	hx_assert(oc.c, scale_ms < ANSWER_MS && status_ms < ANSWER_MS,
		  "scale answered in %lld ms, status in %lld ms, want both "
		  "under %d ms", (long long)scale_ms, (long long)status_ms,
		  ANSWER_MS);

	/* SIGTERM while workers start: acted on at once, every one ends. */
	t0 = hx_now_ms();
	cr_assert(kill(oc.c->pid, SIGTERM) == 0);
	line = ops_wait_line(oc.c, "stopping every worker", mark, ANSWER_MS);
	hx_assert(oc.c, line >= 0, "SIGTERM not acted on within %d ms",
		  ANSWER_MS);
	cr_log_info("SIGTERM acted on after %lld ms",
		    (long long)(hx_now_ms() - t0));
	status = hx_wait_exit(oc.c, HX_EXIT_MS);
	hx_assert(oc.c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "cluster-run did not exit 0 within "
		  "%d ms of SIGTERM (status %#x)", HX_EXIT_MS, status);
	cr_log_info("cluster-run exited %lld ms after SIGTERM, having forked "
		    "%zu workers", (long long)(hx_now_ms() - t0),
		    hx_count(oc.c, HX_FORKED));
	hx_assert_workers_gone(oc.c);
}

Test(scale, beyond_the_fd_limit_is_refused)
{
	struct rlimit rl = { 1024, 1024 };
	struct ops_cluster oc;
	struct ops_run r;
	size_t mark, forked;

	/* This test's process only (Criterion forks one per test); the
	 * cluster-run it starts inherits it. */
	cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s",
		  strerror(errno));
	ops_start(&oc, 1, NULL);
	mark = oc.c->err.n_lines;
	forked = hx_count(oc.c, HX_FORKED);
	ops_ctl(oc.c, oc.sock, (const char *[]){ "scale", "300", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 1 &&
		  strstr(r.err, "cannot scale to 300 workers") != NULL,
		  "ctl scale 300 under a 1024-fd limit: exit %d, stderr \"%s\"",
		  ops_exit_code(&r), r.err);
	ops_run_free(&r);
	hx_assert(oc.c, ops_wait_line(oc.c, "scale to 300 refused: 300 workers "
				      "need about", mark, HX_QUERY_MS) >= 0,
		  "no line saying why the scale was refused");
	hx_assert(oc.c, hx_count(oc.c, HX_FORKED) == forked,
		  "a refused scale forked workers");
	/* what the limit carries still works */
	timed_ctl(&oc, (const char *[]){ "scale", "3", NULL },
		  "scale: 1 -> 3 workers\n");
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 3, HX_START_MS),
		  "scale 3 under the limit did not start 3 workers");
}

/* ---- reuseport scale-down ---- */

#define QUERIES 40

static const char *const reuseport_opts[] = { "--sched", "reuseport",
					      "--kill-timeout", "1", NULL };

/* Whether worker id's end (an exit or a kill) is among the events since
 * mark. */
static bool worker_ended(struct hx_cluster *c, int id, size_t mark)
{
	return hx_find_event(c, HX_EXITED, id, 0, mark) ||
	       hx_find_event(c, HX_KILLED, id, 0, mark);
}

/* Scale 4 -> 2 and wait until workers 3 and 4 have ended. */
static void scale_down_to_two(struct ops_cluster *oc)
{
	size_t mark = oc->c->n_events;
	int64_t deadline = hx_now_ms() + HX_EXIT_MS;

	timed_ctl(oc, (const char *[]){ "scale", "2", NULL },
		  "scale: 4 -> 2 workers\n");
	while (!(worker_ended(oc->c, 3, mark) && worker_ended(oc->c, 4, mark)) &&
	       hx_now_ms() < deadline)
		hx_pump(oc->c, 50);
	hx_assert(oc->c, worker_ended(oc->c, 3, mark) &&
		  worker_ended(oc->c, 4, mark), "workers 3 and 4 did not end "
		  "within %d ms of the scale-down", HX_EXIT_MS);
}

/* kill(SIGSTOP) returns before the process stops: wait until its state in
 * /proc says it has (T), so that it accepts nothing more. */
static void stop_and_wait(struct hx_cluster *c, pid_t pid)
{
	int64_t deadline = hx_now_ms() + HX_QUERY_MS;
	char path[64], buf[256], *p;
	bool stopped = false;

	cr_assert(kill(pid, SIGSTOP) == 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	while (!stopped && hx_now_ms() < deadline) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = '\0';
		p = strrchr(buf, ')');
		stopped = p && p[1] == ' ' && p[2] == 'T';
		if (!stopped)
			hx_pump(c, 10);
	}
	hx_assert(c, stopped, "worker pid %d did not stop", (int)pid);
}

Test(scale, reuseport_scale_down_closes_the_removed_slots)
{
	struct ops_cluster oc;
	pid_t pids[2];

	ops_start(&oc, 4, reuseport_opts);
	pids[0] = hx_worker_pid(oc.c, 1);
	pids[1] = hx_worker_pid(oc.c, 2);
	scale_down_to_two(&oc);
	/* nothing is hashed to a socket nobody serves: every one answers */
	for (int i = 0; i < QUERIES; i++)
		ops_query_from(oc.c, &oc.target, pids, 2,
			       "after scale 4 -> 2 (reuseport)");
}

/* A reload is no scale-down: the old worker's slot socket stays for its
 * replacement (same id), and every request is answered. */
Test(scale, reuseport_reload_keeps_the_slots)
{
	struct ops_cluster oc;
	size_t lines, mark;
	pid_t old[2], fresh[2];

	ops_start(&oc, 2, reuseport_opts);
	old[0] = hx_worker_pid(oc.c, 1);
	old[1] = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	lines = oc.c->err.n_lines;
	timed_ctl(&oc, (const char *[]){ "reload", NULL }, "reload started\n");
	for (int id = 1; id <= 2; id++)
		fresh[id - 1] = ops_wait_forked(oc.c, id, old[id - 1], mark);
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", lines,
				      HX_START_MS) >= 0, "the reload did not end");
	for (int i = 0; i < QUERIES; i++)
		ops_query_from(oc.c, &oc.target, fresh, 2,
			       "after a reload (reuseport)");
	hx_assert(oc.c, ops_count_lines(oc.c, "closed: worker", lines) == 0,
		  "a listener was closed in a reload");
}

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a,
				     sizeof(a)) == 0,
		  "connect: %s", strerror(errno));
	return fd;
}

/* Answers read within timeout_ms from the fds not done yet (then done);
 * each must come from pids.  How many. */
static int answers_from(struct hx_cluster *c, const int *fds, bool *done,
			int n, const pid_t *pids, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	int got = 0, left = 0;

	for (int i = 0; i < n; i++)
		left += !done[i];

	while (left > 0 && hx_now_ms() < deadline) {
		struct pollfd p[QUERIES];

		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = done[i] ? -1 : fds[i],
						.events = POLLIN };
		hx_pump(c, 0);
		if (poll(p, (nfds_t)n, 50) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			char buf[64] = "";
			struct hx_answer ans;
			ssize_t len;

			if (!p[i].revents)
				continue;
			done[i] = true;
			left--;
			len = read(fds[i], buf, sizeof(buf) - 1);
			if (len <= 0 || !hx_parse_answer(buf, &ans)) {
				cr_log_warn("connection %d: %s (%zd: %s)", i,
					    len < 0 ? strerror(errno)
						    : "no answer", len, buf);
				continue; /* reset, or closed unanswered */
			}
			hx_assert(c, ans.pid == pids[0] || ans.pid == pids[1],
				  "answer from pid %d, not worker 1 or 2",
				  (int)ans.pid);
			got++;
		}
	}
	return got;
}

Test(scale, reuseport_scale_down_hands_queued_connections_on)
{
	struct ops_cluster oc;
	pid_t pids[2];
	int fds[QUERIES], got;
	bool done[QUERIES] = { false };

	ops_start(&oc, 4, reuseport_opts);
	if (!ops_migrate_req_on()) {
		cr_log_warn("skipped: net.ipv4.tcp_migrate_req is not 1 (not "
			    "root?): a removed slot's queue is reset, as the "
			    "README says");
		cr_skip_test();
	}
	pids[0] = hx_worker_pid(oc.c, 1);
	pids[1] = hx_worker_pid(oc.c, 2);
	/* Workers 3 and 4 accept nothing: what is hashed to them queues in
	 * their slots' sockets until the scale-down closes them. */
	for (int id = 3; id <= 4; id++)
		stop_and_wait(oc.c, hx_worker_pid(oc.c, id));
	for (int i = 0; i < QUERIES; i++)
		fds[i] = connect_to(oc.port);
	got = answers_from(oc.c, fds, done, QUERIES, pids, 300);
	hx_assert(oc.c, got < QUERIES, "all %d answered with slots 3 and 4 "
		  "stopped: nothing was hashed to them?", QUERIES);
	scale_down_to_two(&oc); /* SIGKILL after 1 s: they are stopped */
	got += answers_from(oc.c, fds, done, QUERIES, pids, HX_QUERY_MS);
	hx_assert(oc.c, got == QUERIES, "%d of %d connections answered: the "
		  "ones queued on the removed slots were lost", got, QUERIES);
	for (int i = 0; i < QUERIES; i++)
		close(fds[i]);
}

/* Scaled down, then back up while the removed worker is still leaving:
 * once it is gone its slot is filled again. */
Test(scale, back_up_while_leaving_refills_the_slot)
{
	struct ops_cluster oc;
	const struct hx_event *ev;
	size_t mark;
	pid_t leaving;

	ops_start(&oc, 2, (const char *[]){ "--kill-timeout", "1", NULL });
	leaving = hx_worker_pid(oc.c, 2);
	/* stopped, it cannot act on SIGTERM: it leaves at the SIGKILL */
	stop_and_wait(oc.c, leaving);
	mark = oc.c->n_events;
	timed_ctl(&oc, (const char *[]){ "scale", "1", NULL },
		  "scale: 2 -> 1 workers\n");
	timed_ctl(&oc, (const char *[]){ "scale", "2", NULL },
		  "scale: 1 -> 2 workers\n");
	ev = hx_wait_event(oc.c, HX_KILLED, 2, 0, mark, HX_EXIT_MS);
	hx_assert(oc.c, ev && ev->pid == leaving, "worker 2 (pid %d) did not "
		  "leave", (int)leaving);
	ev = hx_wait_event(oc.c, HX_LISTENING, 2, leaving, mark, HX_START_MS);
	hx_assert(oc.c, ev != NULL, "slot 2 was not filled again after its "
		  "old worker left");
}
