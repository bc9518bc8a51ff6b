/*
 * test_dup.c - dup()/dup2()/dup3()/F_DUPFD copies of a listener all accept,
 * and closing copies (the original first) does not detach the worker while
 * another copy is open; closing the last one does.  fx_dup's worker 1 serves
 * exactly LIMIT connections through its copies, then closes the last one:
 * every later request is served by worker 2 (in rr a worker still attached
 * but not accepting would leave requests waiting: they would time out).
 */
#include "shim_tests.h"

#include <stdio.h>

#define WORKERS 2
#define LIMIT 16
#define REQUESTS 60

TestSuite(dup, .fini = hx_cleanup, .timeout = 60);

static void dup_case(const char *sched)
{
	static char port[16], limit[16];
	const char *args[] = { port, limit, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	snprintf(limit, sizeof(limit), "%d", LIMIT);
	c = st_start(sched, WORKERS, "fx_dup", args, WORKERS, WORKERS);
	st_load(c, p, REQUESTS, WORKERS, false, &tally);
	cr_log_info("%s: workers 1, 2 served %d, %d", sched, tally.served[1],
		    tally.served[2]);
	hx_assert(c, tally.served[1] == LIMIT, "worker 1 served %d, want %d: "
		  "it lost its listener before its last copy was closed, or "
		  "kept it after", tally.served[1], LIMIT);
	hx_assert(c, hx_wait_stdout_lines(c, WORKERS + 1, HX_QUERY_MS) &&
		  st_stdout_line(c, "closed 1 after 16") != NULL,
		  "worker 1 did not say it closed its last copy");
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(dup, tcp_dup_dup2_dup3_rr) { dup_case("rr"); }
Test(dup, tcp_dup_dup2_dup3_none) { dup_case("none"); }
