/*
 * test_systemd.c - cluster-run under systemd, without systemd: the test
 * plays the service manager.
 *
 * notify: the test binds a datagram socket, starts cluster-run with
 * NOTIFY_SOCKET naming it, and reads what cluster-run says: READY=1 (with
 * MAINPID) once every worker listens, RELOADING=1 then READY=1 around a
 * SIGHUP reload (done or stopped), STOPPING=1 at SIGTERM; and, with each
 * of them and alone on each change, a STATUS= that says how the cluster is
 * ("2/2 workers listening; reload done just now; 1 restart").
 *
 * listen_fds: the test makes a listening socket and hands it over the way
 * systemd does (sd_activate: fd 3, LISTEN_FDS=1, LISTEN_PID = the pid that
 * execs cluster-run); the workers' bind of that address gets that very
 * socket, which keeps serving after the test closes its copy.
 *
 * Neither NOTIFY_SOCKET nor LISTEN_* reaches the workers' environment.
 */
#include "ops.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
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

TestSuite(notify, .fini = ops_fini, .timeout = 60);
TestSuite(listen_fds, .fini = ops_fini, .timeout = 60);

#define MAX_ARGS 24

/* ---- helpers ---- */

/* A datagram socket bound at path, or in the abstract namespace for
 * "@name", as systemd's notify socket. */
static int notify_socket(const char *where)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(where);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	cr_assert(len < sizeof(sun.sun_path), "path too long: %s", where);
	memcpy(sun.sun_path, where, len);
	if (where[0] == '@')
		sun.sun_path[0] = '\0';
	cr_assert(bind(fd, (struct sockaddr *)&sun,
		       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len))
		  == 0, "bind %s: %s", where, strerror(errno));
	return fd;
}

/* The next datagram on fd within timeout_ms, as text in buf; false when
 * none came.  cluster-run's output is read meanwhile. */
static bool next_notify(struct hx_cluster *c, int fd, char *buf, size_t cap,
			int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd[3] = { { .fd = fd, .events = POLLIN } };
		nfds_t n = 1;
		int64_t left = deadline - hx_now_ms();
		ssize_t got = recv(fd, buf, cap - 1, MSG_DONTWAIT);

		if (got >= 0) {
			buf[got] = '\0';
			hx_pump(c, 0); /* lines written before it was sent */
			return true;
		}
		if (left <= 0)
			return false;
		if (c->err.fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = c->err.fd, .events = POLLIN };
		if (poll(pfd, n, (int)left) > 0 && n > 1 && pfd[1].revents)
			hx_pump(c, 0);
	}
}

/* Whether the notification holds exactly this line. */
static bool has_line(const char *msg, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = msg; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return true;
	return false;
}

static bool has_prefix_line(const char *msg, const char *prefix)
{
	size_t len = strlen(prefix);

	for (const char *p = msg; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, len) == 0)
			return true;
	return false;
}

/* A STATUS= update alone: sent on every change, between the others. */
static bool status_only(const char *msg)
{
	return strncmp(msg, "STATUS=", 7) == 0 && !strchr(msg, '\n');
}

/* The next notification that is more than a STATUS= update has line. */
static void expect_notify(struct hx_cluster *c, int fd, const char *line,
			  char *msg, size_t cap)
{
	do {
		hx_assert(c, next_notify(c, fd, msg, cap, HX_START_MS),
			  "no notification within %d ms (waiting for %s)",
			  HX_START_MS, line);
		cr_log_info("notify: %s", msg);
	} while (status_only(msg));
	hx_assert(c, has_line(msg, line), "want %s, got \"%s\"", line, msg);
}

/* Notifications until one says STATUS=want (a status line exactly). */
static void expect_status(struct hx_cluster *c, int fd, const char *want)
{
	char msg[1024], line[256];

	snprintf(line, sizeof(line), "STATUS=%s", want);
	do {
		hx_assert(c, next_notify(c, fd, msg, sizeof(msg), HX_START_MS),
			  "no \"%s\" within %d ms", line, HX_START_MS);
		cr_log_info("notify: %s", msg);
	} while (!has_line(msg, line));
}

/* Whether pid's environment has a variable NAME. */
static bool env_has(pid_t pid, const char *name)
{
	char path[64], buf[1 << 15];
	size_t len, nlen = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = fopen(path, "r");
	cr_assert(f != NULL, "open %s: %s", path, strerror(errno));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		if (strncmp(buf + i, name, nlen) == 0 && buf[i + nlen] == '=')
			return true;
	return false;
}

/* Whether pid holds an fd on the socket with inode ino. */
static bool holds_inode(pid_t pid, ino_t ino)
{
	char dir[64], path[PATH_MAX], link[64], want[64];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)ino);
	d = opendir(dir);
	cr_assert(d != NULL, "opendir %s: %s", dir, strerror(errno));
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	return found;
}

/* Whether pid holds ino within HX_START_MS: a worker installs the socket
 * just after the supervisor says it listens.  The pause between looks is a
 * wait for cluster-run's output. */
static bool comes_to_hold(struct hx_cluster *c, pid_t pid, ino_t ino)
{
	int64_t deadline = hx_now_ms() + HX_START_MS;

	while (!holds_inode(pid, ino))
		if (hx_now_ms() >= deadline || !(hx_pump(c, 10), true))
			return false;
	return true;
}

static struct hx_cluster *start_notified(const char *notify,
					 const char *const *args)
{
	struct hx_cluster *c;

	cr_assert(setenv("NOTIFY_SOCKET", notify, 1) == 0, "setenv");
	c = ops_start_args(ops_path("ctl.sock"), args);
	unsetenv("NOTIFY_SOCKET");
	return c;
}

static void assert_no_systemd_env(struct hx_cluster *c, int workers)
{
	static const char *const names[] = { "NOTIFY_SOCKET", "LISTEN_FDS",
					     "LISTEN_PID", "LISTEN_FDNAMES" };

	for (int id = 1; id <= workers; id++)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			hx_assert(c, !env_has(hx_worker_pid(c, id), names[i]),
				  "worker %d has %s in its environment", id,
				  names[i]);
}

/* cluster-run -n WORKERS of fx_blocking_accept on a free port, told to
 * notify at notify. */
static struct hx_cluster *start_blocking(const char *notify,
					 const char *workers)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	return start_notified(notify, (const char *[]){
		"-n", workers, "--", hx_fixture("fx_blocking_accept"), "--port",
		port, NULL });
}

/* ---- notify ---- */

Test(notify, ready_reload_stop)
{
	char msg[1024], want[64];
	int fd = notify_socket(ops_path("notify.sock"));
	struct hx_cluster *c;
	pid_t old[2];
	long line;

	c = start_blocking(ops_path("notify.sock"), "2");

	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, hx_count(c, HX_LISTENING) == 2, "READY=1 came with %zu "
		  "\"listening\" lines written, want 2", hx_count(c, HX_LISTENING));
	snprintf(want, sizeof(want), "MAINPID=%d", (int)c->pid);
	hx_assert(c, has_line(msg, want), "want %s with the first READY=1, "
		  "got \"%s\"", want, msg);
	hx_assert(c, has_prefix_line(msg, "STATUS="), "no STATUS= in \"%s\"",
		  msg);
	assert_no_systemd_env(c, 2);
	old[0] = hx_worker_pid(c, 1);
	old[1] = hx_worker_pid(c, 2);

	cr_assert(kill(c->pid, SIGHUP) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "RELOADING=1", msg, sizeof(msg));
	hx_assert(c, has_prefix_line(msg, "MONOTONIC_USEC="),
		  "no MONOTONIC_USEC= with RELOADING=1: \"%s\"", msg);
	line = ops_wait_line(c, "reload: replacing", 0, 0);
	hx_assert(c, line >= 0, "RELOADING=1 before the reload started");
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, ops_wait_line(c, "reload: done", (size_t)line, 0) >= 0,
		  "READY=1 before \"reload: done\"");
	hx_assert(c, hx_worker_pid(c, 1) != old[0] &&
		  hx_worker_pid(c, 2) != old[1], "the workers were not replaced");

	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "STOPPING=1", msg, sizeof(msg));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0,
		  "cluster-run did not exit 0 after SIGTERM");
	hx_assert(c, !next_notify(c, fd, msg, sizeof(msg), 0),
		  "a notification after STOPPING=1: \"%s\"", msg);
	close(fd);
}

/* STATUS= counts the connections that wait for a worker: with the only
 * worker stopped, three clients are "3 queued" (held by cluster-run in
 * rr), and "0 queued" once it serves them again. */
Test(notify, status_counts_what_waits)
{
	char msg[1024], port[16];
	int fd = notify_socket(ops_path("notify.sock"));
	int clients[3], p = hx_free_port(SOCK_STREAM), i;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)p) };
	struct hx_cluster *c;
	pid_t worker;

	snprintf(port, sizeof(port), "%d", p);
	c = start_notified(ops_path("notify.sock"), (const char *[]){
		"-n", "1", "--", hx_fixture("fx_blocking_accept"), "--port",
		port, NULL });
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	worker = hx_worker_pid(c, 1);
	cr_assert(kill(worker, SIGSTOP) == 0, "kill: %s", strerror(errno));
	/* stopped before the first client: none is taken from its queue */
	hx_assert(c, hx_wait_stopped(worker, HX_START_MS),
		  "worker %d did not stop", (int)worker);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < 3; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(clients[i] >= 0 &&
			  connect(clients[i], (struct sockaddr *)&sin,
				  sizeof(sin)) == 0,
			  "connect: %s", strerror(errno));
	}
	expect_status(c, fd, "1/1 worker listening; 3 queued");
	cr_assert(kill(worker, SIGCONT) == 0, "kill: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		close(clients[i]);
	expect_status(c, fd, "1/1 worker listening; 0 queued");
	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0, "exit status");
	close(fd);
}

/* STATUS= follows the cluster: at READY=1, as a worker dies and is
 * replaced, around a reload, as one more worker is asked for. */
Test(notify, status_says_how_the_cluster_is)
{
	char msg[1024];
	int fd = notify_socket(ops_path("notify.sock"));
	struct hx_cluster *c;
	pid_t victim;

	c = start_blocking(ops_path("notify.sock"), "2");
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, has_line(msg, "STATUS=2/2 workers listening; 0 queued"),
		  "READY=1 with \"%s\"", msg);

	victim = hx_worker_pid(c, 1);
	cr_assert(kill(victim, SIGKILL) == 0, "kill: %s", strerror(errno));
	expect_status(c, fd, "1/2 workers listening; 0 queued");
	expect_status(c, fd, "2/2 workers listening; 0 queued; 1 restart");

	cr_assert(kill(c->pid, SIGHUP) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "RELOADING=1", msg, sizeof(msg));
	hx_assert(c, has_line(msg, "STATUS=2/2 workers listening; 0 queued; reloading; "
			      "1 restart"), "RELOADING=1 with \"%s\"", msg);
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, has_line(msg, "STATUS=2/2 workers listening; 0 queued; "
			      "reload done just now; 1 restart"), "READY=1 with \"%s\"", msg);

	cr_assert(kill(c->pid, SIGTTIN) == 0, "kill: %s", strerror(errno));
	expect_status(c, fd, "2/3 workers listening; 0 queued; reload done just now; "
		      "1 restart");
	expect_status(c, fd, "3/3 workers listening; 0 queued; reload done just now; "
		      "1 restart");

	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "STOPPING=1", msg, sizeof(msg));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0, "exit status");
	hx_assert(c, !next_notify(c, fd, msg, sizeof(msg), 0),
		  "a notification after STOPPING=1: \"%s\"", msg);
	close(fd);
}

/* The workers exec the server while DIR/marker exists, else exit 1: with
 * the marker gone, the reload stops, and READY=1 says so. */
Test(notify, stopped_reload_is_ready_again)
{
	static const char script[] =
		"[ -e \"$0\" ] || exit 1; exec \"$1\" --port \"$2\"";
	const char *marker = ops_path("marker");
	int fd = notify_socket(ops_path("notify.sock"));
	char port[16], msg[1024];
	struct hx_cluster *c;
	FILE *f = fopen(marker, "w");

	cr_assert(f != NULL, "create %s: %s", marker, strerror(errno));
	fclose(f);
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = start_notified(ops_path("notify.sock"), (const char *[]){
		"-n", "2", "--", "sh", "-c", script, marker,
		hx_fixture("fx_blocking_accept"), port, NULL });
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));

	cr_assert(unlink(marker) == 0, "unlink: %s", strerror(errno));
	cr_assert(kill(c->pid, SIGHUP) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "RELOADING=1", msg, sizeof(msg));
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, ops_wait_line(c, "reload stopped", 0, 0) >= 0,
		  "READY=1 before \"reload stopped\"");
	hx_assert(c, !has_prefix_line(msg, "MAINPID="),
		  "MAINPID= again after the first READY=1: \"%s\"", msg);
	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "STOPPING=1", msg, sizeof(msg));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0, "exit status");
	close(fd);
}

Test(notify, abstract_namespace)
{
	char where[108], msg[1024];
	struct hx_cluster *c;
	int fd;

	snprintf(where, sizeof(where), "@cluster-run-test-%d-%lld",
		 (int)getpid(), (long long)hx_now_ms());
	fd = notify_socket(where);
	c = start_blocking(where, "1");
	expect_notify(c, fd, "READY=1", msg, sizeof(msg));
	hx_assert(c, hx_count(c, HX_LISTENING) == 1, "READY=1 before "
		  "\"listening\"");
	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_notify(c, fd, "STOPPING=1", msg, sizeof(msg));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0, "exit status");
	close(fd);
}

/* ---- listen_fds ---- */

/* A TCP socket listening on 127.0.0.1 (a port the kernel picks). */
static int tcp_listener(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	cr_assert(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		  "bind: %s", strerror(errno));
	cr_assert(listen(fd, 64) == 0, "listen: %s", strerror(errno));
	cr_assert(getsockname(fd, (struct sockaddr *)&sin, &len) == 0,
		  "getsockname: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A TCP socket listening on [::]:port, IPv4 too (V6ONLY off), as
 * systemd's ListenStream=PORT makes it. */
static int dual_stack_listener(int port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_addr = IN6ADDR_ANY_INIT,
				     .sin6_port = htons((uint16_t)port) };
	int off = 0, fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	cr_assert(bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0,
		  "bind [::]:%d: %s", port, strerror(errno));
	cr_assert(listen(fd, 64) == 0, "listen: %s", strerror(errno));
	return fd;
}

/* A unix stream listener at path: where sd_activate comes for the fds. */
static int handover_listener(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	cr_assert(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
		  "bind %s: %s", path, strerror(errno));
	cr_assert(listen(fd, 1) == 0, "listen: %s", strerror(errno));
	return fd;
}

/* cluster-run through sd_activate, which takes the fds from handover. */
static struct hx_cluster *start_activated(const char *handover,
					  bool wrong_pid,
					  const char *const *args)
{
	const char *wrapper = getenv("SD_ACTIVATE_BIN");
	char real[PATH_MAX];
	struct hx_cluster *c;

	cr_assert(wrapper != NULL && getenv("CLUSTER_RUN_BIN") != NULL,
		  "SD_ACTIVATE_BIN and CLUSTER_RUN_BIN must be set (meson test)");
	snprintf(real, sizeof(real), "%s", getenv("CLUSTER_RUN_BIN"));
	setenv("SD_ACTIVATE_EXEC", real, 1);
	setenv("SD_ACTIVATE_FROM", handover, 1);
	setenv("SD_ACTIVATE_NAMES", "web", 1);
	if (wrong_pid)
		setenv("SD_ACTIVATE_WRONG_PID", "1", 1);
	setenv("CLUSTER_RUN_BIN", wrapper, 1);
	c = ops_start_args(ops_path("ctl.sock"), args);
	setenv("CLUSTER_RUN_BIN", real, 1);
	unsetenv("SD_ACTIVATE_EXEC");
	unsetenv("SD_ACTIVATE_FROM");
	unsetenv("SD_ACTIVATE_NAMES");
	unsetenv("SD_ACTIVATE_WRONG_PID");
	return c;
}

/* Hands fd to sd_activate when it connects (within HX_START_MS). */
static void send_fd(struct hx_cluster *c, int listener, int fd)
{
	struct pollfd pfd = { .fd = listener, .events = POLLIN };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	int conn;

	hx_assert(c, poll(&pfd, 1, HX_START_MS) == 1,
		  "sd_activate did not come for the socket");
	conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	hx_assert(c, conn >= 0, "accept: %s", strerror(errno));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	hx_assert(c, sendmsg(conn, &msg, MSG_NOSIGNAL) == 1, "sendmsg: %s",
		  strerror(errno));
	close(conn);
}

static void adopted(const char *sched, bool workers_hold_it)
{
	struct hx_target target = { .proto = HX_TCP, .host = "127.0.0.1" };
	struct hx_load load = { .targets = &target, .n_targets = 1,
				.requests = 8, .workers = 2 };
	int lfd = tcp_listener(&target.port);
	int handover = handover_listener(ops_path("handover.sock"));
	char port[16], want[128];
	struct hx_tally tally;
	struct hx_cluster *c;
	struct stat st;

	cr_assert(fstat(lfd, &st) == 0, "fstat: %s", strerror(errno));
	snprintf(port, sizeof(port), "%d", target.port);
	c = start_activated(ops_path("handover.sock"), false, (const char *[]){
		"-n", "2", "--sched", sched, "--",
		hx_fixture("fx_blocking_accept"), "--port", port, NULL });
	send_fd(c, handover, lfd);
	close(handover);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	snprintf(want, sizeof(want), "socket activation: fd 3 (web) is "
		 "127.0.0.1:%d (stream)", target.port);
	hx_assert(c, ops_wait_line(c, want, 0, 0) >= 0, "no line \"%s\"", want);
	snprintf(want, sizeof(want), "127.0.0.1:%d (", target.port);
	for (size_t i = 0; i < c->n_events; i++)
		if (c->events[i].kind == HX_LISTENING)
			hx_assert(c, strncmp(c->events[i].what, want,
					     strlen(want)) == 0,
				  "listening on %s, not port %d",
				  c->events[i].what, target.port);

	/* The very socket the test made: cluster-run holds its inode, and
	 * (none) so do the workers, which accept on it. */
	hx_assert(c, holds_inode(c->pid, st.st_ino), "cluster-run holds no fd "
		  "on the socket it was given (inode %lu)",
		  (unsigned long)st.st_ino);
	for (int id = 1; workers_hold_it && id <= 2; id++)
		hx_assert(c, comes_to_hold(c, hx_worker_pid(c, id), st.st_ino),
			  "worker %d holds no fd on the given socket", id);
	assert_no_systemd_env(c, 2);

	/* It keeps serving once the test has let go of it. */
	close(lfd);
	hx_run_load(c, &load, &tally);
	hx_assert(c, tally.served[1] + tally.served[2] == 8, "tally");

	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0,
		  "cluster-run did not exit 0 after SIGTERM");
}

Test(listen_fds, adopted_in_rr)
{
	adopted("rr", false);
}

Test(listen_fds, adopted_in_none)
{
	adopted("none", true);
}

Test(listen_fds, adopted_in_reuseport_is_shared)
{
	adopted("reuseport", true);
}

/* LISTEN_PID names another process: the fds are not cluster-run's, and the
 * workers' bind of the port the test holds fails as it would anyway. */
Test(listen_fds, other_pid_is_ignored)
{
	int port, lfd = tcp_listener(&port);
	int handover = handover_listener(ops_path("handover.sock"));
	char portbuf[16], want[96];
	struct hx_cluster *c;
	int status;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	c = start_activated(ops_path("handover.sock"), true, (const char *[]){
		"-n", "1", "--", hx_fixture("fx_blocking_accept"), "--port",
		portbuf, NULL });
	send_fd(c, handover, lfd);
	close(handover);
	hx_assert(c, ops_wait_line(c, "is not cluster-run's pid", 0,
				   HX_START_MS) >= 0,
		  "no line about a LISTEN_PID that is not cluster-run's");
	status = hx_wait_exit(c, HX_START_MS);
	hx_assert(c, status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "want exit 1 (the port is taken), got status %d", status);
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d", port);
	hx_assert(c, ops_wait_line(c, want, 0, 0) >= 0, "no \"%s\" line", want);
	close(lfd);
}

/* systemd passed [::]:P and the server binds 127.0.0.1:P: not the same
 * address, so not adopted (the bind fails, the port is systemd's), and
 * cluster-run says what to change. */
Test(listen_fds, another_address_on_the_port_is_named)
{
	int port, lfd, handover;
	char portbuf[16], want[160];
	struct hx_cluster *c;
	int status;

	if (!hx_have_ipv6())
		cr_skip_test("no IPv6 on this machine");
	port = hx_free_port(SOCK_STREAM);
	lfd = dual_stack_listener(port);
	handover = handover_listener(ops_path("handover.sock"));
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	c = start_activated(ops_path("handover.sock"), false, (const char *[]){
		"-n", "1", "--", hx_fixture("fx_blocking_accept"), "--port",
		portbuf, NULL });
	send_fd(c, handover, lfd);
	close(handover);
	snprintf(want, sizeof(want), "the server binds 127.0.0.1:%d but "
		 "systemd passed [::]:%d", port, port);
	hx_assert(c, ops_wait_line(c, want, 0, HX_START_MS) >= 0,
		  "no line \"%s\"", want);
	status = hx_wait_exit(c, HX_START_MS);
	hx_assert(c, status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "want exit 1, got status %d", status);
	close(lfd);
}
