/*
 * fx_vfork PORT - a server that runs a program once after it started, as
 * CPython's subprocess.run() does: vfork(), and in the child (which shares
 * the worker's memory until it execs) close_range() of every fd from 3 up,
 * then exec of /bin/true.  The worker waits for it, prints "spawned ID" and
 * serves on the listener it had before.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), fd, status;
	pid_t pid;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	pid = vfork();
	FXS_CHECK(pid >= 0);
	if (pid == 0) {
		close_range(3, ~0U, 0);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	FXS_CHECK(waitpid(pid, &status, 0) == pid);
	FXS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fxs_say("spawned %d", fxs_worker_id());
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
