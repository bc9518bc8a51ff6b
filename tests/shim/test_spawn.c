/*
 * test_spawn.c - programs a worker's children exec (sh -c, a CGI program)
 * and fork-per-connection children never register as workers nor take
 * listeners: fx_spawn answers every connection from a child (fx_probe
 * checks from inside the exec'd program that it has no channel and binds
 * for real), in rr and none; no process but the workers checks in or
 * listens, and the workers keep their listeners when the children close
 * their copies.
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define REQUESTS 30

TestSuite(spawn, .fini = hx_cleanup, .timeout = 60);

static void spawn_case(const char *sched, const char *mode)
{
	static char port[16];
	const char *args[] = { port, mode, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);
	bool child_pid = strcmp(mode, "fork") == 0;

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_spawn", args, WORKERS, WORKERS);
	/* sh and exec answer with their parent's pid: the worker's */
	st_load(c, p, REQUESTS, WORKERS, child_pid, &tally);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= WORKERS; id++)
			hx_assert(c, tally.served[id] >= REQUESTS / 4,
				  "worker %d served %d of %d", id,
				  tally.served[id], REQUESTS);
	hx_assert(c, hx_count(c, HX_LISTENING) == WORKERS,
		  "%zu \"listening\" lines, want %d: a child took a listener",
		  hx_count(c, HX_LISTENING), WORKERS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(spawn, sh_c_child_rr) { spawn_case("rr", "sh"); }
Test(spawn, sh_c_child_none) { spawn_case("none", "sh"); }
Test(spawn, cgi_exec_child_rr) { spawn_case("rr", "exec"); }
Test(spawn, cgi_exec_child_none) { spawn_case("none", "exec"); }
Test(spawn, fork_per_connection_rr) { spawn_case("rr", "fork"); }
Test(spawn, fork_per_connection_none) { spawn_case("none", "fork"); }
