/*
 * fx_dup PORT LIMIT - copies of a listener, each of which accepts: dup(),
 * dup2() onto a chosen number, dup3(O_CLOEXEC), fcntl(F_DUPFD); the original
 * fd is closed first, and one more dup() is overwritten by dup2() of
 * /dev/null.  Connection k is accepted on the next copy in turn; copies are
 * closed one by one as connections come (after 8, 12 and 14), and none of
 * those closes may cost the worker its listener, since a copy is still open.
 * Worker 1 closes its last copy after LIMIT connections, prints
 * "closed 1 after N" and serves no more; the other workers serve on.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

#define MAX_COPIES 4

static void check_listener(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	FXS_CHECK(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 &&
		  v == 1);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1);
	int limit = fxs_arg_int(argc, argv, 2);
	int fd, gone, devnull, copies[MAX_COPIES], n = MAX_COPIES, served = 0;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	copies[0] = dup(fd);
	copies[1] = dup2(fd, 50);
	copies[2] = dup3(fd, 60, O_CLOEXEC);
	copies[3] = fcntl(fd, F_DUPFD, 70);
	FXS_CHECK(copies[0] >= 0 && copies[1] == 50 && copies[2] == 60 &&
		  copies[3] >= 70);
	FXS_CHECK(fcntl(copies[2], F_GETFD) == FD_CLOEXEC);
	FXS_CHECK(fcntl(copies[1], F_GETFD) == 0);
	/* A copy that stops being one: dup2() of something else onto it. */
	gone = dup(fd);
	devnull = open("/dev/null", O_RDONLY);
	FXS_CHECK(gone >= 0 && devnull >= 0 && dup2(devnull, gone) == gone);
	close(devnull);
	close(gone);
	FXS_CHECK(close(fd) == 0);
	for (int i = 0; i < MAX_COPIES; i++)
		check_listener(copies[i]);
	fxs_say("ready %d", fxs_worker_id());

	for (;;) {
		FXS_CHECK(fxs_serve_one(copies[served % n]));
		served++;
		if (served == 8 || served == 12 || served == 14) {
			/* the first copy goes; the others move up */
			FXS_CHECK(close(copies[0]) == 0);
			for (int i = 1; i < n; i++)
				copies[i - 1] = copies[i];
			n--;
		}
		if (fxs_worker_id() == 1 && served == limit) {
			for (int i = 0; i < n; i++)
				FXS_CHECK(close(copies[i]) == 0);
			fxs_say("closed 1 after %d", served);
			for (;;)
				pause();
		}
	}
}
