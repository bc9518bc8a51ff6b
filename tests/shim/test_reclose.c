/*
 * test_reclose.c - close() of a worker's last listener returns once the
 * listening socket is closed: under cluster-run -n 1 a connect() right
 * after it is refused, 50 times in a row (fx_reclose), in rr, none and
 * reuseport; then the worker's next listener on the same port serves.
 */
#include "shim_tests.h"

TestSuite(reclose, .fini = hx_cleanup, .timeout = 60);

static void reclose_case(const char *sched)
{
	st_serve_case(sched, 1, "fx_reclose", "50", 20, false, 1);
}

Test(reclose, refused_after_close_rr) { reclose_case("rr"); }
Test(reclose, refused_after_close_none) { reclose_case("none"); }
Test(reclose, refused_after_close_reuseport) { reclose_case("reuseport"); }
