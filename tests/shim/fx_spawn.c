/*
 * fx_spawn PORT MODE - forks a child per connection (the worker goes on
 * accepting), which answers it in one of three ways (MODE):
 *   sh    sh -c 'exec fx_probe PORT', the connection as stdout
 *   exec  fx_probe PORT exec'd directly, as a CGI program is
 *   fork  the child itself, after closing its copy of the listener
 * fx_probe checks from inside that it is no worker (see fx_probe.c).  The
 * worker prints "ready"; children are reaped by SIGCHLD = SIG_IGN.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), fd;
	const char *mode = argc > 2 ? argv[2] : "";
	char self[PATH_MAX], probe[PATH_MAX + 16], cmd[2 * PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	fx_exit_on_sigterm();
	FXS_CHECK(n > 0);
	self[n] = '\0';
	snprintf(probe, sizeof(probe), "%s/fx_probe", dirname(self));
	snprintf(cmd, sizeof(cmd), "exec '%s' %d", probe, port);
	if (strcmp(mode, "sh") && strcmp(mode, "exec") && strcmp(mode, "fork"))
		return 2;
	signal(SIGCHLD, SIG_IGN);
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	fxs_say("ready %d", fxs_worker_id());
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pid_t pid;

		if (c < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		FXS_CHECK(c >= 0);
		pid = fork();
		FXS_CHECK(pid >= 0);
		if (pid > 0) {
			close(c);
			continue;
		}
		signal(SIGCHLD, SIG_DFL);
		close(fd);
		if (strcmp(mode, "fork") == 0) {
			fx_answer(c);
			_exit(0);
		}
		FXS_CHECK(dup2(c, STDOUT_FILENO) == STDOUT_FILENO);
		close(c);
		if (strcmp(mode, "sh") == 0)
			execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		else
			execl(probe, probe, argv[1], (char *)NULL);
		_exit(127);
	}
}
