/*
 * The server's O_NONBLOCK on a listener that is bound but not listening yet.
 *
 * In rr the first worker's own socket becomes the supervisor's listener,
 * which the supervisor keeps non-blocking for its accept loop; that is one
 * open file, so its flags say nothing of what the server wants and must not
 * be changed by it.  The shim keeps the server's wish and applies it to the
 * fd the server gets at listen().
 */
#include <fcntl.h>

#include "shim.h"

static struct shim_handle *pending_handle(int fd)
{
	struct shim_fd_info info;

	if (!shim_fd_lookup(fd, &info) || info.kind != SHIM_FD_PENDING)
		return NULL;
	return shim_handle_get(info.slot);
}

bool shim_pending_set_nonblock(int fd, bool nonblock)
{
	struct shim_handle *h = pending_handle(fd);

	if (!h)
		return false;
	h->server_nonblock = nonblock;
	return h->supervisor_accepts;
}

int shim_pending_getfl(int fd, int real_flags)
{
	struct shim_handle *h = pending_handle(fd);

	if (!h || !h->supervisor_accepts)
		return real_flags;
	return h->server_nonblock ? real_flags | O_NONBLOCK
				  : real_flags & ~O_NONBLOCK;
}
