/*
 * fx_reclose PORT ROUNDS - the last copy of a listener closed, then a
 * connect() to its address at once, ROUNDS times: bind, listen, close,
 * connect.  Without cluster-run the connect() is refused (the listening
 * socket is gone when close() returns); so it must be with cluster-run -n 1
 * (asyncio's test_server_close).  Then listens on PORT once more, prints
 * "refused ROUNDS" and serves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static bool refused(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc, err;

	FXS_CHECK(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	err = rc < 0 ? errno : 0;
	close(fd);
	errno = err;
	return err == ECONNREFUSED;
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), rounds = fxs_arg_int(argc, argv, 2);
	int i, fd;

	fx_exit_on_sigterm();
	for (i = 0; i < rounds; i++) {
		fd = fxs_bound(SOCK_STREAM, port);
		FXS_CHECK(listen(fd, 16) == 0);
		FXS_CHECK(close(fd) == 0);
		FXS_CHECK(refused(port));
	}
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 16) == 0);
	fxs_say("refused %d", rounds);
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
