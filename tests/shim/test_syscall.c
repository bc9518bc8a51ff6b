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
	st_serve_case(sched, WORKERS, "fx_syscall", NULL, REQUESTS, false, 4);
}

Test(syscall, syscall_bind_accept4_rr) { syscall_case("rr"); }
Test(syscall, syscall_bind_accept4_none) { syscall_case("none"); }
