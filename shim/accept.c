/*
 * accept()/accept4() on a faux handle: the connection arrives as a newconn
 * message with the socket attached; the peer address travels in the message.
 * Blocking, O_NONBLOCK, EINTR and EAGAIN behave as on a real listener because
 * the faux handle is a real socket and recvmsg() honours the same flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

static void copy_peer(const struct cluster_sockaddr *peer,
		      struct sockaddr *addr, socklen_t *len)
{
	socklen_t n;

	if (!addr || !len)
		return;
	n = peer->len < *len ? peer->len : *len;
	memcpy(addr, &peer->ss, n);
	*len = peer->len;
}

/* The connection's O_NONBLOCK as the caller asked, at no cost when the
 * supervisor already delivered it that way (it does, for servers whose
 * listener is non-blocking), else one ioctl. */
static void match_nonblock(int conn, bool delivered_nonblock, bool want)
{
	int on = want;

	if (delivered_nonblock != want)
		real_ioctl(conn, FIONBIO, &on);
}

/* Whether this process has a free fd for the connection.  A real accept()
 * with none fails with EMFILE and leaves the connection queued; receiving
 * the newconn message with no room would truncate its SCM_RIGHTS
 * (MSG_CTRUNC) and lose the connection, so look first.  (A thread that
 * takes the last fd between this look and the receive still loses one:
 * ECONNABORTED below.) */
static bool fd_room(int fd)
{
	int probe = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)0L);

	if (probe < 0)
		return false;
	real_close(probe);
	return true;
}

static int faux_accept(int fd, struct sockaddr *addr, socklen_t *len,
		       int flags)
{
	struct cluster_msg_newconn msg;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, saved = errno;
	ssize_t n;

	if (!fd_room(fd))
		return -1; /* EMFILE or ENFILE, as accept() says */
	n = cluster_msg_recv(fd, &msg, sizeof(msg), fds, &nfds,
			     (flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0,
			     NULL);
	if (n < 0)
		return -1;
	if (n == 0 || cluster_msg_validate(&msg, (size_t)n, nfds) != 0 ||
	    msg.hdr.type != CLUSTER_MSG_NEWCONN) {
		/* The supervisor went away, or the connection was lost in
		 * transit (we are out of fds): as a real accept() would say
		 * of a connection aborted before it was taken. */
		for (i = 0; i < nfds; i++)
			real_close(fds[i]);
		errno = ECONNABORTED;
		return -1;
	}
	match_nonblock(fds[0], msg.flags & CLUSTER_NEWCONN_NONBLOCK,
		       flags & SOCK_NONBLOCK);
	copy_peer(&msg.peer, addr, len);
	errno = saved;
	return fds[0];
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct shim_fd_info info;

	if (shim_active() && shim_fd_lookup(fd, &info)) {
		shim_served = true;
		if (info.kind == SHIM_FD_FAUX)
			return shim_took_connection(
				faux_accept(fd, addr, len, flags));
		return shim_took_connection(
			shim_accept_shared(fd, addr, len, flags));
	}
	if (shim_active() && shim_accept_retired(fd))
		return shim_accept_shared(fd, addr, len, flags);
	return real_accept4(fd, addr, len, flags);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct shim_fd_info info;

	if (shim_active() && shim_fd_lookup(fd, &info)) {
		shim_served = true;
		if (info.kind == SHIM_FD_FAUX)
			return shim_took_connection(
				faux_accept(fd, addr, len, 0));
		return shim_took_connection(
			shim_accept_shared(fd, addr, len, 0));
	}
	if (shim_active() && shim_accept_retired(fd))
		return shim_accept_shared(fd, addr, len, 0);
	return real_accept(fd, addr, len);
}
