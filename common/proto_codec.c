#include "proto_codec.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* Size and the most fds each message type may carry. */
static const struct {
	size_t size;
	int max_fds;
	int min_fds;
} msg_table[CLUSTER_MSG_TYPE_MAX] = {
	[CLUSTER_MSG_HELLO] = { sizeof(struct cluster_msg_hello), 0, 0 },
	[CLUSTER_MSG_QUERY_SERVER] = { sizeof(struct cluster_msg_query_server), 2, 2 },
	[CLUSTER_MSG_LISTEN] = { sizeof(struct cluster_msg_listen), 1, 1 },
	[CLUSTER_MSG_CLOSE] = { sizeof(struct cluster_msg_close), 1, 0 },
	[CLUSTER_MSG_UNLINK_PATH] = { sizeof(struct cluster_msg_unlink_path), 1, 1 },
	[CLUSTER_MSG_REPLY] = { sizeof(struct cluster_msg_reply), 2, 0 },
	[CLUSTER_MSG_NEWCONN] = { sizeof(struct cluster_msg_newconn), 1, 1 },
	[CLUSTER_MSG_EXEC] = { sizeof(struct cluster_msg_exec), 1, 1 },
};

size_t cluster_msg_size(unsigned type)
{
	if (type == 0 || type >= CLUSTER_MSG_TYPE_MAX)
		return 0;
	return msg_table[type].size;
}

void cluster_msg_init(void *msg, enum cluster_msg_type type)
{
	struct cluster_msg_header *hdr = msg;
	size_t size = cluster_msg_size(type);

	memset(msg, 0, size);
	hdr->version = CLUSTER_PROTO_VERSION;
	hdr->type = (uint16_t)type;
	hdr->length = (uint32_t)size;
}

int cluster_msg_validate(const void *buf, size_t len, int nfds)
{
	struct cluster_msg_header hdr;
	size_t want;

	if (len < sizeof(hdr))
		return -EBADMSG;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.version != CLUSTER_PROTO_VERSION)
		return -EPROTO;
	want = cluster_msg_size(hdr.type);
	if (want == 0 || len != want || hdr.length != want)
		return -EBADMSG;
	if (nfds < msg_table[hdr.type].min_fds ||
	    nfds > msg_table[hdr.type].max_fds)
		return -EMSGSIZE;
	return 0;
}

int cluster_msg_send(int sock, const void *msg, size_t len, const int *fds,
		     int nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLUSTER_MSG_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds < 0 || nfds > CLUSTER_MSG_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* Pull the fds out of every SCM_RIGHTS header. */
static void collect_fds(struct msghdr *mh, int *fds, int *nfds)
{
	struct cmsghdr *cm;

	*nfds = 0;
	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n, i;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n && *nfds < CLUSTER_MSG_RECV_FDS; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
	}
}

ssize_t cluster_msg_recv(int sock, void *buf, size_t cap, int *fds,
			 int *nfds, int flags, int *truncated)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLUSTER_MSG_RECV_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		/* CMSG_LEN, not the buffer's CMSG_SPACE: the kernel fills in
		 * as many fds as the length has room for, and the padding of
		 * CMSG_SPACE has room for one more than we collect, an fd
		 * that would leak.  Past CLUSTER_MSG_RECV_FDS it closes them. */
		.msg_controllen = CMSG_LEN(sizeof(int) * CLUSTER_MSG_RECV_FDS),
	};
	ssize_t n;

	*nfds = 0;
	if (truncated)
		*truncated = 0;
	n = recvmsg(sock, &mh, flags);
	if (n < 0)
		return -1;
	collect_fds(&mh, fds, nfds);
	if (truncated && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		*truncated = 1;
	return n;
}
