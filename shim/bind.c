/*
 * bind(): a worker's listening address is asked of the supervisor
 * (Node's queryServer).  The server's own socket travels with the query, and
 * the supervisor binds that very socket when it is the first to ask, so every
 * option the server set before bind() holds on the listener.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static bool clusterable_address(const struct sockaddr *addr, socklen_t len)
{
	if (!addr || len < sizeof(sa_family_t) ||
	    len > sizeof(struct sockaddr_storage))
		return false;
	switch (addr->sa_family) {
	case AF_INET:
		return len >= sizeof(struct sockaddr_in);
	case AF_INET6:
		return len >= sizeof(struct sockaddr_in6);
	case AF_UNIX: /* named or abstract; not autobind */
		return len > offsetof(struct sockaddr_un, sun_path);
	}
	return false;
}

/* IP_BIND_ADDRESS_NO_PORT: the bind of a client that is going to connect
 * (nginx's proxy_bind sets it); such a socket never listens. */
static bool client_only(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return real_getsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v,
			       &len) == 0 && v != 0;
}

static bool reuseport_set(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return real_getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0 &&
	       v != 0;
}

static bool clusterable_socket(int fd, int *type, int *protocol)
{
	socklen_t len = sizeof(*type);
	struct shim_fd_info info;

	if (fd < 0 || fd >= SHIM_MAX_FD || shim_fd_lookup(fd, &info))
		return false;
	if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) < 0)
		return false;
	if (*type != SOCK_STREAM && *type != SOCK_DGRAM &&
	    *type != SOCK_SEQPACKET)
		return false;
	len = sizeof(*protocol);
	if (real_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, protocol, &len) < 0)
		*protocol = 0;
	return !client_only(fd);
}

/* A relative unix path means the worker's cwd; the supervisor has its own.
 * False when cwd/path does not fit in sun_path (ca unchanged). */
static bool absolutize_unix_path(struct cluster_sockaddr *ca)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ca->ss;
	char cwd[sizeof(sun->sun_path)], abs[sizeof(sun->sun_path)];
	size_t plen = ca->len - offsetof(struct sockaddr_un, sun_path);
	int n;

	if (sun->sun_path[0] == '\0' || sun->sun_path[0] == '/')
		return true;
	if (!getcwd(cwd, sizeof(cwd)))
		return false;
	n = snprintf(abs, sizeof(abs), "%s/%.*s", cwd,
		     (int)strnlen(sun->sun_path, plen), sun->sun_path);
	if (n < 0 || (size_t)n >= sizeof(abs))
		return false;
	memcpy(sun->sun_path, abs, (size_t)n + 1);
	ca->len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return true;
}

/* A relative unix path: the kernel keeps the name as bound, and tells it
 * (getsockname() on every connection accepted from it, getpeername() on
 * every client's), so only this process, in its own cwd, can bind it as
 * the server meant.  It does; the query carries the absolute path (the
 * listener's name in the supervisor's books) when it fits, else the
 * relative one, and the supervisor takes the bound socket as it is (it
 * checks the name).  A path in use (another worker's listener) is for the
 * supervisor to join.  *bound_here: this process made the file. */
static int bind_unix_here(int fd, struct cluster_sockaddr *ca, bool *bound_here)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ca->ss;

	*bound_here = false;
	if (sun->sun_path[0] == '\0' || sun->sun_path[0] == '/')
		return 0;
	if (real_bind(fd, (struct sockaddr *)&ca->ss, ca->len) == 0)
		*bound_here = true;
	else if (errno != EADDRINUSE)
		return -1;
	absolutize_unix_path(ca);
	return 0;
}

static int remember_handle(int fd, unsigned slot,
			   const struct cluster_msg_query_server *q,
			   const struct cluster_sockaddr *asked,
			   const struct cluster_msg_reply *reply, int *fds,
			   int nfds)
{
	struct shim_handle *h = shim_handle_get(slot);

	h->handle_id = reply->handle_id;
	h->domain = q->domain;
	h->type = q->type;
	h->protocol = q->protocol;
	h->requested = *asked; /* as the server gave it: relative stays so */
	h->bound = reply->bound;
	h->supervisor_accepts = reply->flags & CLUSTER_REPLY_SUPERVISOR_ACCEPTS;
	if (reply->kind == CLUSTER_HANDLE_SHARED && nfds == 1) {
		if (shim_install_fd(fds[0], fd, h->server_nonblock) < 0) {
			int saved = errno;

			real_close(fds[0]);
			shim_handle_unref(slot);
			errno = saved;
			return -1;
		}
		shim_fd_set(fd, SHIM_FD_SHARED, slot);
		shim_handle_set_file(slot, fd);
		return 0;
	}
	shim_fd_set(fd, SHIM_FD_PENDING, slot);
	shim_handle_set_file(slot, fd);
	return 0;
}

static int bind_via_supervisor(int fd, const struct sockaddr *addr,
			       socklen_t len, int type, int protocol)
{
	struct cluster_msg_query_server q;
	struct cluster_msg_reply reply;
	struct cluster_sockaddr asked;
	bool bound_here = false;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, slot, saved = errno;

	shim_handle_recheck_heirs();
	slot = shim_handle_alloc();
	if (slot < 0)
		return real_bind(fd, addr, len); /* out of slots: unclustered */
	/* Before the supervisor can touch the file's flags. */
	shim_handle_get((unsigned)slot)->server_nonblock =
		real_fcntl(fd, F_GETFL, NULL) & O_NONBLOCK;
	shim_handle_get((unsigned)slot)->server_reuseport = reuseport_set(fd);
	cluster_msg_init(&q, CLUSTER_MSG_QUERY_SERVER);
	q.domain = addr->sa_family;
	q.type = type;
	q.protocol = protocol;
	q.addr.len = len;
	memcpy(&q.addr.ss, addr, len);
	asked = q.addr;
	if (addr->sa_family == AF_UNIX &&
	    bind_unix_here(fd, &q.addr, &bound_here) < 0) {
		shim_handle_discard((unsigned)slot);
		return -1;
	}
	if (shim_channel_request(&q, fd, &reply, fds, &nfds) < 0) {
		shim_handle_discard((unsigned)slot);
		return -1;
	}
	if (reply.error != 0) {
		for (i = 0; i < nfds; i++)
			real_close(fds[i]);
		if (bound_here) /* refused (--listen): leave no file behind */
			real_unlink(((struct sockaddr_un *)&asked.ss)->sun_path);
		shim_handle_discard((unsigned)slot);
		errno = reply.error;
		return -1;
	}
	if (remember_handle(fd, (unsigned)slot, &q, &asked, &reply, fds,
			    nfds) < 0)
		return -1;
	shim_served = true;
	errno = saved;
	return 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int type, protocol;

	/* Rule 3 of the ownership model (shim.h): only the worker, before
	 * it serves, binds through the supervisor. */
	if (!shim_active() || !clusterable_address(addr, len) ||
	    !clusterable_socket(fd, &type, &protocol) ||
	    !shim_binds_for_cluster())
		return real_bind(fd, addr, len);
	return bind_via_supervisor(fd, addr, len, type, protocol);
}
