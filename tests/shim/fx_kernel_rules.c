/*
 * fx_kernel_rules CASE PORT DIR - a worker that checks, from inside, one
 * rule of the kernel's that other projects' test suites (CPython, Twisted)
 * rely on, and that the shim must keep in every policy.  It first listens
 * on 127.0.0.1:PORT (so a failure is a FAIL line, not a missing listener),
 * checks, prints "ok CASE" and serves.  CASE:
 *   unix_path  closing a unix listener leaves its path (the kernel never
 *              removes one); unlink() of it by its only user removes it at
 *              once
 *   unix_rel   a relative unix path is bound in the worker's cwd even when
 *              cwd + path exceeds sun_path, and every name says it as
 *              bound (relative): getsockname() on the listener and on an
 *              accepted connection, getpeername() on the client
 *   port_kept  a socket bound to port 0 keeps that port at connect()
 *              (TCP, and UDP, whose datagrams come from it)
 *   emfile     accept() with no free fd fails with EMFILE and leaves the
 *              connection queued: the next accept() gets it
 *   reuseport  SO_REUSEPORT reads as the server set it (not at all), on a
 *              listener and on a port-0 client; a second bind of the
 *              listener's address fails with EADDRINUSE
 *   stop_name  on SIGTERM (after stop-accepting, in none and reuseport)
 *              getsockname() on the listener still says 127.0.0.1:PORT:
 *              prints "stopped name <port>" and exits 0
 * DIR is an existing directory of the test's for the unix cases.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fxs.h"

#define WAIT_MS 5000

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	FXS_CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	return ntohs(sin.sin_port);
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static socklen_t unix_address(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	FXS_CHECK(strlen(path) < sizeof(sun->sun_path));
	strcpy(sun->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			   strlen(path) + 1);
}

static int unix_listener(const char *path)
{
	struct sockaddr_un sun;
	socklen_t len = unix_address(&sun, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	FXS_CHECK(fd >= 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&sun, len) == 0);
	FXS_CHECK(listen(fd, 16) == 0);
	return fd;
}

static bool is_socket_file(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Every request before it has been handled once a bind through the
 * supervisor has its answer: the channel is one ordered stream. */
static void supervisor_barrier(void)
{
	int fd = fxs_bound(SOCK_STREAM, 0);

	FXS_CHECK(close(fd) == 0);
}

static void check_unix_path(const char *dir)
{
	char path[200];
	int fd;

	snprintf(path, sizeof(path), "%s/closed.sock", dir);
	fd = unix_listener(path);
	FXS_CHECK(close(fd) == 0);
	supervisor_barrier();
	FXS_CHECK(is_socket_file(path));
	FXS_CHECK(unlink(path) == 0);

	snprintf(path, sizeof(path), "%s/unlinked.sock", dir);
	fd = unix_listener(path);
	FXS_CHECK(unlink(path) == 0);
	FXS_CHECK(!is_socket_file(path) && errno == ENOENT);
	FXS_CHECK(close(fd) == 0);
}

/* fd's unix name (by getsockname or getpeername) is exactly want. */
static bool name_is(int fd, int (*get)(int, struct sockaddr *, socklen_t *),
		    const char *want)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);

	return get(fd, (struct sockaddr *)&sun, &len) == 0 &&
	       sun.sun_family == AF_UNIX &&
	       len == offsetof(struct sockaddr_un, sun_path) + strlen(want) + 1 &&
	       strcmp(sun.sun_path, want) == 0;
}

static void check_unix_rel(const char *dir)
{
	char deep[160];
	const char *name = "relative.sock";
	struct sockaddr_un sun;
	socklen_t len;
	int fd, cl, conn;

	/* dir/ddd...: cwd + "/" + name is over the 107 bytes of sun_path */
	snprintf(deep, sizeof(deep), "%s/", dir);
	while (strlen(deep) + 1 + strlen(name) <= 110)
		strcat(deep, "d");
	FXS_CHECK(mkdir(deep, 0700) == 0 && chdir(deep) == 0);
	fd = unix_listener(name);
	FXS_CHECK(is_socket_file(name));
	FXS_CHECK(name_is(fd, getsockname, name));
	cl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	len = unix_address(&sun, name);
	FXS_CHECK(cl >= 0 && connect(cl, (struct sockaddr *)&sun, len) == 0);
	FXS_CHECK(readable(fd, WAIT_MS));
	conn = accept(fd, NULL, NULL);
	FXS_CHECK(conn >= 0);
	/* the kernel tells the name as bound to both ends */
	FXS_CHECK(name_is(cl, getpeername, name));
	FXS_CHECK(name_is(conn, getsockname, name));
	FXS_CHECK(close(conn) == 0 && close(cl) == 0 && close(fd) == 0);
	FXS_CHECK(unlink(name) == 0);

	/* a short relative path: told as bound too */
	FXS_CHECK(chdir(dir) == 0);
	fd = unix_listener("short.sock");
	FXS_CHECK(name_is(fd, getsockname, "short.sock"));
	FXS_CHECK(close(fd) == 0 && unlink("short.sock") == 0);
	FXS_CHECK(chdir("/") == 0);
}

static void check_port_kept(int port)
{
	struct sockaddr_in dst = loopback(port), from;
	socklen_t len = sizeof(from);
	int fd = fxs_bound(SOCK_STREAM, 0), p = local_port(fd), rx, tx;
	char c;

	FXS_CHECK(p != 0);
	FXS_CHECK(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	FXS_CHECK(local_port(fd) == p);
	FXS_CHECK(close(fd) == 0);

	rx = fxs_bound(SOCK_DGRAM, 0);
	tx = fxs_bound(SOCK_DGRAM, 0);
	p = local_port(tx);
	dst = loopback(local_port(rx));
	FXS_CHECK(connect(tx, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	FXS_CHECK(local_port(tx) == p);
	FXS_CHECK(send(tx, "x", 1, 0) == 1);
	FXS_CHECK(readable(rx, WAIT_MS));
	FXS_CHECK(recvfrom(rx, &c, 1, 0, (struct sockaddr *)&from, &len) == 1);
	FXS_CHECK(ntohs(from.sin_port) == p);
	FXS_CHECK(close(tx) == 0 && close(rx) == 0);
}

static void check_emfile(int lfd, int port)
{
	struct sockaddr_in dst = loopback(port);
	struct rlimit old, low;
	int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fds[256];
	int n = 0, conn, err;
	char c = 0;

	FXS_CHECK(cl >= 0 &&
		  connect(cl, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	FXS_CHECK(write(cl, "e", 1) == 1);
	FXS_CHECK(readable(lfd, WAIT_MS));
	FXS_CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = 128;
	FXS_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	while (n < 256 && (fds[n] = dup(cl)) >= 0)
		n++;
	FXS_CHECK(n > 0 && n < 256 && errno == EMFILE);
	conn = accept(lfd, NULL, NULL);
	err = errno;
	FXS_CHECK(conn == -1 && err == EMFILE);
	FXS_CHECK(close(fds[--n]) == 0);
	FXS_CHECK(readable(lfd, WAIT_MS));
	conn = accept(lfd, NULL, NULL);
	FXS_CHECK(conn >= 0);
	FXS_CHECK(readable(conn, WAIT_MS) && read(conn, &c, 1) == 1 && c == 'e');
	FXS_CHECK(close(conn) == 0);
	while (n > 0)
		FXS_CHECK(close(fds[--n]) == 0);
	FXS_CHECK(close(cl) == 0);
	FXS_CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
}

static int reuseport_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	FXS_CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0);
	return v;
}

/* The errno of a bind of a fresh SO_REUSEADDR socket to 127.0.0.1:port,
 * 0 if it succeeded. */
static int bind_errno_of(int port)
{
	struct sockaddr_in sin = loopback(port);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	FXS_CHECK(fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
					sizeof(one)) == 0);
	err = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ? 0 : errno;
	FXS_CHECK(close(fd) == 0);
	return err;
}

static void check_reuseport(int lfd, int port)
{
	struct sockaddr_in dst = loopback(port);
	int fd = fxs_bound(SOCK_STREAM, 0);

	FXS_CHECK(reuseport_of(lfd) == 0);
	FXS_CHECK(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	FXS_CHECK(reuseport_of(fd) == 0);
	FXS_CHECK(close(fd) == 0);

	FXS_CHECK(bind_errno_of(port) == EADDRINUSE);

	/* the port a port-0 listener got is taken too (Twisted's
	 * test_cannotBind) */
	fd = fxs_bound(SOCK_STREAM, 0);
	FXS_CHECK(listen(fd, 8) == 0);
	FXS_CHECK(bind_errno_of(local_port(fd)) == EADDRINUSE);
	FXS_CHECK(close(fd) == 0);
}

static volatile sig_atomic_t term;

static void on_term(int sig)
{
	(void)sig;
	term = 1;
}

/* Serves until SIGTERM, then says the listener's name. */
static void serve_until_term(int lfd)
{
	for (;;) {
		int c;

		if (term) {
			struct sockaddr_in sin;
			socklen_t len = sizeof(sin);

			FXS_CHECK(getsockname(lfd, (struct sockaddr *)&sin,
					      &len) == 0);
			fxs_say("stopped name %s %d",
				sin.sin_family == AF_INET ? "inet" : "other",
				ntohs(sin.sin_port));
			_exit(0);
		}
		if (!readable(lfd, 50))
			continue;
		c = accept(lfd, NULL, NULL);
		if (c >= 0)
			fx_answer(c);
	}
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 && argv[1] ? argv[1] : "";
	int port = fxs_arg_int(argc, argv, 2);
	const char *dir = argc > 3 ? argv[3] : "/tmp";
	int lfd;

	if (strcmp(which, "stop_name") == 0)
		signal(SIGTERM, on_term);
	else
		fx_exit_on_sigterm();
	lfd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(lfd, 128) == 0);
	if (strcmp(which, "unix_path") == 0)
		check_unix_path(dir);
	else if (strcmp(which, "unix_rel") == 0)
		check_unix_rel(dir);
	else if (strcmp(which, "port_kept") == 0)
		check_port_kept(port);
	else if (strcmp(which, "emfile") == 0)
		check_emfile(lfd, port);
	else if (strcmp(which, "reuseport") == 0)
		check_reuseport(lfd, port);
	else if (strcmp(which, "stop_name") != 0)
		return 2;
	fxs_say("ok %s", which);
	if (strcmp(which, "stop_name") == 0)
		serve_until_term(lfd);
	for (;;)
		FXS_CHECK(fxs_serve_one(lfd));
}
