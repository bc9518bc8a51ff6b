/*
 * shutdown() on a listener must not shut the listener of every worker (socat
 * calls shutdown(SHUT_RDWR) on its listener at exit): it detaches this
 * worker's fd from the handle and leaves the shared socket alone.
 */
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

int shutdown(int fd, int how)
{
	struct shim_fd_info info;

	if (!shim_active() || !shim_fd_lookup(fd, &info))
		return real_shutdown(fd, how);
	if (info.kind == SHIM_FD_PENDING)
		return real_shutdown(fd, how);
	shim_fd_detach(fd);
	return 0;
}
