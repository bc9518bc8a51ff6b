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
 * - One slot can be replaced alone (pool_worker_replace): drained as in a
 *   reload of that slot (recycling: --max-memory, --max-conns,
 *   --max-lifetime), sharing the reload's reload_parallel budget, or
 *   killed with its process group and refilled at once (a hung worker).
 */
#ifndef POOL_H
#define POOL_H

#include <stdbool.h>
#include <sys/types.h>

#include "cluster.h"
#include "pool_watch.h"
#include "replace_reason.h"

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
	/* With a health check: a reload's replacement is ready once it has
	 * also passed its first probe (pool_worker_probe_passed). */
	bool ready_on_probe;
	struct pool_watch_settings watch; /* hung workers, recycling */
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
/* Sends sig to every live worker as is (SIGUSR1: reopen your logs);
 * how many got it. */
unsigned pool_signal_workers(struct pool *p, int sig);
bool pool_stopping(const struct pool *p);
int pool_exit_code(const struct pool *p);

/* Rolling reload; 0, or -1 (EALREADY: coalesced into the running one). */
int pool_reload(struct pool *p);
bool pool_reloading(const struct pool *p);
/*
 * Replaces w's slot because of why (the figure backs it in `ctl status`:
 * "612 MiB (limit 512 MiB)"); the caller has said why in its own line.
 * drain: as a rolling reload of that one slot: a new worker first, w
 * drained once it listens, at most reload_parallel slots at a time with a
 * reload (a request beyond that waits its turn); only for the worker in
 * charge of its slot, once (again while one runs: nothing), and never
 * again for a worker whose replacement failed (it keeps serving).
 * !drain: w and its process group are killed (SIGKILL) now, what it had
 * not taken goes to the others, and its slot is refilled at once.
 */
void pool_worker_replace(struct pool *p, struct cluster_worker *w,
			 enum replace_reason why, const char *figure,
			 bool drain);

/* Number of workers wanted from now on (>= 1); -1 with EMFILE (and a line
 * that says so) when RLIMIT_NOFILE cannot carry that many. */
int pool_scale(struct pool *p, unsigned size);
/* fds the supervisor needs for n workers: its own, and per worker the
 * channel and, per rr listener, two ends of a faux handle (counted for two
 * listeners), plus room to accept. */
#define POOL_FDS_BASE 64
#define POOL_FDS_PER_WORKER 5
unsigned long pool_fds_needed(unsigned workers);
unsigned pool_size(const struct pool *p);

/* Health checks (health_policy.c): w passed its first probe, which makes a
 * reload's replacement ready; w failed `fails` in a row, which stops the
 * reload if w is a replacement (true), and is not the pool's to judge
 * otherwise (false). */
void pool_worker_probe_passed(struct pool *p, struct cluster_worker *w);
bool pool_worker_probe_failed(struct pool *p, struct cluster_worker *w,
			      unsigned fails, const char *why);

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
	bool waiting;           /* no worker (pid 0): state "restarting" or
				 * "down" */
	long long restart_in_ms; /* waiting: its next worker starts in; -1 */
	char last_exit[64];     /* the slot's last worker in charge: "exited
				 * with code 3", "killed by signal 9 (Killed)";
				 * "" if none exited */
	struct worker_resources res; /* its process tree's CPU and memory */
	struct replace_record replaced; /* why its slot was last replaced */
	unsigned long long rss_start;   /* with --max-memory: its RSS as it
					 * started listening; 0: unknown */
};

/* Fills up to max entries (per slot: the worker in charge, a reload's
 * replacement, the worker it replaced while that drains, or, for a slot
 * wanted but without a worker, the slot waiting); returns how many there
 * are in all. */
unsigned pool_snapshot(const struct pool *p, struct pool_worker_info *out,
		       unsigned max);

/* The worker in charge of slot id (1..), with its uptime; NULL for a
 * slot without one (or scaled away). */
struct cluster_worker *pool_slot_worker(const struct pool *p, unsigned id,
					long long *uptime_ms);

/* The cluster the pool keeps full (for its listeners' figures). */
struct cluster *pool_cluster(const struct pool *p);

/* Rolling reloads since the start: begun (a coalesced one counts when it
 * begins), done (every slot replaced), failed (stopped, old ones serve). */
struct pool_counters {
	unsigned long reloads_started, reloads_done, reloads_failed;
	/* slots replaced, by reason (REPLACE_NONE: 0) */
	unsigned long replaced[REPLACE_REASON_COUNT];
};
void pool_counters(const struct pool *p, struct pool_counters *out);

/* How the last reload ended (its queued passes with it). */
struct pool_reload_outcome {
	bool ran;               /* false: no reload has ended yet */
	bool ok;                /* every worker replaced */
	long long ago_ms;       /* since it ended */
	char why[200];          /* !ok: why it stopped */
};
void pool_last_reload(const struct pool *p, struct pool_reload_outcome *out);

/* fn(arg, ok, why) each time a reload ends (done, stopped, or ended by a
 * stop); one watcher, NULL for none. */
typedef void (*pool_reload_done_fn)(void *arg, bool ok, const char *why);
void pool_on_reload_done(struct pool *p, pool_reload_done_fn fn, void *arg);

#endif
