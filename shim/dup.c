/*
 * dup()/dup2()/dup3(): every copy of a listener is a listener; the worker
 * lets go of the handle only when its last copy is closed.  dup2() or dup3()
 * onto the number of one of the shim's own fds (the channel, a shadow
 * listener) moves that fd away first, so the server gets the number it asked
 * for and the shim keeps its fd.
 */
#include <unistd.h>

#include "real.h"
#include "shim.h"

void shim_channel_set_fd(int fd)
{
	int old = __atomic_load_n(&shim_channel_fd, __ATOMIC_ACQUIRE);

	shim_fd_set(fd, SHIM_FD_INTERNAL, SHIM_SLOT_CHANNEL);
	__atomic_store_n(&shim_channel_fd, fd, __ATOMIC_RELEASE);
	if (old >= 0 && old != fd)
		shim_fd_clear(old);
}

void shim_channel_vacate(int fd2)
{
	struct shim_handle *h;
	unsigned slot;
	int nfd;

	if (!shim_active())
		return;
	/* a vfork child's dup2() onto these numbers is on its own fds: the
	 * worker's memory, which it shares, stays as it is (shim.h, rule 5) */
	if ((fd2 == shim_channel_fd || shim_fd_internal(fd2, NULL)) &&
	    !shim_owns_memory())
		return;
	if (fd2 == shim_channel_fd) {
		/* the channel stays open across the worker's own exec */
		nfd = shim_move_fd_high(fd2, false);
		if (nfd != fd2)
			shim_channel_set_fd(nfd);
		return;
	}
	if (!shim_fd_internal(fd2, &slot) || slot == SHIM_SLOT_CHANNEL ||
	    !(h = shim_handle_get(slot)) || h->shadow_fd != fd2)
		return;
	nfd = shim_move_fd_high(fd2, true);
	if (nfd == fd2)
		return;
	shim_fd_set(nfd, SHIM_FD_INTERNAL, slot);
	h->shadow_fd = nfd;
	shim_fd_clear(fd2);
}

int dup(int fd)
{
	int fd2 = real_dup(fd);

	if (fd2 >= 0 && shim_active())
		shim_fd_copy(fd, fd2);
	return fd2;
}

int dup2(int fd, int fd2)
{
	int rc;

	shim_channel_vacate(fd2);
	rc = real_dup2(fd, fd2);
	if (rc >= 0 && shim_active())
		shim_fd_copy(fd, fd2);
	return rc;
}

int dup3(int fd, int fd2, int flags)
{
	int rc;

	shim_channel_vacate(fd2);
	rc = real_dup3(fd, fd2, flags);
	if (rc >= 0 && shim_active())
		shim_fd_copy(fd, fd2);
	return rc;
}
