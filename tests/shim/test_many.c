/*
 * test_many.c - 256 listeners per worker, as the README promises: each of
 * two workers binds and listens on 256 addresses of its own (fx_many), in
 * rr, none and reuseport; all 512 "listening" lines come, and the last
 * listener serves every request.
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define LISTENERS 256
#define REQUESTS 20

TestSuite(many, .fini = hx_cleanup, .timeout = 90);

static void many_case(const char *sched)
{
	static char count[16], host[32];
	const char *args[] = { count, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = host };
	const char *last;
	struct hx_cluster *c;
	struct hx_tally tally;
	struct hx_load load = { .targets = &t, .n_targets = 1,
				.requests = REQUESTS, .workers = WORKERS };

	snprintf(count, sizeof(count), "%d", LISTENERS);
	c = st_start(sched, WORKERS, "fx_many", args, WORKERS * LISTENERS,
		     WORKERS);
	last = st_stdout_line(c, "last ");
	hx_assert(c, last && sscanf(last, "last %31s %d", host, &t.port) == 2,
		  "no \"last ADDRESS PORT\" line");
	hx_run_load(c, &load, &tally);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(many, listeners_256_rr) { many_case("rr"); }
Test(many, listeners_256_none) { many_case("none"); }
Test(many, listeners_256_reuseport) { many_case("reuseport"); }
