/*
 * shutdown() on a listener.  On a real listening socket, SHUT_RD or
 * SHUT_RDWR stops it for good: accept() then fails with EINVAL and poll()
 * reports a hang-up.  Here the listening socket is the cluster's (none,
 * datagrams) or the supervisor's (rr), and socat calls shutdown(SHUT_RDWR)
 * on its listener at exit: done for real it would stop the listener of every
 * worker.  So the shim does to this worker what the call means for it: the
 * worker lets go of the handle (the supervisor sends it nothing more) and its
 * fds on the listener become a socket of the same kind that was shut down
 * itself, never listening; the shared socket stays as it was for the others.
 * SHUT_WR changes nothing on a listener (as in the kernel).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

/* A socket of the listener's kind, shut down itself, never listening. */
static int dead_socket(int domain, int type, int protocol, int how)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, protocol);

	if (fd >= 0)
		(void)real_shutdown(fd, how); /* ENOTCONN; the state is set */
	return fd;
}

/* Every fd of this process on the slot's handle becomes a dead socket. */
static void retire_listener(unsigned slot, int how)
{
	const struct shim_handle *h = shim_handle_get(slot);
	/* read now: the slot is freed with the last fd */
	int domain = h->domain, type = h->type, protocol = h->protocol;
	int high = shim_fd_high(), fd;

	for (fd = 0; fd <= high; fd++) {
		struct shim_fd_info info;
		int dead, fl;

		if (!shim_fd_lookup(fd, &info) || info.slot != slot)
			continue;
		fl = real_fcntl(fd, F_GETFL, NULL);
		dead = dead_socket(domain, type, protocol, how);
		if (dead >= 0 &&
		    shim_install_fd(dead, fd, fl >= 0 && (fl & O_NONBLOCK)) < 0)
			real_close(dead);
		/* after the swap: the supervisor may let go of the handle
		 * once told, and this process must not hold it any more */
		shim_fd_detach(fd);
		/* threads blocked in accept() on it: EINVAL, as on a real
		 * shut-down listener */
		shim_accept_wake(fd);
	}
}

int shutdown(int fd, int how)
{
	struct shim_fd_info info;
	int saved = errno;

	if (shim_active() && shim_accept_retired(fd))
		/* the server's own shutdown of a listener stop-accepting
		 * retired: its threads' accept()s fail with EINVAL, as on a
		 * real listener, instead of sleeping on (accept_wait.c) */
		shim_accept_forget(fd);
	if (!shim_active() || !shim_fd_lookup(fd, &info))
		return real_shutdown(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		errno = EINVAL;
		return -1;
	}
	if (info.kind == SHIM_FD_PENDING) {
		/* bound, neither listening nor connected */
		errno = ENOTCONN;
		return -1;
	}
	if (how != SHUT_WR)
		retire_listener(info.slot, how);
	errno = saved;
	return 0;
}
