/*
 * test_daemon.c - a server that daemonizes (fork, setsid, the parent exits;
 * a double fork; glibc's daemon(); bind first, daemonize after) stays one
 * worker: cluster-run does not take the parent's exit for a crash (no exit
 * line, no replacement), the daemons answer every request, and SIGTERM to
 * cluster-run stops them: it exits 0 and no daemon is left.  In rr and none.
 */
#include "shim_tests.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define REQUESTS 40
#define GONE_MS 3000

TestSuite(daemon, .fini = hx_cleanup, .timeout = 60);

static void daemon_case(const char *sched, const char *mode)
{
	static char port[16];
	const char *args[] = { port, mode, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1" };
	pid_t daemons[WORKERS + 1] = { 0 };
	int served[WORKERS + 1] = { 0 };
	struct hx_cluster *c;
	int64_t deadline;

	t.port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", t.port);
	c = st_start(sched, WORKERS, "fx_daemon", args, WORKERS, WORKERS);
	for (size_t i = 0; i < c->out.n_lines; i++) {
		int id = 0, pid = 0;

		hx_assert(c, sscanf(c->out.lines[i], "daemon %d %d", &id,
				    &pid) == 2 && id >= 1 && id <= WORKERS,
			  "line \"%s\"", c->out.lines[i]);
		hx_assert(c, !hx_is_worker_pid(c, id, pid), "worker %d did "
			  "not daemonize", id);
		daemons[id] = pid;
	}
	for (int i = 0; i < REQUESTS; i++) {
		struct hx_answer ans;
		int err = hx_query(&t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);
		hx_assert(c, err == 0, "request %d: %s", i, strerror(-err));
		hx_assert(c, ans.id >= 1 && ans.id <= WORKERS &&
			  ans.pid == daemons[ans.id], "request %d answered "
			  "\"%d %d\": not a daemon of the cluster", i, ans.id,
			  (int)ans.pid);
		served[ans.id]++;
	}
	cr_log_info("%s %s: daemons 1, 2 served %d, %d", sched, mode,
		    served[1], served[2]);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= WORKERS; id++)
			hx_assert(c, served[id] >= REQUESTS / 4,
				  "daemon %d served %d of %d", id, served[id],
				  REQUESTS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
	deadline = hx_now_ms() + GONE_MS;
	for (int id = 1; id <= WORKERS; id++) {
		while (kill(daemons[id], 0) == 0 && hx_now_ms() < deadline)
			poll(NULL, 0, 10);
		cr_assert(kill(daemons[id], 0) < 0 && errno == ESRCH,
			  "daemon %d (pid %d) outlived cluster-run", id,
			  (int)daemons[id]);
	}
}

#define CASE(mode)                                                       \
	Test(daemon, mode##_rr) { daemon_case("rr", #mode); }            \
	Test(daemon, mode##_none) { daemon_case("none", #mode); }

CASE(fork)
CASE(double)
CASE(daemon)
CASE(bindfirst)
