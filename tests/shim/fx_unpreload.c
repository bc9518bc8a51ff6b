/*
 * fx_unpreload PORT [inherit] - a dynamic server that clears LD_PRELOAD
 * and execs itself again (as some launchers do to keep a preload out of
 * the server): the new image loads no shim.  FX_UNPRELOADED marks the
 * second run, which serves "<id> <pid>\n" on 127.0.0.1:PORT.
 *
 * inherit: the first run binds and listens first (through the shim: a
 * cluster listener) and the second serves on that inherited socket, named
 * by FX_LISTEN_FD - an exec that comes after a listener exists.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static int listener(int argc, char **argv)
{
	const char *inherited = getenv("FX_LISTEN_FD");
	int fd;

	if (inherited)
		return atoi(inherited);
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	return fd;
}

static void exec_unpreloaded(int argc, char **argv)
{
	char text[16];

	if (argc > 2 && strcmp(argv[2], "inherit") == 0) {
		int fd = listener(argc, argv);

		FXS_CHECK(fcntl(fd, F_SETFD, 0) == 0);
		snprintf(text, sizeof(text), "%d", fd);
		FXS_CHECK(setenv("FX_LISTEN_FD", text, 1) == 0);
	}
	FXS_CHECK(unsetenv("LD_PRELOAD") == 0);
	FXS_CHECK(setenv("FX_UNPRELOADED", "1", 1) == 0);
	execv(argv[0], argv);
	FXS_CHECK(!"execv");
}

int main(int argc, char **argv)
{
	int fd;

	if (!getenv("FX_UNPRELOADED") && getenv("LD_PRELOAD"))
		exec_unpreloaded(argc, argv);
	fx_exit_on_sigterm();
	fd = listener(argc, argv);
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
