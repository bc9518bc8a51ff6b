/*
 * cluster_sticky.c - a cluster's sticky sessions (sticky.h): its seed, its
 * table of pinned clients, and the figures `ctl status` shows.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "sticky.h"

#define DEFAULT_STICKY_WAIT_MS 200

const char *cluster_sticky_name(enum cluster_sticky mode)
{
	switch (mode) {
	case CLUSTER_STICKY_IP:
		return "ip";
	case CLUSTER_STICKY_HEADER:
		return "header";
	case CLUSTER_STICKY_COOKIE:
		return "cookie";
	case CLUSTER_STICKY_QUERY:
		return "query";
	default:
		return "off";
	}
}

enum cluster_sticky cluster_sticky_mode(const struct cluster *c,
					const char **name)
{
	enum cluster_sticky mode = c->sticky_table ? c->settings.sticky
						   : CLUSTER_STICKY_OFF;

	if (name)
		*name = mode == CLUSTER_STICKY_OFF || mode == CLUSTER_STICKY_IP
			? NULL : c->settings.sticky_name;
	return mode;
}

/* A seed of this run's own: nobody outside can aim clients at one slot. */
static uint64_t sticky_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return sticky_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
}

int cluster_sticky_setup(struct cluster *c)
{
	if (c->settings.sticky == CLUSTER_STICKY_OFF)
		return 0;
	if (c->settings.sched != CLUSTER_SCHED_RR ||
	    (c->settings.sticky != CLUSTER_STICKY_IP &&
	     (!c->settings.sticky_name || !*c->settings.sticky_name))) {
		errno = EINVAL;
		return -1;
	}
	if (c->settings.sticky_wait_ms == 0)
		c->settings.sticky_wait_ms = DEFAULT_STICKY_WAIT_MS;
	c->sticky_seed = sticky_seed();
	c->sticky_table = sticky_table_new(STICKY_TABLE_MAX);
	return c->sticky_table ? 0 : -1;
}

void cluster_sticky_free(struct cluster *c)
{
	sticky_table_free(c->sticky_table);
	c->sticky_table = NULL;
}

unsigned cluster_sticky_counts(const struct cluster *c, unsigned *counts,
			       unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		counts[i] = 0;
	return c->sticky_table ? sticky_table_counts(c->sticky_table, counts, n)
			       : 0;
}
