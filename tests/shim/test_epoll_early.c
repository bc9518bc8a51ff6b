/*
 * test_epoll_early.c - an epoll registration made on the fd before bind()
 * still works after the shim put another file behind that fd number
 * (fx_epoll_early, level- and edge-triggered), in rr and none: every
 * request is answered (a lost registration leaves the worker deaf) and in
 * rr both workers serve.
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define REQUESTS 40

TestSuite(epoll_early, .fini = hx_cleanup, .timeout = 60);

static void epoll_case(const char *sched, const char *mode)
{
	static char port[16];
	const char *args[] = { port, mode, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_epoll_early", args, WORKERS,
		     WORKERS);
	st_load(c, p, REQUESTS, WORKERS, false, &tally);
	cr_log_info("%s %s: workers 1, 2 served %d, %d", sched, mode,
		    tally.served[1], tally.served[2]);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= WORKERS; id++)
			hx_assert(c, tally.served[id] >= REQUESTS / 4,
				  "worker %d served %d of %d", id,
				  tally.served[id], REQUESTS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(epoll_early, epoll_before_bind_level_rr) { epoll_case("rr", "level"); }
Test(epoll_early, epoll_before_bind_level_none) { epoll_case("none", "level"); }
Test(epoll_early, epoll_before_bind_edge_rr) { epoll_case("rr", "edge"); }
Test(epoll_early, epoll_before_bind_edge_none) { epoll_case("none", "edge"); }
