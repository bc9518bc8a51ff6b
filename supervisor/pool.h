/*
 * pool.h - N worker slots kept full: what cluster-run adds on top of the
 * Node-like library (Node does not respawn; pm2 and gunicorn do).  A slot
 * whose worker dies unexpectedly is refilled after a back-off delay; a
 * worker that fails to bind at start-up, before any worker ever listened,
 * stops the whole pool with that error.
 */
#ifndef POOL_H
#define POOL_H

#include <stdbool.h>

#include "cluster.h"

struct pool;

struct pool *pool_new(struct event_base *base, struct cluster *c,
		      unsigned size);
void pool_free(struct pool *p);
/* Forks every slot's worker; -1 when the first fork fails. */
int pool_start(struct pool *p);
/* Graceful stop; the loop exits once every worker is gone. */
void pool_stop(struct pool *p, int exit_code);
/* SIGKILL every worker now (a second ^C). */
void pool_kill_now(struct pool *p);
bool pool_stopping(const struct pool *p);
int pool_exit_code(const struct pool *p);

#endif
