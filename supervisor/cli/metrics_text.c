/*
 * metrics_text.c - what /metrics says, from one snapshot of the pool.
 *
 * Names follow Prometheus' conventions: the prefix cluster_run_, counters
 * end in _total, base units (bytes, seconds).  Every family has its HELP
 * and TYPE lines and its samples together, as the format requires.  A
 * worker is labelled id and pid (a reload runs two workers of one id for a
 * while); its state is an enum set, one sample per state, 1 for the state
 * it is in; a slot waiting for its restart (or down) has up, state and
 * restarts with pid "0", nothing else.  Figures not known yet (a worker not sampled yet) or not kept
 * (accepted and held outside rr, the queue of a unix listener) have no
 * sample rather than a made-up one.
 */
#include "metrics_text.h"
#include "pool.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
	const struct pool *pool;
	struct pool_worker_info *w;
	unsigned nw;
	struct cluster_listener_stats *l;
	unsigned nl;
};

static const char *const state_set[] = {
	"starting", "online", "listening", "disconnecting", "disconnected",
	"dead", "restarting", "down",
};

static int snapshot_take(struct snapshot *s, const struct pool *p)
{
	const struct cluster *c = pool_cluster(p);
	unsigned nw = pool_snapshot(p, NULL, 0);
	unsigned nl = cluster_listener_stats(c, NULL, 0);

	memset(s, 0, sizeof(*s));
	s->pool = p;
	s->w = calloc(nw ? nw : 1, sizeof(*s->w));
	s->l = calloc(nl ? nl : 1, sizeof(*s->l));
	if (!s->w || !s->l)
		return -1;
	s->nw = pool_snapshot(p, s->w, nw);
	s->nw = s->nw < nw ? s->nw : nw;
	s->nl = cluster_listener_stats(c, s->l, nl);
	s->nl = s->nl < nl ? s->nl : nl;
	return 0;
}

static void snapshot_free(struct snapshot *s)
{
	free(s->w);
	free(s->l);
}

static void family(struct evbuffer *out, const char *name, const char *type,
		   const char *help)
{
	evbuffer_add_printf(out, "# HELP cluster_run_%s %s\n# TYPE cluster_run_%s "
			    "%s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void add_label_value(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

static const char *state_shown(const struct pool_worker_info *w)
{
	return strcmp(w->state, "none") == 0 ? "starting" : w->state;
}

static void worker_sample(struct evbuffer *out, const char *name,
			  const struct pool_worker_info *w, const char *value)
{
	evbuffer_add_printf(out, "cluster_run_%s{id=\"%u\",pid=\"%d\"} %s\n",
			    name, w->id, (int)w->pid, value);
}

static void worker_states(struct evbuffer *out, const struct snapshot *s)
{
	unsigned i, k;

	family(out, "worker_state", "gauge", "State of each worker process: "
	       "1 for the state it is in, 0 for the others.");
	for (i = 0; i < s->nw; i++)
		for (k = 0; k < sizeof(state_set) / sizeof(*state_set);
		     k++)
			evbuffer_add_printf(out, "cluster_run_worker_state{id="
					    "\"%u\",pid=\"%d\",state=\"%s\"} %d\n",
					    s->w[i].id, (int)s->w[i].pid,
					    state_set[k],
					    strcmp(state_shown(&s->w[i]),
						   state_set[k]) == 0);
}

static void worker_families(struct evbuffer *out, const struct snapshot *s)
{
	char v[64];
	unsigned i;

	family(out, "worker_up", "gauge", "1 while the worker serves (it "
	       "listens on every address it asked for), else 0.");
	for (i = 0; i < s->nw; i++)
		worker_sample(out, "worker_up", &s->w[i],
			      strcmp(s->w[i].state, "listening") == 0 ? "1" : "0");
	worker_states(out, s);
	family(out, "worker_restarts_total", "counter", "Times the worker's "
	       "slot was refilled after an unexpected exit.");
	for (i = 0; i < s->nw; i++) {
		snprintf(v, sizeof(v), "%u", s->w[i].restarts);
		worker_sample(out, "worker_restarts_total", &s->w[i], v);
	}
	family(out, "worker_connections_handed_total", "counter",
	       "Connections cluster-run accepted and handed to the worker "
	       "(rr policy).");
	for (i = 0; i < s->nw; i++) {
		if (s->w[i].waiting)
			continue;
		snprintf(v, sizeof(v), "%lu", s->w[i].handed);
		worker_sample(out, "worker_connections_handed_total", &s->w[i],
			      v);
	}
	family(out, "worker_resident_memory_bytes", "gauge", "Resident memory "
	       "of the worker and its descendants, added up.");
	for (i = 0; i < s->nw; i++)
		if (s->w[i].res.samples) {
			snprintf(v, sizeof(v), "%llu", s->w[i].res.rss_bytes);
			worker_sample(out, "worker_resident_memory_bytes",
				      &s->w[i], v);
		}
	family(out, "worker_cpu_seconds_total", "counter", "User and system "
	       "CPU time of the worker and its descendants (exited ones "
	       "included).");
	for (i = 0; i < s->nw; i++)
		if (s->w[i].res.samples) {
			snprintf(v, sizeof(v), "%.2f", s->w[i].res.cpu_seconds);
			worker_sample(out, "worker_cpu_seconds_total", &s->w[i], v);
		}
	family(out, "worker_processes", "gauge", "Processes in the worker's "
	       "tree (the worker and its descendants).");
	for (i = 0; i < s->nw; i++)
		if (s->w[i].res.samples) {
			snprintf(v, sizeof(v), "%u", s->w[i].res.processes);
			worker_sample(out, "worker_processes", &s->w[i], v);
		}
}

enum listener_figure { LF_ACCEPTED, LF_QUEUED, LF_BACKLOG, LF_HELD };

static const struct {
	const char *name, *type, *help;
} listener_defs[] = {
	[LF_ACCEPTED] = { "listener_accepted_total", "counter",
			  "Connections cluster-run accepted on the listener "
			  "(rr policy)." },
	[LF_QUEUED] = { "listener_queue_depth", "gauge",
			"Connections the kernel completed that nobody has "
			"accepted yet (TCP)." },
	[LF_BACKLOG] = { "listener_backlog", "gauge",
			 "The most connections the kernel queues for the "
			 "listener (TCP)." },
	[LF_HELD] = { "listener_held_connections", "gauge",
		      "Connections cluster-run accepted that no worker has "
		      "taken yet (rr policy)." },
};

/* The figure, or -1 where it is not known or not kept. */
static long listener_value(const struct cluster_listener_stats *l,
			   enum listener_figure f)
{
	switch (f) {
	case LF_ACCEPTED:
		return l->rr ? (long)l->accepted : -1;
	case LF_QUEUED:
		return l->queued;
	case LF_BACKLOG:
		return l->backlog;
	default:
		return l->rr ? (long)l->held : -1;
	}
}

static void listener_families(struct evbuffer *out, const struct snapshot *s)
{
	unsigned f, i;

	for (f = 0; f < sizeof(listener_defs) / sizeof(*listener_defs); f++) {
		family(out, listener_defs[f].name, listener_defs[f].type,
		       listener_defs[f].help);
		for (i = 0; i < s->nl; i++) {
			long v = listener_value(&s->l[i],
						(enum listener_figure)f);

			if (v < 0)
				continue;
			evbuffer_add_printf(out, "cluster_run_%s{address=\"",
					    listener_defs[f].name);
			add_label_value(out, s->l[i].address);
			evbuffer_add_printf(out, "\"} %ld\n", v);
		}
	}
}

/* Every reason but "none", even at 0: a counter that appears only once
 * it rises breaks rate() over its first rise. */
static void replacement_family(struct evbuffer *out,
			       const struct pool_counters *pc)
{
	int r;

	family(out, "worker_replacements_total", "counter", "Worker slots "
	       "replaced, by reason: crash, hang, memory, conns, lifetime, "
	       "health, reload.");
	for (r = REPLACE_NONE + 1; r < REPLACE_REASON_COUNT; r++)
		evbuffer_add_printf(out, "cluster_run_worker_replacements_total"
				    "{reason=\"%s\"} %lu\n",
				    replace_reason_name((enum replace_reason)r),
				    pc->replaced[r]);
}

static void cluster_families(struct evbuffer *out, const struct snapshot *s)
{
	struct pool_counters pc;
	unsigned i, listening = 0;

	for (i = 0; i < s->nw; i++)
		listening += !s->w[i].replacement && !s->w[i].retiring &&
			     strcmp(s->w[i].state, "listening") == 0;
	pool_counters(s->pool, &pc);
	family(out, "workers_wanted", "gauge", "Workers cluster-run keeps "
	       "running (-n, scale).");
	evbuffer_add_printf(out, "cluster_run_workers_wanted %u\n",
			    pool_size(s->pool));
	family(out, "workers_listening", "gauge", "Workers in charge of their "
	       "slot that listen.");
	evbuffer_add_printf(out, "cluster_run_workers_listening %u\n", listening);
	family(out, "reloads_total", "counter", "Rolling reloads: started, "
	       "done (every worker replaced), failed (stopped, the old "
	       "workers kept serving).");
	evbuffer_add_printf(out, "cluster_run_reloads_total{outcome=\"started\"} "
			    "%lu\ncluster_run_reloads_total{outcome=\"done\"} "
			    "%lu\ncluster_run_reloads_total{outcome=\"failed\"} "
			    "%lu\n", pc.reloads_started, pc.reloads_done,
			    pc.reloads_failed);
	replacement_family(out, &pc);
	family(out, "protocol_violations_total", "counter", "Workers cut off "
	       "and killed for breaking the channel protocol.");
	evbuffer_add_printf(out, "cluster_run_protocol_violations_total %lu\n",
			    cluster_protocol_violations(pool_cluster(s->pool)));
	family(out, "connections_handed_total", "counter", "Connections "
	       "cluster-run accepted and handed to workers (rr policy).");
	evbuffer_add_printf(out, "cluster_run_connections_handed_total %lu\n",
			    cluster_handed_connections(pool_cluster(s->pool)));
}

int metrics_render(struct evbuffer *out, const struct pool *p)
{
	struct snapshot s;
	int rc = snapshot_take(&s, p);

	if (rc == 0) {
		worker_families(out, &s);
		listener_families(out, &s);
		cluster_families(out, &s);
	}
	snapshot_free(&s);
	return rc;
}
