#include "cli_options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_WORKERS 4096

const char cli_usage[] =
	"Usage: cluster-run [options] -- COMMAND [ARGS...]\n"
	"Run COMMAND, an unmodified single-process network server, as N\n"
	"workers that share its listening sockets.\n"
	"\n"
	"Options:\n"
	"  -n, --workers N         number of workers (default: usable CPUs)\n"
	"      --sched POLICY      rr: cluster-run accepts and deals connections\n"
	"                          round robin (default); none: every worker\n"
	"                          accepts on the shared socket, the kernel picks;\n"
	"                          reuseport: one SO_REUSEPORT socket per worker\n"
	"                          slot, kept across restarts, the kernel hashes.\n"
	"                          Also set by CLUSTER_SCHED_POLICY.\n"
	"      --kill-timeout SEC  at stop, SIGKILL workers still alive after\n"
	"                          SEC seconds (default 30)\n"
	"  -h, --help              this text\n"
	"      --version           print the version\n"
	"\n"
	"Signals:\n"
	"  SIGTERM, SIGINT  stop: every worker gets SIGTERM, then SIGKILL after\n"
	"                   the kill timeout; exit 0.  A second SIGINT kills at once.\n"
	"\n"
	"Each worker sees CLUSTER_WORKER_ID (1..N).  A worker that dies is\n"
	"replaced after a delay that doubles on repeated failures (100 ms..10 s).\n";

unsigned cli_default_workers(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		n = CPU_COUNT(&set);
		if (n > 0)
			return (unsigned)n;
	}
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static int parse_sched(const char *text, enum cluster_sched *sched)
{
	if (strcmp(text, "rr") == 0)
		*sched = CLUSTER_SCHED_RR;
	else if (strcmp(text, "none") == 0)
		*sched = CLUSTER_SCHED_NONE;
	else if (strcmp(text, "reuseport") == 0)
		*sched = CLUSTER_SCHED_REUSEPORT;
	else
		return -1;
	return 0;
}

static int parse_uint(const char *text, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!*text || *text == '-')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

enum { OPT_SCHED = 256, OPT_VERSION, OPT_KILL_TIMEOUT };

static const struct option long_options[] = {
	{ "workers", required_argument, NULL, 'n' },
	{ "sched", required_argument, NULL, OPT_SCHED },
	{ "kill-timeout", required_argument, NULL, OPT_KILL_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int parse_one(int opt, const char *arg, const char *bad,
		     struct cli_options *o, char *err, size_t errlen)
{
	unsigned long v;

	switch (opt) {
	case 'n':
		if (parse_uint(arg, MAX_WORKERS, &v) < 0 || v == 0) {
			snprintf(err, errlen, "invalid worker count '%s': give "
				 "a whole number from 1 to %d", arg, MAX_WORKERS);
			return -1;
		}
		o->workers = (unsigned)v;
		return 0;
	case OPT_SCHED:
		if (parse_sched(arg, &o->sched) < 0) {
			snprintf(err, errlen, "unknown scheduling policy '%s': "
				 "use --sched rr, none or reuseport", arg);
			return -1;
		}
		return 0;
	case OPT_KILL_TIMEOUT:
		if (parse_uint(arg, INT_MAX / 1000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "invalid kill timeout '%s': give "
				 "a whole number of seconds, at least 1", arg);
			return -1;
		}
		o->kill_timeout_ms = (int)v * 1000;
		return 0;
	case 'h':
		o->help = true;
		return 0;
	case OPT_VERSION:
		o->version = true;
		return 0;
	case ':':
		snprintf(err, errlen, "option '%s' needs a value; see "
			 "cluster-run --help", bad);
		return -1;
	}
	snprintf(err, errlen, "unknown option '%s'; see cluster-run --help", bad);
	return -1;
}

int cli_parse(int argc, char **argv, const char *env_sched,
	      struct cli_options *o, char *err, size_t errlen)
{
	int opt;

	memset(o, 0, sizeof(*o));
	o->kill_timeout_ms = 30000;
	if (env_sched && *env_sched && parse_sched(env_sched, &o->sched) < 0) {
		snprintf(err, errlen, "unknown scheduling policy '%s' in "
			 "CLUSTER_SCHED_POLICY: use rr, none or reuseport",
			 env_sched);
		return -1;
	}
	optind = 1;
	opterr = 0;
	/* '+': stop at the first non-option, the server's own argv. */
	while ((opt = getopt_long(argc, argv, "+:n:h", long_options, NULL)) != -1)
		if (parse_one(opt, optarg, argv[optind - 1], o, err, errlen) < 0)
			return -1;
	if (o->help || o->version)
		return 0;
	if (optind >= argc) {
		snprintf(err, errlen, "no command given: usage is cluster-run "
			 "[options] -- COMMAND [ARGS...]");
		return -1;
	}
	o->command = &argv[optind];
	if (o->workers == 0)
		o->workers = cli_default_workers();
	return 0;
}

static bool executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

int cli_check_command(const char *cmd, char *err, size_t errlen)
{
	const char *path = getenv("PATH"), *p, *end;
	char full[PATH_MAX];

	if (strchr(cmd, '/')) {
		if (executable_file(cmd))
			return 0;
		snprintf(err, errlen, "cannot run '%s': %s", cmd,
			 access(cmd, F_OK) == 0 ? "not an executable file"
						: strerror(errno));
		return -1;
	}
	for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p; p = end) {
		size_t len;

		end = strchrnul(p, ':');
		len = (size_t)(end - p);
		if (snprintf(full, sizeof(full), "%.*s/%s", (int)len,
			     len ? p : ".", cmd) < (int)sizeof(full) &&
		    executable_file(full))
			return 0;
		if (*end == ':')
			end++;
	}
	snprintf(err, errlen, "cannot run '%s': command not found in PATH", cmd);
	return -1;
}
