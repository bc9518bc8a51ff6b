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

void cluster_emit(struct cluster *c, const struct cluster_event *ev)
{
	unsigned i;

	for (i = 0; i < c->nsubs[ev->type]; i++)
		c->subs[ev->type][i].cb(c, ev, c->subs[ev->type][i].arg);
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

/* Reap our own children only, by pid: an embedding program may have others. */
static void cluster_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct cluster *c = arg;
	struct cluster_worker *w = c->workers, *next;
	int status;

	for (; w; w = next) {
		next = w->next;
		if (waitpid(w->pid, &status, WNOHANG) == w->pid)
			worker_reap(w, status);
	}
}

struct cluster_worker *cluster_fork(struct cluster *c, unsigned id)
{
	struct cluster_worker *w = calloc(1, sizeof(*w));
	struct cluster_event ev = { .type = CLUSTER_EV_FORK };
	int err;

	if (!w)
		return NULL;
	w->cluster = c;
	w->id = id;
	w->channel_fd = -1;
	w->pid = worker_spawn(c, id, &w->channel_fd, w->output);
	if (w->pid < 0 || worker_channel_start(w) < 0) {
		err = errno;
		if (w->pid > 0) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, NULL, 0);
		}
		worker_channel_stop(w);
		worker_output_stop(w);
		free(w);
		errno = err;
		return NULL;
	}
	cluster_worker_link(c, w);
	worker_diagnose_start(w);
	ev.worker = w;
	cluster_emit(c, &ev);
	return w;
}

void cluster_disconnect(struct cluster *c,
			void (*done)(struct cluster *c, void *arg), void *arg)
{
	struct cluster_worker *w, *next;

	c->disconnecting = true;
	c->disconnect_done = done;
	c->disconnect_arg = arg;
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
	c->sigchld_ev = evsignal_new(base, SIGCHLD, cluster_on_sigchld, c);
	if (!c->sigchld_ev || evsignal_add(c->sigchld_ev, NULL) < 0) {
		if (c->sigchld_ev)
			event_free(c->sigchld_ev);
		free(c);
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
	while ((w = c->workers) != NULL) {
		kill(-w->pid, SIGKILL);
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
			;
		worker_reap(w, status);
	}
	handle_free_all(c);
	if (c->drain_timer)
		event_free(c->drain_timer);
	event_free(c->sigchld_ev);
	free(c);
}
