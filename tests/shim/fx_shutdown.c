/*
 * fx_shutdown PORT HOW - worker 1 calls shutdown(HOW) on its listener (rd,
 * wr or rdwr; socat calls shutdown(SHUT_RDWR) at exit), after making a dup()
 * of it, and checks what a real listening socket would then do: with SHUT_RD
 * or SHUT_RDWR accept() fails with EINVAL on both fds and poll() reports a
 * hang-up; with SHUT_WR nothing changes.  It prints "shut 1", then, if its
 * listener is gone, keeps running without serving.  Every other worker
 * prints "serving N" and serves.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static void check_dead(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	FXS_CHECK(accept4(fd, NULL, NULL, SOCK_NONBLOCK) < 0 &&
		  errno == EINVAL);
	FXS_CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP));
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), how, fd, copy;
	const char *how_text = argc > 2 ? argv[2] : "";

	fx_exit_on_sigterm();
	if (strcmp(how_text, "rd") == 0)
		how = SHUT_RD;
	else if (strcmp(how_text, "wr") == 0)
		how = SHUT_WR;
	else if (strcmp(how_text, "rdwr") == 0)
		how = SHUT_RDWR;
	else
		return 2;
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	if (fxs_worker_id() != 1) {
		fxs_say("serving %d", fxs_worker_id());
		for (;;)
			FXS_CHECK(fxs_serve_one(fd));
	}
	copy = dup(fd);
	FXS_CHECK(copy >= 0);
	FXS_CHECK(shutdown(fd, how) == 0);
	if (how == SHUT_WR) {
		fxs_say("shut 1");
		for (;;)
			FXS_CHECK(fxs_serve_one(copy));
	}
	check_dead(fd);
	check_dead(copy);
	fxs_say("shut 1");
	for (;;)
		pause();
}
