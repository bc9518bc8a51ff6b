/*
 * fx_syscall PORT - a server that makes its socket calls through glibc's
 * syscall(): syscall(SYS_bind), syscall(SYS_listen), and
 * syscall(SYS_accept4) to accept, as the plain calls would.  Other numbers
 * pass through the shim untouched: SYS_getpid, SYS_fcntl on the listener,
 * a SYS_bind that fails (EBADF).  Prints "ready", then serves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in peer;
	socklen_t len;
	int one = 1, fd;

	fx_exit_on_sigterm();
	sin.sin_port = htons((uint16_t)fxs_arg_int(argc, argv, 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FXS_CHECK(syscall(SYS_getpid) == getpid());
	FXS_CHECK(syscall(SYS_bind, -1, &sin, sizeof(sin)) == -1 &&
		  errno == EBADF);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	FXS_CHECK(syscall(SYS_bind, fd, &sin, sizeof(sin)) == 0);
	FXS_CHECK(syscall(SYS_listen, fd, 128) == 0);
	FXS_CHECK(syscall(SYS_fcntl, fd, F_GETFL) & O_NONBLOCK);
	len = sizeof(peer);
	FXS_CHECK(syscall(SYS_accept4, fd, &peer, &len, SOCK_CLOEXEC) == -1 &&
		  (errno == EAGAIN || errno == EWOULDBLOCK));
	fxs_say("ready %d", fxs_worker_id());
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long c;

		FXS_CHECK(poll(&pfd, 1, -1) >= 0 || errno == EINTR);
		len = sizeof(peer);
		c = syscall(SYS_accept4, fd, &peer, &len, SOCK_CLOEXEC);
		if (c < 0 && (errno == EAGAIN || errno == EINTR ||
			      errno == ECONNABORTED))
			continue;
		FXS_CHECK(c >= 0);
		FXS_CHECK(len == sizeof(peer) && peer.sin_family == AF_INET &&
			  peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
		FXS_CHECK(fcntl((int)c, F_GETFD) == FD_CLOEXEC);
		fx_answer((int)c);
	}
}
