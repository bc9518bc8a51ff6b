/*
 * fx_fcntl PORT - fcntl()/fcntl64()/ioctl(FIONBIO) on a listener, before
 * bind (the shim keeps the wish), and after listen() on what the worker
 * serves from (a faux handle in rr, the shared socket in none):
 * F_GETFL/F_SETFL, F_GETFD/F_SETFD, F_DUPFD, F_DUPFD_CLOEXEC, FIONBIO.  The
 * O_NONBLOCK the server sees is the one the kernel has on its fd (read with
 * a raw fcntl system call).  Then it prints "ready" and serves with blocking
 * accept() calls, in turn on the listener and on its two F_DUPFD copies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static bool nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	FXS_CHECK(fl >= 0);
	return fl & O_NONBLOCK;
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl64(fd, F_GETFL);

	FXS_CHECK(fl >= 0);
	FXS_CHECK(fcntl64(fd, F_SETFL, on ? fl | O_NONBLOCK
					  : fl & ~O_NONBLOCK) == 0);
}

static void fionbio(int fd, int on)
{
	FXS_CHECK(ioctl(fd, FIONBIO, &on) == 0);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1);
	int fd, copies[3], one = 1, v = 0, n = 0;
	socklen_t len = sizeof(v);

	fx_exit_on_sigterm();
	/* Before bind: flags on the server's own socket. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	FXS_CHECK(fcntl(fd, F_GETFD) == 0);
	FXS_CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0);
	set_nonblock(fd, true);
	close(fxs_bound(SOCK_DGRAM, 0)); /* an unrelated socket comes and goes */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_port = htons((uint16_t)port) };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	}
	/* Bound, not listening: the wish holds whatever the file is. */
	FXS_CHECK(nonblock(fd));
	fionbio(fd, 0);
	FXS_CHECK(!nonblock(fd));
	fionbio(fd, 1);
	FXS_CHECK(nonblock(fd));
	FXS_CHECK(listen(fd, 128) == 0);

	/* Listening: what the server asked for is what the kernel has. */
	FXS_CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	FXS_CHECK(nonblock(fd) && fxs_raw_nonblock(fd));
	FXS_CHECK(accept4(fd, NULL, NULL, SOCK_CLOEXEC) < 0 &&
		  (errno == EAGAIN || errno == EWOULDBLOCK));
	fionbio(fd, 0);
	FXS_CHECK(!nonblock(fd) && !fxs_raw_nonblock(fd));
	fionbio(fd, 1);
	FXS_CHECK(nonblock(fd) && fxs_raw_nonblock(fd));
	set_nonblock(fd, false);
	FXS_CHECK(!nonblock(fd) && !fxs_raw_nonblock(fd));
	FXS_CHECK(fcntl(fd, F_SETFD, 0) == 0 && fcntl(fd, F_GETFD) == 0);
	FXS_CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 &&
		  fcntl64(fd, F_GETFD) == FD_CLOEXEC);
	FXS_CHECK(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 &&
		  v == 1);

	/* Copies: each accepts, each with its own FD_CLOEXEC. */
	copies[0] = fd;
	copies[1] = fcntl(fd, F_DUPFD, 100);
	copies[2] = fcntl64(fd, F_DUPFD_CLOEXEC, 200);
	FXS_CHECK(copies[1] >= 100 && fcntl(copies[1], F_GETFD) == 0);
	FXS_CHECK(copies[2] >= 200 && fcntl(copies[2], F_GETFD) == FD_CLOEXEC);
	FXS_CHECK(!nonblock(copies[1]) && !nonblock(copies[2]));
	v = 0;
	FXS_CHECK(getsockopt(copies[2], SOL_SOCKET, SO_ACCEPTCONN, &v,
			     &len) == 0 && v == 1);

	fxs_say("ready %d", fxs_worker_id());
	for (;;) {
		int c = accept(copies[n++ % 3], NULL, NULL);

		if (c < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		FXS_CHECK(c >= 0); /* EAGAIN here: a blocking accept did not block */
		fx_answer(c);
	}
}
