/*
 * test_seccomp.c - binaries the shim cannot reach, clustered through
 * seccomp user notification (--intercept auto picks it for static and Go
 * binaries; supervisor/lib/seccomp_notify.c):
 *
 *   - a static C server (fx_static) and busybox-static's httpd under -n 2,
 *     a Go net/http server (fx_gohttp, CGO_ENABLED=0) under -n 3: every
 *     request answered, by every worker (each answer names its worker id
 *     and pid); SIGTERM leaves nothing;
 *   - a server making its own system calls, as Go's runtime does
 *     (fx_gobin), and a dynamic one run with --intercept seccomp;
 *   - Debian's prometheus-node-exporter (Go, cgo) under -n 3: exactly 10
 *     scrapes each of 30 (its own scrape counter says who answered);
 *   - a rolling reload: sequential requests all answered while it runs,
 *     then only by the new workers; a killed worker's replacement gets
 *     its slot's socket back (no connection lost to an orphan socket);
 *   - as root: --uid with --listen (the workers run as nobody), and a
 *     setuid binary that keeps its owner's rights;
 *   - io_uring, a way around the filter, fails with ENOSYS in a worker,
 *     where without the filter it works (fx_bypass probe); an i386 bind()
 *     of port 0 is the kernel's as without it (the i386 ABI is covered:
 *     test_seccomp_i386.c);
 *   - the kernel's round robin (reuseport_rr.c): 4 workers, 400
 *     sequential connections, exactly 100 each, in the seccomp mode and
 *     for shim workers under --sched reuseport (where eBPF loads).
 *
 * A kernel without seccomp user notification skips every test, saying so.
 */
#include "seccomp_support.h"

#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOAD_REQUESTS 100
/* Sequential requests a reload may take (a deadline bounds it too): each
 * old worker drains first, a census or two, tens of ms on a loaded machine
 * (thousands of requests at loopback speed). */
#define RELOAD_QUERIES_MAX 100000

TestSuite(seccomp, .init = ss_skip_without_user_notification,
	  .fini = hx_cleanup, .timeout = 90);

/* cluster-run ARGS, up once `workers` listening lines came, each on a
 * slot socket of its own. */
static struct hx_cluster *start_listening(const char *const *args,
					  size_t workers)
{
	return ss_wait_listening(hx_start(HX_CAPTURE_STDOUT, args), workers,
				 "(reuseport)");
}

/* REQUESTS answered by c's workers 1 and 2, both of them. */
static void assert_both_serve(struct hx_cluster *c, int port)
{
	struct hx_tally tally;

	st_load(c, port, LOAD_REQUESTS, 2, false, &tally);
	hx_assert(c, tally.served[1] > 0 && tally.served[2] > 0,
		  "worker 1 served %d, worker 2 %d of %d: want both",
		  tally.served[1], tally.served[2], LOAD_REQUESTS);
}

static void serve_two(const char *fixture, const char *mode,
		      const char *why)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "2", "--intercept", mode, "--",
			       hx_fixture(fixture), ss_port_text(port), NULL };
	struct hx_cluster *c = start_listening(args, 2);

	ss_assert_mode_said(c, why);
	assert_both_serve(c, port);
	st_assert_steady(c, 2);
	st_stop(c);
}

Test(seccomp, static_binary_served_by_both_workers)
{
	serve_two("fx_static", "auto", "fx_static is a static binary");
}

Test(seccomp, go_style_raw_system_calls_served_by_both_workers)
{
	ss_skip_unless_built("fx_gobin", "objcopy missing");
	serve_two("fx_gobin", "auto", "fx_gobin is a Go binary");
}

Test(seccomp, dynamic_binary_with_intercept_seccomp)
{
	serve_two("fx_rawbind", "seccomp", "runs with --intercept seccomp");
}

/* ---- busybox httpd ---- */

/* One GET of path, answered by a worker of c (1..n): tallied in *t. */
static void get_answer(struct hx_cluster *c, int port, const char *path,
		       int workers, struct hx_tally *t)
{
	struct hx_answer ans = ss_http_get(c, port, path);

	hx_assert(c, ans.id >= 1 && ans.id <= workers &&
		  hx_is_worker_pid(c, ans.id, ans.pid),
		  "answered by %d %d, not a worker of cluster-run", ans.id,
		  (int)ans.pid);
	t->served[ans.id]++;
	t->total++;
}

Test(seccomp, busybox_httpd_served_by_both_workers)
{
	int port = hx_free_port(SOCK_STREAM);
	char listen_on[32];
	const char *args[] = { "-n", "2", "--", "/bin/busybox", "httpd", "-f",
			       "-p", listen_on, "-h", NULL, NULL };
	struct hx_tally tally = { 0 };
	struct hx_cluster *c;

	ss_skip_unless_busybox();
	args[9] = ss_make_www();
	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
	c = start_listening(args, 2);
	ss_assert_mode_said(c, "/bin/busybox is a static binary");
	for (int i = 0; i < LOAD_REQUESTS / 2; i++)
		get_answer(c, port, "/cgi-bin/who", 2, &tally);
	ss_remove_www();
	hx_assert(c, tally.served[1] > 0 && tally.served[2] > 0,
		  "worker 1 served %d, worker 2 %d of %d: want both",
		  tally.served[1], tally.served[2], tally.total);
	st_assert_steady(c, 2);
	st_stop(c);
}

Test(seccomp, go_net_http_served_by_three_workers)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "3", "--", hx_fixture("fx_gohttp"),
			       ss_port_text(port), NULL };
	struct hx_tally tally = { 0 };
	struct hx_cluster *c;

	ss_skip_unless_built("fx_gohttp", "golang-go missing");
	c = start_listening(args, 3);
	ss_assert_mode_said(c, "fx_gohttp is a Go binary");
	for (int i = 0; i < LOAD_REQUESTS; i++)
		get_answer(c, port, "/", 3, &tally);
	for (int id = 1; id <= 3; id++)
		hx_assert(c, tally.served[id] > 0, "worker %d served none of %d",
			  id, tally.total);
	st_assert_steady(c, 3);
	st_stop(c);
}

/* ---- prometheus-node-exporter (Debian's, a Go binary built with cgo) ---- */

#define NODE_EXPORTER "/usr/bin/prometheus-node-exporter"
#define SCRAPES 30
#define SCRAPED_LINE "promhttp_metric_handler_requests_total{code=\"200\"} "

/* One scrape of /metrics: the exporter's count of the scrapes it answered
 * before this one (each process counts its own). */
static long node_exporter_scrape(struct hx_cluster *c, int port)
{
	static char buf[256 * 1024];
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	const char *at;
	int err = hx_exchange(&t, "GET /metrics HTTP/1.0\r\n\r\n", buf,
			      sizeof(buf), HX_QUERY_MS);

	hx_pump(c, 0);
	hx_assert(c, err == 0, "GET /metrics: %s", strerror(-err));
	hx_assert(c, strncmp(buf, "HTTP/1.0 200", 12) == 0 ||
		  strncmp(buf, "HTTP/1.1 200", 12) == 0, "GET /metrics: %.40s",
		  buf);
	at = strstr(buf, "\n" SCRAPED_LINE);
	hx_assert(c, at != NULL, "no %s line in /metrics", SCRAPED_LINE);
	return strtol(at + 1 + strlen(SCRAPED_LINE), NULL, 10);
}

/* Three exporters: their own scrape counts say who answered.  With the
 * kernel's round robin, 30 sequential scrapes see 0,0,0,1,1,1,...,9,9,9
 * (one process would count 0..29).  No reload here: node-exporter dies at
 * once on SIGTERM, and a seccomp worker's reload signals it at once (its
 * replacement shares its slot socket), so a scrape it has in hand is lost
 * (README, the seccomp mode's limits). */
Test(seccomp, prometheus_node_exporter_served_by_three_workers)
{
	int port = hx_free_port(SOCK_STREAM), seen[SCRAPES] = { 0 };
	char listen_on[48];
	const char *args[] = { "-n", "3", "--", NODE_EXPORTER, listen_on,
			       "--collector.disable-defaults",
			       "--collector.loadavg", NULL };
	struct hx_cluster *c;

	if (access(NODE_EXPORTER, X_OK) != 0)
		ss_skip(NODE_EXPORTER " missing (apt-get install "
			"prometheus-node-exporter)");
	snprintf(listen_on, sizeof(listen_on),
		 "--web.listen-address=127.0.0.1:%d", port);
	c = start_listening(args, 3);
	ss_assert_mode_said(c, "prometheus-node-exporter is a Go binary");
	ss_assert_kernel_rr(c);
	for (int i = 0; i < SCRAPES; i++) {
		long n = node_exporter_scrape(c, port);

		hx_assert(c, n >= 0 && n < SCRAPES, "scrape %d counted %ld",
			  i, n);
		seen[n]++;
	}
	for (int n = 0; n < SCRAPES / 3; n++)
		hx_assert(c, seen[n] == 3, "%d scrapes counted %d before them, "
			  "want 3 (one per worker)", seen[n], n);
	st_assert_steady(c, 3);
	st_stop(c);
	cr_log_info("node-exporter: %d scrapes 10/10/10", SCRAPES);
}

/* ---- reload, restart ---- */

static long err_line_index(const struct hx_cluster *c, const char *text)
{
	for (size_t i = 0; i < c->err.n_lines; i++)
		if (strstr(c->err.lines[i], text))
			return (long)i;
	return -1;
}

Test(seccomp, reload_answers_every_request_then_new_workers_serve)
{
	int port = hx_free_port(SOCK_STREAM), queries = 0;
	const char *args[] = { "-n", "2", "--", hx_fixture("fx_static"),
			       ss_port_text(port), NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_cluster *c = start_listening(args, 2);
	pid_t old[3] = { 0, hx_worker_pid(c, 1), hx_worker_pid(c, 2) };
	struct hx_tally tally;
	int64_t deadline;

	assert_both_serve(c, port);
	kill(c->pid, SIGHUP);
	deadline = hx_now_ms() + 2 * HX_START_MS;
	while (err_line_index(c, "reload: done") < 0) {
		struct hx_answer ans;
		int err = hx_query(&t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);
		hx_assert(c, err == 0, "request %d during the reload failed: "
			  "%s", queries, strerror(-err));
		hx_assert(c, ++queries < RELOAD_QUERIES_MAX &&
			  hx_now_ms() < deadline, "no \"reload: done\" after "
			  "%d requests", queries);
	}
	hx_assert(c, hx_count(c, HX_LISTENING) == 4,
		  "want 4 listening lines (2 workers, then 2 replacements)");
	for (int id = 1; id <= 2; id++)
		hx_assert(c, hx_worker_pid(c, id) != old[id],
			  "worker %d was not replaced", id);
	st_load(c, port, LOAD_REQUESTS, 2, false, &tally);
	st_stop(c);
	cr_log_info("reload: %d sequential requests during it, none failed",
		    queries);
}

Test(seccomp, killed_worker_is_replaced_on_its_slot)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "2", "--", hx_fixture("fx_static"),
			       ss_port_text(port), NULL };
	struct hx_cluster *c = start_listening(args, 2);
	pid_t old = hx_worker_pid(c, 1);

	kill(old, SIGKILL);
	hx_assert(c, hx_wait_event(c, HX_LISTENING, 1, old, 0, HX_START_MS),
		  "worker 1 was not replaced and listening within %d ms",
		  HX_START_MS);
	/* a second socket of slot 1 held by nobody would take some of these
	 * connections and never answer them */
	assert_both_serve(c, port);
	st_stop(c);
}

/* A Go server that stops gracefully (Shutdown closes its listener) under
 * wrk, new connection per request: a rolling reload loses none, since
 * each slot's socket is cluster-run's and the replacement's too. */
Test(seccomp, reload_under_load_fails_no_request)
{
	int port = hx_free_port(SOCK_STREAM), out;
	const char *args[] = { "-n", "2", "--", hx_fixture("fx_gohttp"),
			       ss_port_text(port), NULL };
	const char *done[] = { "reload: done", NULL };
	struct hx_tally tally = { 0 };
	struct hx_cluster *c;
	long requests;
	pid_t wrk;

	ss_skip_unless_built("fx_gohttp", "golang-go missing");
	ss_skip_unless_wrk();
	c = start_listening(args, 2);
	wrk = ss_wrk_start(port, 4, &out);
	/* the load is on by the time a few of ours are answered */
	for (int i = 0; i < 10; i++)
		get_answer(c, port, "/", 2, &tally);
	kill(c->pid, SIGHUP);
	hx_assert(c, st_wait_err_line(c, done, 2 * HX_START_MS) != NULL,
		  "no \"reload: done\"");
	requests = ss_wrk_finish(c, wrk, out, HX_START_MS, "the reload");
	st_stop(c);
	cr_log_info("reload under wrk: %ld requests, none failed", requests);
}

/* ---- privileges (root only) ---- */

/* Field of /proc/PID/status ("Uid:"): its real and effective ids. */
static bool proc_uids(pid_t pid, unsigned *ruid, unsigned *euid)
{
	char path[64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "Uid: %u %u", ruid, euid) == 2;
	fclose(f);
	return found;
}

static const struct passwd *nobody_or_skip(void)
{
	const struct passwd *pw = getpwnam("nobody");

	if (geteuid() != 0 || !pw)
		ss_skip("needs root and a user nobody");
	return pw;
}

/* -n 2 --uid nobody --listen 127.0.0.1:PORT -- PROGRAM PORT: both serve,
 * each worker's real uid nobody's, its effective one euid. */
static struct hx_cluster *serve_as_nobody(const char *program, int port,
					  unsigned euid)
{
	char listen_on[32];
	const char *args[] = { "-n", "2", "--uid", "nobody", "--listen",
			       listen_on, "--", program, ss_port_text(port), NULL };
	struct hx_cluster *c;
	unsigned ruid = 0, eu = 0;

	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
	c = start_listening(args, 2);
	assert_both_serve(c, port);
	for (int id = 1; id <= 2; id++) {
		hx_assert(c, proc_uids(hx_worker_pid(c, id), &ruid, &eu),
			  "no uids for worker %d", id);
		hx_assert(c, ruid == getpwnam("nobody")->pw_uid && eu == euid,
			  "worker %d runs as %u/%u, want %u/%u", id, ruid, eu,
			  (unsigned)getpwnam("nobody")->pw_uid, euid);
	}
	return c;
}

Test(seccomp, unprivileged_workers_get_the_declared_port)
{
	const struct passwd *pw = nobody_or_skip();

	st_stop(serve_as_nobody(hx_fixture("fx_static"),
				hx_free_port(SOCK_STREAM), pw->pw_uid));
}

Test(seccomp, setuid_binary_keeps_its_owners_rights_under_root)
{
	char dir[64], copy[96], cmd[256];
	struct hx_cluster *c;
	const char *texts[] = { "PR_SET_NO_NEW_PRIVS is skipped", NULL };

	nobody_or_skip();
	snprintf(dir, sizeof(dir), "/tmp/cr-seccomp-suid.XXXXXX");
	cr_assert(mkdtemp(dir) != NULL);
	chmod(dir, 0755);
	snprintf(copy, sizeof(copy), "%s/fx_static", dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", hx_fixture("fx_static"), copy);
	cr_assert(system(cmd) == 0, "%s failed", cmd);
	cr_assert(chown(copy, 0, 0) == 0 && chmod(copy, 04755) == 0);
	c = serve_as_nobody(copy, hx_free_port(SOCK_STREAM), 0);
	hx_assert(c, st_wait_err_line(c, texts, 0) != NULL,
		  "no line \"... PR_SET_NO_NEW_PRIVS is skipped\"");
	st_stop(c);
	unlink(copy);
	rmdir(dir);
}

/* ---- socket activation ---- */

#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"

/* systemd-socket-activate passes cluster-run a listening socket (it execs
 * cluster-run at the first connection, which a worker then answers): both
 * seccomp workers get it in place of their own, and every connection is
 * answered. */
Test(seccomp, socket_activation_socket_shared_by_seccomp_workers)
{
	static char real[512], listen_on[32];
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-l", listen_on, real, "-n", "2", "--",
			       hx_fixture("fx_static"), ss_port_text(port), NULL };
	const char *adopted[] = { "socket activation: fd 3 is", listen_on,
				  NULL };
	const char *listening[] = { "Listening on", listen_on, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_answer first;
	struct hx_tally tally;
	struct hx_cluster *c;
	int err;

	if (access(SOCKET_ACTIVATE, X_OK) != 0)
		ss_skip("no %s (systemd)", SOCKET_ACTIVATE);
	snprintf(real, sizeof(real), "%s", getenv("CLUSTER_RUN_BIN"));
	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
	/* this test's process only (Criterion forks one per test) */
	setenv("CLUSTER_RUN_BIN", SOCKET_ACTIVATE, 1);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	hx_assert(c, st_wait_err_line(c, listening, HX_START_MS) != NULL,
		  "%s did not say it listens on %s", SOCKET_ACTIVATE,
		  listen_on);
	err = hx_query(&t, HX_START_MS, &first);
	hx_assert(c, err == 0, "the first connection, which starts "
		  "cluster-run, was not answered: %s", strerror(-err));
	ss_wait_listening(c, 2, "(shared)");
	hx_assert(c, st_wait_err_line(c, adopted, 0) != NULL,
		  "no line \"socket activation: fd 3 is %s ...\"", listen_on);
	/* one socket for both: which worker's accept() gets a connection is
	 * the kernel's (as with --sched none), so only "answered" is asked;
	 * each worker's listening line says it holds systemd's socket */
	st_load(c, port, LOAD_REQUESTS, 2, false, &tally);
	st_stop(c);
}

/* ---- what needs rr ---- */

static void refused_with(const char *option, const char *value,
			 const char *said)
{
	int port = hx_free_port(SOCK_STREAM), status;
	const char *args[] = { "-n", "2", option, value, "--",
			       hx_fixture("fx_static"), ss_port_text(port), NULL };
	const char *texts[] = { said, "runs in the seccomp mode", NULL };
	struct hx_cluster *c = hx_start(0, args);

	status = hx_wait_exit(c, HX_EXIT_MS);
	hx_assert(c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 2, "%s %s with a seccomp worker: "
		  "wait status 0x%x, want exit 2", option, value, status);
	hx_assert(c, st_wait_err_line(c, texts, 0) != NULL,
		  "no line \"%s ... runs in the seccomp mode\"", said);
	hx_assert(c, hx_count(c, HX_FORKED) == 0, "a worker was started");
	hx_free(c);
}

Test(seccomp, health_check_and_max_conns_refused)
{
	refused_with("--health-check", "tcp", "--health-check needs --sched rr");
	refused_with("--max-conns", "100", "--max-conns counts the connections");
}

/* ---- a filter the kernel refuses ---- */

Test(seccomp, nested_notifier_is_said_and_stops)
{
	int port = hx_free_port(SOCK_STREAM), status;
	const char *args[] = { "-n", "1", "--crash-limit", "2:60", "--",
			       hx_fixture("fx_static"), ss_port_text(port), NULL };
	const char *texts[] = { "the kernel refused the seccomp filter",
				"Device or resource busy",
				"--intercept shim", NULL };
	struct hx_cluster *c;
	size_t said = 0;

	/* this test's process only (Criterion forks one per test) */
	setenv("CLUSTER_RUN_REAL", getenv("CLUSTER_RUN_BIN"), 1);
	setenv("CLUSTER_RUN_BIN", hx_fixture("fx_notifier_wrap"), 1);
	c = hx_start(0, args);
	status = hx_wait_exit(c, 2 * HX_START_MS);
	hx_assert(c, status != -1, "cluster-run did not stop its crash loop");
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "wait status 0x%x, want exit 1 (crash loop)", status);
	hx_assert(c, st_wait_err_line(c, texts, 0) != NULL,
		  "no line \"... the kernel refused the seccomp filter (Device "
		  "or resource busy) ... --intercept shim ...\"");
	for (size_t i = 0; i < c->err.n_lines; i++)
		said += strstr(c->err.lines[i], "refused the seccomp") != NULL;
	hx_assert(c, said == 1, "said %zu times, want once", said);
	hx_assert_workers_gone(c);
	hx_free(c);
}

/* ---- what would bypass the filter ---- */

Test(seccomp, io_uring_fails_with_enosys_i386_port_0_bind_is_the_kernels)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "1", "--", hx_fixture("fx_bypass"),
			       ss_port_text(port), NULL };
	bool uring, i386;
	struct hx_cluster *c;
	struct hx_tally tally;
	char alone[256];

	ss_probe_alone("fx_bypass", alone, sizeof(alone));
	uring = strstr(alone, "io_uring_setup: ok") != NULL;
	i386 = strstr(alone, "i386 bind: ok") != NULL;
	if (!uring)
		printf("io_uring part skipped: without a filter io_uring_setup "
		       "does not work here either (%s)\n", alone);
	if (!i386)
		printf("i386 part skipped: without a filter an i386 bind() "
		       "does not work here either (%s)\n", alone);
	fflush(stdout);
	if (!uring && !i386)
		ss_skip("neither io_uring nor the i386 ABI works here");
	c = start_listening(args, 1);
	hx_assert(c, hx_wait_stdout_lines(c, 2, HX_START_MS),
		  "fx_bypass said nothing on stdout");
	if (uring)
		hx_assert(c, st_stdout_line(c, "io_uring_setup: ENOSYS"),
			  "io_uring_setup in a seccomp worker: want ENOSYS; "
			  "%s", c->out.lines[0]);
	if (i386)
		hx_assert(c, st_stdout_line(c, "i386 bind: ok"),
			  "an i386 bind() of port 0 in a seccomp worker: want "
			  "it done by the kernel, as without the filter; %s",
			  c->out.lines[1]);
	st_load(c, port, 10, 1, false, &tally);
	st_stop(c);
}

/* ---- the kernel's round robin ---- */

#define BALANCE_WORKERS 4
#define BALANCE_REQUESTS 400

/* cluster-run ARGS (BALANCE_WORKERS workers serving on 127.0.0.1:PORT):
 * with the kernel's round robin, each worker answers exactly its share of
 * BALANCE_REQUESTS sequential connections; where the program cannot be
 * loaded, the line that says so, and a skip. */
static void exactly_even(int port, const char *const *args)
{
	struct hx_cluster *c = start_listening(args, BALANCE_WORKERS);
	struct hx_tally tally;

	ss_assert_kernel_rr(c);
	st_load(c, port, BALANCE_REQUESTS, BALANCE_WORKERS, false, &tally);
	for (int id = 1; id <= BALANCE_WORKERS; id++)
		hx_assert(c, tally.served[id] == BALANCE_REQUESTS /
			  BALANCE_WORKERS, "worker %d served %d of %d, want "
			  "exactly %d", id, tally.served[id], BALANCE_REQUESTS,
			  BALANCE_REQUESTS / BALANCE_WORKERS);
	st_stop(c);
}

Test(seccomp, kernel_round_robin_deals_exactly_even)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "4", "--", hx_fixture("fx_static"),
			       ss_port_text(port), NULL };

	exactly_even(port, args);
}

Test(seccomp, kernel_round_robin_for_shim_workers_too)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "4", "--sched", "reuseport", "--",
			       hx_fixture("fx_epoll_early"), ss_port_text(port), NULL };

	exactly_even(port, args);
}
