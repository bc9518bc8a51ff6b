/*
 * getsockopt()/setsockopt() on a faux handle go to the real listener (the
 * shim keeps a copy of it), so SO_ACCEPTCONN, SO_TYPE, SO_DOMAIN,
 * SO_PROTOCOL, TCP_DEFER_ACCEPT and friends read and apply as on the socket
 * the server believes it has.
 *
 * SO_REUSEPORT on any cluster listener is the server's own: the reuseport
 * policy sets it on the real socket, and a server that reads it back (or a
 * test suite) must see what it set.  Turning it off is only recorded: on a
 * reuseport slot it would take the socket out of its group.
 */
#include <errno.h>
#include <string.h>
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

/* The handle of a cluster listener for an SO_REUSEPORT call, or NULL. */
static struct shim_handle *reuseport_handle(int fd, int level, int name)
{
	struct shim_fd_info info;

	if (level != SOL_SOCKET || name != SO_REUSEPORT || !shim_active() ||
	    !shim_fd_lookup(fd, &info))
		return NULL;
	return shim_handle_get(info.slot);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct shim_handle *h = reuseport_handle(fd, level, name);
	int v;

	if (h && val && len && *len >= sizeof(int)) {
		v = h->server_reuseport;
		memcpy(val, &v, sizeof(v));
		*len = sizeof(v);
		return 0;
	}
	return real_getsockopt(option_target(fd), level, name, val, len);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct shim_handle *h = reuseport_handle(fd, level, name);
	int v;

	if (h && val && len >= sizeof(int)) {
		memcpy(&v, val, sizeof(v));
		h->server_reuseport = v != 0;
		if (v == 0)
			return 0;
	}
	return real_setsockopt(option_target(fd), level, name, val, len);
}
