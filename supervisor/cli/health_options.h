/*
 * health_options.h - --health-check, --health-interval, --health-timeout,
 * --health-fails: parsed and checked (cli_options.c calls these), without
 * side effects.
 */
#ifndef HEALTH_OPTIONS_H
#define HEALTH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster.h"
#include "health_probe.h"

/* getopt ids of the options, clear of cli_options.c's own. */
enum {
	OPT_HEALTH_CHECK = 512,
	OPT_HEALTH_INTERVAL,
	OPT_HEALTH_TIMEOUT,
	OPT_HEALTH_FAILS,
};

#define HEALTH_LONG_OPTIONS                                                 \
	{ "health-check", required_argument, NULL, OPT_HEALTH_CHECK },      \
	{ "health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL },\
	{ "health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT },  \
	{ "health-fails", required_argument, NULL, OPT_HEALTH_FAILS }

struct health_options {
	enum health_kind kind;      /* 0: no health check */
	const char *path;           /* http: "/health" (in argv) */
	unsigned interval_ms, timeout_ms, fails;
	bool interval_set, timeout_set, fails_set;
};

/* Defaults (5 s, 2 s, 3). */
void health_options_init(struct health_options *h);

/* One of the options above: 0, or -1 with a one-line message in err;
 * 1 when opt is none of them. */
int health_options_parse(struct health_options *h, int opt, const char *arg,
			 char *err, size_t errlen);

/* Once every option is read: they go together, and with rr; a timeout
 * not given is at most the interval.  0, or -1 with err. */
int health_options_check(struct health_options *h, enum cluster_sched sched,
			 char *err, size_t errlen);

#endif
