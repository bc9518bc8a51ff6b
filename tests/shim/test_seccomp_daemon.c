/*
 * test_seccomp_daemon.c - servers that daemonize, in the seccomp mode
 * (supervisor/lib/seccomp_daemon.c): the worker's main process exits 0
 * once its child called setsid(), and the worker goes on as that daemon:
 *
 *   - busybox-static's httpd without -f under -n 3: every request answered
 *     by the three daemons (the CGI names its httpd's pid), no exit line,
 *     no restart, `ctl status` shows the daemons' pids; SIGTERM: cluster-run
 *     exits 0 and no daemon is left (a zombie is not alive);
 *   - a daemon killed with SIGKILL: the worker is restarted, and its new
 *     daemon answers; a reload: the new daemons answer, the old ones end;
 *     cluster-run killed with SIGKILL: its daemons end (daemon_guard.c);
 *   - a static fixture (fx_daemon_static: fx_daemon linked -static) that
 *     forks, double-forks, calls daemon() or binds first, under -n 2: the
 *     daemons answer, SIGTERM leaves none; one that exits with a child that
 *     never calls setsid() (a logger) is no daemon: it exits, is restarted.
 *
 * A kernel without seccomp user notification skips every test, saying so.
 */
#include "seccomp_support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REQUESTS 60
#define GONE_MS 5000
#define TAKEOVER_MS 2000 /* seccomp_daemon.c */

TestSuite(seccomp_daemon, .init = ss_skip_without_user_notification,
	  .fini = hx_cleanup, .timeout = 90);

/* ---- what cluster-run says, and what lives ---- */

/* The pids that "worker ID (pid P) daemonized: pid D is the worker now"
 * lines gave each worker id, the latest per id; how many ids have one. */
static int daemonized(const struct hx_cluster *c, pid_t *daemons, int max)
{
	int n = 0;

	for (int id = 0; id <= max; id++)
		daemons[id] = 0;
	for (size_t i = 0; i < c->err.n_lines; i++) {
		int id, was, pid;
		const char *l = strstr(c->err.lines[i], "cluster-run: worker ");

		if (l && sscanf(l, "cluster-run: worker %d (pid %d) daemonized: "
				"pid %d is the worker now", &id, &was,
				&pid) == 3 && id >= 1 && id <= max) {
			n += daemons[id] == 0;
			daemons[id] = pid;
		}
	}
	return n;
}

/* Waits until each of workers 1..n has daemonized. */
static void wait_daemonized(struct hx_cluster *c, pid_t *daemons, int n)
{
	int64_t deadline = hx_now_ms() + HX_START_MS;

	while (daemonized(c, daemons, n) < n && hx_now_ms() < deadline)
		hx_pump(c, 100);
	hx_assert(c, daemonized(c, daemons, n) == n,
		  "want a \"daemonized\" line for each of %d workers", n);
}

/* pid exists and is no zombie. */
static bool alive(pid_t pid)
{
	char path[64], buf[512], *end, state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (end = strrchr(buf, ')')))
		(void)sscanf(end + 1, " %c", &state);
	fclose(f);
	return state != 0 && state != 'Z' && state != 'X';
}

static void assert_gone(pid_t pid, const char *what)
{
	int64_t deadline = hx_now_ms() + GONE_MS;

	while (alive(pid) && hx_now_ms() < deadline)
		poll(NULL, 0, 10);
	cr_assert(!alive(pid), "%s (pid %d) outlived cluster-run", what,
		  (int)pid);
}

/* SIGTERM: exits 0, no worker left, none of the n daemons either. */
static void stop_all_gone(struct hx_cluster *c, const pid_t *daemons, int n)
{
	st_stop(c);
	for (int id = 1; id <= n; id++)
		assert_gone(daemons[id], "a daemon");
}

/* `cluster-run ctl --control SOCK status`'s output, into out. */
static void ctl_status(struct hx_cluster *c, char *out, size_t size)
{
	const char *texts[] = { "control socket ", NULL };
	const char *line = st_wait_err_line(c, texts, HX_START_MS);
	char sock[256];
	int fds[2], status = 0, err;
	int64_t deadline;
	pid_t pid;

	hx_assert(c, line && sscanf(strstr(line, "control socket ") + 15,
				    "%255s", sock) == 1,
		  "no \"control socket PATH\" line");
	cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execl(getenv("CLUSTER_RUN_BIN"), "cluster-run", "ctl",
		      "--control", sock, "status", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	err = hx_read_all(fds[0], out, size, HX_QUERY_MS);
	close(fds[0]);
	deadline = hx_now_ms() + HX_QUERY_MS;
	while (waitpid(pid, &status, WNOHANG) == 0 && hx_now_ms() < deadline)
		poll(NULL, 0, 10);
	hx_pump(c, 0);
	hx_assert(c, err == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "ctl status: %s, wait status 0x%x: %s", strerror(-err), status,
		  out);
}

/* The pid in worker id's row of ctl status ("ID PID STATE ..."), or 0. */
static pid_t status_row_pid(const char *status, int id)
{
	for (const char *l = status; l; l = strchr(l, '\n'), l = l ? l + 1 : l) {
		int row_id, pid;
		char state[32];

		if (sscanf(l, "%d %d %31s", &row_id, &pid, state) == 3 &&
		    row_id == id)
			return pid;
	}
	return 0;
}

/* ---- busybox httpd ---- */

/* busybox httpd (no -f: it daemonizes) under -n workers on port. */
static struct hx_cluster *start_httpd(int workers, int port)
{
	static char n[8], listen_on[32];
	const char *args[] = { "-n", n, "--intercept", "seccomp", "--",
			       "/bin/busybox", "httpd", "-p", listen_on, "-h",
			       NULL, NULL };
	struct hx_cluster *c;

	ss_skip_unless_busybox();
	args[10] = ss_make_www();
	snprintf(n, sizeof(n), "%d", workers);
	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, (size_t)workers,
				   HX_START_MS),
		  "want %d \"listening\" lines", workers);
	return c;
}

/* One GET /cgi-bin/who: the answer's worker id and daemon pid. */
static struct hx_answer get_who(struct hx_cluster *c, int port)
{
	return ss_http_get(c, port, "/cgi-bin/who");
}

/* REQUESTS, each answered by the daemon of its worker; served[id]. */
static void load_daemons(struct hx_cluster *c, int port, const pid_t *daemons,
			 int workers, int *served)
{
	for (int id = 0; id <= workers; id++)
		served[id] = 0;
	for (int i = 0; i < REQUESTS; i++) {
		struct hx_answer ans = get_who(c, port);

		hx_assert(c, ans.id >= 1 && ans.id <= workers &&
			  ans.pid == daemons[ans.id], "request %d answered by "
			  "\"%d %d\": not a daemon of cluster-run", i, ans.id,
			  (int)ans.pid);
		served[ans.id]++;
	}
}

Test(seccomp_daemon, busybox_httpd_daemons_serve_and_stop)
{
	int port = hx_free_port(SOCK_STREAM), served[4];
	pid_t daemons[4];
	char status[4096];
	struct hx_cluster *c = start_httpd(3, port);

	wait_daemonized(c, daemons, 3);
	for (int id = 1; id <= 3; id++)
		hx_assert(c, !hx_is_worker_pid(c, id, daemons[id]) &&
			  alive(daemons[id]), "worker %d's daemon %d", id,
			  (int)daemons[id]);
	load_daemons(c, port, daemons, 3, served);
	cr_log_info("daemons 1, 2, 3 served %d, %d, %d of %d", served[1],
		    served[2], served[3], REQUESTS);
	for (int id = 1; id <= 3; id++)
		hx_assert(c, served[id] > 0, "daemon %d served none of %d", id,
			  REQUESTS);
	ctl_status(c, status, sizeof(status));
	for (int id = 1; id <= 3; id++)
		hx_assert(c, status_row_pid(status, id) == daemons[id],
			  "ctl status: worker %d's row does not show its "
			  "daemon's pid %d:\n%s", id, (int)daemons[id], status);
	st_assert_steady(c, 3);
	ss_remove_www();
	stop_all_gone(c, daemons, 3);
}

Test(seccomp_daemon, busybox_httpd_killed_daemon_restarts_its_worker)
{
	int port = hx_free_port(SOCK_STREAM);
	pid_t daemons[3], old;
	const struct hx_event *ev;
	struct hx_cluster *c = start_httpd(2, port);
	int64_t deadline;
	size_t mark;

	wait_daemonized(c, daemons, 2);
	old = daemons[1];
	mark = c->n_events;
	cr_assert(kill(old, SIGKILL) == 0, "kill: %s", strerror(errno));
	ev = hx_wait_event(c, HX_KILLED, 1, 0, mark, HX_EXIT_MS);
	hx_assert(c, ev && ev->pid == old && ev->code == SIGKILL,
		  "no \"worker 1 (pid %d) killed by signal 9\" line", (int)old);
	hx_assert(c, hx_wait_event(c, HX_FORKED, 1, 0, mark, HX_START_MS),
		  "worker 1 was not restarted");
	deadline = hx_now_ms() + HX_START_MS;
	while ((daemonized(c, daemons, 2), daemons[1] == old) &&
	       hx_now_ms() < deadline)
		hx_pump(c, 100);
	hx_assert(c, daemons[1] != old, "the new worker 1 did not daemonize");
	/* the kernel deals the connections: worker 1's new daemon gets some */
	for (int i = 0; i < REQUESTS; i++) {
		struct hx_answer ans = get_who(c, port);

		hx_assert(c, ans.pid == daemons[ans.id] && ans.pid != old,
			  "answered by \"%d %d\"", ans.id, (int)ans.pid);
		if (ans.id == 1)
			break;
		hx_assert(c, i + 1 < REQUESTS, "worker 1's new daemon served "
			  "none of %d", REQUESTS);
	}
	ss_remove_www();
	stop_all_gone(c, daemons, 2);
}

Test(seccomp_daemon, busybox_httpd_reload_reaches_the_daemons)
{
	int port = hx_free_port(SOCK_STREAM), served[3];
	pid_t old[3], daemons[3];
	struct hx_cluster *c = start_httpd(2, port);
	int64_t deadline;

	wait_daemonized(c, old, 2);
	kill(c->pid, SIGHUP);
	deadline = hx_now_ms() + HX_START_MS;
	while ((daemonized(c, daemons, 2),
		daemons[1] == old[1] || daemons[2] == old[2]) &&
	       hx_now_ms() < deadline)
		hx_pump(c, 100);
	hx_assert(c, daemons[1] != old[1] && daemons[2] != old[2],
		  "the new workers did not daemonize");
	for (int id = 1; id <= 2; id++)
		assert_gone(old[id], "an old daemon after the reload");
	load_daemons(c, port, daemons, 2, served);
	hx_assert(c, served[1] > 0 && served[2] > 0, "new daemons served %d, "
		  "%d of %d: want both", served[1], served[2], REQUESTS);
	ss_remove_www();
	stop_all_gone(c, daemons, 2);
}

Test(seccomp_daemon, busybox_httpd_daemons_end_with_a_killed_cluster_run)
{
	int port = hx_free_port(SOCK_STREAM);
	pid_t daemons[3];
	struct hx_cluster *c = start_httpd(2, port);
	int status;

	wait_daemonized(c, daemons, 2);
	status = hx_stop(c, SIGKILL, HX_EXIT_MS);
	hx_assert(c, status != -1 && WIFSIGNALED(status),
		  "cluster-run did not die of SIGKILL (status 0x%x)", status);
	ss_remove_www();
	for (int id = 1; id <= 2; id++)
		assert_gone(daemons[id], "a daemon");
	hx_free(c);
}

/* ---- a static fixture, each way of daemonizing ---- */

static void static_case(const char *fixture, const char *mode)
{
	static char port[16];
	const char *args[] = { port, mode, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1" };
	pid_t daemons[3] = { 0 }, said[3];
	struct hx_cluster *c;
	int64_t deadline;
	int served[3] = { 0 };

	t.port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", t.port);
	c = st_start("reuseport", 2, fixture, args, 2, 2);
	for (size_t i = 0; i < c->out.n_lines; i++) {
		int id = 0, pid = 0;

		hx_assert(c, sscanf(c->out.lines[i], "daemon %d %d", &id,
				    &pid) == 2 && id >= 1 && id <= 2,
			  "line \"%s\"", c->out.lines[i]);
		daemons[id] = pid;
	}
	/* (a double fork says so twice: its first child, then the daemon) */
	deadline = hx_now_ms() + HX_START_MS;
	while ((daemonized(c, said, 2), said[1] != daemons[1] ||
		said[2] != daemons[2]) && hx_now_ms() < deadline)
		hx_pump(c, 100);
	hx_assert(c, said[1] == daemons[1] && said[2] == daemons[2],
		  "daemons %d, %d: cluster-run did not take them for the "
		  "workers", (int)daemons[1], (int)daemons[2]);
	for (int i = 0; i < REQUESTS; i++) {
		struct hx_answer ans;
		int err = hx_query(&t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);
		hx_assert(c, err == 0, "request %d: %s", i, strerror(-err));
		hx_assert(c, ans.id >= 1 && ans.id <= 2 &&
			  ans.pid == daemons[ans.id], "request %d answered "
			  "\"%d %d\": not a daemon of the cluster", i, ans.id,
			  (int)ans.pid);
		served[ans.id]++;
	}
	cr_log_info("%s %s: daemons 1, 2 served %d, %d", fixture, mode,
		    served[1], served[2]);
	st_assert_steady(c, 2);
	stop_all_gone(c, daemons, 2);
}

#define CASE(mode) \
	Test(seccomp_daemon, static_##mode) \
	{ \
		static_case("fx_daemon_static", #mode); \
	}

CASE(fork)
CASE(double)
CASE(daemon)
CASE(bindfirst)

/* A 32-bit daemon: its setsid() is the i386 one, notified as well. */
Test(seccomp_daemon, i386_static_double)
{
	ss_skip_unless_built("fx_daemon_i386_static", "the compiler cannot "
			     "link -m32: install gcc-multilib");
	static_case("fx_daemon_i386_static", "double");
}

Test(seccomp_daemon, static_live_child_that_never_takes_over_is_no_daemon)
{
	struct hx_target t;
	struct hx_cluster *c;
	pid_t first, none[2];

	c = st_logger_worker_restarts("reuseport", "fx_daemon_static",
				      TAKEOVER_MS + 3000, &t, &first);
	hx_assert(c, daemonized(c, none, 1) == 0, "a logger taken for a "
		  "daemon");
	st_stop(c);
}

/* ---- a session child's setsid() is no daemon's ---- */

static char keydir[64];

static void remove_keydir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/hostkey", keydir);
	unlink(path);
	rmdir(keydir);
}

/* dropbearkey -t ed25519 -f DIR/hostkey: its path. */
static const char *make_hostkey(void)
{
	static char path[128];
	int status = 0;
	pid_t pid;

	snprintf(keydir, sizeof(keydir), "/tmp/cr-seccomp-ssh.XXXXXX");
	cr_assert(mkdtemp(keydir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/hostkey", keydir);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp("dropbearkey", "dropbearkey", "-t", "ed25519", "-f", path,
		       (char *)NULL);
		_exit(127);
	}
	cr_assert(pid > 0 && waitpid(pid, &status, 0) == pid &&
		  WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "dropbearkey failed (status 0x%x)", status);
	return path;
}

/* An SSH connection that has read the server's identification line (from
 * the connection's child, which called setsid()); its fd. */
static int ssh_session(struct hx_cluster *c, int port)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	int fd = hx_connect(&t, HX_QUERY_MS), n = 0;
	int64_t deadline = hx_now_ms() + HX_QUERY_MS;
	char banner[256] = "";

	hx_assert(c, fd >= 0, "connect: %s", strerror(-fd));
	while (n < (int)sizeof(banner) - 1 && !memchr(banner, '\n', (size_t)n) &&
	       hx_now_ms() < deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		r = read(fd, banner + n, sizeof(banner) - 1 - (size_t)n);
		if (r <= 0)
			break;
		n += (int)r;
	}
	banner[n] = '\0';
	hx_assert(c, strncmp(banner, "SSH-2.0-", 8) == 0, "banner \"%s\"",
		  banner);
	return fd;
}

Test(seccomp_daemon, dropbear_session_child_is_no_daemon)
{
	int port = hx_free_port(SOCK_STREAM), held;
	static char listen_on[32];
	const char *args[] = { "-n", "2", "--intercept", "seccomp", "--",
			       "/usr/sbin/dropbear", "-F", "-E", "-p", listen_on,
			       "-r", NULL, NULL };
	pid_t none[3], workers[3];
	struct hx_cluster *c;

	if (access("/usr/sbin/dropbear", X_OK) != 0)
		ss_skip("/usr/sbin/dropbear missing (dropbear-bin)");
	args[11] = make_hostkey();
	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", port);
	c = hx_start(0, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	workers[1] = hx_worker_pid(c, 1);
	workers[2] = hx_worker_pid(c, 2);
	for (int i = 0; i < 10; i++)
		close(ssh_session(c, port));
	held = ssh_session(c, port);
	hx_pump(c, 200); /* room for a line that must not come */
	hx_assert(c, daemonized(c, none, 2) == 0, "a session child taken for "
		  "the worker's daemon");
	st_assert_steady(c, 2);
	remove_keydir();
	st_stop(c);
	close(held);
	for (int id = 1; id <= 2; id++)
		assert_gone(workers[id], "a worker");
}
