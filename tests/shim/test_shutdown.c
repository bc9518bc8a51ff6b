/*
 * test_shutdown.c - shutdown() on a listener detaches only that worker:
 * worker 1 of three shuts its listener (fx_shutdown), the other two serve
 * every request, in both policies, and worker 1 stays up, serving nothing.
 * In none a real shutdown() would have stopped the shared socket for all
 * (every request is answered: hx_run_load checks).
 * SHUT_WR changes nothing: all three serve.
 */
#include "shim_tests.h"

#include <stdio.h>

#define WORKERS 3
#define REQUESTS 60

TestSuite(shutdown, .fini = hx_cleanup, .timeout = 60);

static void shutdown_case(const char *sched, const char *how, bool detaches)
{
	static char port[16];
	const char *args[] = { port, how, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_shutdown", args, WORKERS, WORKERS);
	hx_assert(c, st_stdout_line(c, "shut 1") != NULL,
		  "worker 1 did not report its shutdown()");
	st_load(c, p, REQUESTS, WORKERS, false, &tally);
	cr_log_info("%s %s: workers 1, 2, 3 served %d, %d, %d", sched, how,
		    tally.served[1], tally.served[2], tally.served[3]);
	if (detaches)
		hx_assert(c, tally.served[1] == 0,
			  "worker 1 shut its listener and still served %d",
			  tally.served[1]);
	/* rr deals to every attached worker; in none the kernel picks */
	for (int id = detaches ? 2 : 1; id <= WORKERS && sched[0] == 'r'; id++)
		hx_assert(c, tally.served[id] >= REQUESTS / 5,
			  "worker %d served %d of %d", id, tally.served[id],
			  REQUESTS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(shutdown, tcp_shutdown_rdwr_rr) { shutdown_case("rr", "rdwr", true); }
Test(shutdown, tcp_shutdown_rdwr_none) { shutdown_case("none", "rdwr", true); }
Test(shutdown, tcp_shutdown_rd_rr) { shutdown_case("rr", "rd", true); }
Test(shutdown, tcp_shutdown_rd_none) { shutdown_case("none", "rd", true); }
Test(shutdown, tcp_shutdown_wr_rr) { shutdown_case("rr", "wr", false); }
Test(shutdown, tcp_shutdown_wr_none) { shutdown_case("none", "wr", false); }
