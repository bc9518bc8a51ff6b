/*
 * cluster-run: a thin command line over the cluster library.
 *
 *   cluster-run -n 8 -- ./legacy-server --port 8080
 */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli_options.h"
#include "cluster.h"
#include "control.h"
#include "pool.h"
#include "sd_notify.h"
#include "shim_locate.h"

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "cluster-run: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

/* ---- one line on stderr per lifecycle event ---- */

static void log_worker(const struct cluster_event *ev, const char *what)
{
	fprintf(stderr, "cluster-run: worker %u (pid %d) %s\n",
		worker_id(ev->worker), (int)worker_pid(ev->worker), what);
}

static void on_event(struct cluster *c, const struct cluster_event *ev,
		     void *arg)
{
	char line[256];

	switch (ev->type) {
	case CLUSTER_EV_FORK:
		log_worker(ev, "forked");
		break;
	case CLUSTER_EV_ONLINE:
		log_worker(ev, "online");
		break;
	case CLUSTER_EV_LISTENING:
		snprintf(line, sizeof(line), "listening on %s (%s)",
			 ev->address, ev->policy);
		log_worker(ev, line);
		break;
	case CLUSTER_EV_DISCONNECT:
		log_worker(ev, "disconnect");
		break;
	case CLUSTER_EV_BIND_ERROR:
		snprintf(line, sizeof(line), "cannot bind %s: %s", ev->address,
			 strerror(ev->error));
		log_worker(ev, line);
		break;
	case CLUSTER_EV_EXIT:
		if (ev->term_signal)
			snprintf(line, sizeof(line), "killed by signal %d (%s)",
				 ev->term_signal, strsignal(ev->term_signal));
		else
			snprintf(line, sizeof(line), "exited with code %d",
				 ev->exit_code);
		log_worker(ev, line);
		break;
	default:
		break;
	}
}

static void subscribe_log(struct cluster *c)
{
	int t;

	for (t = 0; t < CLUSTER_EV_COUNT; t++)
		cluster_on(c, (enum cluster_event_type)t, on_event, NULL);
}

/* ---- signals ---- */

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct pool *p = arg;

	if (pool_stopping(p)) {
		if (sig == SIGINT) {
			fprintf(stderr, "cluster-run: second SIGINT: killing "
				"every worker now\n");
			pool_kill_now(p);
		}
		return;
	}
	fprintf(stderr, "cluster-run: %s: stopping every worker\n",
		strsignal((int)sig));
	pool_stop(p, 0);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	pool_reload(arg); /* coalesced when one runs; says so itself */
}

static void on_scale_signal(evutil_socket_t sig, short what, void *arg)
{
	struct pool *p = arg;
	unsigned n = pool_size(p);

	if (sig == SIGTTIN)
		pool_scale(p, n + 1);
	else if (n > 1)
		pool_scale(p, n - 1);
	else
		fprintf(stderr, "cluster-run: SIGTTOU: already at 1 worker, "
			"the fewest there can be\n");
}

/* Signals and what they do, for the loop's lifetime. */
struct signal_set {
	struct event *ev[6];
};

static void signals_add(struct signal_set *set, struct event_base *base,
			struct pool *p)
{
	static const struct {
		int sig;
		event_callback_fn cb;
	} table[] = {
		{ SIGINT, on_stop_signal },    { SIGTERM, on_stop_signal },
		{ SIGHUP, on_reload_signal },  { SIGTTIN, on_scale_signal },
		{ SIGTTOU, on_scale_signal },  { SIGQUIT, on_stop_signal },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		set->ev[i] = evsignal_new(base, table[i].sig, table[i].cb, p);
		evsignal_add(set->ev[i], NULL);
	}
}

static void signals_free(struct signal_set *set)
{
	size_t i;

	for (i = 0; i < sizeof(set->ev) / sizeof(set->ev[0]); i++)
		event_free(set->ev[i]);
}

static struct control *control_start(struct event_base *base, struct pool *p,
				     const char *path)
{
	char def[PATH_MAX], err[512];
	struct control *ctl;

	if (!path) {
		if (control_default_path(def, sizeof(def), err, sizeof(err)) < 0) {
			fprintf(stderr, "cluster-run: no control socket: %s\n", err);
			return NULL;
		}
		path = def;
	}
	ctl = control_new(base, p, path, err, sizeof(err));
	if (!ctl)
		fprintf(stderr, "cluster-run: no control socket: %s\n", err);
	else
		fprintf(stderr, "cluster-run: control socket %s\n", path);
	return ctl;
}

/* fds the supervisor needs for n workers: its own, and per worker the
 * channel and, per rr listener, two ends of a faux handle (counted for two
 * listeners), plus room to accept. */
#define FDS_BASE 64
#define FDS_PER_WORKER 5

/* Each worker costs fds: use what the hard limit allows, and say so
 * plainly when even that is too little for n workers. */
static void raise_fd_limit(unsigned workers)
{
	unsigned long need = FDS_BASE + (unsigned long)FDS_PER_WORKER * workers;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		fprintf(stderr, "cluster-run: %u workers need about %lu file "
			"descriptors, but RLIMIT_NOFILE allows %lu; raise it "
			"(ulimit -Hn as root, LimitNOFILE= in systemd) or use "
			"fewer workers\n", workers, need,
			(unsigned long)rl.rlim_cur);
		exit(2);
	}
}

static int run(const struct cli_options *o, const char *shim)
{
	struct cluster_settings settings = {
		.argv = o->command,
		.sched = o->sched,
		.shim_path = shim,
		.graceful_signal = o->graceful_signal,
		.kill_timeout_ms = o->kill_timeout_ms,
		.prefix_output = o->prefix_output,
	};
	struct pool_settings ps = {
		.size = o->workers,
		.backoff_first_ms = o->backoff_first_ms,
		.backoff_max_ms = o->backoff_max_ms,
		.backoff_reset_ms = o->backoff_reset_ms,
		.crash_limit = o->crash_limit,
		.crash_window_ms = o->crash_window_ms,
		.reload_parallel = o->reload_parallel,
		.ready_timeout_ms = o->ready_timeout_ms,
	};
	struct event_base *base = event_base_new();
	struct cluster *c;
	struct pool *p;
	struct control *ctl;
	struct signal_set signals;
	int listen_fds[SYSTEMD_LISTEN_FDS_MAX];
	char err[512];
	int code;

	if (cli_resolve_identity(o, &settings, err, sizeof(err)) < 0)
		die("%s", err);
	/* Socket activation: systemd's sockets, for the workers' binds. */
	settings.n_listen_fds = systemd_listen_fds(listen_fds,
						   SYSTEMD_LISTEN_FDS_MAX,
						   NULL, NULL);
	settings.listen_fds = listen_fds;
	if (!base || !(c = cluster_new(base, &settings)))
		die("cannot set up the event loop: %s", strerror(errno));
	raise_fd_limit(o->workers); /* after cluster_new: workers keep the old limit */
	subscribe_log(c);
	p = pool_new(base, c, &ps);
	if (!p)
		die("out of memory%s", "");
	signals_add(&signals, base, p);
	ctl = control_start(base, p, o->control_path);
	/* A path the operator named must work: without it `ctl` would reach
	 * another cluster-run.  The default path is best effort. */
	if (!ctl && o->control_path)
		code = 1;
	else if (pool_start(p) < 0)
		code = 1;
	else {
		event_base_dispatch(base);
		code = pool_exit_code(p);
	}
	control_free(ctl);
	signals_free(&signals);
	pool_free(p);
	cluster_free(c);
	event_base_free(base);
	return code;
}

int main(int argc, char **argv)
{
	struct cli_options o;
	char err[512], shim[PATH_MAX];
	int code;

	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 1, argv + 1);
	if (cli_parse(argc, argv, getenv("CLUSTER_SCHED_POLICY"), &o, err,
		      sizeof(err)) < 0)
		die("%s", err);
	if (o.help) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (o.version) {
		printf("cluster-run %s\n", CLUSTER_RUN_VERSION);
		return 0;
	}
	if (cli_check_command(o.command[0], err, sizeof(err)) < 0)
		die("%s", err);
	if (shim_locate(shim, sizeof(shim)) < 0)
		die("cannot find libcluster_shim.so beside cluster-run or in %s; "
		    "set CLUSTER_SHIM_PATH", SHIM_INSTALL_PATH);
	signal(SIGPIPE, SIG_IGN);
	code = run(&o, shim);
	cli_options_free(&o);
	return code;
}
