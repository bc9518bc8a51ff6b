#include "pool.h"
#include "log_line.h"
#include "sd_notify.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRASH_LIMIT_MAX 1000

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
	long long started_ms;
	long long replacement_started_ms;
	bool listened;                      /* the worker in charge did */
	bool ever_listened;                 /* a worker in charge did, once */
	bool removed;                       /* scaled away */
	int bind_error;                     /* errno of a failed bind */
	char bind_address[160];
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
	bool told_ready;      /* systemd heard READY=1 (and MAINPID) */
	bool told_reloading;  /* systemd heard RELOADING=1, not yet READY=1 */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* READY=1, with MAINPID the first time, once every slot's worker has
 * listened (each for the first time since the start). */
static void pool_check_ready(struct pool *p)
{
	unsigned i;

	if (p->told_ready || p->stopping)
		return;
	for (i = 0; i < p->size; i++)
		if (!p->slots[i]->ever_listened)
			return;
	p->told_ready = true;
	systemd_notifyf("READY=1\nMAINPID=%d\nSTATUS=%u worker%s listening",
			(int)getpid(), p->size, p->size == 1 ? "" : "s");
}

static void notify_reload_start(struct pool *p)
{
	if (!p->told_ready || p->told_reloading)
		return;
	p->told_reloading = true;
	/* MONOTONIC_USEC: systemd 253 and later want it with RELOADING=1 */
	systemd_notifyf("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading: "
			"replacing %u worker%s", monotonic_usec(), p->size,
			p->size == 1 ? "" : "s");
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
	systemd_notifyf("READY=1\nSTATUS=%u worker%s listening (%s)", p->size,
			p->size == 1 ? "" : "s",
			ok ? "reloaded" : "reload stopped");
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
	s->started_ms = now_ms();
	s->listened = false;
	s->bind_error = 0;
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
	long long now = now_ms();
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

static void reload_finish(struct pool *p, bool ok)
{
	p->reloading = false;
	p->reload_active = 0;
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
	notify_reload_end(p, true);
}

/* Stops the reload where it is; replacements not yet in charge go. */
static void reload_abort(struct pool *p, const char *why)
{
	unsigned i;

	pool_logf(p, "reload stopped: %s; the old workers keep serving", why);
	for (i = 0; i < p->nslots; i++) {
		struct pool_slot *s = p->slots[i];

		evtimer_del(s->ready_timer);
		if (s->replacement) {
			worker_set_data(s->replacement, NULL);
			worker_kill(s->replacement, SIGKILL);
			s->replacement = NULL;
		}
	}
	reload_finish(p, false);
}

static void reload_slot_done(struct pool_slot *s)
{
	struct pool *p = s->pool;

	if (p->reload_active > 0)
		p->reload_active--;
	reload_pump(p);
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
	pool_logf(p, "reload: worker %u (pid %d) ready", s->id,
		  (int)worker_pid(s->worker));
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
	s->replacement_started_ms = now_ms();
	s->needed_listeners = had > 0 ? had : 1;
	evtimer_add(s->ready_timer, &tv);
	return 0;
}

static void reload_pump(struct pool *p)
{
	while (p->reloading && p->reload_active < p->s.reload_parallel &&
	       p->reload_next < p->nslots) {
		struct pool_slot *s = p->slots[p->reload_next++];

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

static void reload_on_ready_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pool_slot *s = arg;
	char why[160];

	snprintf(why, sizeof(why), "replacement worker %u (pid %d) was not "
		 "listening after %u ms", s->id,
		 s->replacement ? (int)worker_pid(s->replacement) : 0,
		 s->pool->s.ready_timeout_ms);
	reload_abort(s->pool, why);
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
	} else if (ev->worker == s->replacement &&
		 worker_listener_count(ev->worker) >= s->needed_listeners)
		reload_promote(s);
}

static void pool_on_bind_error(struct cluster *c,
			       const struct cluster_event *ev, void *arg)
{
	struct pool_slot *s = slot_of(ev->worker);

	if (!s)
		return;
	s->bind_error = ev->error;
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
	reload_abort(s->pool, why);
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
		pool_logf(p, "workers keep failing to start: %u exits within %u s "
			  "and none ever listened (last: worker %u (pid %d) %s); "
			  "stopping", p->s.crash_limit,
			  p->s.crash_window_ms / 1000, s->id,
			  (int)worker_pid(ev->worker), how);
		pool_stop(p, 1);
		return;
	}
	if (now_ms() - s->started_ms >= (long long)p->s.backoff_reset_ms)
		s->backoff_ms = p->s.backoff_first_ms;
	slot_schedule_respawn(s);
}

static void pool_on_exit(struct cluster *c, const struct cluster_event *ev,
			 void *arg)
{
	struct pool *p = arg;
	struct pool_slot *s = slot_of(ev->worker);

	if (!s)
		return;
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
	if (p->stopping || s->removed ||
	    worker_exited_after_disconnect(ev->worker))
		return;
	on_unexpected_exit(s, ev);
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
	cluster_on(c, CLUSTER_EV_LISTENING, pool_on_listening, p);
	cluster_on(c, CLUSTER_EV_BIND_ERROR, pool_on_bind_error, p);
	cluster_on(c, CLUSTER_EV_EXIT, pool_on_exit, p);
	return p;
}

void pool_free(struct pool *p)
{
	unsigned i;

	if (!p)
		return;
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
	return 0;
}

int pool_scale(struct pool *p, unsigned size)
{
	unsigned i;

	if (size == 0 || p->stopping) {
		errno = size == 0 ? EINVAL : ESHUTDOWN;
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
		s->removed = true;
		evtimer_del(s->respawn_timer);
		if (s->worker)
			worker_disconnect(s->worker);
	}
	pool_check_ready(p); /* the slots left may all have listened */
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
	p->reloading = false;
	systemd_notify("STOPPING=1\nSTATUS=stopping");
	for (i = 0; i < p->nslots; i++) {
		evtimer_del(p->slots[i]->respawn_timer);
		evtimer_del(p->slots[i]->ready_timer);
	}
	cluster_disconnect(p->cluster, pool_on_all_gone, p);
}

void pool_kill_now(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->nslots; i++) {
		struct pool_slot *s = p->slots[i];
		struct cluster_worker *ws[3] = { s->worker, s->replacement,
						 s->retiring };
		int k;

		for (k = 0; k < 3; k++)
			if (ws[k])
				worker_kill(ws[k], SIGKILL);
	}
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
	info->retiring = retiring;
	info->id = s->id;
	info->pid = worker_pid(w);
	info->state = worker_state_name(worker_state(w));
	info->uptime_ms = now_ms() - started;
	info->restarts = s->restarts;
	info->handed = worker_handed_connections(w);
	info->listeners = worker_listener_count(w);
	info->replacement = replacement;
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
	}
	return n;
}
