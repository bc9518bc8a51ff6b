/*
 * cli_sticky.c - --sticky MODE and --sticky-wait MS (see cli_options.h).
 */
#include "cli_sticky.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STICKY_NAME_MAX 64

struct sticky_prefix {
	const char *prefix;
	enum cluster_sticky mode;
};

static const struct sticky_prefix prefixes[] = {
	{ "header:", CLUSTER_STICKY_HEADER },
	{ "cookie:", CLUSTER_STICKY_COOKIE },
	{ "query:", CLUSTER_STICKY_QUERY },
};

/* A header's, cookie's or parameter's name: letters, digits and the
 * token characters that need no quoting in any of the three. */
static bool sticky_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= STICKY_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789-_.~!$'*+^`|") == n;
}

int cli_parse_sticky(const char *arg, struct cli_options *o, char *err,
		     size_t errlen)
{
	size_t i;

	if (strcmp(arg, "ip") == 0) {
		o->sticky = CLUSTER_STICKY_IP;
		o->sticky_name = NULL;
		return 0;
	}
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i].prefix);

		if (strncmp(arg, prefixes[i].prefix, n) != 0)
			continue;
		if (!sticky_name_ok(arg + n)) {
			snprintf(err, errlen, "invalid --sticky '%s': the name "
				 "after '%s' must be 1 to %d letters, digits or "
				 "-_.~!$'*+^`|", arg, prefixes[i].prefix,
				 STICKY_NAME_MAX);
			return -1;
		}
		o->sticky = prefixes[i].mode;
		o->sticky_name = arg + n;
		return 0;
	}
	snprintf(err, errlen, "unknown --sticky '%s': use ip, header:NAME, "
		 "cookie:NAME or query:NAME", arg);
	return -1;
}

int cli_parse_sticky_wait(const char *arg, struct cli_options *o, char *err,
			  size_t errlen)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (arg[0] < '0' || arg[0] > '9' || *end || v == 0 || v > 60000) {
		snprintf(err, errlen, "invalid --sticky-wait '%s': give a whole "
			 "number of milliseconds from 1 to 60000", arg);
		return -1;
	}
	o->sticky_wait_ms = (unsigned)v;
	return 0;
}

int cli_check_sticky(const struct cli_options *o, char *err, size_t errlen)
{
	if (o->sticky != CLUSTER_STICKY_OFF && o->sched != CLUSTER_SCHED_RR) {
		snprintf(err, errlen, "--sticky needs --sched rr (cluster-run "
			 "deals the connections); with --sched %s the kernel "
			 "picks the worker", cluster_sched_name(o->sched));
		return -1;
	}
	if (o->sticky_wait_ms && o->sticky != CLUSTER_STICKY_HEADER &&
	    o->sticky != CLUSTER_STICKY_COOKIE &&
	    o->sticky != CLUSTER_STICKY_QUERY) {
		snprintf(err, errlen, "--sticky-wait goes with --sticky "
			 "header:NAME, cookie:NAME or query:NAME (only those "
			 "wait for the request)");
		return -1;
	}
	return 0;
}
