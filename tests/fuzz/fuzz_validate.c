/*
 * fuzz_validate.c - the message decoder: cluster_msg_validate() on any
 * bytes, and a trip through cluster_msg_send()/cluster_msg_recv() on a
 * socketpair with up to 7 fds attached.
 *
 * Input: byte 0: bits 0-2 the fd count given to validate (0..4, 5..7 mean
 * -1..-3), bits 3-5 how many fds are really attached (0..7); the rest is
 * the message.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto_codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sandbox_init();
	return 0;
}

static void check_validate(const uint8_t *msg, size_t len, int nfds)
{
	struct cluster_msg_header hdr;
	int rc = cluster_msg_validate(msg, len, nfds);

	if (rc != 0 && rc != -EPROTO && rc != -EBADMSG && rc != -EMSGSIZE)
		fuzz_fail("cluster_msg_validate returned %d", rc);
	if (rc != 0)
		return;
	memcpy(&hdr, msg, sizeof(hdr));
	if (hdr.version != CLUSTER_PROTO_VERSION || hdr.length != len ||
	    cluster_msg_size(hdr.type) != len || len > CLUSTER_MSG_MAX_SIZE ||
	    nfds < 0 || nfds > CLUSTER_MSG_MAX_FDS)
		fuzz_fail("accepted: type %u, version %u, length %u of %zu, "
			  "%d fds", hdr.type, hdr.version, hdr.length, len, nfds);
}

/* Sends msg with `attach` fds by hand (more than cluster_msg_send allows)
 * and receives it with cluster_msg_recv(). */
static void round_trip(const uint8_t *msg, size_t len, int attach)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	union {
		struct cluster_msg_header hdr;
		char bytes[CLUSTER_MSG_MAX_SIZE];
	} in;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int sv[2], fds[8], got[CLUSTER_MSG_RECV_FDS], ngot, trunc, i;
	ssize_t n;

	if (len > 4096 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	for (i = 0; i < attach; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (attach > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)attach);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)attach);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)attach);
	}
	if (sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len) {
		n = cluster_msg_recv(sv[1], &in, sizeof(in), got, &ngot,
				     MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC,
				     &trunc);
		if (n != (ssize_t)len)
			fuzz_fail("sent %zu bytes, received %zd", len, n);
		if (ngot != (attach < CLUSTER_MSG_RECV_FDS ? attach
							   : CLUSTER_MSG_RECV_FDS))
			fuzz_fail("sent %d fds, received %d", attach, ngot);
		if (!!trunc != (attach > CLUSTER_MSG_RECV_FDS ||
				len > sizeof(in)))
			fuzz_fail("%zu bytes, %d fds: truncated is %d", len,
				  attach, trunc);
		if (len <= sizeof(in)) {
			if (memcmp(&in, msg, len) != 0)
				fuzz_fail("received other bytes than sent");
			check_validate((const uint8_t *)&in, len, ngot);
		}
		for (i = 0; i < ngot; i++)
			close(got[i]);
	}
	for (i = 0; i < attach; i++)
		close(fds[i]);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fds before;
	int nfds;

	if (size < 1)
		return 0;
	nfds = data[0] & 7;
	if (nfds > 4)
		nfds = 4 - nfds;
	fuzz_fds_take(&before);
	check_validate(data + 1, size - 1, nfds);
	round_trip(data + 1, size - 1, (data[0] >> 3) & 7);
	fuzz_fds_check(&before, "a trip through the codec");
	return 0;
}
