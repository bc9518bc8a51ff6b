/* The message codec: framing, fds over SCM_RIGHTS, and rejection of
 * malformed input (wrong version, type, length, fd count). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto_codec.h"

static int sv[2];

static void open_pair(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(void)
{
	close(sv[0]);
	close(sv[1]);
}

TestSuite(proto_codec, .init = open_pair, .fini = close_pair);

Test(proto_codec, init_sets_header_for_each_type)
{
	struct cluster_msg_listen msg;

	cluster_msg_init(&msg, CLUSTER_MSG_LISTEN);
	cr_expect_eq(msg.hdr.version, CLUSTER_PROTO_VERSION);
	cr_expect_eq(msg.hdr.type, CLUSTER_MSG_LISTEN);
	cr_expect_eq(msg.hdr.length, sizeof(msg));
	cr_expect_eq(cluster_msg_size(CLUSTER_MSG_NEWCONN),
		     sizeof(struct cluster_msg_newconn));
	cr_expect_eq(cluster_msg_size(0), 0);
	cr_expect_eq(cluster_msg_size(CLUSTER_MSG_TYPE_MAX), 0);
	cr_expect_leq(sizeof(struct cluster_msg_reply), CLUSTER_MSG_MAX_SIZE);
}

/* EXEC carries exactly its reply socket and fits a receiver's buffer. */
Test(proto_codec, exec_needs_its_reply_socket)
{
	struct cluster_msg_exec e;

	cluster_msg_init(&e, CLUSTER_MSG_EXEC);
	cr_expect_eq(e.hdr.length, sizeof(e));
	cr_expect_leq(sizeof(e), CLUSTER_MSG_MAX_SIZE);
	cr_expect_eq(cluster_msg_validate(&e, sizeof(e), 1), 0);
	cr_expect_eq(cluster_msg_validate(&e, sizeof(e), 0), -EMSGSIZE);
	cr_expect_eq(cluster_msg_validate(&e, sizeof(e), 2), -EMSGSIZE);
	cr_expect_eq(cluster_msg_validate(&e, sizeof(e) - 1, 1), -EBADMSG);
}

Test(proto_codec, round_trip_with_two_fds)
{
	struct cluster_msg_query_server q, got;
	int fds[2], rfds[CLUSTER_MSG_RECV_FDS], nfds, trunc;
	struct stat a, b;
	ssize_t n;

	cluster_msg_init(&q, CLUSTER_MSG_QUERY_SERVER);
	q.domain = AF_INET;
	q.type = SOCK_STREAM;
	fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(cluster_msg_send(sv[0], &q, sizeof(q), fds, 2, 0), 0);
	n = cluster_msg_recv(sv[1], &got, sizeof(got), rfds, &nfds,
			     MSG_CMSG_CLOEXEC, &trunc);
	cr_assert_eq(n, (ssize_t)sizeof(got));
	cr_assert_eq(nfds, 2);
	cr_assert_eq(trunc, 0);
	cr_assert_eq(cluster_msg_validate(&got, (size_t)n, nfds), 0);
	cr_expect_eq(got.domain, AF_INET);
	/* the received fds are the same open files, close-on-exec */
	fstat(fds[0], &a);
	fstat(rfds[0], &b);
	cr_expect_eq(a.st_ino, b.st_ino);
	cr_expect(fcntl(rfds[1], F_GETFD) & FD_CLOEXEC);
	close(fds[0]);
	close(fds[1]);
	close(rfds[0]);
	close(rfds[1]);
}

Test(proto_codec, rejects_wrong_version_type_length)
{
	struct cluster_msg_hello m;

	cluster_msg_init(&m, CLUSTER_MSG_HELLO);
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m), 0), 0);
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m) - 1, 0), -EBADMSG);
	cr_expect_eq(cluster_msg_validate(&m, 3, 0), -EBADMSG);
	m.hdr.version = 99;
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m), 0), -EPROTO);
	m.hdr.version = CLUSTER_PROTO_VERSION;
	m.hdr.type = 0;
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m), 0), -EBADMSG);
	m.hdr.type = 200;
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m), 0), -EBADMSG);
	m.hdr.type = CLUSTER_MSG_HELLO;
	m.hdr.length = 1000; /* header lies about the size */
	cr_expect_eq(cluster_msg_validate(&m, sizeof(m), 0), -EBADMSG);
}

Test(proto_codec, rejects_wrong_fd_count)
{
	struct cluster_msg_newconn nc;
	struct cluster_msg_hello hello;

	cluster_msg_init(&nc, CLUSTER_MSG_NEWCONN);
	cr_expect_eq(cluster_msg_validate(&nc, sizeof(nc), 1), 0);
	cr_expect_eq(cluster_msg_validate(&nc, sizeof(nc), 0), -EMSGSIZE);
	cr_expect_eq(cluster_msg_validate(&nc, sizeof(nc), 2), -EMSGSIZE);
	cluster_msg_init(&hello, CLUSTER_MSG_HELLO);
	cr_expect_eq(cluster_msg_validate(&hello, sizeof(hello), 1), -EMSGSIZE);
}

Test(proto_codec, extra_fds_are_handed_to_the_caller)
{
	struct cluster_msg_hello m;
	int fds[3], rfds[CLUSTER_MSG_RECV_FDS], nfds, i, trunc;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	/* three fds: more than cluster_msg_send allows, sent by hand */
	cluster_msg_init(&m, CLUSTER_MSG_HELLO);
	for (i = 0; i < 3; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	cr_assert_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(m));
	n = cluster_msg_recv(sv[1], &m, sizeof(m), rfds, &nfds, 0, &trunc);
	cr_assert_eq(n, (ssize_t)sizeof(m));
	cr_expect_eq(nfds, 3);
	cr_expect_eq(cluster_msg_validate(&m, (size_t)n, nfds), -EMSGSIZE);
	for (i = 0; i < nfds; i++)
		cr_expect_eq(close(rfds[i]), 0);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

Test(proto_codec, send_refuses_too_many_fds)
{
	struct cluster_msg_hello m;
	int fds[3] = { 0, 1, 2 };

	cluster_msg_init(&m, CLUSTER_MSG_HELLO);
	cr_expect_eq(cluster_msg_send(sv[0], &m, sizeof(m), fds, 3, 0), -1);
	cr_expect_eq(errno, EINVAL);
}
