/*
 * replace_reason.h - why a worker slot was last replaced, as `ctl status`
 * and /metrics tell it: the reason and a figure that backs it ("612 MiB
 * (limit 512 MiB)", "killed by signal 11 (Segmentation fault)").
 *
 * Whoever replaces a worker (the pool's own checks, the health checks)
 * does it through pool_worker_replace() (pool.h) with one of these.
 */
#ifndef REPLACE_REASON_H
#define REPLACE_REASON_H

#include <stdio.h>

enum replace_reason {
	REPLACE_NONE,     /* never replaced */
	REPLACE_CRASH,    /* its worker exited unasked */
	REPLACE_HANG,     /* took none of its connections (--hang-timeout) */
	REPLACE_MEMORY,   /* its process tree outgrew --max-memory */
	REPLACE_CONNS,    /* it was handed --max-conns connections */
	REPLACE_LIFETIME, /* it ran --max-lifetime seconds */
	REPLACE_HEALTH,   /* it failed its health checks */
	REPLACE_RELOAD,   /* a rolling reload replaced it */
	REPLACE_REASON_COUNT
};

/* The last replacement of a slot. */
struct replace_record {
	enum replace_reason why;
	char figure[96];
};

/* "none", "crash", "hang", "memory", "conns", "lifetime", "health",
 * "reload"; "?" for anything else. */
const char *replace_reason_name(enum replace_reason why);

static inline void replace_record_set(struct replace_record *r,
				      enum replace_reason why,
				      const char *figure)
{
	r->why = why;
	snprintf(r->figure, sizeof(r->figure), "%s", figure ? figure : "");
}

#endif
