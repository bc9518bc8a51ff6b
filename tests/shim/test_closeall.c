/*
 * test_closeall.c - the channel to the supervisor survives servers that
 * close every fd (close_range, closefrom, a close() loop up to the limit,
 * dup2 onto its number): fx_closeall does so before bind, and its workers
 * must still bind and listen through the supervisor and serve, in rr and
 * none.
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define REQUESTS 40

TestSuite(closeall, .fini = hx_cleanup, .timeout = 60);

static void closeall_case(const char *sched, const char *how)
{
	static char port[16];
	const char *args[] = { port, how, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_closeall", args, WORKERS, WORKERS);
	st_load(c, p, REQUESTS, WORKERS, false, &tally);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= WORKERS; id++)
			hx_assert(c, tally.served[id] >= REQUESTS / 4,
				  "%s: worker %d served %d of %d", how, id,
				  tally.served[id], REQUESTS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

#define CASE(how)                                                        \
	Test(closeall, how##_rr) { closeall_case("rr", #how); }          \
	Test(closeall, how##_none) { closeall_case("none", #how); }

CASE(close_range)
CASE(closefrom)
CASE(loop)
CASE(dup2)
