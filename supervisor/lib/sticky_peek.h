/*
 * sticky_peek.h - sticky sessions by what an HTTP request names: the
 * supervisor looks at the start of each request (recv with MSG_PEEK, so
 * the server still reads every byte) before it picks the worker.
 *
 * A connection whose head has not all come yet waits in a bounded set, on
 * an edge-triggered read event (each new segment wakes it once), until its
 * head is complete, STICKY_PEEK_MAX bytes are there, the client stops
 * sending, or the wait (settings.sticky_wait_ms) is over; then it is
 * routed with what was found.  The loop never waits on it.  When the set
 * is full, a new connection goes by its client's address at once.
 */
#ifndef STICKY_PEEK_H
#define STICKY_PEEK_H

#include <stdbool.h>

#include "rr_conn.h"

struct cluster;
struct sticky_peek;

/* A connection routed after a wait: c->key, value and pin are set; the
 * connection is done()'s. */
typedef void (*sticky_peek_done_fn)(void *arg, struct rr_conn *c);

struct sticky_peek *sticky_peek_new(struct cluster *cl, sticky_peek_done_fn done,
				    void *arg);
/* Closes the connections still waiting. */
void sticky_peek_free(struct sticky_peek *p);
/* Routes c now (true) or takes it to wait (false: done() gets it). */
bool sticky_peek_route(struct sticky_peek *p, struct rr_conn *c);
/* Connections waiting. */
unsigned sticky_peek_count(const struct sticky_peek *p);

/* c by its client's address alone (--sticky ip, or nothing better). */
void sticky_route_by_address(const struct cluster *cl, struct rr_conn *c);

#endif
