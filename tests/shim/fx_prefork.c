/*
 * fx_prefork PORT CHILDREN - a pre-fork master that closes its listener:
 * binds and listens, forks CHILDREN children that accept on the inherited
 * listener and answer, then closes its own fd on it and prints
 * "closed ID".  The children serve on, as they do without cluster-run (the
 * kernel keeps a listener open while any process holds it).  SIGTERM to
 * the master ends its children and itself.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

#define MAX_CHILDREN 8

static pid_t children[MAX_CHILDREN];
static int nchildren;

static void on_term(int sig)
{
	(void)sig;
	for (int i = 0; i < nchildren; i++)
		kill(children[i], SIGTERM);
	_exit(0);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), n = fxs_arg_int(argc, argv, 2);
	int fd;

	if (n < 1 || n > MAX_CHILDREN)
		return 2;
	signal(SIGTERM, on_term);
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	for (nchildren = 0; nchildren < n; nchildren++) {
		pid_t pid = fork();

		FXS_CHECK(pid >= 0);
		if (pid == 0) {
			fx_exit_on_sigterm();
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			for (;;)
				FXS_CHECK(fxs_serve_one(fd));
		}
		children[nchildren] = pid;
	}
	FXS_CHECK(close(fd) == 0);
	fxs_say("closed %d", fxs_worker_id());
	for (;;)
		pause();
}
