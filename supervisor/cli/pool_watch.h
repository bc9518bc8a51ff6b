/*
 * pool_watch.h - what the pool sees of its workers from outside, once a
 * second, without the application's help:
 *
 * - hung (--hang-timeout): connections wait for the worker alone (rr: on
 *   its faux handles; reuseport: in its slot's accept queue) and it has
 *   taken none of them for that long (rr: nothing read; reuseport: the
 *   queue never shrank): it is killed with its process group and its
 *   slot refilled; what it had not taken goes to the others.
 * - recycled (--max-memory, --max-conns, --max-lifetime): drained as in a
 *   rolling reload of its slot (pool_worker_replace).  Each worker gets
 *   its own limit, the figure plus a random share of the jitter, so that
 *   workers started together do not all go together.  A worker already
 *   above --max-memory as it starts listening (measured then, once)
 *   would be recycled again and again: said once, and it is not recycled
 *   for memory.
 *
 * Per tick and worker: a SIOCOUTQ or TCP_INFO per listener (the hang
 * check) and the last memory sample worker_usage.c took; nothing per
 * connection.
 */
#ifndef POOL_WATCH_H
#define POOL_WATCH_H

#include <stdbool.h>

struct event_base;
struct pool;
struct cluster_worker;

struct pool_watch_settings {
	unsigned hang_timeout_ms;             /* 0: no hang check */
	unsigned long long max_memory;        /* bytes of RSS; 0: none */
	unsigned long max_conns, max_conns_jitter;       /* 0: none */
	unsigned max_lifetime_ms, max_lifetime_jitter_ms; /* 0: none */
};

struct pool_watch;

/* Whether any check is asked for (else no watch is made). */
bool pool_watch_wanted(const struct pool_watch_settings *s);
struct pool_watch *pool_watch_new(struct pool *p, struct event_base *base,
				  const struct pool_watch_settings *s,
				  void (*log)(void *arg, const char *line),
				  void *log_arg);
void pool_watch_free(struct pool_watch *pw);
/* With --max-memory: w's RSS as it started listening; 0 if unknown. */
unsigned long long pool_watch_rss_start(const struct pool_watch *pw,
					const struct cluster_worker *w);

#endif
