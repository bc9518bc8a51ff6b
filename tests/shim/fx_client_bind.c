/*
 * fx_client_bind PORT PEER MODE [SRC1 SRC2] - a worker that is also a
 * client: it binds a source address before connect() to 127.0.0.1:PEER
 * (the test listens there), sends "<id> <source port>\n" and closes.  The
 * shim sends such binds to the supervisor like any other (it cannot know
 * yet that no listen() will follow); the socket must go on working as a
 * client, and its close must reach the peer.  MODE:
 *   zero    bind 127.0.0.1:0 (every worker's first port-0 bind is the same
 *           handle, as Node counts them), at start-up
 *   noport  the same with IP_BIND_ADDRESS_NO_PORT set, as nginx's
 *           proxy_bind does
 *   fixed   bind 127.0.0.1:SRC<id>, at start-up
 *   held    bind 127.0.0.1:0 at start-up, print "bound <id> first" if the
 *           socket the supervisor bound is this worker's own (a raw
 *           getsockname says it has a port) or "bound <id> joined", then
 *           connect on SIGUSR1 and print "sent <id>"
 * Then it listens on PORT, prints "ready <id>" and serves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int client_socket(int src_port, bool no_port)
{
	struct sockaddr_in src = loopback(src_port);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			     sizeof(one)) == 0);
	if (no_port)
		FXS_CHECK(setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
				     &one, sizeof(one)) == 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0);
	return fd;
}

static void talk(int fd, int peer_port)
{
	struct sockaddr_in dst = loopback(peer_port), me;
	socklen_t len = sizeof(me);
	char line[64];
	int n, one = 0;
	socklen_t olen = sizeof(one);

	FXS_CHECK(connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	FXS_CHECK(getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
		  me.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
		  me.sin_port != 0);
	/* the options set before bind hold on the socket that connected */
	FXS_CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &olen) == 0 &&
		  one == 1);
	n = snprintf(line, sizeof(line), "%d %d\n", fxs_worker_id(),
		     ntohs(me.sin_port));
	FXS_CHECK(write(fd, line, (size_t)n) == n);
	FXS_CHECK(close(fd) == 0);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1);
	int peer = fxs_arg_int(argc, argv, 2);
	const char *mode = argc > 3 ? argv[3] : "";
	int id = fxs_worker_id(), fd;

	fx_exit_on_sigterm();
	if (strcmp(mode, "zero") == 0) {
		talk(client_socket(0, false), peer);
	} else if (strcmp(mode, "noport") == 0) {
		talk(client_socket(0, true), peer);
	} else if (strcmp(mode, "fixed") == 0) {
		talk(client_socket(fxs_arg_int(argc, argv, 3 + id), false),
		     peer);
	} else if (strcmp(mode, "held") == 0) {
		struct sockaddr_in real;
		socklen_t len = sizeof(real);
		sigset_t usr1, old;

		signal(SIGUSR1, on_usr1);
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigprocmask(SIG_BLOCK, &usr1, &old);
		fd = client_socket(0, false);
		FXS_CHECK(syscall(SYS_getsockname, fd, &real, &len) == 0);
		fxs_say("bound %d %s", id, real.sin_port ? "first" : "joined");
		while (!go)
			sigsuspend(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
		talk(fd, peer);
		fxs_say("sent %d", id);
	} else {
		return 2;
	}
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	fxs_say("ready %d", id);
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
