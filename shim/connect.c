/*
 * connect() on a socket that was bound through the supervisor: it was a
 * client binding its source address, not a listener.  The worker lets go of
 * the handle and the socket gets its own real bind before connecting.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

/* True when the socket has no local address yet (a joining worker's socket
 * was never bound; the first worker's was bound by the supervisor). */
static bool unbound(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (real_getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_UNIX)
		return len <= sizeof(sa_family_t);
	return ((struct sockaddr_in *)&ss)->sin_port == 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct shim_fd_info info;
	struct cluster_sockaddr requested;

	if (!shim_active() || !shim_fd_lookup(fd, &info) ||
	    info.kind != SHIM_FD_PENDING)
		return real_connect(fd, addr, len);
	requested = shim_handle_get(info.slot)->requested;
	shim_fd_detach(fd);
	if (unbound(fd) &&
	    real_bind(fd, (struct sockaddr *)&requested.ss, requested.len) < 0)
		return -1;
	return real_connect(fd, addr, len);
}
