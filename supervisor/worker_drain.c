/*
 * worker_drain.c - step 2 of a graceful disconnect: the connections a
 * worker holds finish before it gets the graceful signal.
 *
 * One tick for the whole cluster, every DRAIN_TICK_MS while any worker
 * drains: the TCP tables are read once (connections on the ports being
 * drained), then each draining worker's socket fds are matched against
 * them.  A worker with none left, or whose time (half the kill timeout) is
 * up, gets the graceful signal.  Stopping 256 workers costs one table read
 * per tick, not 256.
 */
#include <event2/event.h>
#include <time.h>

#include "cluster_internal.h"
#include "conn_census.h"

#define DRAIN_TICK_MS 20
#define DRAIN_PORTS_MAX 64

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The ports of every draining worker, each once. */
static unsigned drain_ports(struct cluster *c, unsigned *ports)
{
	struct cluster_worker *w;
	unsigned n = 0, i, k;

	for (w = c->workers; w; w = w->next) {
		if (!w->draining)
			continue;
		for (i = 0; i < w->ndrain_ports; i++) {
			for (k = 0; k < n && ports[k] != w->drain_ports[i]; k++)
				;
			if (k == n && n < DRAIN_PORTS_MAX)
				ports[n++] = w->drain_ports[i];
		}
	}
	return n;
}

static void drain_finish(struct cluster_worker *w)
{
	w->draining = false;
	w->cluster->ndraining--;
	worker_signal_graceful(w);
}

static void drain_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct cluster_worker *w, *next;
	unsigned ports[DRAIN_PORTS_MAX];
	struct conn_table t = { 0 };
	long long now = monotonic_ms();

	conn_table_read(&t, ports, drain_ports(c, ports));
	for (w = c->workers; w; w = next) {
		next = w->next;
		if (w->draining &&
		    (conn_table_count(&t, w->pid) <= 0 || now >= w->drain_deadline_ms))
			drain_finish(w);
	}
	conn_table_free(&t);
	if (c->ndraining > 0) {
		struct timeval tick = { 0, DRAIN_TICK_MS * 1000 };

		evtimer_add(c->drain_timer, &tick);
	}
}

bool worker_drain_start(struct cluster_worker *w)
{
	struct cluster *c = w->cluster;
	struct timeval now = { 0, 0 }; /* first look at once: idle workers go */

	if (w->ndrain_ports == 0)
		return false;
	if (!c->drain_timer)
		c->drain_timer = evtimer_new(c->base, drain_on_tick, c);
	if (!c->drain_timer)
		return false;
	w->draining = true;
	w->drain_deadline_ms = monotonic_ms() + c->settings.kill_timeout_ms / 2;
	if (c->ndraining++ == 0)
		evtimer_add(c->drain_timer, &now);
	return true;
}

void worker_drain_cancel(struct cluster_worker *w)
{
	if (!w->draining)
		return;
	w->draining = false;
	w->cluster->ndraining--;
}
