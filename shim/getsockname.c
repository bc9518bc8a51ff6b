/*
 * getsockname()/getpeername() on listeners: a faux handle or a socket still
 * waiting for listen() answers with the address the handle really has (the
 * real port for port 0).  A unix path is told exactly as the server gave
 * it (relative stays relative), whatever the supervisor bound.  A listener
 * that stopped accepting keeps the name it had (stopped_names.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

static int copy_address(const struct cluster_sockaddr *ca,
			struct sockaddr *addr, socklen_t *len)
{
	socklen_t n;

	if (!addr || !len) {
		errno = EFAULT;
		return -1;
	}
	n = ca->len < *len ? ca->len : *len;
	memcpy(addr, &ca->ss, n);
	*len = ca->len;
	return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct shim_fd_info info;
	struct shim_handle *h;

	if (!shim_active())
		return real_getsockname(fd, addr, len);
	if (!shim_fd_lookup(fd, &info)) {
		int saved = errno;

		if (shim_stopped_name(fd, addr, len)) {
			errno = saved;
			return 0;
		}
		errno = saved;
		return real_getsockname(fd, addr, len);
	}
	h = shim_handle_get(info.slot);
	if (h->domain == AF_UNIX)
		return copy_address(&h->requested, addr, len);
	if (info.kind == SHIM_FD_SHARED)
		return real_getsockname(fd, addr, len);
	return copy_address(&h->bound, addr, len);
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct shim_fd_info info;

	if (shim_active() && shim_fd_lookup(fd, &info) &&
	    info.kind == SHIM_FD_FAUX) {
		errno = ENOTCONN; /* a listener has no peer */
		return -1;
	}
	return real_getpeername(fd, addr, len);
}
