/*
 * Stop accepting, on the supervisor's word (CLUSTER_SIG_STOP_ACCEPTING).
 *
 * In none and reuseport the worker accepts on a socket it shares with
 * others, so the supervisor cannot stop routing to it as in rr.  The shim
 * has no thread of its own; a signal is its way in.  The handler puts, in
 * place of each shared stream listener, a listening unix socket bound to an
 * abstract name nobody knows: accept() blocks or says EAGAIN, poll and
 * epoll never report it ready (epoll registrations are carried over), and
 * the server goes on serving what it holds.  The fd lets go of the handle.
 * Only async-signal-safe calls (socket, listen, dup3, fcntl, epoll_ctl,
 * open/read of /proc for the epoll carry-over).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "real.h"
#include "shim.h"

static int never_ready_socket(void)
{
	/* bind() with the family alone picks a fresh abstract name
	 * (autobind): a real listener that nobody will connect to */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 &&
	    (real_bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) < 0 ||
	     real_listen(fd, 1) < 0)) {
		real_close(fd);
		return -1;
	}
	return fd;
}

static void stop_accepting_on(int fd)
{
	int nr = never_ready_socket();
	int fl = real_fcntl(fd, F_GETFL, NULL);

	if (nr >= 0 && shim_install_fd(nr, fd, fl >= 0 && (fl & O_NONBLOCK)) < 0)
		real_close(nr);
	shim_fd_detach(fd);
}

static void on_stop_accepting(int sig)
{
	int saved = errno, high = shim_fd_high(), fd;

	for (fd = 0; fd <= high; fd++) {
		struct shim_fd_info info;

		if (shim_fd_lookup(fd, &info) && info.kind == SHIM_FD_SHARED &&
		    shim_handle_get(info.slot)->type != SOCK_DGRAM)
			stop_accepting_on(fd);
	}
	errno = saved;
}

void shim_stop_accepting_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_accepting;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(CLUSTER_SIG_STOP_ACCEPTING, &sa, NULL);
}
