/*
 * fxs.h - helpers for the shim fixtures in tests/shim.
 *
 * A shim fixture checks one thing the shim must get right from inside a
 * worker, then serves "<worker_id> <pid>\n" as the fixtures of
 * tests/fixtures do (their fixture_common is linked in).  A failed check
 * prints "FAIL <file>:<line>: <what> (<errno text>)" on stdout and stderr
 * and exits 1, which the test sees as a worker exit with its output.
 */
#ifndef FXS_H
#define FXS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fixture_common.h"

void fxs_fail(const char *file, int line, const char *what)
	__attribute__((noreturn));

#define FXS_CHECK(cond)                                              \
	do {                                                         \
		if (!(cond))                                         \
			fxs_fail(__FILE__, __LINE__, #cond);         \
	} while (0)

/* argv[i] as a port (or any small non-negative number); exits 2 if bad. */
int fxs_arg_int(int argc, char **argv, int i);

/* Prints one line on stdout, flushed (the test waits for it). */
void fxs_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $CLUSTER_WORKER_ID as a number, 0 when unset. */
int fxs_worker_id(void);

/* A socket of type on 127.0.0.1:port with SO_REUSEADDR, bound, not
 * listening.  Exits 1 on failure. */
int fxs_bound(int type, int port);

/* O_NONBLOCK of fd's open file as the kernel has it, bypassing the shim
 * (a raw fcntl system call). */
bool fxs_raw_nonblock(int fd);

/* Accepts one connection on fd (blocking or not: waits with poll) and
 * answers it; returns false if accept failed with errno set. */
bool fxs_serve_one(int fd);
/* The same, with the connection in hand until its client sends a byte (or
 * hangs up): "<id> holds a connection" on stdout once it is accepted. */
bool fxs_serve_one_held(int fd);

#endif
