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

/*
 * The common case: FIXTURE PORT [ARG] under cluster-run on a free port,
 * REQUESTS answered by its workers (or their children: any_pid), in rr at
 * least REQUESTS / min_share_div by each worker; then steady, stopped.
 */
void st_serve_case(const char *sched, int workers, const char *fixture,
		   const char *arg, int requests, bool any_pid,
		   int min_share_div);

/* No worker died, none was replaced, WORKERS checked in. */
void st_assert_steady(struct hx_cluster *c, int workers);

/* SIGTERM: cluster-run exits 0 and no worker is left; frees c. */
void st_stop(struct hx_cluster *c);


/* The first stderr line of c that holds every one of texts (NULL-
 * terminated), waiting up to timeout_ms for it; NULL if none came. */
const char *st_wait_err_line(struct hx_cluster *c, const char *const *texts,
			     int timeout_ms);

/* The stdout line of c that starts with prefix, or NULL. */
const char *st_stdout_line(const struct hx_cluster *c, const char *prefix);

/*
 * FIXTURE PORT logger under -n 1 --sched SCHED (fx_daemon's mode: the
 * worker leaves a live child, a logger, that never calls setsid()): the
 * worker answers its one request on *t (its port chosen here), exits with
 * code 3 within exit_ms - no daemon took over - and is restarted,
 * listening again; c, and the first worker's pid in *first.
 */
struct hx_cluster *st_logger_worker_restarts(const char *sched,
					     const char *fixture, int exit_ms,
					     struct hx_target *t,
					     pid_t *first);

#endif
