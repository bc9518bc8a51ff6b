/* pool_watch.c - see pool_watch.h. */
#include "pool_watch.h"
#include "log_line.h"
#include "pool.h"
#include "proc_sample.h"
#include "monotonic.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCH_TICK_MS 1000
#define CONNS_MIN_MS 5     /* the --max-conns look-again, at the soonest */

/* What the watch knows of the worker in charge of one slot. */
struct watch_slot {
	pid_t pid;                  /* the worker it is about; 0: none */
	unsigned long conns_limit;  /* its own: --max-conns plus jitter */
	unsigned long handed_then;  /* handed at the last tick, */
	long long then_ms;          /* ... which was then, */
	double pace;                /* ... and per ms over the tick before
				     * (a new worker starts with the last
				     * one's) */
	long long lifetime_ms;      /* its own: --max-lifetime plus jitter */
	unsigned long long rss_start; /* its RSS as it began listening */
	bool memory_exempt;         /* above the limit from the start */
	bool killed;                /* as hung: nothing more to look at */
	/* A recycle due (said once), asked for at each tick until it runs:
	 * the pool takes it once its slot is free of a reload's. */
	struct replace_record due;
	long long taken;            /* handed less waiting, last tick */
	long long stuck_ms;         /* the first tick that found its queue
				     * waiting and unmoved; 0: it moves */
	/* The last worker of this id to listen (in charge or a reload's
	 * replacement) and its RSS then; kept across a reset. */
	pid_t listened_pid;
	unsigned long long listened_rss;
};

struct pool_watch {
	struct pool *pool;
	struct pool_watch_settings s;
	struct event *timer;
	struct event *conns_timer;  /* one-shot: a --max-conns due within a tick */
	struct watch_slot *slots;   /* by id - 1 */
	unsigned nslots;
	bool said_memory_low;       /* the too-low --max-memory, once */
	unsigned seed;
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

static void watch_logf(struct pool_watch *pw, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void watch_logf(struct pool_watch *pw, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(pw->log, pw->log_arg, fmt, ap);
	va_end(ap);
}

/* "612 MiB", "1.4 MiB", "840 KiB": a limit and a size close to it must
 * not read the same. */
static void format_size(unsigned long long bytes, char *buf, size_t cap)
{
	if (bytes >= 10ULL << 20)
		snprintf(buf, cap, "%llu MiB", (bytes + (512 << 10)) >> 20);
	else if (bytes >= 1ULL << 20)
		snprintf(buf, cap, "%.1f MiB", (double)bytes / (1 << 20));
	else
		snprintf(buf, cap, "%llu KiB", (bytes + 512) >> 10);
}

/* A share of jitter, in [0, jitter]. */
static unsigned long watch_jitter(struct pool_watch *pw, unsigned long jitter)
{
	return jitter ? (unsigned long)rand_r(&pw->seed) % (jitter + 1) : 0;
}

static void watch_slot_reset(struct pool_watch *pw, struct watch_slot *ws,
			     pid_t pid)
{
	pid_t lpid = ws->listened_pid;
	unsigned long long lrss = ws->listened_rss;
	double pace = ws->pace; /* the slot's traffic goes to the new one */

	memset(ws, 0, sizeof(*ws));
	ws->pid = pid;
	ws->listened_pid = lpid;
	ws->listened_rss = lrss;
	ws->pace = pace;
	if (pw->s.max_conns)
		ws->conns_limit = pw->s.max_conns +
				  watch_jitter(pw, pw->s.max_conns_jitter);
	if (pw->s.max_lifetime_ms)
		ws->lifetime_ms = (long long)pw->s.max_lifetime_ms +
				  (long long)watch_jitter(pw,
					pw->s.max_lifetime_jitter_ms);
}

static struct watch_slot *watch_slot_of(struct pool_watch *pw, unsigned id)
{
	if (id > pw->nslots) {
		struct watch_slot *s = realloc(pw->slots, id * sizeof(*s));

		if (!s)
			return NULL;
		memset(s + pw->nslots, 0, (id - pw->nslots) * sizeof(*s));
		pw->slots = s;
		pw->nslots = id;
	}
	return &pw->slots[id - 1];
}

/* Hung: connections wait for it, and its queue has not moved (rr: it
 * read none; reuseport: the queue did not shrink) for the timeout, from
 * the first tick that found it so (connections handed just before a
 * tick are not taken for a second of waiting; the tick's own jitter is
 * allowed for). */
static bool watch_hang(struct pool_watch *pw, struct watch_slot *ws,
		       struct cluster_worker *w, long long now)
{
	long waiting = worker_waiting_connections(w);
	long long taken = (long long)worker_handed_connections(w) - waiting;
	unsigned secs = pw->s.hang_timeout_ms / 1000;
	char figure[96];
	bool moved = waiting <= 0 || taken > ws->taken;

	ws->taken = taken;
	if (moved) {
		ws->stuck_ms = 0;
		return false;
	}
	if (!ws->stuck_ms)
		ws->stuck_ms = now;
	if (now - ws->stuck_ms + WATCH_TICK_MS / 2 <
	    (long long)pw->s.hang_timeout_ms)
		return false;
	watch_logf(pw, "worker %u (pid %d) took none of its %ld connections "
		   "in %u s; killing it", worker_id(w), (int)worker_pid(w),
		   waiting, secs);
	snprintf(figure, sizeof(figure), "took none of %ld connections in "
		 "%u s", waiting, secs);
	ws->killed = true;
	pool_worker_replace(pw->pool, w, REPLACE_HANG, figure, false);
	return true;
}

/* Its size as it started listening (measured then: a load that begins at
 * once would inflate a later sample).  Above the limit already, it would
 * be recycled in a loop: said once, and not recycled for memory. */
static void watch_rss_start(struct pool_watch *pw, struct watch_slot *ws,
			    struct cluster_worker *w)
{
	char size[32], limit[32];

	if (ws->rss_start || ws->listened_pid != ws->pid || !ws->listened_rss)
		return;
	ws->rss_start = ws->listened_rss;
	if (!pw->s.max_memory || ws->rss_start <= pw->s.max_memory)
		return;
	ws->memory_exempt = true;
	if (pw->said_memory_low)
		return;
	pw->said_memory_low = true;
	format_size(ws->rss_start, size, sizeof(size));
	format_size(pw->s.max_memory, limit, sizeof(limit));
	watch_logf(pw, "worker %u (pid %d) uses %s right after it started "
		   "listening, above --max-memory %s: recycling would start "
		   "over at that size; workers above the limit from the start "
		   "are not recycled for memory (raise --max-memory)",
		   worker_id(w), (int)worker_pid(w), size, limit);
}

/* A limit is passed: one line, "worker 3 (pid 812) FIGURE_LINE;
 * recycling it", and the recycle is due. */
static bool watch_due(struct pool_watch *pw, struct watch_slot *ws,
		      struct cluster_worker *w, enum replace_reason why,
		      const char *line, const char *figure)
{
	watch_logf(pw, "worker %u (pid %d) %s; recycling it", worker_id(w),
		   (int)worker_pid(w), line);
	replace_record_set(&ws->due, why, figure);
	return true;
}

static bool watch_memory(struct pool_watch *pw, struct watch_slot *ws,
			 struct cluster_worker *w)
{
	struct worker_resources res;
	char size[32], limit[32], line[128], figure[96];

	if (!pw->s.max_memory || ws->memory_exempt || !ws->rss_start)
		return false;
	worker_resources(w, &res);
	if (res.rss_bytes <= pw->s.max_memory)
		return false;
	format_size(res.rss_bytes, size, sizeof(size));
	format_size(pw->s.max_memory, limit, sizeof(limit));
	snprintf(figure, sizeof(figure), "%s (limit %s)", size, limit);
	snprintf(line, sizeof(line), "uses %s", figure);
	return watch_due(pw, ws, w, REPLACE_MEMORY, line, figure);
}

/* Its pace over the last tick: connections handed per millisecond (on
 * the tick that first sees it, the pace its slot had). */
static void watch_conns_pace(struct watch_slot *ws, unsigned long handed,
			     long long now)
{
	long long took = now - ws->then_ms;

	if (took > 0)
		ws->pace = (double)(handed - ws->handed_then) / (double)took;
	ws->handed_then = handed;
	ws->then_ms = now;
}

/* tick: the once-a-second look (which also measures the pace) */
static bool watch_conns(struct pool_watch *pw, struct watch_slot *ws,
			struct cluster_worker *w, bool tick, long long now)
{
	unsigned long handed = worker_handed_connections(w);
	char line[128], figure[96];

	if (!ws->conns_limit)
		return false;
	if (handed < ws->conns_limit) {
		if (tick)
			watch_conns_pace(ws, handed, now);
		return false;
	}
	snprintf(figure, sizeof(figure), "%lu connections (limit %lu)", handed,
		 ws->conns_limit);
	snprintf(line, sizeof(line), "was handed %s", figure);
	return watch_due(pw, ws, w, REPLACE_CONNS, line, figure);
}

static bool watch_lifetime(struct pool_watch *pw, struct watch_slot *ws,
			   struct cluster_worker *w, long long uptime_ms)
{
	char line[128], figure[96];

	if (!ws->lifetime_ms || uptime_ms < ws->lifetime_ms)
		return false;
	snprintf(figure, sizeof(figure), "%lld s (limit %lld s)",
		 uptime_ms / 1000, ws->lifetime_ms / 1000);
	snprintf(line, sizeof(line), "has run %s", figure);
	return watch_due(pw, ws, w, REPLACE_LIFETIME, line, figure);
}

static void watch_worker(struct pool_watch *pw, unsigned id, long long now)
{
	long long uptime_ms = 0;
	struct cluster_worker *w = pool_slot_worker(pw->pool, id, &uptime_ms);
	struct watch_slot *ws = watch_slot_of(pw, id);

	if (!ws)
		return;
	if (!w || worker_pid(w) <= 0) {
		ws->pid = 0;
		return;
	}
	if (worker_pid(w) != ws->pid) {
		watch_slot_reset(pw, ws, worker_pid(w));
		ws->handed_then = worker_handed_connections(w);
		ws->then_ms = now;
	}
	if (worker_state(w) != WORKER_LISTENING || ws->killed)
		return;
	/* a worker waiting for its recycle may hang meanwhile */
	if (pw->s.hang_timeout_ms && watch_hang(pw, ws, w, now))
		return;
	watch_rss_start(pw, ws, w);
	if (ws->due.why == REPLACE_NONE && !watch_memory(pw, ws, w) &&
	    !watch_conns(pw, ws, w, true, now) &&
	    !watch_lifetime(pw, ws, w, uptime_ms))
		return;
	/* again at each tick: a slot busy with a reload's replacement, or
	 * one that fails and leaves this worker in charge, is asked again */
	pool_worker_replace(pw->pool, w, ws->due.why, ws->due.figure, true);
}

/* The worker in charge of slot id, as the watch knows it, if it is to
 * be checked for --max-conns: listening, nothing due yet. */
static struct cluster_worker *watch_conns_worker(struct pool_watch *pw,
						 unsigned id)
{
	struct watch_slot *ws = &pw->slots[id - 1];
	struct cluster_worker *w = pool_slot_worker(pw->pool, id, NULL);

	if (!w || !ws->conns_limit || worker_pid(w) != ws->pid || ws->killed ||
	    ws->due.why != REPLACE_NONE || worker_state(w) != WORKER_LISTENING)
		return NULL;
	return w;
}

/* At their last tick's pace, the first worker to reach its --max-conns
 * before the next tick is looked at about when it does, so that a busy
 * worker does not run a second's worth of connections past it. */
static void watch_conns_arm(struct pool_watch *pw)
{
	unsigned id, n = pool_size(pw->pool);
	double soonest = WATCH_TICK_MS;
	struct timeval tv;

	for (id = 1; id <= n && id <= pw->nslots; id++) {
		struct cluster_worker *w = watch_conns_worker(pw, id);
		const struct watch_slot *ws = &pw->slots[id - 1];
		unsigned long handed;
		double ms;

		if (!w || ws->pace <= 0)
			continue;
		handed = worker_handed_connections(w);
		ms = handed >= ws->conns_limit ? 0 :
		     (double)(ws->conns_limit - handed) / ws->pace;
		soonest = ms < soonest ? ms : soonest;
	}
	if (soonest >= WATCH_TICK_MS)
		return;
	soonest = soonest < CONNS_MIN_MS ? CONNS_MIN_MS : soonest;
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)(soonest * 1000);
	evtimer_add(pw->conns_timer, &tv);
}

/* Only --max-conns, for the workers about to reach it. */
static void watch_on_conns_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pool_watch *pw = arg;
	unsigned id, n = pool_size(pw->pool);

	if (pool_stopping(pw->pool))
		return;
	for (id = 1; id <= n && id <= pw->nslots; id++) {
		struct cluster_worker *w = watch_conns_worker(pw, id);
		struct watch_slot *ws = &pw->slots[id - 1];

		if (w && watch_conns(pw, ws, w, false, 0))
			pool_worker_replace(pw->pool, w, ws->due.why,
					    ws->due.figure, true);
	}
	watch_conns_arm(pw);
}

static void watch_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pool_watch *pw = arg;
	unsigned id, n = pool_size(pw->pool);
	long long now = monotonic_ms();

	if (pool_stopping(pw->pool)) {
		event_del(pw->timer); /* the loop may end once workers are gone */
		event_del(pw->conns_timer);
		return;
	}
	for (id = 1; id <= n; id++)
		watch_worker(pw, id, now);
	if (pw->s.max_conns)
		watch_conns_arm(pw);
}

/* A worker's first listener: its process tree is measured now, once (a
 * sample of /proc/PID as worker_usage.c takes each second: tens of
 * microseconds, once per worker start). */
static void watch_on_listening(struct cluster *c, const struct cluster_event *ev,
			       void *arg)
{
	struct pool_watch *pw = arg;
	struct watch_slot *ws = watch_slot_of(pw, worker_id(ev->worker));
	pid_t pid = worker_pid(ev->worker);
	struct proc_tree_usage t;

	if (!ws || ws->listened_pid == pid || pid <= 0 ||
	    proc_tree_sample(pid, &t) < 0)
		return;
	ws->listened_pid = pid;
	ws->listened_rss = t.rss_bytes;
}


bool pool_watch_wanted(const struct pool_watch_settings *s)
{
	return s->hang_timeout_ms || s->max_memory || s->max_conns ||
	       s->max_lifetime_ms;
}

struct pool_watch *pool_watch_new(struct pool *p, struct event_base *base,
				  const struct pool_watch_settings *s,
				  void (*log)(void *arg, const char *line),
				  void *log_arg)
{
	struct pool_watch *pw = calloc(1, sizeof(*pw));
	struct timeval tick = { WATCH_TICK_MS / 1000,
				(WATCH_TICK_MS % 1000) * 1000 };

	if (!pw)
		return NULL;
	pw->pool = p;
	pw->s = *s;
	pw->log = log;
	pw->log_arg = log_arg;
	pw->seed = (unsigned)getpid() ^ (unsigned)monotonic_ms();
	pw->timer = event_new(base, -1, EV_PERSIST, watch_on_tick, pw);
	pw->conns_timer = evtimer_new(base, watch_on_conns_timer, pw);
	if (!pw->timer || !pw->conns_timer) {
		pool_watch_free(pw);
		return NULL;
	}
	evtimer_add(pw->timer, &tick);
	if (s->max_memory)
		cluster_on(pool_cluster(p), CLUSTER_EV_LISTENING,
			   watch_on_listening, pw);
	return pw;
}

void pool_watch_free(struct pool_watch *pw)
{
	if (!pw)
		return;
	if (pw->timer)
		event_free(pw->timer);
	if (pw->conns_timer)
		event_free(pw->conns_timer);
	free(pw->slots);
	free(pw);
}

unsigned long long pool_watch_rss_start(const struct pool_watch *pw,
					const struct cluster_worker *w)
{
	unsigned id = worker_id(w);

	if (!pw || id == 0 || id > pw->nslots ||
	    pw->slots[id - 1].pid != worker_pid(w))
		return 0;
	return pw->slots[id - 1].rss_start;
}
