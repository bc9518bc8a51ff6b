/*
 * pool.h - worker slots kept full: what cluster-run adds on top of the
 * Node-like library (Node does not respawn; pm2, gunicorn and unicorn do).
 *
 * - A slot whose worker dies unexpectedly is refilled after a back-off delay
 *   (first_ms, doubling up to max_ms, back to first_ms after reset_ms of
 *   uptime).  A worker that exits after a disconnect is not replaced unless
 *   a reload or a scale asked for it.
 * - Crash loop: crash_limit failed starts (exits before listening) within
 *   crash_window_ms, while no worker has ever listened, stop the pool with
 *   exit code 1 and the last exit status quoted.  So does a worker that
 *   cannot bind at start-up.
 * - Rolling reload: slot by slot (reload_parallel at a time) a replacement
 *   with the same id starts; once it listens on every address the old worker
 *   held, the old one is disconnected; the next slot starts when it is gone.
 *   A replacement that exits or is not listening within ready_timeout_ms
 *   stops the reload and the old workers keep serving.  A reload asked for
 *   while one runs is coalesced into one more pass.
 * - Scaling adds slots or gracefully disconnects the highest ones.
 */
#ifndef POOL_H
#define POOL_H

#include <stdbool.h>
#include <sys/types.h>

#include "cluster.h"

struct pool;

struct pool_settings {
	unsigned size;
	unsigned backoff_first_ms;  /* 0: 100 */
	unsigned backoff_max_ms;    /* 0: 10000 */
	unsigned backoff_reset_ms;  /* 0: 30000 */
	unsigned crash_limit;       /* 0: 10 */
	unsigned crash_window_ms;   /* 0: 60000 */
	unsigned reload_parallel;   /* 0: 1 */
	unsigned ready_timeout_ms;  /* 0: 30000 */
	/* Lines for the operator ("reload: slot 2 ready"); NULL: stderr. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

struct pool *pool_new(struct event_base *base, struct cluster *c,
		      const struct pool_settings *settings);
void pool_free(struct pool *p);
/* Forks every slot's worker; -1 when the first fork fails. */
int pool_start(struct pool *p);
/* Graceful stop; the loop exits once every worker is gone. */
void pool_stop(struct pool *p, int exit_code);
/* SIGKILL every worker now (a second ^C). */
void pool_kill_now(struct pool *p);
bool pool_stopping(const struct pool *p);
int pool_exit_code(const struct pool *p);

/* Rolling reload; 0, or -1 (EALREADY: coalesced into the running one). */
int pool_reload(struct pool *p);
bool pool_reloading(const struct pool *p);
/* Number of workers wanted from now on (>= 1). */
int pool_scale(struct pool *p, unsigned size);
unsigned pool_size(const struct pool *p);

/* One line of `cluster-run ctl status`. */
struct pool_worker_info {
	unsigned id;
	pid_t pid;
	const char *state;      /* worker_state_name(), or "starting" */
	long long uptime_ms;
	unsigned restarts;      /* of this slot */
	unsigned long handed;   /* connections handed in rr */
	unsigned listeners;
	bool replacement;       /* a reload's new worker, not yet in charge */
	bool retiring;          /* the worker a reload replaced, draining */
};

/* Fills up to max entries (per slot: the worker in charge, a reload's
 * replacement, the worker it replaced while that drains); returns how many
 * there are in all. */
unsigned pool_snapshot(const struct pool *p, struct pool_worker_info *out,
		       unsigned max);

#endif
