/*
 * cluster.c - the primary (Node's lib/internal/cluster/primary.js): the
 * cluster object, its event subscribers, forking workers and reaping them.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "log_line.h"

#define DEFAULT_KILL_TIMEOUT_MS 30000
#define DEFAULT_RR_WINDOW 16

const char *cluster_sched_name(enum cluster_sched sched)
{
	switch (sched) {
	case CLUSTER_SCHED_NONE:
		return "none";
	case CLUSTER_SCHED_REUSEPORT:
		return "reuseport";
	default:
		return "rr";
	}
}

enum cluster_sched cluster_sched(const struct cluster *c)
{
	return c->settings.sched;
}

unsigned cluster_worker_count(const struct cluster *c)
{
	return c->nworkers;
}

unsigned long cluster_handed_connections(const struct cluster *c)
{
	return c->handed;
}

unsigned long cluster_protocol_violations(const struct cluster *c)
{
	return c->protocol_violations;
}

void cluster_logf(struct cluster *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(c->settings.log, c->settings.log_arg, fmt, ap);
	va_end(ap);
}

int cluster_on(struct cluster *c, enum cluster_event_type type,
	       cluster_event_cb cb, void *arg)
{
	unsigned n;

	if ((unsigned)type >= CLUSTER_EV_COUNT ||
	    c->nsubs[type] == CLUSTER_MAX_SUBSCRIBERS) {
		errno = EINVAL;
		return -1;
	}
	n = c->nsubs[type]++;
	c->subs[type][n].cb = cb;
	c->subs[type][n].arg = arg;
	return 0;
}

static void cluster_deliver(struct cluster *c, const struct cluster_event *ev)
{
	unsigned i;

	for (i = 0; i < c->nsubs[ev->type]; i++)
		c->subs[ev->type][i].cb(c, ev, c->subs[ev->type][i].arg);
}

static void note_copy(struct cluster_note *n, const struct cluster_event *ev)
{
	n->ev = *ev;
	if (ev->address) {
		snprintf(n->address, sizeof(n->address), "%s", ev->address);
		n->ev.address = n->address;
	}
	if (ev->policy) {
		snprintf(n->policy, sizeof(n->policy), "%s", ev->policy);
		n->ev.policy = n->policy;
	}
	n->next = NULL;
}

static void note_enqueue(struct cluster *c, struct cluster_note *n)
{
	*c->notes_tail = n;
	c->notes_tail = &n->next;
	event_active(c->notes_ev, EV_TIMEOUT, 0);
}

void cluster_emit(struct cluster *c, const struct cluster_event *ev)
{
	struct cluster_note *n = calloc(1, sizeof(*n));

	if (!n) { /* out of memory: late is better than never */
		cluster_deliver(c, ev);
		return;
	}
	note_copy(n, ev);
	note_enqueue(c, n);
}

void cluster_emit_exit(struct cluster_worker *w, const struct cluster_event *ev)
{
	struct cluster_note *n = &w->exit_note;

	note_copy(n, ev);
	n->ends_worker = true;
	note_enqueue(w->cluster, n);
}

/* Delivers every queued event, and those their subscribers cause. */
static void cluster_drain_notes(struct cluster *c)
{
	struct cluster_note *n;

	while ((n = c->notes) != NULL) {
		c->notes = n->next;
		if (!c->notes)
			c->notes_tail = &c->notes;
		cluster_deliver(c, &n->ev);
		if (n->ends_worker) { /* n lives in the worker */
			struct cluster_worker *w = n->ev.worker;

			cluster_worker_unlink(c, w);
			free(w);
		} else {
			free(n);
		}
	}
}

static void cluster_on_notes(evutil_socket_t fd, short what, void *arg)
{
	cluster_drain_notes(arg);
}

static void cluster_worker_link(struct cluster *c, struct cluster_worker *w)
{
	w->next = c->workers;
	if (c->workers)
		c->workers->prev = w;
	c->workers = w;
	c->nworkers++;
}

void cluster_worker_unlink(struct cluster *c, struct cluster_worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		c->workers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	c->nworkers--;
	if (c->disconnecting && c->nworkers == 0 && c->disconnect_done) {
		void (*done)(struct cluster *, void *) = c->disconnect_done;

		c->disconnect_done = NULL;
		done(c, c->disconnect_arg);
	}
}

/* Reap our own children only, by pid: an embedding program may have others.
 * A queued worker has no process yet (pid 0: waitpid would take any).  A
 * subreaper (the seccomp mode) reaps every child, orphans included. */
static void cluster_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct cluster *c = arg;
	struct cluster_worker *w = c->workers, *next;
	int status;

	if (c->subreaper) {
		seccomp_daemon_reap(c);
		return;
	}
	for (; w; w = next) {
		next = w->next;
		if (w->pid > 0 && w->state != WORKER_DEAD && /* EXIT queued */
		    waitpid(w->pid, &status, WNOHANG) == w->pid)
			worker_reap(w, status);
	}
}

/* ---- starting workers, at most CLUSTER_STARTS_IN_FLIGHT at once ---- */

/* fork()s w's process and watches its exec, in flight from now on; 0, or
 * -1 with errno (then w holds nothing). */
static int worker_start(struct cluster_worker *w)
{
	struct cluster *c = w->cluster;
	int err;

	w->pid = worker_spawn(c, w->id, &w->channel_fd, &w->exec_fd,
			      w->output);
	if (w->pid < 0) {
		w->pid = 0;
		return -1;
	}
	c->nstarting++;
	w->in_flight = true;
	if (worker_channel_start(w) < 0 || worker_exec_watch(w) < 0) {
		err = errno;
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
			;
		worker_exec_settle(w, true);
		worker_start_settled(w);
		worker_channel_stop(w);
		worker_output_stop(w);
		w->pid = 0;
		w->start_error = 0;
		errno = err;
		return -1;
	}
	worker_diagnose_start(w);
	return 0;
}

static void worker_emit_fork(struct cluster_worker *w)
{
	struct cluster_event ev = { .type = CLUSTER_EV_FORK, .worker = w };

	worker_usage_arm(w->cluster); /* sampling runs while workers run */
	cluster_emit(w->cluster, &ev);
}

/* A worker that never had a process (its fork failed, or it was cancelled
 * in the queue): its EXIT, pid 0, then it is gone. */
static void worker_end_unstarted(struct cluster_worker *w)
{
	struct cluster_event ev = {
		.type = CLUSTER_EV_EXIT,
		.worker = w,
		.exit_code = -1,
		.error = w->start_error,
	};

	w->state = WORKER_DEAD;
	cluster_emit_exit(w, &ev);
}

static void start_queue_push(struct cluster *c, struct cluster_worker *w)
{
	w->queued = true;
	w->next_queued = NULL;
	if (c->start_queue_tail)
		c->start_queue_tail->next_queued = w;
	else
		c->start_queue = w;
	c->start_queue_tail = w;
}

static struct cluster_worker *start_queue_pop(struct cluster *c)
{
	struct cluster_worker *w = c->start_queue;

	if (!w)
		return NULL;
	c->start_queue = w->next_queued;
	if (!c->start_queue)
		c->start_queue_tail = NULL;
	w->next_queued = NULL;
	w->queued = false;
	return w;
}

void worker_start_settled(struct cluster_worker *w)
{
	struct cluster *c = w->cluster;

	if (w->settle_timer) {
		event_free(w->settle_timer);
		w->settle_timer = NULL;
	}
	if (!w->in_flight)
		return;
	w->in_flight = false;
	c->nstarting--;
	event_active(c->start_ev, EV_TIMEOUT, 0);
}

static void worker_on_settle_timeout(evutil_socket_t fd, short what,
				     void *arg)
{
	worker_start_settled(arg);
}

void worker_start_exec_done(struct cluster_worker *w)
{
	struct timeval tv = { CLUSTER_START_SETTLE_MS / 1000,
			      (CLUSTER_START_SETTLE_MS % 1000) * 1000 };

	if (!w->in_flight || w->settle_timer)
		return;
	w->settle_timer = evtimer_new(w->cluster->base,
				      worker_on_settle_timeout, w);
	if (!w->settle_timer || evtimer_add(w->settle_timer, &tv) < 0)
		worker_start_settled(w);
}

void cluster_start_cancel(struct cluster_worker *w)
{
	struct cluster *c = w->cluster;

	w->exited_after_disconnect = true;
	if (w->cancelled)
		return;
	w->cancelled = true; /* start_queue_turn ends it */
	event_active(c->start_ev, EV_TIMEOUT, 0);
}

/* Deferred (never inside the callback that freed a place or cancelled a
 * worker): ends the cancelled queued workers, then starts queued ones while
 * there is room. */
static void start_queue_turn(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct cluster_worker *w, *next, *rest = NULL, **rest_end = &rest;
	struct cluster_worker *last = NULL, *ended = NULL, **ended_end = &ended;

	/* Take the cancelled ones out, in order; they end below (an EXIT
	 * subscriber may queue or cancel more: the next turn sees those). */
	for (w = c->start_queue; w; w = next) {
		next = w->next_queued;
		w->next_queued = NULL;
		if (w->cancelled) {
			*ended_end = w;
			ended_end = &w->next_queued;
		} else {
			*rest_end = w;
			rest_end = &w->next_queued;
			last = w;
		}
	}
	c->start_queue = rest;
	c->start_queue_tail = last;
	while ((w = ended) != NULL) {
		ended = w->next_queued;
		w->queued = false;
		worker_end_unstarted(w);
	}
	while (c->nstarting < CLUSTER_STARTS_IN_FLIGHT &&
	       (w = start_queue_pop(c)) != NULL) {
		if (worker_start(w) < 0) {
			w->start_error = errno;
			worker_end_unstarted(w);
			continue;
		}
		worker_emit_fork(w);
	}
}

struct cluster_worker *cluster_fork(struct cluster *c, unsigned id)
{
	struct cluster_worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return NULL;
	w->cluster = c;
	w->id = id;
	w->channel_fd = -1;
	w->exec_fd = -1;
	if (c->start_queue || c->nstarting >= CLUSTER_STARTS_IN_FLIGHT) {
		start_queue_push(c, w);
		cluster_worker_link(c, w);
		return w;
	}
	if (worker_start(w) < 0) {
		err = errno;
		free(w);
		errno = err;
		return NULL;
	}
	cluster_worker_link(c, w);
	worker_emit_fork(w);
	return w;
}

void cluster_disconnect(struct cluster *c,
			void (*done)(struct cluster *c, void *arg), void *arg)
{
	struct cluster_worker *w, *next;

	c->disconnecting = true;
	c->disconnect_done = done;
	c->disconnect_arg = arg;
	handle_close_rr_doors(c);
	for (w = c->workers; w; w = next) {
		next = w->next;
		worker_disconnect(w);
	}
	if (c->nworkers == 0 && c->disconnect_done) {
		c->disconnect_done = NULL;
		done(c, arg);
	}
}

/* The channel sits at the top of what a worker may open (at most 1023, so it
 * never pushes the worker past select()'s limit), out of the server's way. */
static void cluster_pick_channel_fd(struct cluster *c)
{
	rlim_t top = 1024;

	if (getrlimit(RLIMIT_NOFILE, &c->worker_nofile) < 0) {
		c->worker_nofile.rlim_cur = c->worker_nofile.rlim_max = 1024;
	}
	if (c->worker_nofile.rlim_cur < top)
		top = c->worker_nofile.rlim_cur;
	c->channel_fd_number = top > 16 ? (int)top - 1 : 15;
}

struct cluster *cluster_new(struct event_base *base,
			    const struct cluster_settings *settings)
{
	struct cluster *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base = base;
	c->settings = *settings;
	if (c->settings.graceful_signal <= 0)
		c->settings.graceful_signal = SIGTERM;
	if (c->settings.kill_timeout_ms <= 0)
		c->settings.kill_timeout_ms = DEFAULT_KILL_TIMEOUT_MS;
	if (c->settings.rr_window == 0)
		c->settings.rr_window = DEFAULT_RR_WINDOW;
	c->newconn_truesize = rr_calibrate_truesize();
	cluster_pick_channel_fd(c);
	if (c->settings.sched == CLUSTER_SCHED_REUSEPORT)
		reuseport_enable_migration(c);
	c->sigchld_ev = evsignal_new(base, SIGCHLD, cluster_on_sigchld, c);
	c->start_ev = event_new(base, -1, 0, start_queue_turn, c);
	c->notes_ev = event_new(base, -1, 0, cluster_on_notes, c);
	c->notes_tail = &c->notes;
	if (!c->sigchld_ev || !c->start_ev || !c->notes_ev ||
	    cluster_sticky_setup(c) < 0 ||
	    evsignal_add(c->sigchld_ev, NULL) < 0) {
		int err = errno;

		cluster_sticky_free(c);
		if (c->sigchld_ev)
			event_free(c->sigchld_ev);
		if (c->start_ev)
			event_free(c->start_ev);
		if (c->notes_ev)
			event_free(c->notes_ev);
		free(c);
		errno = err;
		return NULL;
	}
	return c;
}

void cluster_free(struct cluster *c)
{
	struct cluster_worker *w;
	int status;

	if (!c)
		return;
	/* Nobody hears of these exits: a subscriber must not respawn now. */
	c->disconnect_done = NULL;
	memset(c->nsubs, 0, sizeof(c->nsubs));
	cluster_drain_notes(c); /* to nobody: frees the workers whose EXIT waits */
	while ((w = c->workers) != NULL) {
		if (w->queued) { /* no process: nothing to kill or reap */
			cluster_worker_unlink(c, w);
			free(w);
			continue;
		}
		kill(-w->pid, SIGKILL);
		if (seccomp_daemon_awaiting(w)) { /* reaped already */
			worker_reap(w, seccomp_daemon_held_status(w));
			cluster_drain_notes(c);
			continue;
		}
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
			;
		worker_reap(w, status);
		cluster_drain_notes(c);
	}
	cluster_drain_notes(c);
	daemon_guard_free(c);
	handle_free_all(c);
	if (c->drain_timer)
		event_free(c->drain_timer);
	worker_usage_stop(c);
	event_free(c->sigchld_ev);
	event_free(c->start_ev);
	event_free(c->notes_ev);
	cluster_sticky_free(c);
	free(c);
}
