/* cli_options.h - cluster-run's command line, parsed without side effects. */
#ifndef CLI_OPTIONS_H
#define CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster.h"
#include "health_options.h"
#include "listen_policy.h"
#include "pool_watch.h"

struct cli_options {
	unsigned workers;       /* 0 until parsed: then the usable CPUs */
	enum cluster_sched sched;
	enum cluster_intercept intercept; /* --intercept (default auto) */
	int kill_timeout_ms;
	int graceful_signal;
	unsigned reload_parallel;
	unsigned ready_timeout_ms;
	unsigned backoff_first_ms, backoff_max_ms, backoff_reset_ms;
	unsigned crash_limit, crash_window_ms;
	struct pool_watch_settings watch; /* --hang-timeout, --max-* */
	const char *control_path; /* NULL: the default path */
	const char *user, *group; /* --uid, --gid as given */
	const char *chdir_path;
	char **env;               /* --env KEY=VALUE, NULL-terminated */
	size_t nenv;
	struct listen_addr *listen; /* --listen ADDR:PORT */
	size_t nlisten;
	bool prefix_output;     /* --prefix */
	bool metrics_set;       /* --metrics ADDR:PORT, in metrics */
	struct listen_addr metrics;
	enum cluster_sticky sticky; /* --sticky MODE[:NAME] */
	const char *sticky_name;  /* its NAME (in argv) */
	unsigned sticky_wait_ms;  /* --sticky-wait, 0: the default */
	struct health_options health; /* --health-check and its knobs */
	bool help;
	bool version;
	char **command;         /* argv after the options (after "--") */
};

/*
 * Parses argv (and CLUSTER_SCHED_POLICY from env_sched, may be NULL).
 * Returns 0, or -1 with a one-line message (no "cluster-run: " prefix, no
 * newline) in err.
 */
int cli_parse(int argc, char **argv, const char *env_sched,
	      struct cli_options *o, char *err, size_t errlen);

/* --uid/--gid/--chdir made real: ids looked up (a user's own group when
 * only --uid is given), the directory checked.  0, or -1 with err. */
int cli_resolve_identity(const struct cli_options *o, struct cluster_settings *s,
			 char *err, size_t errlen);

/* Frees what cli_parse allocated (the --env list). */
void cli_options_free(struct cli_options *o);

/* Is cmd something execvp() can run?  0, or -1 with a message in err. */
int cli_check_command(const char *cmd, char *err, size_t errlen);

/* The CPUs this process may run on (sched_getaffinity), at least 1. */
unsigned cli_default_workers(void);

extern const char cli_usage[];

#endif
