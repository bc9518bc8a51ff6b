/*
 * test_serve.c - every fixture server under `cluster-run -n 3`, in both
 * scheduling policies: all workers listen, 300 sequential requests are each
 * answered by a worker of the cluster, and in rr every worker serves at
 * least a fifth of the TCP connections.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3
#define REQUESTS 300
#define MIN_SHARE (REQUESTS / 5)   /* rr: >= 20% per worker */

struct serve_case {
	const char *sched;
	const char *fixture;
	const char *fx_args[8];         /* NULL-terminated */
	struct hx_target targets[2];    /* one per listener of a worker */
	size_t n_targets;
	bool port_on_stdout;            /* fx_port0: targets[0].port unknown */
	bool any_pid;                   /* fx_prefork: children answer */
};

static char unix_dir[64];           /* fx_unix's mkdtemp directory */
static char unix_path[128];

static void serve_fini(void)
{
	hx_cleanup();
	if (unix_dir[0]) {
		unlink(unix_path);
		rmdir(unix_dir);
	}
}

TestSuite(serve, .fini = serve_fini, .timeout = 120);

/* The address part of a "listening on" line for target t. */
static void listen_text(const struct hx_target *t, const char *sched,
			char *buf, size_t size)
{
	switch (t->proto) {
	case HX_UNIX: /* no SO_REUSEPORT for unix sockets: shared */
		snprintf(buf, size, "unix:%s (%s)", t->path,
			 strcmp(sched, "reuseport") == 0 ? "shared" : sched);
		break;
	case HX_UDP:
		snprintf(buf, size, "%s:%d/udp (shared)", t->host, t->port);
		break;
	case HX_TCP:
		snprintf(buf, size, strchr(t->host, ':') ? "[%s]:%d (%s)"
			 : "%s:%d (%s)", t->host, t->port, sched);
		break;
	}
}

/* Each worker has one "listening" line per target, with its address. */
static void check_listening(struct hx_cluster *c, const struct serve_case *sc)
{
	for (size_t t = 0; t < sc->n_targets; t++) {
		char want[200];
		int seen = 0;

		listen_text(&sc->targets[t], sc->sched, want, sizeof(want));
		for (size_t i = 0; i < c->n_events; i++)
			seen += c->events[i].kind == HX_LISTENING &&
				strcmp(c->events[i].what, want) == 0;
		hx_assert(c, seen == WORKERS,
			  "%d \"listening on %s\" lines, want %d", seen, want,
			  WORKERS);
	}
}

/* fx_port0: every worker prints the same "port N" on stdout. */
static void read_port0(struct hx_cluster *c, struct serve_case *sc)
{
	int port = 0;

	hx_assert(c, hx_wait_stdout_lines(c, WORKERS, HX_START_MS),
		  "want %d \"port N\" lines on stdout", WORKERS);
	for (size_t i = 0; i < WORKERS; i++) {
		int p = 0;

		hx_assert(c, sscanf(c->out.lines[i], "port %d", &p) == 1 &&
			  p > 0, "bad stdout line \"%s\"", c->out.lines[i]);
		hx_assert(c, port == 0 || p == port,
			  "workers print different ports: %d and %d", port, p);
		port = p;
	}
	sc->targets[0].port = port;
}

static void check_balance(struct hx_cluster *c, const struct hx_tally *tally)
{
	for (int id = 1; id <= WORKERS; id++)
		hx_assert(c, tally->served[id] >= MIN_SHARE,
			  "rr: worker %d served %d of %d (1: %d, 2: %d, 3: %d), "
			  "want >= %d", id, tally->served[id], tally->total,
			  tally->served[1], tally->served[2], tally->served[3],
			  MIN_SHARE);
}

/* SIGTERM; cluster-run exits 0 and leaves no worker behind. */
static void stop_cluster(struct hx_cluster *c)
{
	int status;

	hx_assert(c, hx_count(c, HX_FORKED) == WORKERS &&
		  hx_count(c, HX_EXITED) + hx_count(c, HX_KILLED) == 0,
		  "a worker died or was replaced during the test");
	status = hx_stop(c, SIGTERM, HX_EXIT_MS);
	hx_assert(c, status != -1, "cluster-run did not exit within %d ms "
		  "of SIGTERM", HX_EXIT_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "cluster-run wait status 0x%x after SIGTERM, want exit 0",
		  status);
	hx_assert_workers_gone(c);
	hx_free(c);
}

static void run_serve(struct serve_case *sc)
{
	struct hx_cluster *c;
	struct hx_tally tally;
	struct hx_load load = {
		.targets = sc->targets, .n_targets = sc->n_targets,
		.requests = REQUESTS, .workers = WORKERS,
		.any_pid = sc->any_pid,
	};
	size_t lines = WORKERS * sc->n_targets;

	c = hx_start_fixture(sc->port_on_stdout ? HX_CAPTURE_STDOUT : 0,
			     WORKERS, sc->sched, sc->fixture, sc->fx_args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, lines, HX_START_MS),
		  "want %zu \"listening\" lines within %d ms", lines,
		  HX_START_MS);
	if (sc->port_on_stdout)
		read_port0(c, sc);
	check_listening(c, sc);
	hx_run_load(c, &load, &tally);
	cr_log_info("%s %s: workers 1, 2, 3 served %d, %d, %d", sc->fixture,
		    sc->sched, tally.served[1], tally.served[2],
		    tally.served[3]);
	if (strcmp(sc->sched, "rr") == 0 && sc->targets[0].proto != HX_UDP)
		check_balance(c, &tally);
	stop_cluster(c);
}

/* One test per case and scheduling policy. */
#define EACH_POLICY(name)                                  \
	static void name(const char *sched);               \
	Test(serve, name##_rr) { name("rr"); }             \
	Test(serve, name##_none) { name("none"); }         \
	Test(serve, name##_reuseport) { name("reuseport"); }

/* A fixture with one TCP listener on 127.0.0.1:--port. */
static void tcp_case(const char *sched, const char *fixture, const char *flag,
		     bool any_pid)
{
	static char port[16];
	struct serve_case sc = {
		.sched = sched, .fixture = fixture, .any_pid = any_pid,
		.fx_args = { "--port", port, flag, NULL },
		.targets = { { .proto = HX_TCP, .host = "127.0.0.1" } },
		.n_targets = 1,
	};

	sc.targets[0].port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", sc.targets[0].port);
	run_serve(&sc);
}

EACH_POLICY(blocking_accept)
static void blocking_accept(const char *sched)
{
	tcp_case(sched, "fx_blocking_accept", NULL, false);
}

EACH_POLICY(epoll_level)
static void epoll_level(const char *sched)
{
	tcp_case(sched, "fx_epoll_accept4", NULL, false);
}

EACH_POLICY(epoll_edge)
static void epoll_edge(const char *sched)
{
	tcp_case(sched, "fx_epoll_accept4", "--edge", false);
}

EACH_POLICY(poll_accept)
static void poll_accept(const char *sched)
{
	tcp_case(sched, "fx_poll_accept", NULL, false);
}

EACH_POLICY(thread_pool)
static void thread_pool(const char *sched)
{
	tcp_case(sched, "fx_thread_pool", NULL, false);
}

EACH_POLICY(prefork)
static void prefork(const char *sched)
{
	tcp_case(sched, "fx_prefork", NULL, true);
}

EACH_POLICY(udp_echo)
static void udp_echo(const char *sched)
{
	static char port[16];
	struct serve_case sc = {
		.sched = sched, .fixture = "fx_udp_echo",
		.fx_args = { "--port", port, NULL },
		.targets = { { .proto = HX_UDP, .host = "127.0.0.1" } },
		.n_targets = 1,
	};

	sc.targets[0].port = hx_free_port(SOCK_DGRAM);
	snprintf(port, sizeof(port), "%d", sc.targets[0].port);
	run_serve(&sc);
}

EACH_POLICY(unix_socket)
static void unix_socket(const char *sched)
{
	struct serve_case sc = {
		.sched = sched, .fixture = "fx_unix",
		.fx_args = { "--path", unix_path, NULL },
		.targets = { { .proto = HX_UNIX, .path = unix_path } },
		.n_targets = 1,
	};

	strcpy(unix_dir, "/tmp/cluster-run-test.XXXXXX");
	cr_assert(mkdtemp(unix_dir) != NULL, "mkdtemp failed");
	snprintf(unix_path, sizeof(unix_path), "%s/server.sock", unix_dir);
	run_serve(&sc);
}

EACH_POLICY(port0)
static void port0(const char *sched)
{
	struct serve_case sc = {
		.sched = sched, .fixture = "fx_port0",
		.targets = { { .proto = HX_TCP, .host = "127.0.0.1" } },
		.n_targets = 1, .port_on_stdout = true,
	};

	run_serve(&sc);
}

EACH_POLICY(dual_stack)
static void dual_stack(const char *sched)
{
	static char port[16];
	struct serve_case sc = {
		.sched = sched, .fixture = "fx_dual_stack",
		.fx_args = { "--port", port, NULL },
		.targets = { { .proto = HX_TCP, .host = "127.0.0.1" },
			     { .proto = HX_TCP, .host = "::1" } },
		.n_targets = 2,
	};

	if (!hx_have_ipv6())
		cr_skip_test("no IPv6 loopback here");
	sc.targets[0].port = sc.targets[1].port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", sc.targets[0].port);
	run_serve(&sc);
}

EACH_POLICY(two_listeners)
static void two_listeners(const char *sched)
{
	static char port[16], port2[16];
	struct serve_case sc = {
		.sched = sched, .fixture = "fx_two_listeners",
		.fx_args = { "--port", port, "--port2", port2, NULL },
		.targets = { { .proto = HX_TCP, .host = "127.0.0.1" },
			     { .proto = HX_TCP, .host = "127.0.0.1" } },
		.n_targets = 2,
	};

	sc.targets[0].port = hx_free_port(SOCK_STREAM);
	do
		sc.targets[1].port = hx_free_port(SOCK_STREAM);
	while (sc.targets[1].port == sc.targets[0].port);
	snprintf(port, sizeof(port), "%d", sc.targets[0].port);
	snprintf(port2, sizeof(port2), "%d", sc.targets[1].port);
	run_serve(&sc);
}
