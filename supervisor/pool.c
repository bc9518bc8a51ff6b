#include "pool.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_AFTER_MS 30000

struct pool_slot {
	struct pool *pool;
	unsigned id;
	struct cluster_worker *worker;
	struct event *respawn_timer;
	unsigned backoff_ms;
	long long started_ms;
	int bind_error;            /* errno of this worker's failed bind */
	char bind_address[160];
};

struct pool {
	struct event_base *base;
	struct cluster *cluster;
	unsigned size;
	struct pool_slot *slots;
	bool stopping;
	bool ever_listening;
	int exit_code;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct pool_slot *slot_of(struct cluster_worker *w)
{
	return worker_data(w);
}

static int slot_spawn(struct pool_slot *s)
{
	s->worker = cluster_fork(s->pool->cluster, s->id);
	if (!s->worker) {
		fprintf(stderr, "cluster-run: cannot start worker %u: %s\n",
			s->id, strerror(errno));
		return -1;
	}
	worker_set_data(s->worker, s);
	s->started_ms = now_ms();
	s->bind_error = 0;
	return 0;
}

static void slot_schedule_respawn(struct pool_slot *s)
{
	struct timeval tv = { s->backoff_ms / 1000,
			      (s->backoff_ms % 1000) * 1000 };

	evtimer_add(s->respawn_timer, &tv);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							   : s->backoff_ms * 2;
}

static void slot_on_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct pool_slot *s = arg;

	if (s->pool->stopping || s->worker)
		return;
	if (slot_spawn(s) < 0)
		slot_schedule_respawn(s);
}

static void pool_on_listening(struct cluster *c, const struct cluster_event *ev,
			      void *arg)
{
	struct pool *p = arg;

	p->ever_listening = true;
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

static void pool_fail_bind(struct pool *p, const struct pool_slot *s)
{
	fprintf(stderr, "cluster-run: cannot listen on %s: %s%s; stopping\n",
		s->bind_address, strerror(s->bind_error),
		s->bind_error == EADDRINUSE
			? " (another program holds it; pick a free port or stop it)"
		: s->bind_error == EACCES
			? " (a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
			: "");
	pool_stop(p, 1);
}

static void pool_on_exit(struct cluster *c, const struct cluster_event *ev,
			 void *arg)
{
	struct pool *p = arg;
	struct pool_slot *s = slot_of(ev->worker);

	if (!s)
		return;
	s->worker = NULL;
	if (p->stopping || worker_exited_after_disconnect(ev->worker))
		return;
	if (s->bind_error && !p->ever_listening) {
		pool_fail_bind(p, s);
		return;
	}
	if (now_ms() - s->started_ms >= BACKOFF_RESET_AFTER_MS)
		s->backoff_ms = BACKOFF_FIRST_MS;
	slot_schedule_respawn(s);
}

struct pool *pool_new(struct event_base *base, struct cluster *c,
		      unsigned size)
{
	struct pool *p = calloc(1, sizeof(*p));
	unsigned i;

	if (!p || !(p->slots = calloc(size, sizeof(*p->slots)))) {
		free(p);
		return NULL;
	}
	p->base = base;
	p->cluster = c;
	p->size = size;
	for (i = 0; i < size; i++) {
		struct pool_slot *s = &p->slots[i];

		s->pool = p;
		s->id = i + 1;
		s->backoff_ms = BACKOFF_FIRST_MS;
		s->respawn_timer = evtimer_new(base, slot_on_respawn, s);
		if (!s->respawn_timer) {
			pool_free(p);
			return NULL;
		}
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
	for (i = 0; i < p->size; i++) {
		if (p->slots[i].respawn_timer)
			event_free(p->slots[i].respawn_timer);
		if (p->slots[i].worker)
			worker_set_data(p->slots[i].worker, NULL);
	}
	free(p->slots);
	free(p);
}

int pool_start(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->size; i++)
		if (slot_spawn(&p->slots[i]) < 0) {
			if (i == 0)
				return -1;
			slot_schedule_respawn(&p->slots[i]);
		}
	return 0;
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
	for (i = 0; i < p->size; i++)
		evtimer_del(p->slots[i].respawn_timer);
	cluster_disconnect(p->cluster, pool_on_all_gone, p);
}

void pool_kill_now(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->size; i++)
		if (p->slots[i].worker)
			worker_kill(p->slots[i].worker, SIGKILL);
}

bool pool_stopping(const struct pool *p)
{
	return p->stopping;
}

int pool_exit_code(const struct pool *p)
{
	return p->exit_code;
}
