#include "pool.h"
#include "log_line.h"
#include "replace_reason.h"
#include "sd_notify.h"
#include "monotonic.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CRASH_LIMIT_MAX 1000

/* STATUS= is looked at again this often (and sent if it changed). */
#define STATUS_TICK_SEC 5

struct pool_slot {
	struct pool *pool;
	unsigned id;
	struct cluster_worker *worker;      /* in charge of the slot */
	struct cluster_worker *replacement; /* a reload's new worker */
	struct cluster_worker *retiring;    /* the worker it replaced, leaving */
	struct event *respawn_timer;
	struct event *ready_timer;
	unsigned backoff_ms;
	unsigned restarts;
	unsigned needed_listeners;          /* replacement is ready at this */
	bool replacement_probed;            /* ... and, with ready_on_probe, this */
	long long started_ms;
	long long replacement_started_ms;
	bool listened;                      /* the worker in charge did */
	bool ever_listened;                 /* a worker in charge did, once */
	bool removed;                       /* scaled away */
	int bind_error;                     /* errno of a failed bind */
	bool bind_undeclared;               /* refused: not a --listen one */
	char bind_address[160];
	char last_exit[64];                 /* of its last worker in charge */
	/* A replacement of this one slot (not the reload's): recycling runs
	 * the replacement; wanted waits for the --reload-parallel budget. */
	bool recycling, recycle_wanted;
	struct replace_record wanted;       /* why the wanted one is due */
	pid_t recycle_failed_pid;           /* its replacement failed: not
					     * tried again for this worker */
	bool respawn_counts;                /* killed by us: its refill is a
					     * restart */
	struct replace_record last;         /* why it was last replaced */
};

struct pool {
	struct event_base *base;
	struct cluster *cluster;
	struct pool_settings s;
	struct pool_slot **slots;
	unsigned nslots;   /* allocated; ids 1..nslots */
	unsigned size;     /* wanted */
	bool stopping;
	bool ever_listening;
	int exit_code;
	long long *failed_starts; /* ring of crash_limit timestamps */
	unsigned nfailed, failed_head;
	bool reloading, reload_again;
	unsigned reload_next, reload_active;
	unsigned recycle_active;           /* one-slot replacements running */
	bool told_ready;      /* systemd heard READY=1 (and MAINPID) */
	bool told_reloading;  /* systemd heard RELOADING=1, not yet READY=1 */
	struct pool_counters counters;
	struct pool_reload_outcome last_reload;
	long long last_reload_ms;
	pool_reload_done_fn reload_done;
	void *reload_done_arg;
	struct event *status_timer; /* with NOTIFY_SOCKET: STATUS= ages */
	struct pool_watch *watch;   /* hang and recycling checks, if asked */
};

static void pool_logf(struct pool *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pool_logf(struct pool *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(p->s.log, p->s.log_arg, fmt, ap);
	va_end(ap);
}

static void describe_exit(const struct cluster_event *ev, char *buf,
			  size_t cap)
{
	if (ev->term_signal)
		snprintf(buf, cap, "killed by signal %d (%s)", ev->term_signal,
			 strsignal(ev->term_signal));
	else
		snprintf(buf, cap, "exited with code %d", ev->exit_code);
}

/* ---- systemd ($NOTIFY_SOCKET; nothing is sent without it) ---- */

static long long monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Connections waiting for a worker, over the stream listeners: the
 * kernel's accept queues and, in rr, what cluster-run holds; -1 when no
 * listener tells.  A getsockopt per listener: for STATUS=, not per
 * connection. */
static long pool_queued(const struct pool *p)
{
	struct cluster_listener_stats ls[64];
	unsigned i, n = cluster_listener_stats(p->cluster, ls, 64);
	long queued = -1;

	for (i = 0; i < n && i < 64; i++) {
		if (!ls[i].stream || (ls[i].queued < 0 && !ls[i].rr))
			continue;
		queued = (queued < 0 ? 0 : queued) +
			 (ls[i].queued > 0 ? ls[i].queued : 0) + ls[i].held;
	}
	return queued;
}

/* STATUS=: how many of the wanted workers listen, what waits for them,
 * the last reload and when, the restarts; sent with each notification,
 * on each change, and every STATUS_TICK_SEC (queues move without an
 * event; an unchanged text is not sent again). */
static void pool_status(const struct pool *p, struct systemd_status *st)
{
	unsigned i;

	memset(st, 0, sizeof(*st));
	st->wanted = p->size;
	st->queued = pool_queued(p);
	for (i = 0; i < p->size && i < p->nslots; i++) {
		const struct pool_slot *s = p->slots[i];

		st->listening += s->worker &&
			worker_state(s->worker) == WORKER_LISTENING;
		st->restarts += s->restarts;
	}
	if (p->reloading)
		st->reload = SYSTEMD_RELOAD_RUNNING;
	else if (!p->last_reload.ran)
		st->reload = SYSTEMD_RELOAD_NONE;
	else
		st->reload = p->last_reload.ok ? SYSTEMD_RELOAD_DONE
					       : SYSTEMD_RELOAD_STOPPED;
	st->reload_age_ms = monotonic_ms() - p->last_reload_ms;
}

static void pool_notify(struct pool *p, const char *head)
{
	struct systemd_status st;

	pool_status(p, &st);
	systemd_notify_status(head, &st);
}

/* A change (a worker listens, exits, restarts; a scale): STATUS= alone,
 * if its text changed.  Nothing once stopping: STOPPING=1 is the last. */
static void pool_notify_status(struct pool *p)
{
	if (!p->stopping)
		pool_notify(p, "");
}

static void pool_on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	pool_notify_status(arg); /* "0 queued", "reload done 2m ago" stay true */
}

/* READY=1, with MAINPID the first time, once every slot's worker has
 * listened (each for the first time since the start). */
static void pool_check_ready(struct pool *p)
{
	char head[64];
	unsigned i;

	if (p->told_ready || p->stopping)
		return;
	for (i = 0; i < p->size; i++)
		if (!p->slots[i]->ever_listened)
			return;
	p->told_ready = true;
	snprintf(head, sizeof(head), "READY=1\nMAINPID=%d\n", (int)getpid());
	pool_notify(p, head);
}

static void notify_reload_start(struct pool *p)
{
	char head[96];

	if (!p->told_ready || p->told_reloading)
		return;
	p->told_reloading = true;
	/* MONOTONIC_USEC: systemd 253 and later want it with RELOADING=1 */
	snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%lld\n",
		 monotonic_usec());
	pool_notify(p, head);
}

static void notify_reload_end(struct pool *p, bool ok)
{
	if (p->stopping)
		return;
	if (!p->told_reloading) {
		pool_check_ready(p);
		return;
	}
	p->told_reloading = false;
	pool_notify(p, "READY=1\n");
}

/* ---- slots ---- */

static struct pool_slot *slot_of(struct cluster_worker *w)
{
	return worker_data(w);
}

static struct cluster_worker *slot_fork(struct pool_slot *s)
{
	struct cluster_worker *w = cluster_fork(s->pool->cluster, s->id);

	if (!w) {
		pool_logf(s->pool, "cannot start worker %u: %s", s->id,
			  strerror(errno));
		return NULL;
	}
	worker_set_data(w, s);
	return w;
}

static int slot_spawn(struct pool_slot *s)
{
	s->worker = slot_fork(s);
	if (!s->worker)
		return -1;
	s->started_ms = monotonic_ms();
	s->listened = false;
	s->bind_error = 0;
	s->bind_undeclared = false;
	return 0;
}

static void slot_schedule_respawn(struct pool_slot *s)
{
	struct pool *p = s->pool;
	struct timeval tv = { s->backoff_ms / 1000,
			      (s->backoff_ms % 1000) * 1000 };

	evtimer_add(s->respawn_timer, &tv);
	s->backoff_ms = s->backoff_ms * 2 > p->s.backoff_max_ms
				? p->s.backoff_max_ms
				: s->backoff_ms * 2;
}

static void slot_on_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct pool_slot *s = arg;

	if (s->pool->stopping || s->removed || s->worker)
		return;
	s->restarts++;
	if (slot_spawn(s) < 0)
		slot_schedule_respawn(s);
	pool_notify_status(s->pool);
}

static void reload_on_ready_timeout(evutil_socket_t fd, short what, void *arg);

static struct pool_slot *slot_new(struct pool *p, unsigned id)
{
	struct pool_slot *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->pool = p;
	s->id = id;
	s->backoff_ms = p->s.backoff_first_ms;
	s->respawn_timer = evtimer_new(p->base, slot_on_respawn, s);
	s->ready_timer = evtimer_new(p->base, reload_on_ready_timeout, s);
	if (!s->respawn_timer || !s->ready_timer) {
		if (s->respawn_timer)
			event_free(s->respawn_timer);
		free(s);
		return NULL;
	}
	return s;
}

static void slot_free(struct pool_slot *s)
{
	struct cluster_worker *ws[3] = { s->worker, s->replacement, s->retiring };
	int i;

	for (i = 0; i < 3; i++)
		if (ws[i])
			worker_set_data(ws[i], NULL);
	event_free(s->respawn_timer);
	event_free(s->ready_timer);
	free(s);
}

/* Slots 1..n exist (not necessarily filled). */
static int pool_grow(struct pool *p, unsigned n)
{
	struct pool_slot **slots;
	unsigned i;

	if (n <= p->nslots)
		return 0;
	slots = realloc(p->slots, n * sizeof(*slots));
	if (!slots)
		return -1;
	p->slots = slots;
	for (i = p->nslots; i < n; i++) {
		slots[i] = slot_new(p, i + 1);
		if (!slots[i]) {
			p->nslots = i;
			return -1;
		}
	}
	p->nslots = n;
	return 0;
}

/* ---- crash loop ---- */

/* Records a worker that exited before it ever listened; true when that
 * makes a crash loop (crash_limit of them within crash_window_ms, and no
 * worker has listened yet). */
static bool pool_count_failed_start(struct pool *p)
{
	long long now = monotonic_ms();
	unsigned limit = p->s.crash_limit, oldest;

	p->failed_starts[(p->failed_head + p->nfailed) % limit] = now;
	if (p->nfailed < limit)
		p->nfailed++;
	else
		p->failed_head = (p->failed_head + 1) % limit;
	if (p->ever_listening || p->nfailed < limit)
		return false;
	oldest = p->failed_head;
	return now - p->failed_starts[oldest] <= (long long)p->s.crash_window_ms;
}

static void pool_fail_bind(struct pool *p, const struct pool_slot *s)
{
	if (s->bind_undeclared) {
		pool_logf(p, "cannot listen on %s: it is not declared with "
			  "--listen (with --uid, workers may only obtain the "
			  "--listen addresses); add --listen %s; stopping",
			  s->bind_address, s->bind_address);
		pool_stop(p, 1);
		return;
	}
	pool_logf(p, "cannot listen on %s: %s%s; stopping", s->bind_address,
		  strerror(s->bind_error),
		  s->bind_error == EADDRINUSE
			  ? " (another program holds it; pick a free port or stop it)"
		  : s->bind_error == EACCES
			  ? " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
			  : "");
	pool_stop(p, 1);
}

/* ---- rolling reload ---- */

static void reload_pump(struct pool *p);
static void recycle_pump(struct pool *p);

/* A reload and one-slot replacements share --reload-parallel. */
static bool pool_replace_budget(const struct pool *p)
{
	return p->reload_active + p->recycle_active < p->s.reload_parallel;
}

/* The reload goes first, then the slots waiting to be recycled. */
static void pool_pump(struct pool *p)
{
	reload_pump(p);
	recycle_pump(p);
}

/* A reload (with the passes queued during it) ended: kept for status,
 * and told to whoever waits for it. */
static void reload_record(struct pool *p, bool ok, const char *why)
{
	p->last_reload.ran = true;
	p->last_reload.ok = ok;
	snprintf(p->last_reload.why, sizeof(p->last_reload.why), "%s",
		 why ? why : "");
	p->last_reload_ms = monotonic_ms();
	if (p->reload_done)
		p->reload_done(p->reload_done_arg, ok, p->last_reload.why);
}

static void reload_finish(struct pool *p, bool ok)
{
	p->reloading = false;
	p->reload_active = 0;
	if (ok)
		p->counters.reloads_done++;
	else
		p->counters.reloads_failed++;
	if (!ok) {
		p->reload_again = false;
		notify_reload_end(p, false);
		return;
	}
	pool_logf(p, "reload: done, every worker replaced");
	if (p->reload_again) {
		p->reload_again = false;
		pool_reload(p); /* still RELOADING for systemd */
		return;
	}
	reload_record(p, true, NULL); /* first: STATUS= tells of it */
	notify_reload_end(p, true);
}

/* A slot that waited for its restart when the reload took it over
 * (reload_start_slot() stopped the timer) waits again. */
static void reload_resume_respawn(struct pool_slot *s)
{
	if (!s->worker && !s->removed && !s->pool->stopping &&
	    !evtimer_pending(s->respawn_timer, NULL))
		slot_schedule_respawn(s);
}

/* Stops the reload where it is; replacements not yet in charge go. */
static void reload_abort(struct pool *p, const char *why)
{
	unsigned i;

	pool_logf(p, "reload stopped: %s; the old workers keep serving", why);
	reload_record(p, false, why);
	for (i = 0; i < p->nslots; i++) {
		struct pool_slot *s = p->slots[i];

		if (s->recycling)   /* not the reload's: it goes on */
			continue;
		evtimer_del(s->ready_timer);
		if (s->replacement) {
			worker_set_data(s->replacement, NULL);
			worker_kill(s->replacement, SIGKILL);
			s->replacement = NULL;
		}
		reload_resume_respawn(s);
	}
	reload_finish(p, false);
}

/* The slot's replacement took over and the old worker is gone. */
static void reload_slot_done(struct pool_slot *s)
{
	struct pool *p = s->pool;

	if (s->recycling) {
		s->recycling = false;
		if (p->recycle_active > 0)
			p->recycle_active--;
	} else if (p->reload_active > 0) {
		p->reload_active--;
	}
	pool_pump(p);
}

/* The replacement holds every listener: it takes the slot over and the old
 * worker is disconnected gracefully. */
static void reload_promote(struct pool_slot *s)
{
	struct pool *p = s->pool;

	evtimer_del(s->ready_timer);
	s->retiring = s->worker;
	s->worker = s->replacement;
	s->replacement = NULL;
	s->started_ms = s->replacement_started_ms;
	s->listened = true;
	s->ever_listened = true;
	s->backoff_ms = p->s.backoff_first_ms;
	if (s->recycling) {
		s->last = s->wanted;
		pool_logf(p, "recycle: worker %u (pid %d) ready", s->id,
			  (int)worker_pid(s->worker));
	} else {
		replace_record_set(&s->last, REPLACE_RELOAD, "rolling reload");
		s->recycle_wanted = false; /* the reload did it */
		pool_logf(p, "reload: worker %u (pid %d) ready", s->id,
			  (int)worker_pid(s->worker));
	}
	p->counters.replaced[s->last.why]++;
	if (s->retiring)
		worker_disconnect(s->retiring);
	else
		reload_slot_done(s);
}

static int reload_start_slot(struct pool_slot *s)
{
	struct pool *p = s->pool;
	unsigned ms = p->s.ready_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	unsigned had = s->worker ? worker_listener_count(s->worker) : 0;

	evtimer_del(s->respawn_timer);
	s->replacement = slot_fork(s);
	if (!s->replacement)
		return -1;
	s->replacement_started_ms = monotonic_ms();
	s->needed_listeners = had > 0 ? had : 1;
	s->replacement_probed = false;
	evtimer_add(s->ready_timer, &tv);
	return 0;
}

static void reload_pump(struct pool *p)
{
	while (p->reloading && pool_replace_budget(p) &&
	       p->reload_next < p->nslots) {
		struct pool_slot *s = p->slots[p->reload_next];

		/* being recycled: its replacement may predate the reload;
		 * the slot is reloaded once that is over */
		if (!s->removed && (s->replacement || s->retiring))
			break;
		p->reload_next++;
		if (s->removed)
			continue;
		if (reload_start_slot(s) < 0) {
			reload_abort(p, "cannot start a replacement worker");
			return;
		}
		p->reload_active++;
	}
	if (p->reloading && p->reload_active == 0 && p->reload_next >= p->nslots)
		reload_finish(p, true);
}

/* A one-slot replacement failed (why): the old worker keeps serving,
 * and is not recycled again (the next one of its slot may be). */
static void recycle_fail(struct pool_slot *s, const char *why)
{
	struct pool *p = s->pool;

	pool_logf(p, "recycle stopped: %s; worker %u (pid %d) keeps serving",
		  why, s->id, s->worker ? (int)worker_pid(s->worker) : 0);
	evtimer_del(s->ready_timer);
	if (s->replacement) {
		worker_set_data(s->replacement, NULL);
		worker_kill(s->replacement, SIGKILL);
		s->replacement = NULL;
	}
	s->recycle_failed_pid = s->worker ? worker_pid(s->worker) : 0;
	s->recycling = false;
	if (p->recycle_active > 0)
		p->recycle_active--;
	reload_resume_respawn(s);
	pool_pump(p);
}

/* The replacement of s failed: a recycle stops alone, a reload whole. */
static void replace_fail(struct pool_slot *s, const char *why)
{
	if (s->recycling)
		recycle_fail(s, why);
	else
		reload_abort(s->pool, why);
}

static void reload_on_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pool_slot *s = arg;
	char why[160];

	snprintf(why, sizeof(why), "replacement worker %u (pid %d) %s after "
		 "%u ms", s->id,
		 s->replacement ? (int)worker_pid(s->replacement) : 0,
		 s->replacement && worker_listener_count(s->replacement) >=
		 s->needed_listeners ? "had passed no health check"
				     : "was not listening",
		 s->pool->s.ready_timeout_ms);
	replace_fail(s, why);
}

/* Starts the wanted one-slot replacements the budget allows, as a reload
 * of that one slot (the replacement first, the old worker drained once it
 * listens). */
static void recycle_pump(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->nslots && pool_replace_budget(p); i++) {
		struct pool_slot *s = p->slots[i];

		if (!s->recycle_wanted)
			continue;
		if (p->stopping || s->removed || !s->worker) {
			s->recycle_wanted = false;
			continue;
		}
		if (s->replacement || s->retiring)
			continue; /* a reload's, or still draining */
		s->recycle_wanted = false;
		if (reload_start_slot(s) < 0) {
			pool_logf(p, "recycle of worker %u: cannot start a "
				  "replacement worker", s->id);
			continue;
		}
		s->recycling = true;
		p->recycle_active++;
	}
}

/* hang, health: the worker is killed with its process group and its
 * slot refilled at once; what it had not taken goes to the others. */
static void slot_kill_replace(struct pool_slot *s, struct cluster_worker *w,
			      enum replace_reason why, const char *figure)
{
	struct pool *p = s->pool;
	pid_t pid = worker_pid(w);

	if (w == s->replacement) { /* not in charge yet: a failed start */
		char text[200];

		snprintf(text, sizeof(text), "replacement worker %u (pid %d) "
			 "was killed (%s)", s->id, (int)pid,
			 replace_reason_name(why));
		replace_fail(s, text);
		return;
	}
	if (w == s->worker) {
		replace_record_set(&s->last, why, figure);
		p->counters.replaced[why]++;
		s->respawn_counts = true;
	}
	worker_kill(w, SIGKILL); /* stops routing to it first */
	if (pid > 0)
		kill(-pid, SIGKILL);
}

void pool_worker_replace(struct pool *p, struct cluster_worker *w,
			 enum replace_reason why, const char *figure,
			 bool drain)
{
	struct pool_slot *s = w ? slot_of(w) : NULL;

	if (!s || p->stopping || worker_is_dead(w))
		return;
	if (!drain) {
		slot_kill_replace(s, w, why, figure);
		return;
	}
	/* a drain only for the worker in charge, once */
	if (w != s->worker || s->replacement || s->retiring ||
	    s->recycle_wanted || s->recycle_failed_pid == worker_pid(w))
		return;
	s->recycle_wanted = true;
	replace_record_set(&s->wanted, why, figure);
	recycle_pump(p);
}

int pool_reload(struct pool *p)
{
	if (p->stopping) {
		errno = ESHUTDOWN;
		return -1;
	}
	if (p->reloading) {
		p->reload_again = true;
		pool_logf(p, "reload: already running; one more pass will follow");
		errno = EALREADY;
		return -1;
	}
	p->reloading = true;
	p->counters.reloads_started++;
	p->reload_next = 0;
	p->reload_active = 0;
	pool_logf(p, "reload: replacing %u workers, %u at a time", p->size,
		  p->s.reload_parallel);
	notify_reload_start(p);
	reload_pump(p);
	return 0;
}

bool pool_reloading(const struct pool *p)
{
	return p->reloading;
}

/* ---- readiness with a health check ---- */

/* A reload's replacement is ready once it listens on every address the old
 * worker held and, with a health check, has passed its first probe: a
 * server that listens before it can serve (a cache to load, a database to
 * reach) does not take over until it answers. */
static bool replacement_ready(const struct pool_slot *s)
{
	return worker_listener_count(s->replacement) >= s->needed_listeners &&
	       (!s->pool->s.ready_on_probe || s->replacement_probed);
}

void pool_worker_probe_passed(struct pool *p, struct cluster_worker *w)
{
	struct pool_slot *s = slot_of(w);

	if (!s || w != s->replacement)
		return;
	s->replacement_probed = true;
	if (replacement_ready(s))
		reload_promote(s);
}

bool pool_worker_probe_failed(struct pool *p, struct cluster_worker *w,
			      unsigned fails, const char *why)
{
	struct pool_slot *s = slot_of(w);
	char line[200];

	if (!s || w != s->replacement)
		return false;
	snprintf(line, sizeof(line), "replacement worker %u (pid %d) failed %u "
		 "health checks in a row (%s)", s->id, (int)worker_pid(w),
		 fails, why);
	replace_fail(s, line);
	return true;
}

/* ---- events ---- */

static void pool_on_listening(struct cluster *c, const struct cluster_event *ev,
			      void *arg)
{
	struct pool *p = arg;
	struct pool_slot *s = slot_of(ev->worker);

	p->ever_listening = true;
	if (!s)
		return;
	if (ev->worker == s->worker) {
		s->listened = s->ever_listened = true;
		pool_check_ready(p);
	} else if (ev->worker == s->replacement && replacement_ready(s))
		reload_promote(s);
	pool_notify_status(p);
}

static void pool_on_bind_error(struct cluster *c,
			       const struct cluster_event *ev, void *arg)
{
	struct pool_slot *s = slot_of(ev->worker);

	if (!s)
		return;
	s->bind_error = ev->error;
	s->bind_undeclared = ev->undeclared;
	snprintf(s->bind_address, sizeof(s->bind_address), "%s", ev->address);
}

static void on_replacement_exit(struct pool_slot *s,
				const struct cluster_event *ev)
{
	char how[96], why[200];

	s->replacement = NULL;
	describe_exit(ev, how, sizeof(how));
	snprintf(why, sizeof(why), "replacement worker %u (pid %d) %s before "
		 "listening", s->id, (int)worker_pid(ev->worker), how);
	replace_fail(s, why);
}

static void on_unexpected_exit(struct pool_slot *s,
			       const struct cluster_event *ev)
{
	struct pool *p = s->pool;
	char how[96];

	if (s->bind_error && !p->ever_listening) {
		pool_fail_bind(p, s);
		return;
	}
	if (!s->listened && pool_count_failed_start(p)) {
		describe_exit(ev, how, sizeof(how));
		/* "through cluster-run": a program that binds behind the shim
		 * may serve from one worker meanwhile (said at its start) */
		pool_logf(p, "workers keep failing to start: %u exits within %u s "
			  "and none ever listened through cluster-run (last: "
			  "worker %u (pid %d) %s); stopping", p->s.crash_limit,
			  p->s.crash_window_ms / 1000, s->id,
			  (int)worker_pid(ev->worker), how);
		pool_stop(p, 1);
		return;
	}
	if (monotonic_ms() - s->started_ms >= (long long)p->s.backoff_reset_ms)
		s->backoff_ms = p->s.backoff_first_ms;
	slot_schedule_respawn(s);
}

/* Its fork or exec failed (reported by the EXIT, as the loop never waits
 * for an exec): said in one line.  While no worker has ever listened, the
 * command cannot run at all: stop, as a failed first start always did.
 * True when the pool stops. */
static bool on_start_failure(struct pool_slot *s, const struct cluster_event *ev)
{
	struct pool *p = s->pool;

	pool_logf(p, "cannot start worker %u: %s", s->id, strerror(ev->error));
	if (p->ever_listening || p->stopping)
		return false;
	pool_logf(p, "no worker could start; stopping");
	pool_stop(p, 1);
	return true;
}

/* ms until the slot's next worker starts; -1 when none is due. */
static long long slot_restart_in_ms(const struct pool_slot *s)
{
	struct timeval at, now;
	long long ms;

	if (!evtimer_pending(s->respawn_timer, &at))
		return -1;
	/* event_pending() gives the expiry on the wall clock */
	evutil_gettimeofday(&now, NULL);
	ms = ((long long)at.tv_sec - now.tv_sec) * 1000 +
	     (at.tv_usec - now.tv_usec) / 1000;
	return ms > 0 ? ms : 0;
}

/* The line that says a worker went unasked and when its slot restarts;
 * a server that exits 0 once it served is called that, not a crash. */
static void slot_log_restart(struct pool_slot *s, const struct cluster_event *ev)
{
	long long in = slot_restart_in_ms(s);

	if (in < 0 || s->pool->stopping)
		return;
	/* Not "worker N (pid P) ..." first: that is the event lines' form. */
	pool_logf(s->pool, "restart: worker %u (pid %d) %s%s; restarting it "
		  "in %lld.%lld s (restart %u)", s->id,
		  (int)worker_pid(ev->worker),
		  s->last_exit, s->listened && !ev->term_signal &&
		  !ev->exit_code ? " after it listened, though nothing asked "
		  "it to stop" : "", (in + 50) / 1000, (in + 50) % 1000 / 100,
		  s->restarts + 1);
}

static void pool_on_exit(struct cluster *c, const struct cluster_event *ev,
			 void *arg)
{
	struct pool *p = arg;
	struct pool_slot *s = slot_of(ev->worker);

	if (!s)
		return;
	if (ev->error && on_start_failure(s, ev)) {
		if (ev->worker == s->worker)
			s->worker = NULL;
		if (ev->worker == s->replacement)
			s->replacement = NULL;
		return;
	}
	if (ev->worker == s->retiring) {
		s->retiring = NULL;
		reload_slot_done(s);
		return;
	}
	if (ev->worker == s->replacement) {
		on_replacement_exit(s, ev);
		return;
	}
	if (ev->worker != s->worker)
		return;
	s->worker = NULL;
	s->recycle_wanted = false; /* it was for this worker, not the next */
	describe_exit(ev, s->last_exit, sizeof(s->last_exit));
	pool_notify_status(p);
	if (p->stopping || s->removed)
		return;
	if (worker_exited_after_disconnect(ev->worker)) {
		/* killed as hung (a restart), or scaled away, then back while
		 * it was leaving: refill now */
		s->restarts += s->respawn_counts && !s->replacement;
		s->respawn_counts = false;
		if (!s->replacement && slot_spawn(s) < 0)
			slot_schedule_respawn(s);
		return;
	}
	replace_record_set(&s->last, REPLACE_CRASH, s->last_exit);
	p->counters.replaced[REPLACE_CRASH]++;
	on_unexpected_exit(s, ev);
	slot_log_restart(s, ev);
}

/* ---- the pool ---- */

static void pool_apply_defaults(struct pool_settings *s)
{
	if (!s->backoff_first_ms)
		s->backoff_first_ms = 100;
	if (!s->backoff_max_ms)
		s->backoff_max_ms = 10000;
	if (s->backoff_max_ms < s->backoff_first_ms)
		s->backoff_max_ms = s->backoff_first_ms;
	if (!s->backoff_reset_ms)
		s->backoff_reset_ms = 30000;
	if (!s->crash_limit)
		s->crash_limit = 10;
	if (s->crash_limit > CRASH_LIMIT_MAX)
		s->crash_limit = CRASH_LIMIT_MAX;
	if (!s->crash_window_ms)
		s->crash_window_ms = 60000;
	if (!s->reload_parallel)
		s->reload_parallel = 1;
	if (!s->ready_timeout_ms)
		s->ready_timeout_ms = 30000;
	if (!s->size)
		s->size = 1;
}

struct pool *pool_new(struct event_base *base, struct cluster *c,
		      const struct pool_settings *settings)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->base = base;
	p->cluster = c;
	p->s = *settings;
	pool_apply_defaults(&p->s);
	p->size = p->s.size;
	p->failed_starts = calloc(p->s.crash_limit, sizeof(*p->failed_starts));
	if (!p->failed_starts || pool_grow(p, p->size) < 0) {
		pool_free(p);
		return NULL;
	}
	if (pool_watch_wanted(&p->s.watch) &&
	    !(p->watch = pool_watch_new(p, base, &p->s.watch, p->s.log,
					p->s.log_arg))) {
		pool_free(p);
		return NULL;
	}
	cluster_on(c, CLUSTER_EV_LISTENING, pool_on_listening, p);
	cluster_on(c, CLUSTER_EV_BIND_ERROR, pool_on_bind_error, p);
	cluster_on(c, CLUSTER_EV_EXIT, pool_on_exit, p);
	if (systemd_notify_enabled()) {
		struct timeval tick = { STATUS_TICK_SEC, 0 };

		p->status_timer = event_new(base, -1, EV_PERSIST,
					    pool_on_status_timer, p);
		if (p->status_timer)
			evtimer_add(p->status_timer, &tick);
	}
	return p;
}

void pool_free(struct pool *p)
{
	unsigned i;

	if (!p)
		return;
	if (p->status_timer)
		event_free(p->status_timer);
	pool_watch_free(p->watch);
	for (i = 0; i < p->nslots; i++)
		slot_free(p->slots[i]);
	free(p->slots);
	free(p->failed_starts);
	free(p);
}

int pool_start(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->size; i++)
		if (slot_spawn(p->slots[i]) < 0) {
			if (i == 0)
				return -1;
			slot_schedule_respawn(p->slots[i]);
		}
	pool_notify_status(p); /* "0/N workers listening" while they start */
	return 0;
}

unsigned long pool_fds_needed(unsigned workers)
{
	return POOL_FDS_BASE + (unsigned long)POOL_FDS_PER_WORKER * workers;
}

/* Whether the supervisor's fd limit carries size workers; if not, says so
 * in one line (as -n does at start) and the scale is refused: workers
 * that would start and then fail on EMFILE are worse than none. */
static bool pool_fds_allow(struct pool *p, unsigned size)
{
	unsigned long need = pool_fds_needed(size);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return true;
	pool_logf(p, "scale to %u refused: %u workers need about %lu file "
		  "descriptors, but RLIMIT_NOFILE allows %lu; raise it "
		  "(ulimit -Hn as root, LimitNOFILE= in systemd) or use fewer "
		  "workers", size, size, need, (unsigned long)rl.rlim_cur);
	return false;
}

/* A slot scaled away: its worker, and a reload's replacement for it (which
 * then counts as the slot's retiring worker, so that the reload moves on
 * when it is gone), are disconnected. */
static void slot_remove(struct pool_slot *s)
{
	s->removed = true;
	evtimer_del(s->respawn_timer);
	if (s->replacement) {
		struct cluster_worker *r = s->replacement;

		evtimer_del(s->ready_timer);
		if (!s->retiring)
			s->retiring = r;
		else
			worker_set_data(r, NULL);
		s->replacement = NULL;
		worker_disconnect(r);
	}
	if (s->worker)
		worker_disconnect(s->worker);
}

int pool_scale(struct pool *p, unsigned size)
{
	unsigned i;

	if (size == 0 || p->stopping) {
		errno = size == 0 ? EINVAL : ESHUTDOWN;
		return -1;
	}
	if (size > p->size && !pool_fds_allow(p, size)) {
		errno = EMFILE;
		return -1;
	}
	if (pool_grow(p, size) < 0) {
		errno = ENOMEM;
		return -1;
	}
	pool_logf(p, "scale: %u -> %u workers", p->size, size);
	p->size = size;
	for (i = 0; i < p->nslots; i++) {
		struct pool_slot *s = p->slots[i];

		if (i < size) {
			s->removed = false;
			if (!s->worker && !s->replacement &&
			    !evtimer_pending(s->respawn_timer, NULL) &&
			    slot_spawn(s) < 0)
				slot_schedule_respawn(s);
			continue;
		}
		if (!s->removed)
			slot_remove(s);
	}
	pool_check_ready(p); /* the slots left may all have listened */
	pool_notify_status(p);
	return 0;
}

unsigned pool_size(const struct pool *p)
{
	return p->size;
}

static void pool_on_all_gone(struct cluster *c, void *arg)
{
	struct pool *p = arg;

	event_base_loopexit(p->base, NULL);
}

void pool_stop(struct pool *p, int exit_code)
{
	unsigned i;

	if (p->stopping)
		return;
	p->stopping = true;
	p->exit_code = exit_code;
	if (p->reloading)
		reload_record(p, false, "cluster-run is stopping");
	p->reloading = false;
	systemd_notify("STOPPING=1\nSTATUS=stopping");
	if (p->status_timer)
		evtimer_del(p->status_timer);
	for (i = 0; i < p->nslots; i++) {
		evtimer_del(p->slots[i]->respawn_timer);
		evtimer_del(p->slots[i]->ready_timer);
	}
	cluster_disconnect(p->cluster, pool_on_all_gone, p);
}

/* Calls fn on every worker of every slot: in charge, a reload's
 * replacement, the one it replaced; how many there were. */
static unsigned pool_each_worker(struct pool *p,
				 void (*fn)(struct cluster_worker *w, int sig),
				 int sig)
{
	unsigned i, n = 0;

	for (i = 0; i < p->nslots; i++) {
		struct pool_slot *s = p->slots[i];
		struct cluster_worker *ws[3] = { s->worker, s->replacement,
						 s->retiring };
		int k;

		for (k = 0; k < 3; k++)
			if (ws[k] && !worker_is_dead(ws[k])) {
				fn(ws[k], sig);
				n++;
			}
	}
	return n;
}

static void kill_worker(struct cluster_worker *w, int sig)
{
	worker_kill(w, sig);
}

void pool_kill_now(struct pool *p)
{
	pool_each_worker(p, kill_worker, SIGKILL);
}

/* A signal for the worker's own handler: the worker stays as it is in
 * the cluster's books (worker_kill() would count it as stopping). */
static void signal_worker(struct cluster_worker *w, int sig)
{
	kill(worker_pid(w), sig);
}

unsigned pool_signal_workers(struct pool *p, int sig)
{
	return pool_each_worker(p, signal_worker, sig);
}

bool pool_stopping(const struct pool *p)
{
	return p->stopping;
}

int pool_exit_code(const struct pool *p)
{
	return p->exit_code;
}

static void fill_info(struct pool_worker_info *info,
		      const struct pool_slot *s, struct cluster_worker *w,
		      long long started, bool replacement, bool retiring)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->last_exit, sizeof(info->last_exit), "%s", s->last_exit);
	info->restart_in_ms = -1;
	info->retiring = retiring;
	info->id = s->id;
	info->pid = worker_pid(w);
	info->state = worker_state_name(worker_state(w));
	info->uptime_ms = monotonic_ms() - started;
	info->restarts = s->restarts;
	info->handed = worker_handed_connections(w);
	info->listeners = worker_listener_count(w);
	info->replacement = replacement;
	info->replaced = s->last;
	info->rss_start = pool_watch_rss_start(s->pool->watch, w);
	worker_resources(w, &info->res);
}

/* A wanted slot with no worker: waiting for its restart (or, with no
 * restart due, down). */
static void fill_waiting_info(struct pool_worker_info *info,
			      const struct pool_slot *s)
{
	memset(info, 0, sizeof(*info));
	info->id = s->id;
	info->restarts = s->restarts;
	info->waiting = true;
	info->res.cpu_percent = -1;   /* no process: nothing sampled */
	info->restart_in_ms = slot_restart_in_ms(s);
	info->state = info->restart_in_ms >= 0 ? "restarting" : "down";
	info->replaced = s->last;
	snprintf(info->last_exit, sizeof(info->last_exit), "%s", s->last_exit);
}

unsigned pool_snapshot(const struct pool *p, struct pool_worker_info *out,
		       unsigned max)
{
	unsigned i, n = 0;

	for (i = 0; i < p->nslots; i++) {
		const struct pool_slot *s = p->slots[i];

		if (s->worker && n++ < max)
			fill_info(&out[n - 1], s, s->worker, s->started_ms,
				  false, false);
		if (s->replacement && n++ < max)
			fill_info(&out[n - 1], s, s->replacement,
				  s->replacement_started_ms, true, false);
		if (s->retiring && n++ < max) /* its uptime ended with the reload */
			fill_info(&out[n - 1], s, s->retiring,
				  s->started_ms, false, true);
		if (!s->worker && !s->removed && !p->stopping && n++ < max)
			fill_waiting_info(&out[n - 1], s);
	}
	return n;
}

struct cluster_worker *pool_slot_worker(const struct pool *p, unsigned id,
					long long *uptime_ms)
{
	const struct pool_slot *s;

	if (id == 0 || id > p->nslots)
		return NULL;
	s = p->slots[id - 1];
	if (s->removed || !s->worker)
		return NULL;
	if (uptime_ms)
		*uptime_ms = monotonic_ms() - s->started_ms;
	return s->worker;
}

struct cluster *pool_cluster(const struct pool *p)
{
	return p->cluster;
}

void pool_counters(const struct pool *p, struct pool_counters *out)
{
	*out = p->counters;
}

void pool_last_reload(const struct pool *p, struct pool_reload_outcome *out)
{
	*out = p->last_reload;
	out->ago_ms = p->last_reload.ran ? monotonic_ms() - p->last_reload_ms : 0;
}

void pool_on_reload_done(struct pool *p, pool_reload_done_fn fn, void *arg)
{
	p->reload_done = fn;
	p->reload_done_arg = arg;
}
