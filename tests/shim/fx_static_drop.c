/*
 * fx_static_drop PORT - fx_static that, on SIGUSR1, closes its listener
 * and goes on living (until SIGTERM), saying "<id> closed its listener" on
 * stdout: a server that stops accepting on its own, which in the seccomp
 * mode cluster-run cannot see (its copy of the slot socket stays).
 */
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static volatile sig_atomic_t drop;

static void on_usr1(int sig)
{
	(void)sig;
	drop = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t block, during;
	int fd;

	fx_exit_on_sigterm();
	sigemptyset(&sa.sa_mask);
	FXS_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	/* SIGUSR1 comes only inside ppoll(): never between the check of
	 * drop and the wait */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	FXS_CHECK(sigprocmask(SIG_BLOCK, &block, &during) == 0);
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	while (!drop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int c;

		if (ppoll(&p, 1, NULL, &during) == 1 &&
		    (c = accept(fd, NULL, NULL)) >= 0)
			fx_answer(c);
	}
	close(fd);
	fxs_say("%d closed its listener", fxs_worker_id());
	for (;;)
		pause();
}
