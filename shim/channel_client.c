/*
 * Talking to the supervisor.  Each request carries its own reply socket, so
 * any thread or forked child can ask at any time, with no lock to hold across
 * fork() and no reply that could reach the wrong asker.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static int recv_reply(int sock, struct cluster_msg_reply *reply,
		      int fds[CLUSTER_MSG_RECV_FDS], int *nfds)
{
	ssize_t n;
	int i;

	do
		n = cluster_msg_recv(sock, reply, sizeof(*reply), fds, nfds,
				     MSG_CMSG_CLOEXEC, NULL);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0)
			errno = ECONNRESET;
		return -1;
	}
	if (cluster_msg_validate(reply, (size_t)n, *nfds) != 0 ||
	    reply->hdr.type != CLUSTER_MSG_REPLY ||
	    (int)reply->nfds != *nfds) {
		for (i = 0; i < *nfds; i++)
			real_close(fds[i]);
		*nfds = 0;
		errno = EPROTO;
		return -1;
	}
	return 0;
}

/* ETOOMANYREFS: this user's fds in flight (queued in unix sockets,
 * unread) are at its RLIMIT_NOFILE, held by workers that stopped reading;
 * the supervisor takes those back as soon as it meets the limit itself
 * (rr_handle.c).  Back-pressure, not a failure: the request waits for
 * room, 10 ms at a time, for at most 5 s. */
#define INFLIGHT_RETRY_MS 10
#define INFLIGHT_RETRIES 500

static int send_request(const void *msg, size_t len, const int *fds,
			int nfds)
{
	int tries = 0, rc;

	while ((rc = cluster_msg_send(shim_channel_fd, msg, len, fds, nfds,
				      0)) < 0 &&
	       errno == ETOOMANYREFS && tries++ < INFLIGHT_RETRIES)
		(void)poll(NULL, 0, INFLIGHT_RETRY_MS);
	return rc;
}

int shim_channel_request(void *msg, int extra_fd,
			 struct cluster_msg_reply *reply,
			 int fds[CLUSTER_MSG_RECV_FDS], int *nfds)
{
	const struct cluster_msg_header *hdr = msg;
	int pair[2], send_fds[2], rc, saved;

	*nfds = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return -1;
	send_fds[0] = pair[1];
	send_fds[1] = extra_fd;
	rc = send_request(msg, hdr->length, send_fds, extra_fd >= 0 ? 2 : 1);
	real_close(pair[1]);
	if (rc == 0)
		rc = recv_reply(pair[0], reply, fds, nfds);
	saved = errno;
	real_close(pair[0]);
	errno = saved;
	return rc;
}

int shim_channel_notify(void *msg)
{
	const struct cluster_msg_header *hdr = msg;

	return cluster_msg_send(shim_channel_fd, msg, hdr->length, NULL, 0,
				MSG_DONTWAIT);
}

int shim_move_fd_high(int fd, bool cloexec)
{
	/* High, but not so high that the kernel grows a huge fd table for it
	 * (RLIMIT_NOFILE is often 1M); below 1024 it stays select()-safe for
	 * nobody's sake but costs nothing either. */
	static const int floors[] = { 1000, 200, 64, 3 };
	unsigned i;

	for (i = 0; i < sizeof(floors) / sizeof(floors[0]); i++) {
		int nfd = real_fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD,
				     (void *)(long)floors[i]);

		if (nfd >= 0) {
			real_close(fd);
			return nfd;
		}
	}
	return fd;
}

int shim_install_fd(int newfd, int fd, bool nonblock)
{
	struct shim_epoll_reg regs[SHIM_EPOLL_MAX_REGS];
	int fdfl = real_fcntl(fd, F_GETFD, NULL);
	int fl, nregs;

	if (fdfl < 0)
		return -1;
	nregs = shim_epoll_regs(fd, regs, SHIM_EPOLL_MAX_REGS);
	shim_epoll_drop(fd, regs, nregs);
	if (real_dup3(newfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		int saved = errno;

		shim_epoll_restore(fd, regs, nregs);
		errno = saved;
		return -1;
	}
	real_close(newfd);
	fl = real_fcntl(fd, F_GETFL, NULL);
	if (fl >= 0 && !!(fl & O_NONBLOCK) != nonblock)
		real_fcntl(fd, F_SETFL,
			   (void *)(long)(nonblock ? fl | O_NONBLOCK
						   : fl & ~O_NONBLOCK));
	shim_epoll_restore(fd, regs, nregs);
	return 0;
}
