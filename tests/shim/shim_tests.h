/*
 * shim_tests.h - what the tests of tests/shim share, on top of the
 * integration harness (../integration/harness.h): start a shim fixture under
 * cluster-run and wait until it is up, load it, stop it cleanly.
 */
#ifndef SHIM_TESTS_H
#define SHIM_TESTS_H

#include <sys/socket.h>

#include "harness.h"

/*
 * cluster-run -n WORKERS --sched SCHED -- FIXTURE ARGS (stdout captured);
 * returns once LISTENING "listening" lines and READY lines on stdout came.
 */
struct hx_cluster *st_start(const char *sched, int workers,
			    const char *fixture, const char *const *args,
			    size_t listening, size_t ready);

/* REQUESTS to 127.0.0.1:PORT, each answered by a worker of c. */
void st_load(struct hx_cluster *c, int port, int requests, int workers,
	     bool any_pid, struct hx_tally *tally);

/* No worker died, none was replaced, WORKERS checked in. */
void st_assert_steady(struct hx_cluster *c, int workers);

/* SIGTERM: cluster-run exits 0 and no worker is left; frees c. */
void st_stop(struct hx_cluster *c);


/* The stdout line of c that starts with prefix, or NULL. */
const char *st_stdout_line(const struct hx_cluster *c, const char *prefix);

#endif
