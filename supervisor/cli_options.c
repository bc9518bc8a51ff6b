#include "cli_options.h"
#include "listen_policy.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <strings.h>
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
	"      --graceful-signal SIG  what a worker gets to stop (default TERM;\n"
	"                          nginx wants QUIT)\n"
	"      --kill-timeout SEC  SIGKILL a stopping worker still alive after\n"
	"                          SEC seconds (default 30)\n"
	"      --reload-parallel K replace K workers at a time in a reload (1)\n"
	"      --ready-timeout SEC a reload's new worker must listen within SEC\n"
	"                          seconds or the reload stops (default 30)\n"
	"      --restart-delay MS[:MAX]  first respawn delay, doubling up to MAX\n"
	"                          ms (default 100:10000)\n"
	"      --restart-reset SEC the delay is back to its first value once a\n"
	"                          worker has run SEC seconds (default 30)\n"
	"      --crash-limit N[:SEC]  stop after N failed starts within SEC\n"
	"                          seconds while no worker listens (10:60)\n"
	"      --uid USER          run the workers as USER (name or number); the\n"
	"                          supervisor keeps its rights to bind ports\n"
	"      --gid GROUP         and as GROUP (default: USER's own group)\n"
	"      --chdir DIR         start the workers in DIR\n"
	"      --env KEY=VALUE     set a variable for the workers (repeatable)\n"
	"      --listen ADDR:PORT  with --uid, the only addresses workers may\n"
	"                          listen on (repeatable; 127.0.0.1:80, [::1]:80,\n"
	"                          unix:/path); anything else fails with EACCES\n"
	"      --prefix            each line a worker writes on stdout or stderr\n"
	"                          comes out as \"[ID] line\" (default: the\n"
	"                          workers write on cluster-run's own, as is)\n"
	"      --control PATH      control socket (default: $XDG_RUNTIME_DIR/\n"
	"                          cluster-run.sock, /run/cluster-run.sock as root)\n"
	"  -h, --help              this text\n"
	"      --version           print the version\n"
	"\n"
	"Signals:\n"
	"  SIGTERM, SIGINT  stop: no new connections, every worker gets the graceful\n"
	"                   signal, SIGKILL after the kill timeout; exit 0.\n"
	"                   A second SIGINT kills every worker at once.\n"
	"  SIGHUP           rolling reload: each worker replaced by a new one once\n"
	"                   the new one listens (also: cluster-run ctl reload)\n"
	"  SIGTTIN, SIGTTOU one worker more, one fewer (never below 1)\n"
	"\n"
	"  cluster-run ctl [--control PATH] status [--json] | reload | scale N | stop\n"
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

enum {
	OPT_SCHED = 256,
	OPT_VERSION,
	OPT_KILL_TIMEOUT,
	OPT_GRACEFUL_SIGNAL,
	OPT_RELOAD_PARALLEL,
	OPT_READY_TIMEOUT,
	OPT_RESTART_DELAY,
	OPT_CRASH_LIMIT,
	OPT_CONTROL,
	OPT_UID,
	OPT_GID,
	OPT_CHDIR,
	OPT_ENV,
	OPT_PREFIX,
	OPT_LISTEN,
	OPT_RESTART_RESET,
};

static const struct option long_options[] = {
	{ "workers", required_argument, NULL, 'n' },
	{ "sched", required_argument, NULL, OPT_SCHED },
	{ "kill-timeout", required_argument, NULL, OPT_KILL_TIMEOUT },
	{ "graceful-signal", required_argument, NULL, OPT_GRACEFUL_SIGNAL },
	{ "reload-parallel", required_argument, NULL, OPT_RELOAD_PARALLEL },
	{ "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
	{ "restart-delay", required_argument, NULL, OPT_RESTART_DELAY },
	{ "crash-limit", required_argument, NULL, OPT_CRASH_LIMIT },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "chdir", required_argument, NULL, OPT_CHDIR },
	{ "env", required_argument, NULL, OPT_ENV },
	{ "prefix", no_argument, NULL, OPT_PREFIX },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "restart-reset", required_argument, NULL, OPT_RESTART_RESET },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* "TERM", "SIGTERM" or "15". */
static int parse_signal(const char *text)
{
	unsigned long v;
	int sig;

	if (parse_uint(text, 64, &v) == 0)
		return v > 0 && v < (unsigned long)NSIG ? (int)v : -1;
	if (strncmp(text, "SIG", 3) == 0)
		text += 3;
	for (sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev && strcasecmp(abbrev, text) == 0)
			return sig;
	}
	return -1;
}

/* "A" or "A:B", both whole numbers in [1, max]; b unset when absent. */
static int parse_pair(const char *text, unsigned long max, unsigned long *a,
		      unsigned long *b)
{
	char first[32];
	const char *colon = strchr(text, ':');
	size_t n = colon ? (size_t)(colon - text) : strlen(text);

	if (n == 0 || n >= sizeof(first))
		return -1;
	memcpy(first, text, n);
	first[n] = '\0';
	if (parse_uint(first, max, a) < 0 || *a == 0)
		return -1;
	if (colon && (parse_uint(colon + 1, max, b) < 0 || *b == 0))
		return -1;
	return 0;
}

static int add_env(struct cli_options *o, const char *arg, char *err,
		   size_t errlen)
{
	char **env;

	if (!strchr(arg, '=') || arg[0] == '=') {
		snprintf(err, errlen, "invalid --env '%s': give KEY=VALUE", arg);
		return -1;
	}
	env = realloc(o->env, (o->nenv + 2) * sizeof(*env));
	if (!env) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	env[o->nenv++] = (char *)arg;
	env[o->nenv] = NULL;
	o->env = env;
	return 0;
}

static int add_listen(struct cli_options *o, const char *arg, char *err,
		      size_t errlen)
{
	struct listen_addr *l;

	l = realloc(o->listen, (o->nlisten + 1) * sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o->listen = l;
	if (listen_addr_parse(arg, &l[o->nlisten]) < 0) {
		snprintf(err, errlen, "invalid --listen '%s': give ADDR:PORT "
			 "(127.0.0.1:80, [::1]:80) or unix:/absolute/path", arg);
		return -1;
	}
	o->nlisten++;
	return 0;
}

static int parse_extra(int opt, const char *arg, struct cli_options *o,
		       char *err, size_t errlen)
{
	unsigned long v, w = 0;

	switch (opt) {
	case OPT_GRACEFUL_SIGNAL:
		if ((o->graceful_signal = parse_signal(arg)) > 0)
			return 0;
		snprintf(err, errlen, "unknown signal '%s': give a name such as "
			 "TERM or QUIT, or a number", arg);
		return -1;
	case OPT_RELOAD_PARALLEL:
		if (parse_uint(arg, MAX_WORKERS, &v) == 0 && v > 0) {
			o->reload_parallel = (unsigned)v;
			return 0;
		}
		snprintf(err, errlen, "invalid --reload-parallel '%s': give a "
			 "whole number from 1 to %d", arg, MAX_WORKERS);
		return -1;
	case OPT_READY_TIMEOUT:
		if (parse_uint(arg, 86400, &v) == 0 && v > 0) {
			o->ready_timeout_ms = (unsigned)v * 1000;
			return 0;
		}
		snprintf(err, errlen, "invalid --ready-timeout '%s': give a "
			 "whole number of seconds, at least 1", arg);
		return -1;
	case OPT_RESTART_DELAY:
		if (parse_pair(arg, 3600000, &v, &w) == 0) {
			o->backoff_first_ms = (unsigned)v;
			o->backoff_max_ms = w ? (unsigned)w : o->backoff_max_ms;
			return 0;
		}
		snprintf(err, errlen, "invalid --restart-delay '%s': give MS or "
			 "MS:MAX_MS, e.g. 100:10000", arg);
		return -1;
	case OPT_CRASH_LIMIT:
		if (parse_pair(arg, 86400, &v, &w) == 0) {
			o->crash_limit = (unsigned)v;
			o->crash_window_ms = w ? (unsigned)w * 1000 : o->crash_window_ms;
			return 0;
		}
		snprintf(err, errlen, "invalid --crash-limit '%s': give N or "
			 "N:SECONDS, e.g. 10:60", arg);
		return -1;
	case OPT_CONTROL:
		o->control_path = arg;
		return 0;
	case OPT_UID:
		o->user = arg;
		return 0;
	case OPT_GID:
		o->group = arg;
		return 0;
	case OPT_CHDIR:
		o->chdir_path = arg;
		return 0;
	case OPT_ENV:
		return add_env(o, arg, err, errlen);
	case OPT_LISTEN:
		return add_listen(o, arg, err, errlen);
	case OPT_RESTART_RESET:
		if (parse_uint(arg, 86400, &v) == 0 && v > 0) {
			o->backoff_reset_ms = (unsigned)v * 1000;
			return 0;
		}
		snprintf(err, errlen, "invalid --restart-reset '%s': give a "
			 "whole number of seconds, at least 1", arg);
		return -1;
	case OPT_PREFIX:
		o->prefix_output = true;
		return 0;
	}
	return 1; /* not one of these */
}

static int parse_one(int opt, const char *arg, const char *bad,
		     struct cli_options *o, char *err, size_t errlen)
{
	unsigned long v;
	int rc = parse_extra(opt, arg, o, err, errlen);

	if (rc <= 0)
		return rc;
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
	o->graceful_signal = SIGTERM;
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

void cli_options_free(struct cli_options *o)
{
	free(o->listen);
	o->listen = NULL;
	o->nlisten = 0;
	free(o->env);
	o->env = NULL;
	o->nenv = 0;
}

static int lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);
	unsigned long v;

	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return 0;
	}
	if (parse_uint(name, UINT32_MAX - 1, &v) < 0)
		return -1;
	*uid = (uid_t)v;
	pw = getpwuid(*uid);
	*gid = pw ? pw->pw_gid : (gid_t)v;
	return 0;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group *gr = getgrnam(name);
	unsigned long v;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (parse_uint(name, UINT32_MAX - 1, &v) < 0)
		return -1;
	*gid = (gid_t)v;
	return 0;
}

int cli_resolve_identity(const struct cli_options *o, struct cluster_settings *s,
			 char *err, size_t errlen)
{
	struct stat st;

	if (o->user) {
		if (lookup_user(o->user, &s->uid, &s->gid) < 0) {
			snprintf(err, errlen, "unknown user '%s' for --uid", o->user);
			return -1;
		}
		s->set_uid = s->set_gid = true;
	}
	if (o->group) {
		if (lookup_group(o->group, &s->gid) < 0) {
			snprintf(err, errlen, "unknown group '%s' for --gid", o->group);
			return -1;
		}
		s->set_gid = true;
	}
	if ((s->set_uid || s->set_gid) && geteuid() != 0 &&
	    ((s->set_uid && s->uid != geteuid()) ||
	     (s->set_gid && s->gid != getegid()))) {
		snprintf(err, errlen, "--uid/--gid need root (or the same ids); "
			 "run cluster-run as root or drop them");
		return -1;
	}
	if (o->chdir_path) {
		if (stat(o->chdir_path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "cannot use --chdir '%s': %s",
				 o->chdir_path, errno ? strerror(errno)
						      : "not a directory");
			return -1;
		}
		s->chdir_path = o->chdir_path;
	}
	s->extra_env = o->env;
	if (o->nlisten > 0 && !s->set_uid) {
		snprintf(err, errlen, "--listen declares what workers running "
			 "as another user (--uid) may listen on; add --uid");
		return -1;
	}
	s->allowed_listen = o->listen;
	s->nallowed_listen = o->nlisten;
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
