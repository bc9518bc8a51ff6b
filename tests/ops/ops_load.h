/*
 * ops_load.h - steady client load in threads of the test, counted: each
 * request is hx_query() (a new connection, the "<id> <pid>" answer) with a
 * deadline, and is served or failed.  Bounded twice: at most `max`
 * requests, and each thread stops at ops_load_stop() or at the deadline.
 * The test thread meanwhile reads cluster-run's output and waits on its
 * lines (the harness is not shared with the load threads).
 */
#ifndef OPS_LOAD_H
#define OPS_LOAD_H

#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define OPS_LOAD_THREADS 8

struct ops_load {
	struct hx_target target;
	int threads;
	long max;                   /* requests in all, at most */
	int query_ms;               /* one request's deadline */
	int64_t deadline_ms;        /* no request starts after it */
	pthread_t tids[OPS_LOAD_THREADS];
	atomic_long started, served, failed;
	atomic_int last_error;      /* -errno of the last failure */
	atomic_bool stop;
};

/* threads (1..OPS_LOAD_THREADS) making requests to t until max are made,
 * ops_load_stop(), or run_ms have passed. */
void ops_load_start(struct ops_load *l, const struct hx_target *t,
		    int threads, long max, int query_ms, int run_ms);
/* Reads c's output until at least n requests are answered or failed;
 * false at timeout_ms. */
bool ops_load_wait(struct hx_cluster *c, struct ops_load *l, long n,
		   int timeout_ms);
/* Stops the threads (each finishes its request) and joins them, reading
 * c's output meanwhile. */
void ops_load_stop(struct hx_cluster *c, struct ops_load *l);

#endif
