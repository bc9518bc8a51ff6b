/*
 * fx_closeall PORT HOW - a server that closes every fd it has before it
 * binds, as daemonizing servers do, in one of four ways (HOW):
 *   close_range  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC), then
 *                close_range(3, ~0U, 0)
 *   closefrom    closefrom(3) (glibc makes it a close_range system call)
 *   loop         close() of every fd from 3 up to RLIMIT_NOFILE, before
 *                bind and again after listen (but its listener)
 *   dup2         dup2() of /dev/null onto the number $CLUSTER_CHANNEL_FD
 *                names, then close() of it
 * The shim's channel must survive all of them: the worker binds, listens
 * (through the supervisor), prints "ready", and serves with accept().
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static void close_loop(int keep)
{
	struct rlimit rl;

	FXS_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	for (rlim_t fd = 3; fd < rl.rlim_cur && fd < (1 << 20); fd++)
		if ((int)fd != keep)
			close((int)fd);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), fd, v = 0;
	const char *how = argc > 2 ? argv[2] : "";
	socklen_t len = sizeof(v);

	fx_exit_on_sigterm();
	if (strcmp(how, "close_range") == 0) {
		FXS_CHECK(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0);
		FXS_CHECK(close_range(3, ~0U, 0) == 0);
	} else if (strcmp(how, "closefrom") == 0) {
		closefrom(3);
	} else if (strcmp(how, "loop") == 0) {
		close_loop(-1);
	} else if (strcmp(how, "dup2") == 0) {
		const char *text = getenv("CLUSTER_CHANNEL_FD");
		int devnull = open("/dev/null", O_RDONLY), target;

		FXS_CHECK(text != NULL && devnull >= 0);
		target = atoi(text);
		FXS_CHECK(dup2(devnull, target) == target);
		FXS_CHECK((fcntl(target, F_GETFL) & O_ACCMODE) == O_RDONLY);
		FXS_CHECK(close(target) == 0 && close(devnull) == 0);
	} else {
		return 2;
	}
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	if (strcmp(how, "loop") == 0) {
		close_loop(fd);
		FXS_CHECK(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v,
				     &len) == 0 && v == 1);
	}
	fxs_say("ready %d", fxs_worker_id());
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
