/*
 * connect() on a socket that was bound through the supervisor: it was a
 * client binding its source address, not a listener (the shim could not
 * tell at bind()).  The worker lets go of the handle, and the socket it
 * connects must be its own:
 *   - a joining worker's socket was never bound: it gets its own real bind
 *     of the address it asked for;
 *   - the first worker's socket is the one the supervisor bound and holds a
 *     copy of (as it may hold the handle for other workers, that copy would
 *     keep the connection open after the server closes it).  For a port-0
 *     bind, or a shared datagram socket, the worker gets a fresh socket
 *     with the options the server set, bound where the old one was (a
 *     port-0 socket keeps the port bind() gave it);
 *     a fixed port stays on the socket that has it (the supervisor lets go
 *     of its copy with the handle, as this worker was its only user).
 * Either way the socket gets back the O_NONBLOCK the server gave it (in rr
 * the supervisor made the bound socket non-blocking for its accept loop).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

static bool port_zero(const struct cluster_sockaddr *ca)
{
	const struct sockaddr *sa = (const struct sockaddr *)&ca->ss;

	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_port == 0;
	if (sa->sa_family == AF_INET6)
		return ((const struct sockaddr_in6 *)sa)->sin6_port == 0;
	return false;
}

struct option_id {
	int level, name;
};

/* Options a server sets on a client socket before bind(). */
static const struct option_id client_options[] = {
	{ SOL_SOCKET, SO_REUSEADDR }, /* SO_REUSEPORT: the server's, below */
	{ SOL_SOCKET, SO_KEEPALIVE }, { SOL_SOCKET, SO_BROADCAST },
	{ SOL_SOCKET, SO_OOBINLINE }, { SOL_SOCKET, SO_PRIORITY },
	{ SOL_SOCKET, SO_MARK }, { SOL_SOCKET, SO_LINGER },
	{ SOL_SOCKET, SO_RCVTIMEO }, { SOL_SOCKET, SO_SNDTIMEO },
	{ SOL_SOCKET, SO_RCVBUF }, { SOL_SOCKET, SO_SNDBUF },
	{ SOL_SOCKET, SO_RCVLOWAT }, { SOL_SOCKET, SO_BINDTODEVICE },
	{ IPPROTO_TCP, TCP_NODELAY }, { IPPROTO_TCP, TCP_KEEPIDLE },
	{ IPPROTO_TCP, TCP_KEEPINTVL }, { IPPROTO_TCP, TCP_KEEPCNT },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT }, { IPPROTO_TCP, TCP_CONGESTION },
	{ IPPROTO_TCP, TCP_MAXSEG }, { IPPROTO_TCP, TCP_WINDOW_CLAMP },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT },
	{ IPPROTO_TCP, TCP_FASTOPEN_CONNECT },
	{ IPPROTO_IP, IP_TOS }, { IPPROTO_IP, IP_TTL },
	{ IPPROTO_IP, IP_FREEBIND }, { IPPROTO_IP, IP_TRANSPARENT },
	{ IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT },
	{ IPPROTO_IP, IP_MTU_DISCOVER }, { IPPROTO_IP, IP_RECVERR },
	{ IPPROTO_IP, IP_PKTINFO },
	{ IPPROTO_IPV6, IPV6_V6ONLY }, { IPPROTO_IPV6, IPV6_TCLASS },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS }, { IPPROTO_IPV6, IPV6_RECVERR },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER },
};

/* Every option whose value on from differs from the fresh socket's. */
static void copy_options(int from, int to, int domain)
{
	size_t i;

	for (i = 0; i < sizeof(client_options) / sizeof(client_options[0]);
	     i++) {
		const struct option_id *o = &client_options[i];
		char a[64], b[64];
		socklen_t alen = sizeof(a), blen = sizeof(b);

		if ((o->level == IPPROTO_IP && domain != AF_INET) ||
		    (o->level == IPPROTO_IPV6 && domain != AF_INET6))
			continue;
		memset(a, 0, sizeof(a));
		memset(b, 0, sizeof(b));
		if (real_getsockopt(from, o->level, o->name, a, &alen) < 0 ||
		    real_getsockopt(to, o->level, o->name, b, &blen) < 0 ||
		    (alen == blen && memcmp(a, b, alen) == 0))
			continue;
		if (o->level == SOL_SOCKET &&
		    (o->name == SO_RCVBUF || o->name == SO_SNDBUF)) {
			int v = *(int *)a / 2; /* the kernel doubles it */

			real_setsockopt(to, o->level, o->name, &v, sizeof(v));
			continue;
		}
		real_setsockopt(to, o->level, o->name, a, alen);
	}
}

static void set_int_option(int fd, int name, int v)
{
	real_setsockopt(fd, SOL_SOCKET, name, &v, sizeof(v));
}

static int int_option(int fd, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	real_getsockopt(fd, SOL_SOCKET, name, &v, &len);
	return v;
}

/* Binds s where fd is: a port-0 socket keeps the port bind() gave it (the
 * supervisor's copy of fd may still hold it, and fd does until s takes its
 * place: SO_REUSEADDR on both lets two sockets that never listen share a
 * port for that moment).  Else, or when that fails (other workers listen
 * on the port), what the server asked for. */
static int bind_like(int s, int fd, const struct shim_handle *h)
{
	int s_reuse = int_option(s, SO_REUSEADDR);
	int fd_reuse = int_option(fd, SO_REUSEADDR);
	int rc;

	if (port_zero(&h->requested)) {
		set_int_option(s, SO_REUSEADDR, 1);
		set_int_option(fd, SO_REUSEADDR, 1);
		rc = real_bind(s, (const struct sockaddr *)&h->bound.ss,
			       h->bound.len);
		set_int_option(s, SO_REUSEADDR, s_reuse);
		set_int_option(fd, SO_REUSEADDR, fd_reuse);
		if (rc == 0)
			return 0;
	}
	return real_bind(s, (const struct sockaddr *)&h->requested.ss,
			 h->requested.len);
}

/* A socket of the same kind, the same options, bound where fd is (or to
 * what the server asked for), in fd's place; -1 if that cannot be done
 * (fd unchanged). */
static int take_private_socket(int fd, const struct shim_handle *h,
			       bool nonblock)
{
	int s = socket(h->domain, h->type | SOCK_CLOEXEC, h->protocol);

	if (s < 0)
		return -1;
	copy_options(fd, s, h->domain);
	set_int_option(s, SO_REUSEPORT, h->server_reuseport);
	if (bind_like(s, fd, h) < 0 || shim_install_fd(s, fd, nonblock) < 0) {
		real_close(s);
		return -1;
	}
	return 0;
}

static void set_nonblock(int fd, bool nonblock)
{
	int fl = real_fcntl(fd, F_GETFL, NULL);

	if (fl >= 0 && !!(fl & O_NONBLOCK) != nonblock)
		real_fcntl(fd, F_SETFL,
			   (void *)(long)(nonblock ? fl | O_NONBLOCK
						   : fl & ~O_NONBLOCK));
}

/* The handle is let go of and fd is a socket of this worker alone. */
static int become_client(int fd, unsigned slot, enum shim_fd_kind kind)
{
	const struct shim_handle *h = shim_handle_get(slot);
	struct shim_handle copy = *h; /* the slot may go with the detach */
	int saved = errno, fl;
	bool nonblock;

	if (kind == SHIM_FD_PENDING && copy.supervisor_accepts) {
		nonblock = copy.server_nonblock;
	} else {
		fl = real_fcntl(fd, F_GETFL, NULL);
		nonblock = fl >= 0 && (fl & O_NONBLOCK);
	}
	shim_fd_detach(fd);
	if (kind == SHIM_FD_PENDING && unbound(fd)) {
		if (real_bind(fd, (struct sockaddr *)&copy.requested.ss,
			      copy.requested.len) < 0)
			return -1;
	} else if ((port_zero(&copy.requested) || kind == SHIM_FD_SHARED) &&
		   take_private_socket(fd, &copy, nonblock) == 0) {
		errno = saved;
		return 0;
	}
	set_nonblock(fd, nonblock);
	/* the reuseport policy set it on the socket, not the server */
	if (int_option(fd, SO_REUSEPORT) != copy.server_reuseport)
		set_int_option(fd, SO_REUSEPORT, copy.server_reuseport);
	errno = saved;
	return 0;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct shim_fd_info info;

	if (!shim_active() || !shim_fd_lookup(fd, &info))
		return real_connect(fd, addr, len);
	/* a listener (faux handle, shared stream socket): as the kernel says */
	if (info.kind == SHIM_FD_FAUX ||
	    (info.kind == SHIM_FD_SHARED &&
	     shim_handle_get(info.slot)->type != SOCK_DGRAM))
		return real_connect(fd, addr, len);
	if (become_client(fd, info.slot, info.kind) < 0)
		return -1;
	return real_connect(fd, addr, len);
}
