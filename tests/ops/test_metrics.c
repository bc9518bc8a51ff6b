/*
 * test_metrics.c - `--metrics`: GET /metrics in Prometheus' text format,
 * checked against `ctl status --json` and the requests made (handed and
 * accepted counts, pids, states, reloads), and by `promtool check
 * metrics`; silent clients (more than the 16 served at once) that do not
 * stop the cluster from serving and are closed; wrong requests; a bad
 * --metrics value and a port in use.
 */
#include "ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SAMPLE_WAIT_MS 15000
/* metrics_http.h: 16 clients at once, a silent one closed after 5 s */
#define SERVED_AT_ONCE 16
#define SILENT_CLIENTS 20
#define SILENT_CLOSE_MS 15000

TestSuite(metrics, .fini = ops_fini, .timeout = 90);

struct metrics_cluster {
	struct ops_cluster oc;
	int mport;
	char mopt[32];
};

static void start(struct metrics_cluster *mc, int workers)
{
	mc->mport = hx_free_port(SOCK_STREAM);
	snprintf(mc->mopt, sizeof(mc->mopt), "127.0.0.1:%d", mc->mport);
	ops_start(&mc->oc, workers,
		  (const char *[]){ "--metrics", mc->mopt, NULL });
	hx_assert(mc->oc.c, ops_wait_line(mc->oc.c, "metrics at http://",
					  0, HX_START_MS) >= 0,
		  "no \"metrics at\" line");
}

static int connect_to(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	cr_assert(fd >= 0);
	cr_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		  "connect to port %d: %s", port, strerror(errno));
	return fd;
}

#define ANSWER_MAX 65536

/* The answer to request on a new connection (malloc'd), which must come
 * whole within timeout_ms. */
static char *http_request_within(struct metrics_cluster *mc,
				 const char *request, int timeout_ms)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = mc->mport };
	char *buf = malloc(ANSWER_MAX);
	int err;

	cr_assert(buf != NULL);
	err = hx_exchange(&t, request, buf, ANSWER_MAX, timeout_ms);
	hx_assert(mc->oc.c, err == 0, "no whole answer within %d ms: %s; so "
		  "far: %.300s", timeout_ms, strerror(-err), buf);
	return buf;
}

static char *http_request(struct metrics_cluster *mc, const char *request)
{
	return http_request_within(mc, request, HX_QUERY_MS);
}

/* Checks /metrics against the status JSON on stdin; argv: the metrics
 * port, the file the body goes to, the requests made, reloads done. */
static const char check_metrics[] =
	"import json, re, sys, urllib.request\n"
	"d = json.load(sys.stdin)\n"
	"port, path, requests, reloads = sys.argv[1], sys.argv[2], "
	"int(sys.argv[3]), int(sys.argv[4])\n"
	"r = urllib.request.urlopen('http://127.0.0.1:%s/metrics' % port, "
	"timeout=5)\n"
	"assert 'version=0.0.4' in r.headers['Content-Type'], r.headers\n"
	"text = r.read().decode()\n"
	"open(path, 'w').write(text)\n"
	"m = {}\n"
	"for line in text.splitlines():\n"
	"    if line.startswith('#'):\n"
	"        continue\n"
	"    name, value = line.rsplit(' ', 1)\n"
	"    m[name] = float(value)\n"
	"def w(name, x, extra=''):\n"
	"    return m['cluster_run_%s{id=\"%d\",pid=\"%d\"%s}' % (name, x['id'], "
	"x['pid'], extra)]\n"
	"assert len(d['workers']) == d['size'], d\n"
	"for x in d['workers']:\n"
	"    assert w('worker_up', x) == 1, x\n"
	"    assert w('worker_state', x, ',state=\"listening\"') == 1, x\n"
	"    assert w('worker_state', x, ',state=\"online\"') == 0, x\n"
	"    assert w('worker_connections_handed_total', x) == x['handed'], x\n"
	"    assert w('worker_restarts_total', x) == x['restarts'], x\n"
	"    assert w('worker_processes', x) == 1, x\n"
	"    rss = w('worker_resident_memory_bytes', x)\n"
	"    assert abs(rss - x['rss_bytes']) < x['rss_bytes'] / 2, (rss, x)\n"
	"    assert w('worker_cpu_seconds_total', x) >= 0, x\n"
	"pids = {x['pid'] for x in d['workers']}\n"
	"seen = {int(p) for p in re.findall(r'worker_up\\{id=\"\\d+\",pid=\"(\\d+)\"', "
	"text)}\n"
	"assert seen == pids, (seen, pids)\n"
	"addr = d['listeners'][0]['address']\n"
	"def l(name):\n"
	"    return m['cluster_run_listener_%s{address=\"%s\"}' % (name, addr)]\n"
	"assert l('accepted_total') == requests, l('accepted_total')\n"
	"assert l('held_connections') == 0 and l('queue_depth') == 0\n"
	"assert l('backlog') == d['listeners'][0]['backlog']\n"
	"assert m['cluster_run_connections_handed_total'] == requests\n"
	"assert reloads or sum(x['handed'] for x in d['workers']) == requests\n"
	"assert m['cluster_run_workers_wanted'] == d['size']\n"
	"assert m['cluster_run_workers_listening'] == d['size']\n"
	"assert m['cluster_run_reloads_total{outcome=\"started\"}'] == reloads\n"
	"assert m['cluster_run_reloads_total{outcome=\"done\"}'] == reloads\n"
	"assert m['cluster_run_reloads_total{outcome=\"failed\"}'] == 0\n"
	"for r in ('crash', 'hang', 'memory', 'conns', 'lifetime', 'health'):\n"
	"    assert m['cluster_run_worker_replacements_total{reason=\"%s\"}' % r] == 0, r\n"
	"assert m['cluster_run_worker_replacements_total{reason=\"reload\"}'] == reloads * d['size']\n"
	"assert m['cluster_run_protocol_violations_total'] == 0\n"
	"print('checked', len(m), 'samples')\n";

static void expect_metrics(struct metrics_cluster *mc, int requests,
			   int reloads)
{
	struct ops_run st, py;
	char port[16], nreq[16], nrel[16];
	const char *file = ops_path("metrics.txt");

	snprintf(port, sizeof(port), "%d", mc->mport);
	snprintf(nreq, sizeof(nreq), "%d", requests);
	snprintf(nrel, sizeof(nrel), "%d", reloads);
	ops_ctl(mc->oc.c, mc->oc.sock,
		(const char *[]){ "status", "--json", NULL }, &st);
	hx_assert(mc->oc.c, ops_exit_code(&st) == 0, "ctl status --json: %s",
		  st.err);
	ops_run((const char *[]){ "python3", "-c", check_metrics, port, file,
				  nreq, nrel, NULL }, st.out, &py);
	hx_assert(mc->oc.c, ops_exit_code(&py) == 0, "/metrics disagrees with "
		  "ctl status (%s):\n%s", py.err, st.out);
	cr_log_info("/metrics agrees with ctl status: %s", py.out);
	ops_run_free(&st);
	ops_run_free(&py);
}

/* promtool, when installed (Debian's prometheus package). */
static void expect_promtool_ok(struct hx_cluster *c)
{
	struct ops_run r;
	char cmd[256];

	if (access("/usr/bin/promtool", X_OK) != 0) {
		fprintf(stderr, "promtool not found (apt-get install "
			"prometheus): skipping promtool check metrics\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s",
		 ops_path("metrics.txt"));
	ops_run((const char *[]){ "sh", "-c", cmd, NULL }, NULL, &r);
	hx_assert(c, ops_exit_code(&r) == 0, "promtool check metrics: exit "
		  "%d:\n%s%s", ops_exit_code(&r), r.out, r.err);
	cr_log_info("promtool check metrics: exit 0\n");
	ops_run_free(&r);
}

Test(metrics, agree_with_status_and_promtool)
{
	struct metrics_cluster mc;
	pid_t pids[2];
	const int requests = 10;
	size_t mark;
	struct ops_run r;

	start(&mc, 2);
	pids[0] = hx_worker_pid(mc.oc.c, 1);
	pids[1] = hx_worker_pid(mc.oc.c, 2);
	for (int i = 0; i < requests; i++)
		ops_query_from(mc.oc.c, &mc.oc.target, pids, 2, "before /metrics");
	hx_assert(mc.oc.c, ops_wait_status(&mc.oc, "all(w['cpu_percent'] is "
					   "not None for w in W)",
					   SAMPLE_WAIT_MS),
		  "the workers were never sampled");
	expect_metrics(&mc, requests, 0);
	expect_promtool_ok(mc.oc.c);

	/* a reload: new pids, the reload counted */
	mark = mc.oc.c->err.n_lines;
	ops_ctl(mc.oc.c, mc.oc.sock, (const char *[]){ "reload", NULL }, &r);
	hx_assert(mc.oc.c, ops_exit_code(&r) == 0, "ctl reload: %s", r.err);
	ops_run_free(&r);
	hx_assert(mc.oc.c, ops_wait_line(mc.oc.c, "reload: done", mark,
					 HX_START_MS) >= 0, "no reload");
	hx_assert(mc.oc.c, ops_wait_status(&mc.oc, "len(W) == 2 and "
					   "all(w['cpu_percent'] is not None "
					   "and not w['retiring'] for w in W)",
					   SAMPLE_WAIT_MS),
		  "the new workers were never sampled");
	expect_metrics(&mc, requests, 1);
	expect_promtool_ok(mc.oc.c);
}

/* A fd that has EOF (the server closed it) now. */
static bool closed_by_server(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char c;

	return poll(&pfd, 1, 0) == 1 && read(fd, &c, 1) == 0;
}

Test(metrics, silent_clients_neither_stop_the_cluster_nor_stay)
{
	struct metrics_cluster mc;
	int silent[SILENT_CLIENTS], closed = 0;
	bool is_closed[SILENT_CLIENTS] = { false };
	pid_t pids[2];
	int64_t t0, deadline;
	char *answer;

	start(&mc, 2);
	pids[0] = hx_worker_pid(mc.oc.c, 1);
	pids[1] = hx_worker_pid(mc.oc.c, 2);
	t0 = hx_now_ms();
	for (int i = 0; i < SILENT_CLIENTS; i++)
		silent[i] = connect_to(mc.mport);
	/* one sends half a request, then nothing */
	cr_assert(write(silent[0], "GET /met", 8) == 8);
	/* the workers keep serving, the control socket answers */
	for (int i = 0; i < 20; i++)
		ops_query_from(mc.oc.c, &mc.oc.target, pids, 2,
			       "with silent metrics clients");
	hx_assert(mc.oc.c, ops_status_long(&mc.oc, "len(W)") == 2,
		  "ctl status with silent metrics clients");
	/* A real scrape waits behind the 16 being served and the 4 queued
	 * before it, and is answered once slots are freed by closing silent
	 * ones for their silence. */
	answer = http_request_within(&mc, "GET /metrics HTTP/1.1\r\nHost: "
				     "x\r\n\r\n", SILENT_CLOSE_MS);
	hx_assert(mc.oc.c, strncmp(answer, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
		  strstr(answer, "cluster_run_workers_wanted 2\n"),
		  "the scrape got: %.200s", answer);
	free(answer);
	for (int i = 0; i < SILENT_CLIENTS; i++)
		if (closed_by_server(silent[i])) {
			is_closed[i] = true;
			closed++;
		}
	/* The accept queue is FIFO: the 4 silent ones queued before the
	 * scrape take the first slots freed, so the scrape is served once at
	 * least 5 of the 16 have been closed (all 16 when their timers fire
	 * in one turn of the loop, fewer on a loaded machine). */
	hx_assert(mc.oc.c, closed >= SILENT_CLIENTS - SERVED_AT_ONCE + 1,
		  "the scrape was answered while only %d of the silent "
		  "clients were closed", closed);
	hx_assert(mc.oc.c, hx_now_ms() - t0 >= 4000, "answered after %lld ms: "
		  "before the silent ones timed out", (long long)(hx_now_ms() - t0));
	/* and the ones that waited in the backlog are closed in their turn */
	deadline = hx_now_ms() + SILENT_CLOSE_MS;
	while (closed < SILENT_CLIENTS && hx_now_ms() < deadline) {
		hx_pump(mc.oc.c, 100);
		for (int i = 0; i < SILENT_CLIENTS; i++)
			if (!is_closed[i] && closed_by_server(silent[i])) {
				is_closed[i] = true;
				closed++;
			}
	}
	hx_assert(mc.oc.c, closed == SILENT_CLIENTS, "%d of %d silent clients "
		  "closed", closed, SILENT_CLIENTS);
	for (int i = 0; i < SILENT_CLIENTS; i++)
		close(silent[i]);
}

Test(metrics, wrong_requests)
{
	struct metrics_cluster mc;
	char *a, big[10000];

	start(&mc, 1);
	a = http_request(&mc, "GET / HTTP/1.1\r\n\r\n");
	hx_assert(mc.oc.c, strncmp(a, "HTTP/1.1 404 ", 13) == 0 &&
		  strstr(a, "/metrics"), "GET /: %s", a);
	free(a);
	a = http_request(&mc, "POST /metrics HTTP/1.1\r\nContent-Length: 0"
			 "\r\n\r\n");
	hx_assert(mc.oc.c, strncmp(a, "HTTP/1.1 405 ", 13) == 0 &&
		  strstr(a, "Allow: GET, HEAD\r\n"), "POST: %s", a);
	free(a);
	a = http_request(&mc, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
	hx_assert(mc.oc.c, strncmp(a, "HTTP/1.1 200 ", 13) == 0 &&
		  strstr(a, "\r\n\r\n")[4] == '\0', "HEAD: %s", a);
	free(a);
	a = http_request(&mc, "hello\r\n\r\n");
	hx_assert(mc.oc.c, strncmp(a, "HTTP/1.1 400 ", 13) == 0, "junk: %s", a);
	free(a);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	a = http_request(&mc, big);
	hx_assert(mc.oc.c, strncmp(a, "HTTP/1.1 431 ", 13) == 0,
		  "a 10 kB header: %.100s", a);
	free(a);
}

Test(metrics, bad_address_and_port_in_use)
{
	struct ops_run r;
	int fd, port;
	char opt[32];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	ops_run((const char *[]){ getenv("CLUSTER_RUN_BIN"), "--metrics",
				  "unix:/tmp/x", "--", "true", NULL }, NULL, &r);
	cr_assert(ops_exit_code(&r) == 2 &&
		  strstr(r.err, "invalid --metrics 'unix:/tmp/x'"),
		  "exit %d: %s", ops_exit_code(&r), r.err);
	ops_run_free(&r);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	cr_assert(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		  listen(fd, 1) == 0 &&
		  getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	port = ntohs(sin.sin_port);
	snprintf(opt, sizeof(opt), "%d", port);
	ops_run((const char *[]){ getenv("CLUSTER_RUN_BIN"), "--control",
				  ops_path("ctl.sock"), "--metrics", opt, "--",
				  hx_fixture("fx_blocking_accept"), NULL },
		NULL, &r);
	cr_assert(ops_exit_code(&r) == 1 &&
		  strstr(r.err, "cannot serve --metrics on 127.0.0.1:") &&
		  strstr(r.err, "Address already in use"),
		  "exit %d: %s", ops_exit_code(&r), r.err);
	ops_run_free(&r);
	close(fd);
}
