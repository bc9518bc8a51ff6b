/*
 * worker_channel.c - reading a worker's requests (Node's internal messages:
 * online, queryServer, listening, close) and answering on the reply socket
 * each request brought.  Everything read here is untrusted input: a message
 * that does not validate is dropped with one log line, its fds closed.
 */
#include <errno.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "proto_codec.h"

#define CHANNEL_BURST 32 /* messages per wakeup, so one worker can't starve */

int reply_send(int reply_fd, int error, const struct handle *h,
	       enum cluster_handle_kind kind, const int *fds, int nfds)
{
	struct cluster_msg_reply reply;
	int rc;

	cluster_msg_init(&reply, CLUSTER_MSG_REPLY);
	reply.error = error;
	reply.kind = kind;
	reply.nfds = (uint32_t)nfds;
	if (h) {
		if (h->rr)
			reply.flags |= CLUSTER_REPLY_SUPERVISOR_ACCEPTS;
		reply.handle_id = h->id;
		reply.bound.len = h->addrlen;
		memcpy(&reply.bound.ss, &h->addr, h->addrlen);
	}
	rc = cluster_msg_send(reply_fd, &reply, sizeof(reply), fds, nfds,
			      MSG_DONTWAIT);
	close(reply_fd);
	return rc;
}

static void close_fds(const int *fds, int nfds)
{
	int i;

	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

/* A live listener's path is left alone (and the worker told it is gone);
 * anything else that is a socket is removed, as the worker asked.  Only
 * sockets: the supervisor does this with its own rights, not the worker's. */
static void answer_unlink_path(struct cluster_worker *w,
			       struct cluster_msg_unlink_path *msg,
			       int reply_fd)
{
	struct stat st;
	int err = 0;

	msg->path[sizeof(msg->path) - 1] = '\0';
	if (handle_path_is_live(w->cluster, msg->path))
		err = 0;
	else if (lstat(msg->path, &st) < 0)
		err = errno;
	else if (!S_ISSOCK(st.st_mode))
		err = EPERM;
	else if (unlink(msg->path) < 0)
		err = errno;
	reply_send(reply_fd, err, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
}

/* fds[] has been checked against the message type by the validator. */
static void dispatch(struct cluster_worker *w, void *buf, int *fds, int nfds)
{
	const struct cluster_msg_header *hdr = buf;

	switch (hdr->type) {
	case CLUSTER_MSG_HELLO:
		worker_mark_online(w);
		return;
	case CLUSTER_MSG_QUERY_SERVER:
		handle_query_server(w, buf, fds[1], fds[0]);
		return;
	case CLUSTER_MSG_LISTEN:
		handle_listen(w, buf, fds[0]);
		return;
	case CLUSTER_MSG_CLOSE:
		handle_close_by_worker(w, ((struct cluster_msg_close *)buf)->handle_id);
		return;
	case CLUSTER_MSG_UNLINK_PATH:
		answer_unlink_path(w, buf, fds[0]);
		return;
	}
	/* replies and newconn only ever flow to workers */
	cluster_logf(w->cluster, "worker %u (pid %d) sent message type %u, "
		     "which only the supervisor sends; ignored",
		     w->id, (int)w->pid, hdr->type);
	close_fds(fds, nfds);
}

static void channel_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_worker *w = arg;
	union {
		struct cluster_msg_header hdr;
		char bytes[CLUSTER_MSG_MAX_SIZE];
	} msg;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, truncated, i, rc;
	ssize_t n;

	for (i = 0; i < CHANNEL_BURST; i++) {
		n = cluster_msg_recv(fd, &msg, sizeof(msg), fds, &nfds,
				     MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
				     &truncated);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			worker_channel_lost(w);
			return;
		}
		rc = truncated ? -EMSGSIZE
			       : cluster_msg_validate(&msg, (size_t)n, nfds);
		if (rc != 0) {
			cluster_logf(w->cluster,
				     "worker %u (pid %d): bad message on its "
				     "channel (%s, %zd bytes, %d fds); dropped",
				     w->id, (int)w->pid, strerror(-rc), n, nfds);
			close_fds(fds, nfds);
			continue;
		}
		dispatch(w, &msg, fds, nfds);
	}
}

int worker_channel_start(struct cluster_worker *w)
{
	w->channel_ev = event_new(w->cluster->base, w->channel_fd,
				  EV_READ | EV_PERSIST, channel_on_readable, w);
	if (!w->channel_ev || event_add(w->channel_ev, NULL) < 0)
		return -1;
	w->connected = true;
	return 0;
}

void worker_channel_stop(struct cluster_worker *w)
{
	if (w->channel_ev) {
		event_free(w->channel_ev);
		w->channel_ev = NULL;
	}
	if (w->channel_fd >= 0) {
		close(w->channel_fd);
		w->channel_fd = -1;
	}
	w->connected = false;
}
