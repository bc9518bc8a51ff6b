/*
 * test_control.c - the control socket and `cluster-run ctl`: status (table
 * and JSON), scale, reload (and a reload asked for during one), stop, usage
 * errors, the socket file (mode 0600, a stale one, a live one, a file that
 * is no socket), a peer of another uid, and clients that misbehave.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534
/* The server closes a client that sent no request after 5 s. */
#define SILENT_CLOSE_MS 10000

TestSuite(control, .fini = ops_fini, .timeout = 60);

/* `ctl status` lists exactly want workers, ids 1..want, each with the pid
 * of its latest "forked" line, listening. */
static void expect_workers(struct ops_cluster *oc, size_t want)
{
	struct ops_row rows[8];
	size_t n = ops_status(oc->c, oc->sock, rows, 8);
	bool seen[9] = { false };

	hx_assert(oc->c, n == want, "ctl status lists %zu workers, want %zu",
		  n, want);
	for (size_t i = 0; i < n; i++) {
		const struct ops_row *r = &rows[i];

		hx_assert(oc->c, r->id >= 1 && r->id <= want && !seen[r->id],
			  "ctl status: bad or repeated id %u", r->id);
		seen[r->id] = true;
		hx_assert(oc->c, r->pid == hx_worker_pid(oc->c, (int)r->id),
			  "ctl status: worker %u has pid %d, its \"forked\" "
			  "line says %d", r->id, (int)r->pid,
			  (int)hx_worker_pid(oc->c, (int)r->id));
		hx_assert(oc->c, strcmp(r->state, "listening") == 0 &&
			  !r->replacement, "ctl status: worker %u is \"%s\"%s",
			  r->id, r->state, r->replacement ? " (new)" : "");
	}
}

/* ctl ARGS fails with exit code want, one "cluster-run: " line on stderr
 * and nothing on stdout. */
static void expect_ctl_failure(struct hx_cluster *c, const char *sock,
			       const char *const *args, int want)
{
	struct ops_run r;
	const char *nl;

	ops_ctl(c, sock, args, &r);
	nl = strchr(r.err, '\n');
	cr_assert(ops_exit_code(&r) == want, "ctl %s %s: exit %d, want %d "
		  "(stderr: %s)", args[0] ? args[0] : "", args[0] && args[1]
		  ? args[1] : "", ops_exit_code(&r), want, r.err);
	cr_assert(r.out[0] == '\0', "ctl %s: stdout \"%s\", want none",
		  args[0] ? args[0] : "", r.out);
	cr_assert(strncmp(r.err, "cluster-run: ", 13) == 0 && nl &&
		  nl[1] == '\0', "ctl %s: want one \"cluster-run: ...\" line "
		  "on stderr, got \"%s\"", args[0] ? args[0] : "", r.err);
	ops_run_free(&r);
}

/* ctl ARGS succeeds; its stdout must be exactly want (NULL: anything). */
static void expect_ctl_ok(struct hx_cluster *c, const char *sock,
			  const char *const *args, const char *want)
{
	struct ops_run r;

	ops_ctl(c, sock, args, &r);
	hx_assert(c, ops_exit_code(&r) == 0, "ctl %s: exit %d (stderr: %s)",
		  args[0], ops_exit_code(&r), r.err);
	hx_assert(c, !want || strcmp(r.out, want) == 0,
		  "ctl %s: stdout \"%s\", want \"%s\"", args[0], r.out, want);
	ops_run_free(&r);
}

/* ---- a raw client ---- */

static int raw_connect(const char *sock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	cr_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		  "connect %s: %s", sock, strerror(errno));
	return fd;
}

/* Reads until EOF (or a reset after some data) within timeout_ms; the
 * bytes read (buf NUL-terminated), or -1 at the deadline. */
static long read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - hx_now_ms();
		ssize_t n;

		buf[len] = '\0';
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -1;
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET) || len + 1 >= cap)
			return (long)len;
		if (n < 0)
			return -1;
		len += (size_t)n;
	}
}

/* Sends text, then takes the whole answer. */
static long raw_request(const char *sock, const char *text, size_t len,
			bool shut, char *buf, size_t cap)
{
	int fd = raw_connect(sock);
	long n;

	cr_assert(send(fd, text, len, MSG_NOSIGNAL) == (ssize_t)len,
		  "send: %s", strerror(errno));
	if (shut)
		shutdown(fd, SHUT_WR);
	n = read_all(fd, buf, cap, HX_QUERY_MS);
	close(fd);
	return n;
}

/* ---- status ---- */

Test(control, status_lists_workers)
{
	struct ops_cluster oc;

	ops_start(&oc, 2, NULL);
	expect_workers(&oc, 2);
	hx_assert(oc.c, ops_count_lines(oc.c, "control socket ", 0) == 1 &&
		  ops_count_lines(oc.c, "no control socket", 0) == 0,
		  "want one \"control socket PATH\" line");
	hx_assert(oc.c, ops_wait_line(oc.c, oc.sock, 0, 0) >= 0,
		  "the \"control socket\" line does not name %s", oc.sock);
}

/* Prints "size reloading pid" and one "id pid state listeners replacement
 * handed" line per worker, after checking every field's type. */
static const char json_check[] =
	"import json, sys\n"
	"d = json.load(sys.stdin)\n"
	"top = {'pid': int, 'size': int, 'reloading': bool, 'stopping': bool,\n"
	"       'workers': list}\n"
	"fields = {'id': int, 'pid': int, 'state': str, 'uptime_ms': int,\n"
	"          'restarts': int, 'handed': int, 'listeners': int,\n"
	"          'replacement': bool}\n"
	"for k, t in top.items():\n"
	"    assert type(d[k]) is t, (k, d)\n"
	"for w in d['workers']:\n"
	"    for k, t in fields.items():\n"
	"        assert type(w[k]) is t, (k, w)\n"
	"print(d['size'], int(d['reloading']), d['pid'])\n"
	"for w in d['workers']:\n"
	"    print(w['id'], w['pid'], w['state'], w['listeners'],\n"
	"          int(w['replacement']), w['handed'])\n";

Test(control, status_json)
{
	struct ops_cluster oc;
	struct ops_run r, tool, check;
	unsigned size, reloading, handed_sum = 0, rows = 0;
	int pid, off = 0;
	const char *p;
	pid_t pids[2];

	ops_start(&oc, 2, NULL);
	pids[0] = hx_worker_pid(oc.c, 1);
	pids[1] = hx_worker_pid(oc.c, 2);
	for (int i = 0; i < 4; i++)
		ops_query_from(oc.c, &oc.target, pids, 2, "before status");
	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", "--json", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl status --json: exit %d "
		  "(%s)", ops_exit_code(&r), r.err);

	ops_run((const char *[]){ "python3", "-m", "json.tool", NULL }, r.out,
		&tool);
	hx_assert(oc.c, ops_exit_code(&tool) == 0, "python3 -m json.tool "
		  "rejects the answer (%s):\n%s", tool.err, r.out);
	ops_run((const char *[]){ "python3", "-c", json_check, NULL }, r.out,
		&check);
	hx_assert(oc.c, ops_exit_code(&check) == 0, "fields missing or of the "
		  "wrong type (%s):\n%s", check.err, r.out);

	p = check.out;
	hx_assert(oc.c, sscanf(p, "%u %u %d\n%n", &size, &reloading, &pid,
			       &off) == 3 && off > 0, "bad summary: %s", p);
	hx_assert(oc.c, size == 2 && reloading == 0 && pid == oc.c->pid,
		  "want size 2, not reloading, pid %d: %s", (int)oc.c->pid, p);
	for (p += off;; p += off) {
		unsigned id, listeners, replacement;
		unsigned long handed;
		int wpid;
		char state[32];

		off = 0;
		if (sscanf(p, "%u %d %31s %u %u %lu\n%n", &id, &wpid, state,
			   &listeners, &replacement, &handed, &off) != 6 ||
		    off == 0)
			break;
		rows++;
		hx_assert(oc.c, id >= 1 && id <= 2 &&
			  wpid == hx_worker_pid(oc.c, (int)id) &&
			  strcmp(state, "listening") == 0 && listeners == 1 &&
			  replacement == 0, "bad worker in JSON: %.*s",
			  (int)(strchr(p, '\n') - p), p);
		handed_sum += (unsigned)handed;
	}
	hx_assert(oc.c, rows == 2, "want 2 workers in the JSON:\n%s", r.out);
	hx_assert(oc.c, handed_sum >= 4, "4 requests in rr, but the workers "
		  "were handed %u connections", handed_sum);
	ops_run_free(&r);
	ops_run_free(&tool);
	ops_run_free(&check);
}

/* ---- scale ---- */

Test(control, scale_up)
{
	struct ops_cluster oc;
	size_t mark;
	const struct hx_event *ev;

	ops_start(&oc, 2, NULL);
	mark = oc.c->n_events;
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "scale", "3", NULL },
		      "scale: 2 -> 3 workers\n");
	ev = hx_wait_event(oc.c, HX_LISTENING, 3, 0, mark, HX_START_MS);
	hx_assert(oc.c, ev != NULL, "no \"listening\" line for worker 3");
	expect_workers(&oc, 3);
}

Test(control, usage_errors)
{
	static const char *const bad[][4] = {
		{ "scale", "0" }, { "scale", "x" }, { "scale" },
		{ "scale", "-1" }, { "scale", "4097" }, { "scale", "2", "3" },
		{ "frobnicate" }, { "status", "extra" }, { "reload", "--json" },
		{ "--bogus", "status" }, { NULL },
	};
	struct ops_cluster oc;
	size_t mark;
	char buf[512];

	ops_start(&oc, 2, NULL);
	mark = oc.c->n_events;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_ctl_failure(oc.c, oc.sock, bad[i], 2);
	/* The server checks too (a client other than ctl). */
	hx_assert(oc.c, raw_request(oc.sock, "scale 0\n", 8, false, buf,
				    sizeof(buf)) > 0 &&
		  strncmp(buf, "usage: invalid worker count", 27) == 0,
		  "\"scale 0\" answered \"%s\"", buf);
	hx_assert(oc.c, raw_request(oc.sock, "bogus\n", 6, false, buf,
				    sizeof(buf)) > 0 &&
		  strncmp(buf, "usage: unknown request", 22) == 0,
		  "\"bogus\" answered \"%s\"", buf);
	expect_workers(&oc, 2);
	hx_assert(oc.c, hx_find_event(oc.c, HX_FORKED, 0, 0, mark) == NULL,
		  "a worker was forked after bad requests");
}

/* ---- reload ---- */

Test(control, reload_replaces_every_worker)
{
	struct ops_cluster oc;
	pid_t old1, old2, fresh[2];
	size_t mark, line_mark;

	ops_start(&oc, 2, NULL);
	old1 = hx_worker_pid(oc.c, 1);
	old2 = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "reload", NULL },
		      "reload started\n");
	fresh[0] = ops_wait_forked(oc.c, 1, old1, mark);
	fresh[1] = ops_wait_forked(oc.c, 2, old2, mark);
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", line_mark,
				      HX_START_MS) >= 0,
		  "no \"reload: done\" line within %d ms", HX_START_MS);
	expect_workers(&oc, 2);
	for (int i = 0; i < 6; i++)
		ops_query_from(oc.c, &oc.target, fresh, 2, "after the reload");
}

/*
 * Worker command for the reload tests: when DIR/gate (or DIR/gateID, for
 * worker ID alone) exists, it says so on
 * the FIFO DIR/ready and waits for a line on the FIFO DIR/go before it
 * execs the server: a reload's replacement that stays "not yet listening"
 * as long as the test wants.
 */
static const char gated_server[] =
	"if [ -e \"$0/gate\" ] || [ -e \"$0/gate$CLUSTER_WORKER_ID\" ]; "
	"then echo blocked > \"$0/ready\"; "
	"read x < \"$0/go\"; fi; exec \"$1\" --port \"$2\"";

/* cluster-run -n 2 over gated_server, with the FIFOs DIR/ready and DIR/go;
 * returns once both workers listen, with DIR/ready open for reading (open
 * before the writer comes: a reader without a writer does not block with
 * O_NONBLOCK, and poll() waits for the line) and the gate file `gate`
 * made. */
static int start_gated(struct ops_cluster *oc, const char *gate_name)
{
	const char *port = ops_prepare(oc);
	int ready, gate;

	cr_assert(mkfifo(ops_path("ready"), 0600) == 0 &&
		  mkfifo(ops_path("go"), 0600) == 0, "mkfifo: %s",
		  strerror(errno));
	oc->c = ops_start_args(oc->sock, (const char *[]){ "-n", "2", "--",
		"sh", "-c", gated_server, ops_dir(),
		hx_fixture("fx_blocking_accept"), port, NULL });
	hx_assert(oc->c, hx_wait_count(oc->c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	ready = open(ops_path("ready"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	gate = open(ops_path(gate_name), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(ready >= 0 && gate >= 0, "open: %s", strerror(errno));
	close(gate);
	return ready;
}

/* The replacement of worker id says it waits at its gate. */
static void wait_at_gate(struct hx_cluster *c, int ready, int id)
{
	struct pollfd pfd = { .fd = ready, .events = POLLIN };
	char buf[64];

	hx_assert(c, poll(&pfd, 1, HX_START_MS) == 1 &&
		  read(ready, buf, sizeof(buf)) > 0,
		  "the replacement of worker %d did not reach its gate", id);
}

Test(control, reload_during_reload_is_queued)
{
	struct ops_cluster oc;
	struct ops_row rows[8];
	struct ops_run r;
	pid_t old1, old2, r1;
	size_t mark, line_mark, n;
	long done;
	int ready, go;

	ready = start_gated(&oc, "gate");
	old1 = hx_worker_pid(oc.c, 1);
	old2 = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "reload", NULL },
		      "reload started\n");
	wait_at_gate(oc.c, ready, 1);
	r1 = ops_wait_forked(oc.c, 1, old1, mark);

	/* The replacement is listed, marked as such, beside the old ones. */
	n = ops_status(oc.c, oc.sock, rows, 8);
	hx_assert(oc.c, n == 3, "ctl status lists %zu workers during the "
		  "reload, want 3", n);
	for (size_t i = 0; i < n; i++)
		hx_assert(oc.c, rows[i].replacement == (rows[i].pid == r1) &&
			  (rows[i].pid == r1 || rows[i].pid == old1 ||
			   rows[i].pid == old2) &&
			  (rows[i].pid != r1 || rows[i].id == 1),
			  "ctl status row: id %u pid %d%s", rows[i].id,
			  (int)rows[i].pid,
			  rows[i].replacement ? " new (reload)" : "");
	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", "--json", NULL }, &r);
	hx_assert(oc.c, strstr(r.out, "\"reloading\": true") &&
		  strstr(r.out, "\"replacement\": true"),
		  "status --json during a reload:\n%s", r.out);
	ops_run_free(&r);

	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "reload", NULL },
		      "reload already running; one more pass queued\n");

	/* Let it go: no gate for the workers that follow. */
	cr_assert(unlink(ops_path("gate")) == 0, "unlink: %s", strerror(errno));
	go = open(ops_path("go"), O_RDWR | O_CLOEXEC);
	cr_assert(go >= 0 && write(go, "go\n", 3) == 3, "go: %s",
		  strerror(errno));
	hx_assert(oc.c, hx_wait_event(oc.c, HX_LISTENING, 1, old1, mark,
				      HX_START_MS) != NULL,
		  "the replacement of worker 1 did not listen");
	close(go);
	close(ready);

	done = ops_wait_line(oc.c, "reload: done", line_mark, HX_START_MS);
	hx_assert(oc.c, done >= 0, "the first pass did not end");
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", (size_t)done + 1,
				      HX_START_MS) >= 0,
		  "the queued second pass did not run to its end");
	expect_workers(&oc, 2);
	hx_assert(oc.c, hx_worker_pid(oc.c, 1) != r1 &&
		  hx_worker_pid(oc.c, 1) != old1 &&
		  hx_worker_pid(oc.c, 2) != old2,
		  "the second pass did not replace the workers again");
}

/* Scaled down while the reload's replacement for the removed slot waits at
 * its gate: the replacement goes too, and the reload still ends. */
Test(control, scale_down_during_reload_leaves_no_stray)
{
	struct ops_cluster oc;
	pid_t old1, old2, fresh1;
	size_t mark, line_mark;
	int ready, go;

	ready = start_gated(&oc, "gate2");
	old1 = hx_worker_pid(oc.c, 1);
	old2 = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "reload", NULL },
		      "reload started\n");
	/* slot 1 is replaced; slot 2's replacement waits at its gate */
	wait_at_gate(oc.c, ready, 2);
	close(ready);
	fresh1 = hx_worker_pid(oc.c, 1);
	hx_assert(oc.c, fresh1 != old1, "worker 1 was not replaced first");
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "scale", "1", NULL },
		      "scale: 2 -> 1 workers\n");
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", line_mark,
				      HX_START_MS) >= 0,
		  "the reload did not end after slot 2 was scaled away");
	/* a replacement let through now (had it lived) would take slot 2 */
	cr_assert(unlink(ops_path("gate2")) == 0);
	go = open(ops_path("go"), O_RDWR | O_CLOEXEC);
	cr_assert(go >= 0 && write(go, "go\n", 3) == 3);
	close(go);
	/* the old worker 2 drains (its census is taken off the loop), then
	 * goes: wait for it, not for a moment it happens to be gone by */
	{
		char gone[64];

		snprintf(gone, sizeof(gone), "worker 2 (pid %d) exited", (int)old2);
		hx_assert(oc.c, ops_wait_line(oc.c, gone, line_mark,
					      HX_START_MS) >= 0,
			  "the old worker 2 did not exit after the scale-down");
	}
	expect_workers(&oc, 1);
	hx_assert(oc.c, hx_find_event(oc.c, HX_LISTENING, 2, old2, mark) ==
		  NULL, "a worker 2 listened after the scale-down");
	for (int i = 0; i < 4; i++)
		ops_query_from(oc.c, &oc.target, &fresh1, 1, "after the scale");
}

/* ---- stop ---- */

Test(control, stop_ends_cluster_run)
{
	struct ops_cluster oc;
	struct stat st;
	int status;

	ops_start(&oc, 2, NULL);
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "stop", NULL },
		      "stopping every worker\n");
	status = hx_wait_exit(oc.c, HX_EXIT_MS);
	hx_assert(oc.c, status != -1, "cluster-run still runs %d ms after "
		  "ctl stop", HX_EXIT_MS);
	hx_assert(oc.c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "wait status 0x%x, want exit 0", status);
	hx_assert_workers_gone(oc.c);
	hx_assert(oc.c, lstat(oc.sock, &st) < 0 && errno == ENOENT,
		  "the socket %s is still there after the exit", oc.sock);
	/* Nobody answers there now. */
	expect_ctl_failure(NULL, oc.sock, (const char *[]){ "status", NULL }, 1);
}

/* ---- the socket file ---- */

Test(control, missing_socket)
{
	struct ops_run r;
	const char *path = ops_path("nothing.sock");

	expect_ctl_failure(NULL, path, (const char *[]){ "status", NULL }, 1);
	ops_ctl(NULL, path, (const char *[]){ "reload", NULL }, &r);
	cr_assert(strstr(r.err, path) != NULL, "the message does not name "
		  "the path: %s", r.err);
	ops_run_free(&r);
}

/* A socket file nobody listens on, as a cluster-run killed with SIGKILL
 * leaves behind. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		  "bind %s: %s", path, strerror(errno));
	close(fd);
}

Test(control, stale_socket_is_replaced)
{
	struct ops_cluster oc;

	make_stale_socket(ops_path("ctl.sock"));
	expect_ctl_failure(NULL, ops_path("ctl.sock"),
			   (const char *[]){ "status", NULL }, 1);
	ops_start(&oc, 1, NULL);
	hx_assert(oc.c, ops_count_lines(oc.c, "no control socket", 0) == 0,
		  "the stale socket was not replaced");
	expect_workers(&oc, 1);
}

Test(control, socket_mode_0600)
{
	struct ops_cluster oc;
	struct stat st;

	ops_start(&oc, 1, NULL);
	hx_assert(oc.c, lstat(oc.sock, &st) == 0, "lstat %s: %s", oc.sock,
		  strerror(errno));
	hx_assert(oc.c, S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600 &&
		  st.st_uid == geteuid(), "%s: mode 0%o uid %d, want a socket "
		  "of mode 0600 owned by uid %d", oc.sock,
		  (unsigned)(st.st_mode & 07777), (int)st.st_uid,
		  (int)geteuid());
}

Test(control, not_a_socket_is_kept)
{
	static const char text[] = "not a socket: keep me\n";
	const char *path = ops_path("ctl.sock");
	struct hx_cluster *c;
	struct stat st;
	char buf[64] = "";
	long line;
	FILE *f = fopen(path, "w");
	char port[16];

	cr_assert(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = ops_start_args(path, (const char *[]){ "-n", "1", "--",
		hx_fixture("fx_blocking_accept"), "--port", port, NULL });
	line = ops_wait_line(c, "not a socket", 0, HX_START_MS);
	hx_assert(c, line >= 0 && strncmp(c->err.lines[line], "cluster-run: ",
					  13) == 0 &&
		  strstr(c->err.lines[line], path),
		  "want one \"cluster-run: ... %s ... not a socket\" line",
		  path);
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) != -1,
		  "cluster-run did not stop");
	f = fopen(path, "r");
	cr_assert(f && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		  fgets(buf, sizeof(buf), f) && strcmp(buf, text) == 0,
		  "%s was changed or removed (\"%s\")", path, buf);
	fclose(f);
	hx_free(c);
}

/*
 * A second cluster-run, started with args (its own port appended after
 * "--port"), on the control socket sock of a running one: it exits 1 with
 * one line that names sock and says to pass --control, before it forks
 * any worker.
 */
static void expect_second_refused(struct hx_cluster *c2, const char *sock)
{
	long line = ops_wait_line(c2, "is in use by another cluster-run", 0,
				  HX_START_MS);
	int status;

	hx_assert(c2, line >= 0 && strncmp(c2->err.lines[line],
					   "cluster-run: ", 13) == 0 &&
		  strstr(c2->err.lines[line], sock) &&
		  strstr(c2->err.lines[line], "pass --control PATH"),
		  "want \"cluster-run: control socket %s is in use by another "
		  "cluster-run; pass --control PATH\"", sock);
	status = hx_wait_exit(c2, HX_EXIT_MS);
	hx_assert(c2, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 1, "the second cluster-run, without "
		  "its control socket, still runs after %d ms or did not exit "
		  "1 (wait status 0x%x)", HX_EXIT_MS, status);
	hx_assert(c2, hx_count(c2, HX_FORKED) == 0,
		  "the second cluster-run started workers");
	hx_free(c2);
}

/* The first one keeps its socket file and answers on it. */
static void expect_first_intact(struct ops_cluster *oc)
{
	struct stat st;

	hx_assert(oc->c, lstat(oc->sock, &st) == 0 && S_ISSOCK(st.st_mode),
		  "the first cluster-run's socket is gone");
	expect_workers(oc, 1);
}

Test(control, second_cluster_run_same_path_exits)
{
	struct ops_cluster oc;
	char port[16];

	ops_start(&oc, 1, NULL);
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	expect_second_refused(ops_start_args(oc.sock, (const char *[]){
		"-n", "1", "--", hx_fixture("fx_blocking_accept"), "--port",
		port, NULL }), oc.sock);
	expect_first_intact(&oc);
}

/* Two cluster-runs without --control: the second exits 1 instead of
 * serving without a control socket (where `ctl stop` would reach the
 * first). */
Test(control, second_cluster_run_default_path_exits)
{
	struct ops_cluster oc = { 0 };
	char ports[2][16];

	cr_assert(setenv("XDG_RUNTIME_DIR", ops_dir(), 1) == 0, "setenv");
	snprintf(oc.sock, sizeof(oc.sock), "%s", ops_path("cluster-run.sock"));
	for (int i = 0; i < 2; i++)
		snprintf(ports[i], sizeof(ports[i]), "%d",
			 hx_free_port(SOCK_STREAM));
	oc.c = hx_start(HX_SHARED_RUNTIME_DIR, (const char *[]){ "-n", "1",
		"--", hx_fixture("fx_blocking_accept"), "--port", ports[0],
		NULL });
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 1, HX_START_MS),
		  "want a \"listening\" line");
	hx_assert(oc.c, ops_wait_line(oc.c, oc.sock, 0, 0) >= 0,
		  "the first cluster-run does not announce %s", oc.sock);
	expect_second_refused(hx_start(HX_SHARED_RUNTIME_DIR, (const char *[]){
		"-n", "1", "--", hx_fixture("fx_blocking_accept"), "--port",
		ports[1], NULL }), oc.sock);
	expect_first_intact(&oc);
}

/* ---- peers ---- */

struct peer {
	const char *sock;
};

/* In a child: become uid 65534, connect, ask for status, print what
 * came.  Exit 0 (answered), 20 (connect failed: its errno printed). */
static int peer_as_nobody(void *arg)
{
	const struct peer *p = arg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[4096];
	int fd;
	long n;

	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return 10;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 11;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		printf("connect: %s\n", strerror(errno));
		return 20;
	}
	if (send(fd, "status\n", 7, MSG_NOSIGNAL) != 7)
		return 12;
	n = read_all(fd, buf, sizeof(buf), HX_QUERY_MS);
	if (n < 0)
		return 13;
	fputs(buf, stdout);
	return 0;
}

Test(control, other_uid_is_refused)
{
	struct ops_cluster oc;
	struct peer peer;
	struct ops_run r;
	size_t mark;

	cr_assert(geteuid() == 0, "this test runs as root (it becomes uid %d)",
		  NOBODY);
	ops_start(&oc, 2, NULL);
	peer.sock = oc.sock;
	/* The directory lets everyone through; the socket's mode stops uid
	 * 65534 at connect(). */
	cr_assert(chmod(ops_dir(), 0711) == 0, "chmod: %s", strerror(errno));
	ops_run_fn(peer_as_nobody, &peer, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 20 &&
		  strstr(r.out, strerror(EACCES)),
		  "uid %d at a 0600 socket: exit %d, \"%s\", want EACCES",
		  NOBODY, ops_exit_code(&r), r.out);
	ops_run_free(&r);

	/* With the mode loosened, SO_PEERCRED still refuses it. */
	cr_assert(chmod(oc.sock, 0666) == 0, "chmod: %s", strerror(errno));
	mark = oc.c->err.n_lines;
	ops_run_fn(peer_as_nobody, &peer, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0 &&
		  strncmp(r.out, "error: permission denied", 24) == 0 &&
		  !strstr(r.out, "listening"),
		  "uid %d: exit %d, answer \"%s\", want a refusal", NOBODY,
		  ops_exit_code(&r), r.out);
	ops_run_free(&r);
	hx_assert(oc.c, ops_wait_line(oc.c, "refused a client with uid 65534",
				      mark, HX_QUERY_MS) >= 0,
		  "cluster-run logged no refusal");
	/* Root still gets in; by its answer every line of the refusal is
	 * written. */
	expect_workers(&oc, 2);
	hx_assert(oc.c, ops_count_lines(oc.c, "refused", mark) == 1,
		  "want exactly one log line for the refused client");
}

/* ---- clients that misbehave ---- */

Test(control, misbehaving_clients)
{
	struct ops_cluster oc;
	char buf[8192], big[4096];
	int silent, partial;
	int64_t t0;
	long n;

	ops_start(&oc, 1, NULL);
	silent = raw_connect(oc.sock);
	partial = raw_connect(oc.sock);
	cr_assert(send(partial, "sta", 3, MSG_NOSIGNAL) == 3, "send");
	t0 = hx_now_ms();

	/* Neither holds the loop up. */
	expect_workers(&oc, 1);

	/* Too long a request: an error, and the connection closed. */
	memset(big, 'x', sizeof(big));
	n = raw_request(oc.sock, big, sizeof(big), false, buf, sizeof(buf));
	hx_assert(oc.c, n > 0 && strncmp(buf, "usage: request too long", 23) == 0,
		  "an overlong request answered \"%s\"", n >= 0 ? buf : "");
	/* A last line without '\n', ended by shutdown (printf | socat). */
	n = raw_request(oc.sock, "status", 6, true, buf, sizeof(buf));
	hx_assert(oc.c, n > 0 && strncmp(buf, "id ", 3) == 0,
		  "\"status\" then EOF answered \"%s\"", n >= 0 ? buf : "");

	/* The silent and the partial client are closed, unanswered, after
	 * the server's timeout. */
	n = read_all(silent, buf, sizeof(buf), SILENT_CLOSE_MS);
	hx_assert(oc.c, n == 0, "a silent client: %ld bytes (\"%s\") within "
		  "%d ms, want EOF and nothing", n, n > 0 ? buf : "",
		  SILENT_CLOSE_MS);
	n = read_all(partial, buf, sizeof(buf), SILENT_CLOSE_MS);
	hx_assert(oc.c, n == 0, "a client that sent half a line: %ld bytes "
		  "(\"%s\"), want EOF and nothing", n, n > 0 ? buf : "");
	cr_log_info("silent clients closed after %lld ms",
		    (long long)(hx_now_ms() - t0));
	close(silent);
	close(partial);
	expect_workers(&oc, 1);
}

/* ---- trouble is visible ---- */

/* Prints one "id pid state waiting restart_in_ms last_exit" line per
 * worker entry (null as -1 and "-"), after checking the types. */
static const char json_waiting[] =
	"import json, sys\n"
	"d = json.load(sys.stdin)\n"
	"for w in d['workers']:\n"
	"    assert type(w['waiting']) is bool, w\n"
	"    assert w['restart_in_ms'] is None or type(w['restart_in_ms']) is int, w\n"
	"    assert w['last_exit'] is None or type(w['last_exit']) is str, w\n"
	"    print(w['id'], w['pid'], w['state'], int(w['waiting']),\n"
	"          -1 if w['restart_in_ms'] is None else w['restart_in_ms'],\n"
	"          (w['last_exit'] or '-').replace(' ', '_'))\n";

/*
 * Slot 2 fails at once (exit 3) beside a healthy slot 1: no crash-loop
 * stop (a worker listens), and while slot 2 waits out its 5 s back-off
 * `ctl status` shows it, with when it restarts and how its worker ended.
 */
Test(control, status_shows_a_slot_waiting_to_restart)
{
	static const char script[] =
		"[ \"$CLUSTER_WORKER_ID\" = 2 ] && exit 3; "
		"exec \"$0\" --port \"$1\"";
	struct ops_cluster oc;
	struct ops_row rows[8];
	struct ops_run r, check;
	const char *port = ops_prepare(&oc);
	unsigned id, waiting;
	int pid;
	long long in_ms;
	char state[32], last[64];
	double in_s = -1;
	size_t n;

	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "2",
		"--restart-delay", "5000:10000", "--", "sh", "-c", script,
		hx_fixture("fx_blocking_accept"), port, NULL });
	hx_assert(oc.c, hx_wait_event(oc.c, HX_LISTENING, 1, 0, 0,
				      HX_START_MS) != NULL,
		  "worker 1 did not listen");
	hx_assert(oc.c, ops_wait_line(oc.c, "exited with code 3; restarting "
				      "it in 5.0 s (restart 1)", 0,
				      HX_START_MS) >= 0,
		  "no line saying worker 2 restarts in 5.0 s");

	n = ops_status(oc.c, oc.sock, rows, 8);
	hx_assert(oc.c, n == 2, "ctl status lists %zu rows, want 2 (slot 2 "
		  "too)", n);
	hx_assert(oc.c, rows[0].id == 1 && strcmp(rows[0].state,
						  "listening") == 0,
		  "row 1: worker %u \"%s\"", rows[0].id, rows[0].state);
	hx_assert(oc.c, rows[1].id == 2 && rows[1].pid == 0 &&
		  strcmp(rows[1].state, "restarting") == 0 &&
		  rows[1].restarts == 0 &&
		  sscanf(rows[1].note, "restarting in %lf s;", &in_s) == 1 &&
		  in_s > 0 && in_s <= 5.0 &&
		  strstr(rows[1].note, "; last: exited with code 3"),
		  "row 2: id %u pid %d \"%s\" restarts %u \"%s\"", rows[1].id,
		  (int)rows[1].pid, rows[1].state, rows[1].restarts,
		  rows[1].note);
	cr_log_info("slot 2: \"%s\"", rows[1].note);

	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", "--json", NULL }, &r);
	ops_run((const char *[]){ "python3", "-c", json_waiting, NULL }, r.out,
		&check);
	hx_assert(oc.c, ops_exit_code(&check) == 0, "bad JSON (%s):\n%s",
		  check.err, r.out);
	hx_assert(oc.c, sscanf(strchr(check.out, '\n') + 1, "%u %d %31s %u "
			       "%lld %63s", &id, &pid, state, &waiting, &in_ms,
			       last) == 6 && id == 2 && pid == 0 &&
		  strcmp(state, "restarting") == 0 && waiting == 1 &&
		  in_ms > 0 && in_ms <= 5000 &&
		  strcmp(last, "exited_with_code_3") == 0,
		  "slot 2 in the JSON:\n%s", r.out);
	ops_run_free(&r);
	ops_run_free(&check);
}

/* `ctl reload --wait` answers once the reload is done, and status keeps
 * how it ended. */
Test(control, reload_wait_returns_when_done)
{
	struct ops_cluster oc;
	char last[256];
	size_t line_mark;

	ops_start(&oc, 2, NULL);
	line_mark = oc.c->err.n_lines;
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "reload", "--wait",
		NULL }, "reload done: every worker replaced\n");
	/* cluster-run wrote its line before the answer */
	hx_pump(oc.c, 0);
	hx_assert(oc.c, ops_count_lines(oc.c, "reload: done", line_mark) == 1,
		  "ctl reload --wait returned before \"reload: done\"");
	expect_workers(&oc, 2);
	ops_status_reload(oc.c, oc.sock, NULL, 0, last);
	hx_assert(oc.c, strncmp(last, "last reload: done ", 18) == 0 &&
		  strstr(last, " ago"), "status: \"%s\", want \"last reload: "
		  "done Ns ago\"", last);
}

/* `ctl stop --wait` answers once every worker is gone, exit 0. */
Test(control, stop_wait_returns_when_gone)
{
	struct ops_cluster oc;
	int status;

	ops_start(&oc, 2, NULL);
	expect_ctl_ok(oc.c, oc.sock, (const char *[]){ "stop", "--wait", NULL },
		      "stopped: every worker is gone; cluster-run exits with "
		      "code 0\n");
	hx_assert_workers_gone(oc.c);
	status = hx_wait_exit(oc.c, HX_EXIT_MS);
	hx_assert(oc.c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "wait status 0x%x, want exit 0",
		  status);
}

/*
 * A stop that ends with exit code 1 (a crash loop: slot 2 always exits 3,
 * slot 1 never listens and ignores SIGTERM, so the stop waits out the
 * 5 s kill timeout): `ctl stop --wait` joins it and exits 1, saying so.
 */
Test(control, stop_wait_reports_a_failed_exit)
{
	static const char script[] =
		"[ \"$CLUSTER_WORKER_ID\" = 2 ] && exit 3; "
		"trap '' TERM; exec sleep 60";
	struct ops_cluster oc;
	struct ops_run r;
	const char *port = ops_prepare(&oc);
	int status;

	(void)port;
	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "2",
		"--restart-delay", "10:20", "--crash-limit", "3:60",
		"--kill-timeout", "5", "--", "sh", "-c", script, NULL });
	hx_assert(oc.c, ops_wait_line(oc.c, "workers keep failing to start", 0,
				      HX_START_MS) >= 0,
		  "no crash-loop stop");
	ops_ctl(oc.c, oc.sock, (const char *[]){ "stop", "--wait", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 1 && r.out[0] == '\0' &&
		  strcmp(r.err, "cluster-run: stopped: every worker is gone; "
			 "cluster-run exits with code 1\n") == 0,
		  "ctl stop --wait: exit %d, stdout \"%s\", stderr \"%s\"",
		  ops_exit_code(&r), r.out, r.err);
	ops_run_free(&r);
	status = hx_wait_exit(oc.c, HX_EXIT_MS);
	hx_assert(oc.c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 1, "wait status 0x%x, want exit 1",
		  status);
}
