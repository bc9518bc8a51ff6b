/*
 * fx_shellout PORT - a dynamic server that shells out once it serves:
 * after each answer, system("env -u LD_PRELOAD true") and a forked child
 * that execs /bin/true with an empty environment (no LD_PRELOAD, no
 * worker variables).  Neither is the worker's exec (a child's, after the
 * worker serves): the shim must not report them (shim/exec.c).  Serves
 * "<id> <pid>\n" on 127.0.0.1:PORT.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fxs.h"

static void shell_out(void)
{
	char *const no_env[] = { NULL };
	pid_t pid;
	int status;

	FXS_CHECK(system("env -u LD_PRELOAD true") == 0);
	pid = fork();
	FXS_CHECK(pid >= 0);
	if (pid == 0) {
		execle("/bin/true", "true", (char *)NULL, no_env);
		_exit(127);
	}
	FXS_CHECK(waitpid(pid, &status, 0) == pid);
	FXS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv)
{
	int fd;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	for (;;) {
		FXS_CHECK(fxs_serve_one(fd));
		shell_out();
	}
}
