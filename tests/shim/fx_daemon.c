/*
 * fx_daemon PORT MODE - a server that daemonizes, in one of four ways:
 *   fork       fork(); the parent exit(0)s at once; the child calls
 *              setsid(), closes every fd but 0-2 (closefrom), then binds
 *   double     fork(); setsid(); fork() again, the middle process
 *              _exit(0)s; the grandchild binds; the parent returns from
 *              main
 *   daemon     daemon(1, 1) (glibc's, kept stdout), then binds
 *   bindfirst  binds and listens, then fork(); the parent _exit(0)s; the
 *              child calls setsid() and serves on the inherited listener
 *   logger     no daemon: binds, listens, forks one child that lives on
 *              (as a piped logger does, no setsid()), serves one request,
 *              then exit(3)s: a worker that ends, not a stand-in
 * The daemon prints "daemon <id> <pid>" once listening, and serves
 * "<id> <pid>\n" with blocking accept() until SIGTERM (exit 0).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static void serve(int fd)
{
	fxs_say("daemon %d %ld", fxs_worker_id(), (long)getpid());
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}

static int listener(int port)
{
	int fd = fxs_bound(SOCK_STREAM, port);

	FXS_CHECK(listen(fd, 128) == 0);
	return fd;
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), fd;
	const char *mode = argc > 2 ? argv[2] : "";
	pid_t pid;

	fx_exit_on_sigterm();
	if (strcmp(mode, "fork") == 0) {
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid > 0)
			exit(0);
		FXS_CHECK(setsid() > 0);
		closefrom(3);
		serve(listener(port));
	} else if (strcmp(mode, "double") == 0) {
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid > 0)
			return 0;
		FXS_CHECK(setsid() > 0);
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid > 0)
			_exit(0);
		serve(listener(port));
	} else if (strcmp(mode, "daemon") == 0) {
		FXS_CHECK(daemon(1, 1) == 0);
		serve(listener(port));
	} else if (strcmp(mode, "bindfirst") == 0) {
		fd = listener(port);
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid > 0)
			_exit(0);
		FXS_CHECK(setsid() > 0);
		serve(fd);
	} else if (strcmp(mode, "logger") == 0) {
		fd = listener(port);
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid == 0) {
			close(fd);
			for (;;)
				pause();
		}
		FXS_CHECK(fxs_serve_one(fd));
		exit(3);
	}
	return 2;
}
