/*
 * proto_codec.h - framing of cluster_proto.h messages over SOCK_SEQPACKET
 * sockets, with SCM_RIGHTS fds, and validation of what arrives.
 *
 * Nothing here closes an fd or allocates: callers own every fd they send and
 * every fd they receive (the shim must not route its own housekeeping through
 * its interposed close()).
 */
#ifndef PROTO_CODEC_H
#define PROTO_CODEC_H

#include <stddef.h>
#include <sys/types.h>

#include "cluster_proto.h"

#define CLUSTER_MSG_RECV_FDS (CLUSTER_MSG_MAX_FDS + 1)

/* Fill in a header for a message of the given type (size from the table). */
void cluster_msg_init(void *msg, enum cluster_msg_type type);

/* The exact size a message of this type has, or 0 for an unknown type. */
size_t cluster_msg_size(unsigned type);

/*
 * Check a received message: version, known type, exact length, and the
 * number of fds that type may carry.  Returns 0, or a negative errno-style
 * code: -EPROTO (version), -EBADMSG (type or length), -EMSGSIZE (fd count).
 */
int cluster_msg_validate(const void *buf, size_t len, int nfds);

/*
 * sendmsg() a whole message with up to CLUSTER_MSG_MAX_FDS fds attached.
 * flags are sendmsg flags (MSG_NOSIGNAL is always added).  EINTR is retried.
 * Returns 0 or -1 with errno set.
 */
int cluster_msg_send(int sock, const void *msg, size_t len, const int *fds,
		     int nfds, int flags);

/*
 * recvmsg() one message into buf (capacity cap), collecting attached fds into
 * fds[CLUSTER_MSG_RECV_FDS]; *nfds tells how many.  One more fd than any
 * message may carry is received, so that an over-stuffed message is rejected
 * by cluster_msg_validate() with every fd it brought in the caller's hands to
 * close; beyond that the kernel drops them (MSG_CTRUNC) and *truncated is set.
 * flags are recvmsg flags (e.g. MSG_DONTWAIT, MSG_CMSG_CLOEXEC).  Returns the
 * length (0 at end of stream) or -1 with errno set; EINTR is returned to the
 * caller so that blocking accept() keeps the semantics of a real accept().
 */
ssize_t cluster_msg_recv(int sock, void *buf, size_t cap, int *fds,
			 int *nfds, int flags, int *truncated);

#endif
