/*
 * cluster-run: a thin command line over the cluster library.
 *
 *   cluster-run -n 8 -- ./legacy-server --port 8080
 */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli_options.h"
#include "cli_signals.h"
#include "cluster.h"
#include "control.h"
#include "health_policy.h"
#include "log_line.h"
#include "metrics_http.h"
#include "pool.h"
#include "sd_activation.h"
#include "sd_notify.h"
#include "shim_locate.h"
#include "sockaddr_text.h"

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
	log_printf("worker %u (pid %d) %s", worker_id(ev->worker),
		   (int)worker_pid(ev->worker), what);
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
		if (worker_pid(ev->worker) == 0) /* queued, never forked */
			snprintf(line, sizeof(line), "never started (%s)",
				 ev->error ? strerror(ev->error)
					   : "cancelled in the start queue");
		else if (ev->term_signal)
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

/* --metrics: a port the operator named must work, or we stop at once. */
static struct metrics_server *metrics_start(struct event_base *base,
					    struct pool *p,
					    const struct cli_options *o)
{
	char err[512], text[SOCKADDR_TEXT_MAX];
	struct metrics_server *m;

	if (!o->metrics_set)
		return NULL;
	m = metrics_server_new(base, p, &o->metrics, err, sizeof(err));
	sockaddr_text((const struct sockaddr *)&o->metrics.ss, o->metrics.len,
		      text, sizeof(text));
	if (!m)
		log_printf("cannot serve --metrics on %s: %s", text, err);
	else
		log_printf("metrics at http://%s/metrics", text);
	return m;
}

/*
 * The control socket, or NULL.  *fatal when cluster-run must not serve
 * without it: a path the operator named, or a default path that another
 * cluster-run holds (serving on would leave `ctl` talking to that one).
 * Without a runtime directory the default is best effort.
 */
static struct control *control_start(struct event_base *base, struct pool *p,
				     const char *path, bool *fatal)
{
	char def[PATH_MAX], err[512];
	struct control *ctl;

	*fatal = false;
	if (!path) {
		if (control_default_path(def, sizeof(def), err, sizeof(err)) < 0) {
			log_printf("no control socket: %s", err);
			return NULL;
		}
		path = def;
	}
	ctl = control_new(base, p, path, err, sizeof(err));
	if (!ctl) {
		*fatal = path != def || errno == EADDRINUSE || errno == EEXIST;
		log_printf("%s%s", *fatal ? "" : "no control socket: ", err);
	} else {
		log_printf("control socket %s", path);
	}
	return ctl;
}

/* Each worker costs fds: use what the hard limit allows, and say so
 * plainly when even that is too little for n workers. */
static void raise_fd_limit(unsigned workers)
{
	unsigned long need = pool_fds_needed(workers);
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

/* The signals cluster-run inherited ignored, and its mask, before it
 * sets its own: the workers get them, as the command alone would. */
struct inherited_signals {
	sigset_t ignored, mask;
};

static void inherited_signals_record(struct inherited_signals *in)
{
	struct sigaction sa;
	int sig;

	sigemptyset(&in->ignored);
	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 &&
		    !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			sigaddset(&in->ignored, sig);
	sigprocmask(SIG_SETMASK, NULL, &in->mask);
}

/* What of the options the seccomp mode cannot do (they need rr), for a
 * switch to it once a worker is found to exec what the shim cannot reach
 * (worker_exec.c); at start the same options stop cluster-run (run()). */
static const char *seccomp_refusal(const struct cli_options *o)
{
	if (o->health.kind)
		return "--health-check needs --sched rr, which the seccomp "
		       "mode cannot do";
	if (o->watch.max_conns)
		return "--max-conns counts the connections --sched rr hands "
		       "out, which the seccomp mode cannot do";
	if (o->sticky != CLUSTER_STICKY_OFF)
		return "--sticky needs --sched rr, which the seccomp mode "
		       "cannot do";
	return NULL;
}

static int run(const struct cli_options *o, const char *shim,
	       const struct inherited_signals *in)
{
	struct cluster_settings settings = {
		.argv = o->command,
		.sched = o->sched,
		.intercept = o->intercept,
		.shim_path = shim,
		.graceful_signal = o->graceful_signal,
		.kill_timeout_ms = o->kill_timeout_ms,
		.prefix_output = o->prefix_output,
		.sticky = o->sticky,
		.sticky_name = o->sticky_name,
		.sticky_wait_ms = o->sticky_wait_ms,
		.worker_ignored = &in->ignored,
		.worker_mask = &in->mask,
		.seccomp_refused = seccomp_refusal(o),
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
		.ready_on_probe = o->health.kind != 0,
		.watch = o->watch,
	};
	struct event_base *base = event_base_new();
	struct cluster *c;
	struct pool *p;
	struct control *ctl;
	struct metrics_server *metrics;
	struct cli_signals *signals;
	struct health_checker *health;
	int listen_fds[SYSTEMD_LISTEN_FDS_MAX];
	char err[512];
	bool control_fatal;
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
	/* What needs rr cannot be had with seccomp workers (reuseport). */
	if (cluster_seccomp_mode(c) && o->health.kind)
		die("--health-check needs --sched rr, and %s runs in the "
		    "seccomp mode, whose policy is reuseport: drop "
		    "--health-check, or use --intercept shim", o->command[0]);
	if (cluster_seccomp_mode(c) && o->watch.max_conns)
		die("--max-conns counts the connections --sched rr hands out, "
		    "and %s runs in the seccomp mode, whose policy is "
		    "reuseport: use --max-lifetime instead", o->command[0]);
	if (cluster_seccomp_mode(c) && o->sticky != CLUSTER_STICKY_OFF)
		die("--sticky needs --sched rr, and %s runs in the seccomp "
		    "mode, whose policy is reuseport: drop --sticky, or use "
		    "--intercept shim", o->command[0]);
	p = pool_new(base, c, &ps);
	if (!p)
		die("out of memory%s", "");
	health = health_policy_start(c, p, &o->health);
	if (!health && o->health.kind)
		die("cannot start the health checks: %s", strerror(errno));
	signals = cli_signals_new(base, p);
	if (!signals)
		die("cannot catch signals: %s", strerror(errno));
	/* From here on cluster-run's lines and its workers' never wait for
	 * whoever reads them (the loop writes what is queued). */
	log_sinks_attach(base);
	ctl = control_start(base, p, o->control_path, &control_fatal);
	metrics = metrics_start(base, p, o);
	if (control_fatal)
		code = 1;
	else if (!metrics && o->metrics_set)
		code = 1;
	else if (pool_start(p) < 0)
		code = 1;
	else {
		event_base_dispatch(base);
		code = pool_exit_code(p);
	}
	metrics_server_free(metrics);
	control_free(ctl);
	cli_signals_free(signals);
	health_checker_free(health); /* before the cluster it probes */
	pool_free(p);
	cluster_free(c);
	log_sinks_detach(); /* what is queued goes out, within the budget */
	event_base_free(base);
	return code;
}

int main(int argc, char **argv)
{
	struct inherited_signals in;
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
	if (shim_locate(shim, sizeof(shim), err, sizeof(err)) < 0)
		die("%s", err);
	inherited_signals_record(&in);
	signal(SIGPIPE, SIG_IGN);
	code = run(&o, shim, &in);
	cli_options_free(&o);
	return code;
}
