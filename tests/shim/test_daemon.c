/*
 * test_daemon.c - a server that daemonizes (fork, setsid, the parent exits;
 * a double fork; glibc's daemon(); bind first, daemonize after) stays one
 * worker: cluster-run does not take the parent's exit for a crash (no exit
 * line, no replacement), the daemons answer every request, and SIGTERM to
 * cluster-run stops them: it exits 0 and no daemon is left.  In rr and none.
 * A worker that exits with one child alive that never takes over (a piped
 * logger) is no daemon's stand-in: it ends, and is restarted.
 */
#include "shim_tests.h"

#include <dirent.h>
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

#define TAKEOVER_LIMIT_MS 2000 /* shim/daemon.c TAKEOVER_MS */

/* Whether a process of group pgid lives (a zombie does not: it waits for
 * whoever reaps orphans, which may take its time). */
static bool group_lives(pid_t pgid)
{
	bool lives = false;
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d && !lives && (de = readdir(d)) != NULL) {
		char path[300], buf[512], *end, state;
		int group = 0;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		/* pid (comm) state ppid pgrp: comm may hold anything */
		if (fgets(buf, sizeof(buf), f) && (end = strrchr(buf, ')')) &&
		    sscanf(end + 1, " %c %*d %d", &state, &group) == 2)
			lives = group == pgid && state != 'Z';
		fclose(f);
	}
	if (d)
		closedir(d);
	return lives;
}

Test(daemon, live_child_that_never_takes_over_is_no_daemon)
{
	struct hx_target t;
	struct hx_answer ans;
	struct hx_cluster *c;
	pid_t first, groups[64];
	size_t n = 0;
	int64_t t0;

	c = st_logger_worker_restarts("rr", "fx_daemon",
				      TAKEOVER_LIMIT_MS + 3000, &t, &first);
	hx_assert(c, hx_query(&t, HX_QUERY_MS, &ans) == 0 && ans.pid != first,
		  "the restarted worker does not answer");
	/* at the stop every worker's logger goes with it (its process
	 * group) */
	for (size_t i = 0; i < c->n_events && n < 64; i++)
		if (c->events[i].kind == HX_FORKED)
			groups[n++] = c->events[i].pid;
	st_stop(c);
	/* (SIGKILLed, a logger may linger a moment as it dies) */
	t0 = hx_now_ms() + GONE_MS;
	for (size_t i = 0; i < n; i++) {
		while (group_lives(groups[i]) && hx_now_ms() < t0)
			poll(NULL, 0, 10);
		cr_assert(!group_lives(groups[i]), "worker %d's process group "
			  "outlived cluster-run", (int)groups[i]);
	}
}
