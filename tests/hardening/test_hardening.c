/*
 * test_hardening.c - a hostile worker beside a normal one.  `cluster-run
 * -n 2 -- hostile ...`: worker 1 execs fx_blocking_accept and serves;
 * worker 2 writes raw messages on its channel (see hostile.c).  For every
 * protocol violation cluster-run logs one line and kills worker 2, leaks no
 * fd and keeps worker 1 serving (and /metrics counts it); odd but legal
 * requests, reply sockets nobody reads and floods are answered without
 * killing anyone, and without ever blocking cluster-run.
 */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define VIOLATION "broke the channel protocol ("
#define ODD "(the first odd request of this worker"

static char state_dir[64];
static char state_file[128];

static void hardening_init(void)
{
	snprintf(state_dir, sizeof(state_dir), "/tmp/cr-hostile.XXXXXX");
	cr_assert(mkdtemp(state_dir) != NULL, "mkdtemp");
	snprintf(state_file, sizeof(state_file), "%s/generations", state_dir);
}

static void hardening_fini(void)
{
	hx_cleanup();
	unlink(state_file);
	rmdir(state_dir);
}

TestSuite(hardening, .init = hardening_init, .fini = hardening_fini,
	  .timeout = 150);

static int port;

/* cluster-run -n 2 [EXTRA...] -- hostile STATEFILE MODES --port PORT,
 * on the port picked last (pick_port). */
static struct hx_cluster *start_hostile_with(const char *modes,
					     const char *const *extra)
{
	const char *bin = getenv("HOSTILE_BIN");
	static char portbuf[16];
	const char *args[32] = {
		"-n", "2", "--sched", "rr",
		"--restart-delay", "400:400", "--crash-limit", "1000:60",
		/* hostile is static: auto would run it in the seccomp mode,
		 * without the shim that the worker it execs needs */
		"--intercept", "shim",
	};
	size_t n = 10;

	cr_assert(bin != NULL, "HOSTILE_BIN is not set (run through meson test)");
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	while (extra && *extra && n < 20)
		args[n++] = *extra++;
	args[n++] = "--";
	args[n++] = bin;
	args[n++] = state_file;
	args[n++] = modes;
	args[n++] = "--port";
	args[n++] = portbuf;
	args[n] = NULL;
	return hx_start(HX_CAPTURE_STDOUT, args);
}

static void pick_port(void)
{
	port = hx_free_port(SOCK_STREAM);
}

static struct hx_cluster *start_hostile(const char *modes)
{
	pick_port();
	return start_hostile_with(modes, NULL);
}

/* Open fds of cluster-run now. */
static int fd_count(struct hx_cluster *c)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)c->pid);
	d = opendir(path);
	hx_assert(c, d != NULL, "opendir %s", path);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* stderr lines that contain both a and b. */
static int lines_with(const struct hx_cluster *c, const char *a, const char *b)
{
	int n = 0;

	for (size_t i = 0; i < c->err.n_lines; i++)
		n += strstr(c->err.lines[i], a) && (!b || strstr(c->err.lines[i], b));
	return n;
}

static bool stdout_has(const struct hx_cluster *c, const char *text)
{
	for (size_t i = 0; i < c->out.n_lines; i++)
		if (strstr(c->out.lines[i], text))
			return true;
	return false;
}

static void wait_stdout(struct hx_cluster *c, const char *text, int ms)
{
	int64_t deadline = hx_now_ms() + ms;

	while (!stdout_has(c, text) && hx_now_ms() < deadline)
		hx_pump(c, 50);
	hx_assert(c, stdout_has(c, text), "no \"%s\" on stdout", text);
}

/* Worker 1 answers n requests. */
static void worker_one_serves(struct hx_cluster *c, int n)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1", .port = port };
	struct hx_load load = { .targets = &t, .n_targets = 1, .requests = n,
				.workers = 1 };
	struct hx_tally tally;

	hx_run_load(c, &load, &tally);
	hx_assert(c, tally.served[1] == n, "worker 1 served %d of %d",
		  tally.served[1], n);
}

static void wait_worker_one(struct hx_cluster *c)
{
	hx_assert(c, hx_wait_event(c, HX_LISTENING, 1, 0, 0, HX_START_MS),
		  "worker 1 never listened");
}

static void stop_cleanly(struct hx_cluster *c)
{
	int status = hx_stop(c, SIGTERM, HX_EXIT_MS);

	hx_assert(c, status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "cluster-run did not exit 0 on SIGTERM (status %#x)", status);
	hx_assert_workers_gone(c);
}

static const struct {
	const char *mode;
	const char *why;
} violations[] = {
	{ "short", "a message of 3 bytes, shorter than a header" },
	{ "empty", "a message of 0 bytes, shorter than a header" },
	{ "oversized", "a message of 2048 bytes with 0 fds, larger than any message" },
	{ "version", "protocol version 2, not 1" },
	{ "type", "unknown message type 42" },
	{ "length", "HELLO of 16 bytes, header says 20, want 16" },
	{ "fds", "HELLO with 2 fds attached" },
	{ "manyfds", "more fds attached than any message carries" },
	{ "reply", "REPLY, which only the supervisor sends" },
	{ "newconn", "NEWCONN, which only the supervisor sends" },
	{ "listen-unissued", "LISTEN for handle 2147483647, which was never issued" },
	{ "close-unissued", "CLOSE of handle 2147483647, which was never issued" },
	{ "query-bad", "QUERY_SERVER for domain 17" },
	{ "unlink-unterminated", "UNLINK_PATH without a terminated path" },
};
#define NV (sizeof(violations) / sizeof(violations[0]))

/*
 * Every violation, twice over: each process of worker 2 plays one, gets one
 * line and SIGKILL; cluster-run holds as many fds after the second round
 * as after the first, and worker 1 serves throughout.
 */
Test(hardening, violations_kill_the_worker_and_leak_nothing)
{
	char modes[1024] = "";
	int fds[2 * NV];
	size_t from = 0;
	struct hx_cluster *c;

	for (size_t r = 0; r < 2; r++)
		for (size_t i = 0; i < NV; i++) {
			strcat(modes, violations[i].mode);
			strcat(modes, ",");
		}
	c = start_hostile(modes);
	wait_worker_one(c);
	for (size_t g = 0; g < 2 * NV; g++) {
		const char *why = violations[g % NV].why;
		const struct hx_event *ev;
		char who[64];
		pid_t pid;

		ev = hx_wait_event(c, HX_FORKED, 2, 0, from, HX_START_MS);
		hx_assert(c, ev, "no process %zu of worker 2", g + 1);
		pid = ev->pid;
		from = (size_t)(ev - c->events) + 1;
		ev = hx_wait_event(c, HX_KILLED, 2, 0, from, HX_START_MS);
		hx_assert(c, ev && ev->pid == pid && ev->code == SIGKILL,
			  "worker 2 (pid %d, mode %s) was not killed",
			  (int)pid, violations[g % NV].mode);
		fds[g] = fd_count(c);   /* before the next one is forked */
		from = (size_t)(ev - c->events) + 1;
		snprintf(who, sizeof(who), "worker 2 (pid %d) ", (int)pid);
		hx_assert(c, lines_with(c, who, VIOLATION) == 1,
			  "%d violation lines for %s", lines_with(c, who, VIOLATION),
			  who);
		hx_assert(c, lines_with(c, who, why) == 1,
			  "no line for %s saying \"%s\"", who, why);
		if (g % 4 == 0)
			worker_one_serves(c, 3);
	}
	for (size_t i = 0; i < NV; i++)
		hx_assert(c, fds[NV + i] <= fds[i],
			  "cluster-run held %d fds after %s in round 2, %d in "
			  "round 1", fds[NV + i], violations[i].mode, fds[i]);
	hx_assert(c, hx_count(c, HX_FORKED) == 2 * NV + 1 ||
		  hx_count(c, HX_FORKED) == 2 * NV + 2,
		  "worker 1 was restarted");
	worker_one_serves(c, 20);
	stop_cleanly(c);
}

/* The value of a sample line "NAME VALUE" in a /metrics answer, or -1. */
static long metric_value(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = text; (p = strstr(p, name)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtol(p + n + 1, NULL, 10);
	return -1;
}

/* --metrics counts the violations the lines report. */
Test(hardening, violations_counted_in_metrics)
{
	static char mport[16];
	const char *extra[] = { "--metrics", mport, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1" };
	char answer[16384];
	int64_t deadline;
	struct hx_cluster *c;

	pick_port();
	t.port = hx_free_port(SOCK_STREAM);
	snprintf(mport, sizeof(mport), "%d", t.port);
	c = start_hostile_with("short,type,pause", extra);
	wait_worker_one(c);
	deadline = hx_now_ms() + HX_START_MS;
	while (lines_with(c, VIOLATION, NULL) < 2 && hx_now_ms() < deadline)
		hx_pump(c, 50);
	hx_assert(c, lines_with(c, VIOLATION, NULL) == 2, "want 2 violation "
		  "lines");
	hx_assert(c, hx_exchange(&t, "GET /metrics HTTP/1.0\r\n\r\n", answer,
				 sizeof(answer), HX_QUERY_MS) == 0,
		  "no answer from /metrics");
	hx_assert(c, metric_value(answer, "cluster_run_protocol_violations_total")
		  == 2, "2 violation lines, but /metrics says:\n%s", answer);
	stop_cleanly(c);
}

/* A second LISTEN, CLOSE twice, LISTEN after CLOSE: what forked processes
 * of a real worker may send.  Answered (EINVAL, ignored, EBADF), one line,
 * nobody killed. */
Test(hardening, odd_requests_are_answered_not_punished)
{
	struct hx_cluster *c = start_hostile("odd");

	wait_worker_one(c);
	wait_stdout(c, "hostile: odd: ok", HX_START_MS);
	hx_assert(c, !stdout_has(c, "FAIL"), "the hostile worker saw a wrong answer");
	hx_pump(c, 300);
	hx_assert(c, lines_with(c, "worker 2 (pid", ODD) == 1,
		  "want one line for the odd requests");
	hx_assert(c, lines_with(c, "listens already; answered EINVAL", NULL) == 1,
		  "the line does not name the second LISTEN");
	hx_assert(c, lines_with(c, VIOLATION, NULL) == 0, "a worker was punished");
	hx_assert(c, hx_count(c, HX_KILLED) + hx_count(c, HX_EXITED) == 0,
		  "a worker exited");
	worker_one_serves(c, 20);
	stop_cleanly(c);
}

/* Requests whose reply sockets are full and never read: cluster-run never
 * blocks on them (worker 1 keeps being served through it, in rr). */
Test(hardening, a_deaf_worker_never_blocks_cluster_run)
{
	struct hx_cluster *c = start_hostile("deaf");

	wait_worker_one(c);
	wait_stdout(c, "hostile: deaf: sent", HX_START_MS);
	worker_one_serves(c, 100);
	hx_assert(c, lines_with(c, VIOLATION, NULL) == 0, "a worker was punished");
	hx_assert(c, hx_count(c, HX_KILLED) + hx_count(c, HX_EXITED) == 0,
		  "a worker exited");
	stop_cleanly(c);
}

/* A socket that would make close() wait out its SO_LINGER when the
 * supervisor lets go of it: cluster-run must not wait (worker 1 is served
 * through it, in rr, meanwhile). */
Test(hardening, a_lingering_socket_never_blocks_cluster_run)
{
	struct hx_cluster *c = start_hostile("linger");
	int64_t t0;

	wait_worker_one(c);
	wait_stdout(c, "hostile: linger: sent", HX_START_MS);
	t0 = hx_now_ms();
	worker_one_serves(c, 20);
	hx_assert(c, hx_now_ms() - t0 < 5000, "20 requests took %lld ms",
		  (long long)(hx_now_ms() - t0));
	hx_assert(c, lines_with(c, VIOLATION, NULL) == 0, "a worker was punished");
	stop_cleanly(c);
}

/* HELLOs for 2 s and 1100 port-0 queries: worker 1 is served meanwhile,
 * the 1025th handle is refused, and once the flooder is gone cluster-run
 * holds no more fds than before it started. */
Test(hardening, a_flood_is_bounded_and_left_behind)
{
	struct hx_cluster *c = start_hostile("flood");
	const struct hx_event *ev;
	int before, during, after;
	pid_t pid;

	wait_worker_one(c);
	ev = hx_wait_event(c, HX_ONLINE, 2, 0, 0, HX_START_MS);
	hx_assert(c, ev, "worker 2 never checked in");
	pid = ev->pid;
	before = fd_count(c);
	kill(pid, SIGUSR1);
	worker_one_serves(c, 100);
	wait_stdout(c, "hostile: flood: done", 60000);
	hx_assert(c, stdout_has(c, "1100 queries, 76 refused (ENOBUFS), 0 other"),
		  "want 1024 handles granted and 76 refused");
	hx_assert(c, lines_with(c, "holds 1024 handles and asked for one more", ODD) == 1,
		  "want one line for the refused handles");
	during = fd_count(c);
	hx_assert(c, during <= before + 1024 + 4, "%d fds during the flood, "
		  "%d before", during, before);
	worker_one_serves(c, 20);
	kill(pid, SIGKILL);
	ev = hx_wait_event(c, HX_KILLED, 2, 0, 0, HX_START_MS);
	hx_assert(c, ev && ev->pid == pid, "the flooder did not die");
	ev = hx_wait_event(c, HX_ONLINE, 2, pid, 0, HX_START_MS);
	hx_assert(c, ev, "worker 2 was not replaced");
	after = fd_count(c);
	hx_assert(c, after <= before, "cluster-run holds %d fds after the "
		  "flood, %d before", after, before);
	hx_assert(c, lines_with(c, VIOLATION, NULL) == 0, "a worker was punished");
	worker_one_serves(c, 20);
	stop_cleanly(c);
}

/* With --uid, the supervisor removes a socket path for a worker only if it
 * is among the --listen addresses: its rights are not the worker's. */
Test(hardening, with_uid_unlink_is_limited_to_declared_paths)
{
	char victim_dir[32] = "/tmp/cr-victim.XXXXXX", victim[64];
	char listen_arg[64], env_arg[160], line[256];
	const char *extra[] = { "--uid", "65534", "--gid", "65534",
				"--listen", listen_arg, "--env", env_arg, NULL };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct hx_cluster *c;
	struct stat st;
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to switch users");
	cr_assert(mkdtemp(victim_dir) != NULL, "mkdtemp");
	snprintf(victim, sizeof(victim), "%s/v.sock", victim_dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", victim);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		  "bind %s", victim);
	close(fd); /* the socket file stays: a root-only directory's */
	chmod(state_dir, 0777); /* the workers write their generations */
	snprintf(env_arg, sizeof(env_arg), "HOSTILE_VICTIM=%s", victim);
	pick_port();
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
	c = start_hostile_with("unlink", extra);
	wait_worker_one(c);
	wait_stdout(c, "hostile: unlink: answered", HX_START_MS);
	hx_assert(c, stdout_has(c, "hostile: unlink: answered 13"),
		  "want EACCES for an undeclared path");
	hx_assert(c, lstat(victim, &st) == 0, "%s was removed", victim);
	snprintf(line, sizeof(line), "asked to remove %s, which is not among "
		 "the --listen addresses; refused (EACCES)", victim);
	hx_assert(c, lines_with(c, "worker 2 (pid", line) == 1,
		  "want one line for the refused unlink");
	worker_one_serves(c, 5);
	stop_cleanly(c);
	unlink(victim);
	rmdir(victim_dir);
}
