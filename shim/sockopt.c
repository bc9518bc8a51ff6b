/*
 * getsockopt()/setsockopt() on a faux handle go to the real listener (the
 * shim keeps a copy of it), so SO_ACCEPTCONN, SO_TYPE, SO_DOMAIN,
 * SO_PROTOCOL, TCP_DEFER_ACCEPT and friends read and apply as on the socket
 * the server believes it has.
 */
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

static int option_target(int fd)
{
	struct shim_fd_info info;
	struct shim_handle *h;

	if (!shim_active() || !shim_fd_lookup(fd, &info) ||
	    info.kind != SHIM_FD_FAUX)
		return fd;
	h = shim_handle_get(info.slot);
	return h->shadow_fd >= 0 ? h->shadow_fd : fd;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	return real_getsockopt(option_target(fd), level, name, val, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return real_setsockopt(option_target(fd), level, name, val, len);
}
