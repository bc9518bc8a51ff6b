/*
 * test_health.c - health checks through the shared port (--health-check):
 * every worker is probed through its own listener, an unhealthy worker is
 * replaced under load with no failed request (http: answering 500; tcp: a
 * SIGSTOPped worker), a reload's replacement takes over only once it has
 * passed a probe (one that fails them stops the reload), probes left in
 * a stopped worker's queue harm no other worker, and bad options get one
 * line each.
 *
 * The fixture, fx_health, logs each probe on stderr (cluster-run's, as
 * the workers inherit it) as "fx_health ID PID: /health CODE aimed at ID
 * (pid PID)": who answered, and whom cluster-run meant.
 */
#include "ops.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(health, .fini = ops_fini, .timeout = 60);

#define FAST_PROBES "--health-interval", "0.2", "--health-timeout", "0.2"
#define LOAD_MAX_REQUESTS 20000  /* the load's bound, besides its deadline */
#define LOAD_MS 20000
#define LOAD_AFTER 50            /* requests once the replacement serves */

/* One probe line of the fixture. */
struct probe_line {
	int id, aimed_id;
	pid_t pid, aimed_pid;
	int code;
};

static bool parse_probe(const char *line, struct probe_line *p)
{
	int pid, aimed_pid;

	if (sscanf(line, "fx_health %d %d: /health %d aimed at %d (pid %d)",
		   &p->id, &pid, &p->code, &p->aimed_id, &aimed_pid) != 5)
		return false;
	p->pid = pid;
	p->aimed_pid = aimed_pid;
	return true;
}

/* Probe lines at index >= from answered by pid with code (0: any). */
static size_t count_probes(const struct hx_cluster *c, pid_t pid, int code,
			   size_t from, size_t to)
{
	struct probe_line p;
	size_t n = 0;

	for (size_t i = from; i < to && i < c->err.n_lines; i++)
		n += parse_probe(c->err.lines[i], &p) && p.pid == pid &&
		     (code == 0 || p.code == code);
	return n;
}

/* Index of the first probe line at index >= from answered by pid with
 * code; -1 if none. */
static long first_probe(const struct hx_cluster *c, pid_t pid, int code,
			size_t from)
{
	struct probe_line p;

	for (size_t i = from; i < c->err.n_lines; i++)
		if (parse_probe(c->err.lines[i], &p) && p.pid == pid &&
		    p.code == code)
			return (long)i;
	return -1;
}

/* GET path; 0 and the answer's "<id> <pid>", or -errno / -EPROTO. */
static int http_get(const struct hx_target *t, const char *path,
		    struct hx_answer *ans)
{
	char req[128], buf[512];
	const char *body;
	int err;

	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	err = hx_exchange(t, req, buf, sizeof(buf), HX_QUERY_MS);
	if (err)
		return err;
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.0 200 ", 13) != 0 || !body ||
	    !hx_parse_answer(body + 4, ans))
		return -EPROTO;
	return 0;
}

/* Whether an exit line of pid has been read. */
static bool exited(const struct hx_cluster *c, pid_t pid)
{
	for (size_t i = 0; i < c->n_events; i++)
		if ((c->events[i].kind == HX_EXITED ||
		     c->events[i].kind == HX_KILLED) && c->events[i].pid == pid)
			return true;
	return false;
}

/* A bounded load: sequential requests until the line `until` (at index
 * >= from) has been seen, the worker `gone` has exited, and LOAD_AFTER
 * more were answered; or until the bound or the deadline.  Failed
 * requests are counted in *failed, answers from `gone` once the line was
 * seen (a drained worker serves on until its replacement is ready) in
 * *from_gone; the index of that line, -1 if it never came. */
static long load_until(struct ops_cluster *oc, const char *until, size_t from,
		       pid_t gone, int *failed, int *from_gone, int *total)
{
	int64_t deadline = hx_now_ms() + LOAD_MS;
	long seen = -1;
	int after = 0;

	*failed = *from_gone = *total = 0;
	while (*total < LOAD_MAX_REQUESTS && after < LOAD_AFTER &&
	       hx_now_ms() < deadline) {
		struct hx_answer ans;
		int err = http_get(&oc->target, "/", &ans);

		(*total)++;
		/* cluster-run's lines, up to 1 ms: about 1000 requests a
		 * second at most, a steady load that leaves the CPUs to it */
		hx_pump(oc->c, 1);
		if (err) {
			(*failed)++;
			continue;
		}
		if (seen < 0)
			seen = ops_wait_line(oc->c, until, from, 0);
		else
			*from_gone += ans.pid == gone;
		if (seen >= 0 && exited(oc->c, gone))
			after++;
	}
	return seen;
}

/* Every worker's own probes, aimed at it, while client requests move
 * rr's turn between them (a probe dealt in turn would land on whoever's
 * turn it was). */
Test(health, every_worker_probed_through_its_own_listener)
{
	const char *opts[] = { "--health-check", "http:/health", FAST_PROBES,
			       NULL };
	int64_t deadline;
	struct ops_cluster oc;
	struct probe_line p;
	pid_t pids[3];
	size_t i, mismatched = 0, probes = 0;
	bool all;

	ops_start_fixture(&oc, 3, opts, "fx_health");
	for (i = 0; i < 3; i++)
		pids[i] = hx_worker_pid(oc.c, (int)i + 1);
	deadline = hx_now_ms() + 10000;
	do {
		struct hx_answer ans;

		hx_assert(oc.c, http_get(&oc.target, "/", &ans) == 0,
			  "a request failed");
		hx_pump(oc.c, 0);
		all = true;
		for (i = 0; i < 3; i++)
			all &= count_probes(oc.c, pids[i], 200, 0, SIZE_MAX) >= 5;
	} while (!all && hx_now_ms() < deadline);
	hx_assert(oc.c, all, "not every worker answered 5 probes within 10 s");
	for (i = 0; i < oc.c->err.n_lines; i++) {
		if (!parse_probe(oc.c->err.lines[i], &p))
			continue;
		probes++;
		mismatched += p.pid != p.aimed_pid || p.id != p.aimed_id;
	}
	hx_assert(oc.c, mismatched == 0, "%zu of %zu probes were answered by "
		  "another worker than the one they were aimed at", mismatched,
		  probes);
	cr_log_info("every_worker_probed: %zu probes, each answered by the "
		    "worker it was aimed at", probes);
}

/* The same on ::1: the probe's own end is an IPv6 address too. */
Test(health, probes_over_ipv6)
{
	static char port[16];
	const char *args[] = { "-n", "2", "--health-check", "http:/health",
			       FAST_PROBES, "--", hx_fixture("fx_health"),
			       "--host", "::1", "--port", port, NULL };
	struct hx_cluster *c;
	struct probe_line p;
	int64_t deadline = hx_now_ms() + 10000;
	pid_t pids[2];
	size_t i, aimed = 0;

	if (!hx_have_ipv6())
		cr_skip_test("no ::1 here");
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = ops_start_args(ops_path("ctl.sock"), args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	pids[0] = hx_worker_pid(c, 1);
	pids[1] = hx_worker_pid(c, 2);
	while ((count_probes(c, pids[0], 200, 0, SIZE_MAX) < 2 ||
		count_probes(c, pids[1], 200, 0, SIZE_MAX) < 2) &&
	       hx_now_ms() < deadline)
		hx_pump(c, 100);
	for (i = 0; i < c->err.n_lines; i++)
		aimed += parse_probe(c->err.lines[i], &p) &&
			 p.pid == p.aimed_pid;
	hx_assert(c, count_probes(c, pids[0], 200, 0, SIZE_MAX) >= 2 &&
		  count_probes(c, pids[1], 200, 0, SIZE_MAX) >= 2,
		  "not both workers answered 2 probes on [::1]");
	hx_assert(c, aimed == count_probes(c, pids[0], 0, 0, SIZE_MAX) +
		  count_probes(c, pids[1], 0, 0, SIZE_MAX),
		  "a probe on [::1] was answered by another worker");
}

/* A real server: python's http.server answers GET / with 200, so both
 * of its workers log the probes and none is found unhealthy. */
Test(health, python_http_server_passes)
{
	static char port[16];
	const char *python = "/usr/bin/python3";
	/* python logs each request on stderr: --prefix tags it with the
	 * worker's id among cluster-run's lines */
	const char *args[] = { "-n", "2", "--prefix", "--health-check",
			       "http:/", FAST_PROBES, "--", python, "-m",
			       "http.server", port, "--bind", "127.0.0.1",
			       NULL };
	struct hx_cluster *c;
	int64_t deadline = hx_now_ms() + 10000;
	size_t first, second;

	if (access(python, X_OK) != 0)
		cr_skip_test("no %s", python);
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = ops_start_args(ops_path("ctl.sock"), args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	do {
		hx_pump(c, 100);
		first = ops_count_lines(c, "[1] 127.0.0.1 - - ", 0);
		second = ops_count_lines(c, "[2] 127.0.0.1 - - ", 0);
	} while ((first < 3 || second < 3) && hx_now_ms() < deadline);
	hx_assert(c, first >= 3 && second >= 3, "python's log has %zu and %zu "
		  "probe requests of workers 1 and 2, want 3 each", first,
		  second);
	hx_assert(c, ops_count_lines(c, "\"GET / HTTP/1.0\" 200", 0) ==
		  first + second, "a probe was not answered 200");
	hx_assert(c, ops_count_lines(c, "health checks in a row", 0) == 0,
		  "a worker was found unhealthy");
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) >= 0, "no exit");
}

/* A worker that answers /health with 500 (it still serves) is drained and
 * replaced; the load sees no failure. */
Test(health, answering_500_is_replaced_under_load)
{
	const char *opts[] = { "--health-check", "http:/health", FAST_PROBES,
			       "--health-fails", "3", NULL };
	struct ops_cluster oc;
	struct hx_answer sick;
	char line[160];
	int failed, from_gone, total;
	size_t mark_lines, mark_events;
	long at;

	ops_start_fixture(&oc, 3, opts, "fx_health");
	mark_lines = oc.c->err.n_lines;
	mark_events = oc.c->n_events;
	hx_assert(oc.c, http_get(&oc.target, "/sick", &sick) == 0,
		  "GET /sick failed");
	snprintf(line, sizeof(line), "worker %d (pid %d) failed 3 health "
		 "checks in a row (http:/health: answered 500); replacing it",
		 sick.id, (int)sick.pid);
	at = load_until(&oc, line, mark_lines, sick.pid, &failed, &from_gone,
			&total);
	hx_assert(oc.c, at >= 0, "no line \"%s\"", line);
	hx_assert(oc.c, failed == 0, "%d of %d requests failed", failed, total);
	hx_assert(oc.c, ops_count_lines(oc.c, "health checks in a row",
					mark_lines) == 1,
		  "another worker was found unhealthy too");
	hx_assert(oc.c, count_probes(oc.c, sick.pid, 500, mark_lines,
				     (size_t)at) == 3,
		  "worker %d did not fail exactly 3 probes before the line",
		  sick.id);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_EXITED, sick.id, 0, mark_events,
				      HX_EXIT_MS) != NULL &&
		  hx_wait_event(oc.c, HX_LISTENING, sick.id, sick.pid,
				mark_events, HX_START_MS) != NULL,
		  "worker %d was not replaced by a new one", sick.id);
	cr_log_info("answering_500: worker %d (pid %d) replaced; %d requests, "
		    "%d failed, %d answered by it after the line (draining)",
		    sick.id, (int)sick.pid, total, failed, from_gone);
}

/* tcp: a SIGSTOPped worker takes nothing from its queue; it is killed
 * like a hung one and what waited for it goes to the others. */
Test(health, stopped_worker_is_replaced_under_load_tcp)
{
	const char *opts[] = { "--health-check", "tcp", FAST_PROBES,
			       "--health-fails", "2", NULL };
	struct ops_cluster oc;
	char line[160];
	int failed, from_gone, total;
	size_t mark_lines, mark_events;
	pid_t stopped;
	long at;

	ops_start_fixture(&oc, 2, opts, "fx_health");
	stopped = hx_worker_pid(oc.c, 1);
	mark_lines = oc.c->err.n_lines;
	mark_events = oc.c->n_events;
	hx_assert(oc.c, kill(stopped, SIGSTOP) == 0 &&
		  hx_wait_stopped(stopped, 5000), "worker 1 did not stop");
	snprintf(line, sizeof(line), "worker 1 (pid %d) failed 2 health checks "
		 "in a row (tcp: not taken from its queue within 0.2 s); "
		 "replacing it", (int)stopped);
	at = load_until(&oc, line, mark_lines, stopped, &failed, &from_gone,
			&total);
	hx_assert(oc.c, at >= 0, "no line \"%s\"", line);
	hx_assert(oc.c, failed == 0, "%d of %d requests failed", failed, total);
	hx_assert(oc.c, from_gone == 0, "%d answers from the stopped worker",
		  from_gone);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_KILLED, 1, 0, mark_events,
				      HX_EXIT_MS) != NULL &&
		  hx_wait_event(oc.c, HX_LISTENING, 1, stopped,
				mark_events, HX_START_MS) != NULL,
		  "worker 1 was not killed and replaced");
	hx_assert(oc.c, ops_count_lines(oc.c, "health checks in a row",
					mark_lines) == 1,
		  "worker 2 was found unhealthy too");
	cr_log_info("stopped_worker_tcp: %d requests, %d failed", total,
		    failed);
}

/* A unix socket server that writes as soon as it accepts and does not
 * ignore SIGPIPE: the probes that timed out in a stopped worker's queue
 * are dealt to the other worker once it is killed, and their sockets are
 * still open then (they linger), so that worker's write finds a reader
 * and no SIGPIPE kills it. */
Test(health, timed_out_probes_leave_no_server_writing_into_the_void)
{
	const char *path = ops_path("u.sock");
	const char *args[] = { "-n", "2", "--health-check", "tcp", FAST_PROBES,
			       "--health-fails", "2", "--",
			       hx_fixture("fx_unix"), "--path", path, NULL };
	struct hx_target unix_target = { .proto = HX_UNIX, .path = path };
	struct hx_cluster *c;
	char line[160];
	size_t mark;
	pid_t stopped;

	c = ops_start_args(ops_path("ctl.sock"), args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	stopped = hx_worker_pid(c, 1);
	mark = c->n_events;
	hx_assert(c, kill(stopped, SIGSTOP) == 0 &&
		  hx_wait_stopped(stopped, 5000), "worker 1 did not stop");
	snprintf(line, sizeof(line), "worker 1 (pid %d) failed 2 health checks "
		 "in a row", (int)stopped);
	hx_assert(c, ops_wait_line(c, line, 0, HX_START_MS) >= 0,
		  "no line \"%s\"", line);
	hx_assert(c, hx_wait_event(c, HX_LISTENING, 1, stopped, mark,
				   HX_START_MS) != NULL, "worker 1 not replaced");
	for (int i = 0; i < 10; i++) {
		struct hx_answer ans;

		hx_assert(c, hx_query(&unix_target, HX_QUERY_MS, &ans) == 0,
			  "request %d failed", i);
	}
	hx_pump(c, 0);
	for (size_t i = mark; i < c->n_events; i++)
		hx_assert(c, !(c->events[i].kind == HX_KILLED &&
			       c->events[i].code == SIGPIPE),
			  "worker %d (pid %d) was killed by SIGPIPE",
			  c->events[i].id, (int)c->events[i].pid);
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) == 0, "no clean exit");
}

/* The fixture listens at once but answers /health 503 for its first
 * second: the reload's new worker takes over only after its first 200. */
Test(health, reload_waits_for_the_first_passing_probe)
{
	const char *opts[] = { "--env", "FX_HEALTH_STARTING_MS=1000",
			       "--health-check", "http:/health", FAST_PROBES,
			       "--health-fails", "30", NULL };
	struct ops_cluster oc;
	const struct hx_event *ev;
	char ready[96];
	size_t mark_lines, mark_events;
	long at, first_503, first_200, listened;
	pid_t old, fresh;

	ops_start_fixture(&oc, 1, opts, "fx_health");
	old = hx_worker_pid(oc.c, 1);
	hx_assert(oc.c, ops_wait_line(oc.c, "/health 200", 0, HX_START_MS) >= 0,
		  "the first worker never passed a probe");
	mark_lines = oc.c->err.n_lines;
	mark_events = oc.c->n_events;
	hx_assert(oc.c, kill(oc.c->pid, SIGHUP) == 0, "kill SIGHUP");
	fresh = ops_wait_forked(oc.c, 1, old, mark_events);
	snprintf(ready, sizeof(ready), "reload: worker 1 (pid %d) ready",
		 (int)fresh);
	at = ops_wait_line(oc.c, ready, mark_lines, HX_START_MS);
	hx_assert(oc.c, at >= 0, "no line \"%s\"", ready);
	ev = hx_find_event(oc.c, HX_LISTENING, 1, old, mark_events);
	hx_assert(oc.c, ev && ev->pid == fresh, "no listening line of pid %d",
		  (int)fresh);
	listened = ops_wait_line(oc.c, "listening on", mark_lines, 0);
	first_503 = first_probe(oc.c, fresh, 503, mark_lines);
	first_200 = first_probe(oc.c, fresh, 200, mark_lines);
	hx_assert(oc.c, listened >= 0 && first_503 > listened && first_503 < at,
		  "the new worker answered no 503 between listening and ready");
	hx_assert(oc.c, first_200 > first_503 && first_200 < at,
		  "\"ready\" came before the new worker's first 200");
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", (size_t)at,
				      HX_START_MS) >= 0, "the reload did not end");
	cr_log_info("reload: %zu probes answered 503 before the first 200, "
		    "then ready", count_probes(oc.c, fresh, 503, mark_lines,
					       (size_t)at));
}

/* A reload's new worker that fails its probes does not take over: the
 * reload stops, the new worker is killed, the old one keeps serving. */
Test(health, reload_stops_when_the_new_worker_fails_its_probes)
{
	const char *flag = ops_path("sick");
	char env[160];
	const char *opts[] = { "--env", env, "--health-check", "http:/health",
			       FAST_PROBES, "--health-fails", "2", NULL };
	struct ops_cluster oc;
	char why[200];
	size_t mark_lines, mark_events;
	pid_t old, fresh;
	FILE *f;

	snprintf(env, sizeof(env), "FX_HEALTH_SICK_IF=%s", flag);
	ops_start_fixture(&oc, 1, opts, "fx_health");
	old = hx_worker_pid(oc.c, 1);
	hx_assert(oc.c, ops_wait_line(oc.c, "/health 200", 0, HX_START_MS) >= 0,
		  "the first worker never passed a probe");
	f = fopen(flag, "w"); /* the next worker starts sick */
	cr_assert(f && fclose(f) == 0, "cannot make %s", flag);
	mark_lines = oc.c->err.n_lines;
	mark_events = oc.c->n_events;
	hx_assert(oc.c, kill(oc.c->pid, SIGHUP) == 0, "kill SIGHUP");
	fresh = ops_wait_forked(oc.c, 1, old, mark_events);
	snprintf(why, sizeof(why), "reload stopped: replacement worker 1 (pid "
		 "%d) failed 2 health checks in a row (http:/health: answered "
		 "500); the old workers keep serving", (int)fresh);
	hx_assert(oc.c, ops_wait_line(oc.c, why, mark_lines, HX_START_MS) >= 0,
		  "no line \"%s\"", why);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_KILLED, 1, old, mark_events,
				      HX_EXIT_MS) != NULL,
		  "the failed replacement was not killed");
	hx_assert(oc.c, ops_count_lines(oc.c, "replacing it", mark_lines) == 0 &&
		  !exited(oc.c, old), "the old worker was replaced");
	for (int i = 0; i < 5; i++) {
		struct hx_answer ans;

		hx_assert(oc.c, http_get(&oc.target, "/", &ans) == 0 &&
			  ans.pid == old, "request %d not served by the old "
			  "worker", i);
	}
}

struct bad_case {
	const char *args[8];
	const char *line;
};

Test(health, bad_input_gets_one_line)
{
	static const struct bad_case cases[] = {
		{ { "--health-check", "htp:/x" },
		  "invalid --health-check 'htp:/x': give http:PATH or tcp" },
		{ { "--health-check", "http:health" },
		  "invalid --health-check 'http:health': the path must start "
		  "with '/'" },
		{ { "--health-check", "tcp", "--health-interval", "0" },
		  "invalid --health-interval '0': give seconds, such as 5 or "
		  "0.5" },
		{ { "--health-check", "tcp", "--health-timeout", "2s" },
		  "invalid --health-timeout '2s'" },
		{ { "--health-check", "tcp", "--health-fails", "0" },
		  "invalid --health-fails '0': give a whole number from 1" },
		{ { "--health-fails", "3" },
		  "--health-fails goes with --health-check" },
		{ { "--health-check", "tcp", "--sched", "reuseport" },
		  "--health-check needs --sched rr: with --sched reuseport the "
		  "kernel picks the worker" },
		{ { "--health-check", "tcp", "--sched", "none" },
		  "--health-check needs --sched rr" },
		{ { "--health-check", "tcp", "--health-interval", "1",
		    "--health-timeout", "2" },
		  "--health-timeout (2000 ms) is longer than --health-interval "
		  "(1000 ms)" },
	};
	const char *bin = getenv("CLUSTER_RUN_BIN");

	cr_assert(bin, "CLUSTER_RUN_BIN is not set");
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *argv[16] = { bin };
		struct ops_run r;
		size_t n = 1;

		for (size_t i = 0; cases[k].args[i]; i++)
			argv[n++] = cases[k].args[i];
		argv[n++] = "--";
		argv[n++] = hx_fixture("fx_health");
		argv[n] = NULL;
		ops_run(argv, NULL, &r);
		cr_assert(ops_exit_code(&r) == 2, "%s: exit %d, want 2",
			  cases[k].line, ops_exit_code(&r));
		cr_assert(strncmp(r.err, "cluster-run: ", 13) == 0 &&
			  strstr(r.err, cases[k].line) &&
			  strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
			  "want one line with \"%s\", got \"%s\"",
			  cases[k].line, r.err);
		ops_run_free(&r);
	}
}
