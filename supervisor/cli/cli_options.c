#include "cli_options.h"
#include "listen_policy.h"
#include "cluster_proto.h"
#include "cli_sticky.h"

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
	"                          slot, kept across restarts; the kernel deals\n"
	"                          round robin (eBPF, with CAP_BPF) or hashes.\n"
	"                          Also set by CLUSTER_SCHED_POLICY.\n"
	"      --intercept MODE    how bind() and listen() reach cluster-run:\n"
	"                          shim (LD_PRELOAD), seccomp (a filter notifies\n"
	"                          cluster-run: static, Go, 32-bit binaries;\n"
	"                          sched is then reuseport), auto (default:\n"
	"                          seccomp for static, Go and 32-bit binaries\n"
	"                          and, as root, setuid ones; shim otherwise)\n"
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
	"      --hang-timeout SEC  a worker that took none of the connections\n"
	"                          waiting for it in SEC seconds is killed and\n"
	"                          replaced; they go to the others (rr and\n"
	"                          reuseport; default: off)\n"
	"      --max-memory SIZE   recycle a worker whose process tree's RSS is\n"
	"                          above SIZE (512M, 2G; K, M, G): a new one\n"
	"                          first, the old one drained once it listens\n"
	"      --max-conns N[:JITTER]  recycle a worker once it was handed N\n"
	"                          connections, plus a random 0..JITTER (rr)\n"
	"      --max-lifetime SEC[:JITTER]  recycle a worker after SEC seconds,\n"
	"                          plus a random 0..JITTER; recycling shares\n"
	"                          --reload-parallel with reloads\n"
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
	"      --metrics [ADDR:]PORT  serve Prometheus metrics at GET /metrics\n"
	"                          (ADDR 127.0.0.1 unless given; [::1]:PORT)\n"
	"      --sticky MODE       rr only: a client keeps its worker slot while\n"
	"                          that slot's worker lives.  ip: by the client's\n"
	"                          address; header:NAME (X-Forwarded-For),\n"
	"                          cookie:NAME, query:NAME (socket.io's sid): by\n"
	"                          what the HTTP request names, looked at before\n"
	"                          a worker reads it\n"
	"      --sticky-wait MS    how long to wait for a request's head before\n"
	"                          it goes by the client's address (default 200)\n"
	"      --health-check http:PATH|tcp  probe each worker through its\n"
	"                          listener (rr only): http: GET PATH must answer\n"
	"                          2xx or 3xx; tcp: the worker must take the\n"
	"                          connection.  A worker that fails N in a row is\n"
	"                          replaced; a reload's new worker is ready once it\n"
	"                          passes one\n"
	"      --health-interval SEC  between a worker's probes (default 5)\n"
	"      --health-timeout SEC   a probe's answer within SEC (default 2)\n"
	"      --health-fails N    failed probes in a row to replace (default 3)\n"
	"  -h, --help              this text\n"
	"      --version           print the version\n"
	"\n"
	"Signals:\n"
	"  SIGTERM, SIGINT, SIGQUIT  stop: no new connections, every worker gets\n"
	"                   the graceful signal, SIGKILL after the kill timeout;\n"
	"                   exit 0.  A second SIGINT kills every worker at once.\n"
	"  SIGHUP           rolling reload: each worker replaced by a new one once\n"
	"                   the new one listens (also: cluster-run ctl reload).\n"
	"                   Once its terminal has hung up: stop (nohup: ignored).\n"
	"  SIGTTIN, SIGTTOU sent with kill: one worker more, one fewer (never\n"
	"                   below 1).  From the terminal (job control, stty\n"
	"                   tostop): cluster-run stops, and goes on after fg.\n"
	"  SIGUSR1          passed on to every worker (a server's log reopen)\n"
	"  SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPIPE, SIGXCPU, SIGXFSZ,\n"
	"  SIGPOLL, SIGSTKFLT, SIGPWR, SIGRTMIN..SIGRTMAX\n"
	"                   one line on stderr, otherwise ignored\n"
	"  SIGTSTP, SIGCONT as for any program (^Z, fg); SIGKILL kills the workers\n"
	"                   too (parent-death signal)\n"
	"\n"
	"  cluster-run ctl [--control PATH] status [--json] | top | reload [--wait]\n"
	"                  | scale N | stop [--wait]\n"
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

static int parse_intercept(const char *text, enum cluster_intercept *mode)
{
	if (strcmp(text, "auto") == 0)
		*mode = CLUSTER_INTERCEPT_AUTO;
	else if (strcmp(text, "shim") == 0 || strcmp(text, "preload") == 0)
		*mode = CLUSTER_INTERCEPT_SHIM; /* "preload": the word */
	else if (strcmp(text, "seccomp") == 0)
		*mode = CLUSTER_INTERCEPT_SECCOMP;
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
	OPT_METRICS,
	OPT_STICKY,
	OPT_STICKY_WAIT,
	OPT_HANG_TIMEOUT,
	OPT_MAX_MEMORY,
	OPT_MAX_CONNS,
	OPT_MAX_LIFETIME,
	OPT_INTERCEPT,
};

static const struct option long_options[] = {
	{ "workers", required_argument, NULL, 'n' },
	{ "sched", required_argument, NULL, OPT_SCHED },
	{ "intercept", required_argument, NULL, OPT_INTERCEPT },
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
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "sticky", required_argument, NULL, OPT_STICKY },
	{ "sticky-wait", required_argument, NULL, OPT_STICKY_WAIT },
	HEALTH_LONG_OPTIONS,
	{ "hang-timeout", required_argument, NULL, OPT_HANG_TIMEOUT },
	{ "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "max-lifetime", required_argument, NULL, OPT_MAX_LIFETIME },
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

/* "A" or "A:B", both whole numbers in [1, max] (B from 0 with
 * b_zero_ok); b unset when absent. */
static int parse_pair_from(const char *text, unsigned long max,
			   unsigned long *a, unsigned long *b, bool b_zero_ok)
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
	if (colon && (parse_uint(colon + 1, max, b) < 0 ||
		      (*b == 0 && !b_zero_ok)))
		return -1;
	return 0;
}

static int parse_pair(const char *text, unsigned long max, unsigned long *a,
		      unsigned long *b)
{
	return parse_pair_from(text, max, a, b, false);
}

/* "N" or "N:JITTER": N in [1, max], JITTER in [0, max] (0 if absent). */
static int parse_with_jitter(const char *text, unsigned long max,
			     unsigned long *n, unsigned long *jitter)
{
	*jitter = 0;
	return parse_pair_from(text, max, n, jitter, true);
}

/* "512M", "2G", "640K" (powers of 1024), at least 1K. */
static int parse_size(const char *text, unsigned long long *out)
{
	static const char units[] = "KMG";
	const char *u;
	char *end;
	unsigned long long v;
	int shift;

	if (!*text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || v == 0 || !*end || end[1] ||
	    !(u = strchr(units, *end >= 'a' ? *end - 32 : *end)))
		return -1;
	shift = 10 * (int)(u - units + 1);
	if (v > (1ULL << (63 - shift)))
		return -1;
	*out = v << shift;
	return 0;
}

/* --hang-timeout, --max-memory, --max-conns, --max-lifetime; 1 when opt
 * is none of them. */
static int parse_watch(int opt, const char *arg, struct cli_options *o,
		       char *err, size_t errlen)
{
	struct pool_watch_settings *w = &o->watch;
	unsigned long v, j;

	switch (opt) {
	case OPT_HANG_TIMEOUT:
		if (parse_uint(arg, 86400, &v) == 0 && v > 0) {
			w->hang_timeout_ms = (unsigned)v * 1000;
			return 0;
		}
		snprintf(err, errlen, "invalid --hang-timeout '%s': give a "
			 "whole number of seconds from 1 to 86400", arg);
		return -1;
	case OPT_MAX_MEMORY:
		if (parse_size(arg, &w->max_memory) == 0)
			return 0;
		snprintf(err, errlen, "invalid --max-memory '%s': give a size "
			 "such as 512M or 2G", arg);
		return -1;
	case OPT_MAX_CONNS:
		if (parse_with_jitter(arg, 1UL << 40, &v, &j) == 0) {
			w->max_conns = v;
			w->max_conns_jitter = j;
			return 0;
		}
		snprintf(err, errlen, "invalid --max-conns '%s': give N or "
			 "N:JITTER, whole numbers with N at least 1, such as "
			 "10000 or 10000:1000", arg);
		return -1;
	case OPT_MAX_LIFETIME:
		if (parse_with_jitter(arg, 30 * 86400, &v, &j) == 0) {
			w->max_lifetime_ms = (unsigned)v * 1000;
			w->max_lifetime_jitter_ms = (unsigned)j * 1000;
			return 0;
		}
		snprintf(err, errlen, "invalid --max-lifetime '%s': give SEC or "
			 "SEC:JITTER in whole seconds (SEC from 1, both up to "
			 "30 days), such as 3600 or 3600:600", arg);
		return -1;
	}
	return 1;
}

/* What the policy cannot do: rr alone hands connections out; with none
 * no connection waits for one worker. */
static int check_watch_policy(const struct cli_options *o, char *err,
			      size_t errlen)
{
	if (o->watch.max_conns && o->sched != CLUSTER_SCHED_RR) {
		snprintf(err, errlen, "--max-conns counts the connections "
			 "cluster-run hands out, which only --sched rr does; "
			 "use --sched rr, or --max-lifetime instead");
		return -1;
	}
	if (o->watch.hang_timeout_ms && o->sched == CLUSTER_SCHED_NONE) {
		snprintf(err, errlen, "--hang-timeout needs --sched rr or "
			 "reuseport: with none, no connection waits for one "
			 "worker alone, so none can tell it hangs");
		return -1;
	}
	return 0;
}

/* A graceful signal must be one a worker can act on: SIGKILL ends it at
 * once (the kill timeout sends that anyway), SIGSTOP only pauses it. */
static int parse_graceful_signal(const char *arg, struct cli_options *o,
				 char *err, size_t errlen)
{
	int sig = parse_signal(arg);

	if (sig == SIGKILL || sig == SIGSTOP) {
		snprintf(err, errlen, "--graceful-signal %s: SIG%s %s; give a "
			 "signal the server handles to stop (TERM, QUIT, INT)",
			 arg, sigabbrev_np(sig), sig == SIGKILL
			 ? "cannot be handled (cluster-run sends it after "
			   "--kill-timeout anyway)"
			 : "pauses a worker, it does not stop it");
		return -1;
	}
	if (sig > 0) {
		o->graceful_signal = sig;
		return 0;
	}
	snprintf(err, errlen, "unknown signal '%s': give a name such as "
		 "TERM or QUIT, or a number", arg);
	return -1;
}

/* Variables cluster-run sets (or keeps from) the workers itself: an
 * --env of one of them would be dropped without a word. */
static const char *const reserved_env[] = {
	"LD_PRELOAD", CLUSTER_ENV_WORKER_ID, CLUSTER_ENV_CHANNEL_FD,
	CLUSTER_ENV_WORKER_PID, "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES",
};

static int check_reserved_env(const char *arg, char *err, size_t errlen)
{
	size_t klen = strcspn(arg, "="), i;

	for (i = 0; i < sizeof(reserved_env) / sizeof(reserved_env[0]); i++) {
		if (strlen(reserved_env[i]) != klen ||
		    strncmp(arg, reserved_env[i], klen) != 0)
			continue;
		if (i == 0)
			snprintf(err, errlen, "--env LD_PRELOAD=...: cluster-run "
				 "sets the workers' LD_PRELOAD (the shim); set "
				 "LD_PRELOAD in cluster-run's own environment "
				 "instead (LD_PRELOAD=LIB cluster-run ...), it "
				 "is kept, the shim after it");
		else
			snprintf(err, errlen, "--env %.*s=...: cluster-run sets "
				 "or withholds %.*s for the workers itself; "
				 "drop this --env", (int)klen, arg, (int)klen,
				 arg);
		return -1;
	}
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
	if (check_reserved_env(arg, err, errlen) < 0)
		return -1;
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

/* --metrics: "9100" (on 127.0.0.1), "0.0.0.0:9100", "[::1]:9100". */
static int parse_metrics(struct cli_options *o, const char *arg, char *err,
			 size_t errlen)
{
	char full[128];

	if (arg[0] && strspn(arg, "0123456789") == strlen(arg))
		snprintf(full, sizeof(full), "127.0.0.1:%s", arg);
	else
		snprintf(full, sizeof(full), "%s", arg);
	if (strncmp(arg, "unix:", 5) == 0 ||
	    listen_addr_parse(full, &o->metrics) < 0) {
		snprintf(err, errlen, "invalid --metrics '%s': give PORT (on "
			 "127.0.0.1) or IP:PORT (0.0.0.0:9100, [::1]:9100; no "
			 "host names)", arg);
		return -1;
	}
	o->metrics_set = true;
	return 0;
}

static int parse_extra(int opt, const char *arg, struct cli_options *o,
		       char *err, size_t errlen)
{
	unsigned long v, w = 0;
	int rc = parse_watch(opt, arg, o, err, errlen);

	if (rc <= 0)
		return rc;
	switch (opt) {
	case OPT_GRACEFUL_SIGNAL:
		return parse_graceful_signal(arg, o, err, errlen);
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
		if (parse_pair(arg, 3600000, &v, &w) == 0 && w && w < v) {
			snprintf(err, errlen, "invalid --restart-delay '%s': the "
				 "longest delay (%lu ms) is below the first (%lu "
				 "ms); give MS:MAX_MS with MAX_MS >= MS", arg, w, v);
			return -1;
		}
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
	case OPT_METRICS:
		return parse_metrics(o, arg, err, errlen);
	case OPT_STICKY:
		return cli_parse_sticky(arg, o, err, errlen);
	case OPT_STICKY_WAIT:
		return cli_parse_sticky_wait(arg, o, err, errlen);
	}
	return 1; /* not one of these */
}

/* The long options whose names start with name[0..len). */
static size_t options_starting(const char *name, size_t len,
			       const struct option **first, char *list,
			       size_t listlen)
{
	const struct option *opt;
	size_t n = 0, used = 0;

	if (listlen)
		list[0] = '\0';
	for (opt = long_options; opt->name; opt++) {
		if (strncmp(opt->name, name, len) != 0)
			continue;
		if (n++ == 0)
			*first = opt;
		if (used < listlen)
			used += (size_t)snprintf(list + used, listlen - used,
						 "%s--%s", n > 1 ? ", " : "",
						 opt->name);
	}
	return n;
}

/* Why getopt refused `bad`: a value given to an option that takes none,
 * an abbreviation that fits several options, or an unknown option. */
static void describe_bad_option(const char *bad, char *err, size_t errlen)
{
	const char *name = bad + 2, *eq;
	const struct option *opt = NULL;
	char list[256];
	size_t len, n;

	if (strncmp(bad, "--", 2) != 0 || !*name || *name == '=') {
		snprintf(err, errlen, "unknown option '%s'; see cluster-run "
			 "--help", bad);
		return;
	}
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	n = options_starting(name, len, &opt, list, sizeof(list));
	for (const struct option *o = long_options; o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
			opt = o; /* an exact name wins over longer ones */
			n = 1;
		}
	if (n > 1)
		snprintf(err, errlen, "ambiguous option '%.*s': it could be %s; "
			 "write more of it", (int)len + 2, bad, list);
	else if (n == 1 && eq && opt->has_arg == no_argument)
		snprintf(err, errlen, "--%s takes no value ('%s'); write --%s "
			 "alone", opt->name, bad, opt->name);
	else
		snprintf(err, errlen, "unknown option '%s'; see cluster-run "
			 "--help", bad);
}

static int parse_one(int opt, const char *arg, const char *bad,
		     struct cli_options *o, char *err, size_t errlen)
{
	unsigned long v;
	int rc = parse_extra(opt, arg, o, err, errlen);

	if (rc <= 0)
		return rc;
	rc = health_options_parse(&o->health, opt, arg, err, errlen);
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
	case OPT_INTERCEPT:
		if (parse_intercept(arg, &o->intercept) < 0) {
			snprintf(err, errlen, "unknown intercept mode '%s': "
				 "use --intercept auto, shim or seccomp", arg);
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
	describe_bad_option(bad, err, errlen);
	return -1;
}

int cli_parse(int argc, char **argv, const char *env_sched,
	      struct cli_options *o, char *err, size_t errlen)
{
	int opt;

	memset(o, 0, sizeof(*o));
	o->kill_timeout_ms = 30000;
	o->graceful_signal = SIGTERM;
	health_options_init(&o->health);
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
	if (cli_check_sticky(o, err, errlen) < 0)
		return -1;
	if (optind >= argc) {
		snprintf(err, errlen, "no command given: usage is cluster-run "
			 "[options] -- COMMAND [ARGS...]");
		return -1;
	}
	if (o->group && !o->user) {
		snprintf(err, errlen, "--gid %s goes with --uid: name the "
			 "workers' user too (--uid USER --gid %s)", o->group,
			 o->group);
		return -1;
	}
	if (health_options_check(&o->health, o->sched, err, errlen) < 0)
		return -1;
	if (check_watch_policy(o, err, errlen) < 0)
		return -1;
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
