/*
 * fx_probe PORT - what a worker execs for one connection (a CGI program,
 * `sh -c ...`): stdout is the connection.  It must be a plain process: no
 * channel to the supervisor open, a bind() of the cluster's address fails
 * with EADDRINUSE as for any other process (it is not sent to the
 * supervisor, which would let it join), a bind() of port 0 and listen()
 * are its own.  Answers "<worker_id> <parent pid>\n" (its parent is the
 * worker), or "FAIL ..." (also on stderr).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1);
	const char *channel = getenv("CLUSTER_CHANNEL_FD");
	struct sockaddr_in sin = { .sin_family = AF_INET }, raw;
	socklen_t len = sizeof(sin), rlen = sizeof(raw);
	int fd;

	if (channel)
		FXS_CHECK(fcntl(atoi(channel), F_GETFD) < 0 && errno == EBADF);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
		  errno == EADDRINUSE);
	close(fd);
	sin.sin_port = 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	FXS_CHECK(listen(fd, 1) == 0);
	FXS_CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0 &&
		  syscall(SYS_getsockname, fd, &raw, &rlen) == 0 &&
		  sin.sin_port != 0 && sin.sin_port == raw.sin_port);
	close(fd);
	printf("%s %ld\n", getenv("CLUSTER_WORKER_ID"), (long)getppid());
	return 0;
}
