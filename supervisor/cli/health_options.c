#include "health_options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_SEC_MIN_MS 100
#define HEALTH_SEC_MAX_MS 86400000u
#define HEALTH_FAILS_MAX 1000

void health_options_init(struct health_options *h)
{
	memset(h, 0, sizeof(*h));
	h->interval_ms = 5000;
	h->timeout_ms = 2000;
	h->fails = 3;
}

/* "5", "0.5", "2.25": seconds, to the millisecond. */
static int parse_seconds(const char *text, unsigned *ms)
{
	unsigned long whole = 0, frac = 0, scale = 1000;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (unsigned long)(*p - '0');
		if (whole > HEALTH_SEC_MAX_MS / 1000)
			return -1;
	}
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale == 1)
				return -1; /* finer than a millisecond */
			scale /= 10;
			frac += (unsigned long)(*p - '0') * scale;
		}
	}
	if (*p || whole * 1000 + frac < HEALTH_SEC_MIN_MS ||
	    whole * 1000 + frac > HEALTH_SEC_MAX_MS)
		return -1;
	*ms = (unsigned)(whole * 1000 + frac);
	return 0;
}

/* A path as it goes on the request line: from '/', printable, no space. */
static bool request_path(const char *path)
{
	size_t i;

	if (path[0] != '/')
		return false;
	for (i = 0; path[i]; i++)
		if (i >= 256 || (unsigned char)path[i] <= ' ' ||
		    (unsigned char)path[i] >= 0x7f)
			return false;
	return true;
}

static int parse_check(struct health_options *h, const char *arg, char *err,
		       size_t errlen)
{
	if (strcmp(arg, "tcp") == 0) {
		h->kind = HEALTH_TCP;
		h->path = NULL;
		return 0;
	}
	if (strncmp(arg, "http:", 5) == 0 && request_path(arg + 5)) {
		h->kind = HEALTH_HTTP;
		h->path = arg + 5;
		return 0;
	}
	if (strncmp(arg, "http:", 5) == 0)
		snprintf(err, errlen, "invalid --health-check '%s': the path "
			 "must start with '/' and have no spaces or control "
			 "characters (http:/health)", arg);
	else
		snprintf(err, errlen, "invalid --health-check '%s': give "
			 "http:PATH or tcp", arg);
	return -1;
}

static int parse_fails(struct health_options *h, const char *arg, char *err,
		       size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = isdigit((unsigned char)*arg) ? strtoul(arg, &end, 10) : 0;
	if (!isdigit((unsigned char)*arg) || errno || *end || v == 0 ||
	    v > HEALTH_FAILS_MAX) {
		snprintf(err, errlen, "invalid --health-fails '%s': give a "
			 "whole number from 1 to %d", arg, HEALTH_FAILS_MAX);
		return -1;
	}
	h->fails = (unsigned)v;
	h->fails_set = true;
	return 0;
}

static int parse_duration(const char *name, const char *arg, unsigned *ms,
			  bool *set, char *err, size_t errlen)
{
	if (parse_seconds(arg, ms) == 0) {
		*set = true;
		return 0;
	}
	snprintf(err, errlen, "invalid --%s '%s': give seconds, such as 5 or "
		 "0.5 (from 0.1 to 86400)", name, arg);
	return -1;
}

int health_options_parse(struct health_options *h, int opt, const char *arg,
			 char *err, size_t errlen)
{
	switch (opt) {
	case OPT_HEALTH_CHECK:
		return parse_check(h, arg, err, errlen);
	case OPT_HEALTH_INTERVAL:
		return parse_duration("health-interval", arg, &h->interval_ms,
				      &h->interval_set, err, errlen);
	case OPT_HEALTH_TIMEOUT:
		return parse_duration("health-timeout", arg, &h->timeout_ms,
				      &h->timeout_set, err, errlen);
	case OPT_HEALTH_FAILS:
		return parse_fails(h, arg, err, errlen);
	}
	return 1;
}

int health_options_check(struct health_options *h, enum cluster_sched sched,
			 char *err, size_t errlen)
{
	const char *lone = h->interval_set ? "--health-interval"
		: h->timeout_set ? "--health-timeout"
		: h->fails_set ? "--health-fails" : NULL;

	if (!h->kind) {
		if (!lone)
			return 0;
		snprintf(err, errlen, "%s goes with --health-check: add "
			 "--health-check http:PATH or tcp", lone);
		return -1;
	}
	if (sched != CLUSTER_SCHED_RR) {
		snprintf(err, errlen, "--health-check needs --sched rr: with "
			 "--sched %s the kernel picks the worker for each "
			 "connection, so a probe cannot be aimed at one",
			 cluster_sched_name(sched));
		return -1;
	}
	/* The default timeout gives way to a shorter interval given. */
	if (!h->timeout_set && h->timeout_ms > h->interval_ms)
		h->timeout_ms = h->interval_ms;
	if (h->timeout_ms > h->interval_ms) {
		snprintf(err, errlen, "--health-timeout (%u ms) is longer than "
			 "--health-interval (%u ms): give a timeout no longer "
			 "than the interval", h->timeout_ms, h->interval_ms);
		return -1;
	}
	return 0;
}
