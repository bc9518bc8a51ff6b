/*
 * Stop accepting, on the supervisor's word (CLUSTER_SIG_STOP_ACCEPTING).
 *
 * In none and reuseport the worker accepts on a socket it shares with
 * others, so the supervisor cannot stop routing to it as in rr.  The shim
 * has no thread of its own; a signal is its way in.  The handler puts, in
 * place of each shared stream listener, a listening unix socket bound to an
 * abstract name nobody knows: accept() blocks or says EAGAIN, poll and
 * epoll never report it ready (epoll registrations are carried over), and
 * the server goes on serving what it holds.  The fd lets go of the handle,
 * and the worker's threads blocked in accept() on it are woken to find the
 * new file there (accept_wait.c).
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

/* A receive timeout on it: the kernel then never restarts an accept()
 * on it that a signal interrupted, even under SA_RESTART (signal(7)), so
 * the worker's graceful signal reaches a server blocked there (dropbear,
 * whose select() woke for a connection another worker took); the shim's
 * accept() returns that EINTR and waits again when the timeout expires
 * (accept_wait.c). */
static const struct timeval never_ready_timeout = { 3600, 0 };

int shim_never_ready_socket(void)
{
	/* bind() with the family alone picks a fresh abstract name
	 * (autobind): a real listener that nobody will connect to */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 &&
	    (real_bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) < 0 ||
	     real_listen(fd, 1) < 0 ||
	     real_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &never_ready_timeout,
			     sizeof(never_ready_timeout)) < 0)) {
		real_close(fd);
		return -1;
	}
	return fd;
}

static void stop_accepting_on(int fd)
{
	int nr = shim_never_ready_socket();
	int fl = real_fcntl(fd, F_GETFL, NULL);

	if (nr >= 0)
		shim_stopped_remember(fd, nr); /* getsockname() keeps its name */
	if (nr >= 0 && shim_install_fd(nr, fd, fl >= 0 && (fl & O_NONBLOCK)) < 0)
		real_close(nr);
	else if (nr >= 0)
		shim_accept_retire(fd);
	shim_fd_detach(fd);
	shim_accept_wake(fd); /* its other threads blocked in accept() */
}

/* Set while this thread runs the handler: what it lets go of is told to
 * the supervisor without waiting for an answer.  Initial-exec TLS: the
 * shim is preloaded, its TLS is static, no allocation on first use. */
static __thread int in_handler __attribute__((tls_model("initial-exec")));

bool shim_in_signal_handler(void)
{
	return in_handler != 0;
}

static void on_stop_accepting(int sig, siginfo_t *si, void *uc)
{
	int saved = errno, high = shim_fd_high(), fd;

	(void)sig;
	(void)uc;
	/* shim_accept_wake()'s nudge: the interrupted accept() restarts */
	if (si->si_code == SI_TKILL && si->si_pid == shim_real_pid())
		return;
	in_handler++;

	for (fd = 0; fd <= high; fd++) {
		struct shim_fd_info info;

		if (shim_fd_lookup(fd, &info) && info.kind == SHIM_FD_SHARED &&
		    shim_handle_get(info.slot)->type != SOCK_DGRAM)
			stop_accepting_on(fd);
	}
	in_handler--;
	errno = saved;
}

void shim_stop_accepting_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_stop_accepting;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(CLUSTER_SIG_STOP_ACCEPTING, &sa, NULL);
}
