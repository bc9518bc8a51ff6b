/*
 * dup()/dup2()/dup3(): every copy of a listener is a listener; the worker
 * lets go of the handle only when its last copy is closed.  dup2() onto the
 * channel's number moves the channel away first.
 */
#include <unistd.h>

#include "real.h"
#include "shim.h"

/* The server wants fd2's number: if the channel sits there, move it. */
void shim_channel_vacate(int fd2)
{
	if (shim_active() && fd2 == shim_channel_fd)
		__atomic_store_n(&shim_channel_fd,
				 shim_move_fd_high(shim_channel_fd, false),
				 __ATOMIC_RELEASE);
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
