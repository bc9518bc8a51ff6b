/*
 * worker_usage.c - each worker's CPU and memory, sampled once a second.
 *
 * One timer for the whole cluster, armed only while there are workers (so
 * an embedding program's loop still ends when its workers are gone).  A
 * tick reads the process trees of the workers due (proc_sample.c: a few
 * syscalls per process, nothing that waits, about 13 us for a process),
 * at most USAGE_BATCH of them: with more workers the rest follow in
 * slices USAGE_SLICE_MS apart, so that the loop is never held for more
 * than a millisecond or so at a time (4096 single-process workers: 64
 * slices of under a millisecond each).  Nothing is read on a request or
 * connection path.  Readers (ctl status, /metrics) get the last sample.
 *
 * CPU seconds are a counter that never falls: a descendant that exits
 * without being waited for by its parent takes its time with it, so what
 * is kept is the sum of the rises seen between samples.
 */
#include <event2/event.h>
#include <string.h>
#include <time.h>

#include "cluster_internal.h"
#include "proc_sample.h"
#include "monotonic.h"

#define USAGE_PERIOD_MS 1000
#define USAGE_BATCH 64
#define USAGE_SLICE_MS 10
/* A worker sampled less than this long ago waits for the next pass. */
#define USAGE_DUE_MS (USAGE_PERIOD_MS - 100)

static void usage_sample(struct cluster_worker *w, long long now)
{
	struct worker_usage_state *u = &w->usage;
	struct proc_tree_usage t;
	unsigned long long rise;

	u->tried_ms = now;
	if (w->pid <= 0 || w->state == WORKER_DEAD ||
	    proc_tree_sample(w->pid, &t) < 0)
		return;
	rise = u->samples && t.cpu_ticks > u->last_ticks
		       ? t.cpu_ticks - u->last_ticks
		       : 0;
	if (u->samples == 0)
		u->total_ticks = t.cpu_ticks;
	else
		u->total_ticks += rise;
	if (u->samples && now > u->last_ms)
		u->cpu_percent = 100.0 * (double)rise /
				 (double)proc_ticks_per_second() /
				 ((double)(now - u->last_ms) / 1000.0);
	u->last_ticks = t.cpu_ticks;
	u->last_ms = now;
	u->rss_bytes = t.rss_bytes;
	u->processes = t.processes;
	u->samples++;
}

static void usage_arm_in(struct cluster *c, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (c->usage_timer && c->workers &&
	    !evtimer_pending(c->usage_timer, NULL))
		evtimer_add(c->usage_timer, &tv);
}

static void usage_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct cluster_worker *w;
	long long now = monotonic_ms();
	unsigned done = 0;

	for (w = c->workers; w; w = w->next) {
		if (w->usage.tried_ms && now - w->usage.tried_ms < USAGE_DUE_MS)
			continue;
		if (done == USAGE_BATCH) {
			usage_arm_in(c, USAGE_SLICE_MS);
			return;
		}
		usage_sample(w, now);
		done++;
	}
	usage_arm_in(c, USAGE_PERIOD_MS);
}

void worker_usage_arm(struct cluster *c)
{
	if (!c->usage_timer)
		c->usage_timer = evtimer_new(c->base, usage_on_tick, c);
	usage_arm_in(c, USAGE_PERIOD_MS);
}

void worker_usage_stop(struct cluster *c)
{
	if (c->usage_timer)
		event_free(c->usage_timer);
	c->usage_timer = NULL;
}

void worker_resources(const struct cluster_worker *w,
		      struct worker_resources *out)
{
	const struct worker_usage_state *u = &w->usage;

	memset(out, 0, sizeof(*out));
	out->cpu_percent = -1;
	out->samples = u->samples;
	if (!u->samples)
		return;
	out->cpu_seconds = (double)u->total_ticks /
			   (double)proc_ticks_per_second();
	if (u->samples > 1)
		out->cpu_percent = u->cpu_percent;
	out->rss_bytes = u->rss_bytes;
	out->processes = u->processes;
}
