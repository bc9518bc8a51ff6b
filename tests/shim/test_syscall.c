/*
 * test_syscall.c - syscall(SYS_bind), syscall(SYS_listen) and
 * syscall(SYS_accept4) through glibc's syscall() are handled like the plain
 * calls (fx_syscall binds, listens and accepts that way and must be
 * clustered: one "listening" line per worker, rr deals its connections),
 * and other numbers pass through untouched.
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define REQUESTS 40

TestSuite(syscall, .fini = hx_cleanup, .timeout = 60);

static void syscall_case(const char *sched)
{
	static char port[16];
	const char *args[] = { port, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_syscall", args, WORKERS, WORKERS);
	st_load(c, p, REQUESTS, WORKERS, false, &tally);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= WORKERS; id++)
			hx_assert(c, tally.served[id] >= REQUESTS / 4,
				  "worker %d served %d of %d", id,
				  tally.served[id], REQUESTS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(syscall, syscall_bind_accept4_rr) { syscall_case("rr"); }
Test(syscall, syscall_bind_accept4_none) { syscall_case("none"); }
