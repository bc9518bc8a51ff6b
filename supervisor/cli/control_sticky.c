/*
 * control_sticky.c - the sticky sessions' part of `ctl status`: how many
 * clients each slot has pinned (cookie, query) or has had lately (ip,
 * header), from the cluster's bounded table: an estimate, at most 65536
 * clients are remembered.
 */
#include "control_sticky.h"

#include <event2/buffer.h>
#include <stdlib.h>

#include "cluster.h"
#include "pool.h"

/* Counts by slot id, for ids 0..*n-1 (malloc'd); NULL when sticky is off. */
static unsigned *sticky_counts(struct pool *p, unsigned *n, unsigned *total)
{
	struct cluster *c = pool_cluster(p);
	unsigned *counts;

	if (cluster_sticky_mode(c, NULL) == CLUSTER_STICKY_OFF)
		return NULL;
	*n = pool_size(p) + 1; /* the slots wanted */
	counts = calloc(*n, sizeof(*counts));
	if (counts)
		*total = cluster_sticky_counts(c, counts, *n);
	return counts;
}

static void add_mode(struct evbuffer *out, struct pool *p, const char *quote)
{
	const char *name;
	enum cluster_sticky mode = cluster_sticky_mode(pool_cluster(p), &name);

	evbuffer_add_printf(out, "%s%s%s%s%s", quote, cluster_sticky_name(mode),
			    name ? ":" : "", name ? name : "", quote);
}

void control_sticky_text(struct pool *p, struct evbuffer *out)
{
	unsigned n, total = 0, id;
	unsigned *counts = sticky_counts(p, &n, &total);

	if (!counts)
		return;
	evbuffer_add_printf(out, "sticky ");
	add_mode(out, p, "");
	evbuffer_add_printf(out, ": clients by slot");
	for (id = 1; id < n; id++)
		evbuffer_add_printf(out, " %u=%u", id, counts[id]);
	evbuffer_add_printf(out, " (%u remembered)\n", total);
	free(counts);
}

void control_sticky_json(struct pool *p, struct evbuffer *out)
{
	unsigned n, total = 0, id;
	unsigned *counts = sticky_counts(p, &n, &total);

	evbuffer_add_printf(out, ",\n  \"sticky\": ");
	if (!counts) {
		evbuffer_add_printf(out, "null");
		return;
	}
	evbuffer_add_printf(out, "{\"mode\": ");
	add_mode(out, p, "\"");
	evbuffer_add_printf(out, ", \"remembered\": %u, \"clients\": {", total);
	for (id = 1; id < n; id++)
		evbuffer_add_printf(out, "%s\"%u\": %u", id > 1 ? ", " : "", id,
				    counts[id]);
	evbuffer_add_printf(out, "}}");
	free(counts);
}
