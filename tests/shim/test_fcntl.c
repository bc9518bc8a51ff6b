/*
 * test_fcntl.c - fcntl()/fcntl64()/ioctl(FIONBIO) on listeners and faux
 * handles (fx_fcntl checks them from inside each worker), and a server that
 * accepts with blocking accept() calls sleeps between connections: it never
 * spins on EAGAIN.
 *
 * rr runs two workers (each has its own faux handle, so its own flags).
 * none runs one: there the listener is one open file shared by every
 * worker, and O_NONBLOCK set by one applies to all (README).
 */
#include "shim_tests.h"

#include <stdio.h>

TestSuite(fcntl, .fini = hx_cleanup, .timeout = 60);

static void fcntl_case(const char *sched, int workers)
{
	static char port[16];
	const char *args[] = { port, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, workers, "fx_fcntl", args, workers, workers);
	st_load(c, p, 30 * workers, workers, false, &tally);
	for (int id = 1; id <= workers; id++) {
		hx_assert(c, tally.served[id] > 0, "worker %d served nothing",
			  id);
		hx_assert(c, hx_wait_asleep(hx_worker_pid(c, id), 3000),
			  "worker %d (pid %d) is not asleep in accept() "
			  "between connections: it spins", id,
			  (int)hx_worker_pid(c, id));
	}
	st_assert_steady(c, workers);
	st_stop(c);
}

Test(fcntl, listener_and_faux_handle_rr) { fcntl_case("rr", 2); }
Test(fcntl, shared_listener_none) { fcntl_case("none", 1); }
