/*
 * listen(): the moment a bound socket becomes a listener.  The supervisor
 * starts listening (keeping the largest backlog anyone asked for) and sends
 * the fd this worker serves from: the shared socket (none) or a faux handle
 * (rr), installed on the server's own fd number.  A second listen() on an
 * installed fd (nginx does that) succeeds and changes nothing.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static int install_listener(int fd, unsigned slot,
			    const struct cluster_msg_reply *reply, int *fds,
			    int nfds)
{
	struct shim_handle *h = shim_handle_get(slot);
	enum shim_fd_kind kind;

	if (reply->kind == CLUSTER_HANDLE_FAUX && nfds == 2) {
		kind = SHIM_FD_FAUX;
	} else if (reply->kind == CLUSTER_HANDLE_SHARED && nfds == 1) {
		kind = SHIM_FD_SHARED;
	} else {
		errno = EPROTO;
		return -1;
	}
	if (shim_install_fd(fds[0], fd, h->server_nonblock) < 0)
		return -1;
	if (kind == SHIM_FD_FAUX) {
		h->shadow_fd = shim_move_fd_high(fds[1], true);
		shim_fd_set(h->shadow_fd, SHIM_FD_INTERNAL, slot);
	}
	h->bound = reply->bound;
	shim_fd_set(fd, kind, slot);
	shim_handle_set_file(slot, fd);
	return 0;
}

static int listen_via_supervisor(int fd, unsigned slot, int backlog)
{
	struct shim_handle *h = shim_handle_get(slot);
	struct cluster_msg_listen msg;
	struct cluster_msg_reply reply;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, saved = errno;

	cluster_msg_init(&msg, CLUSTER_MSG_LISTEN);
	msg.handle_id = h->handle_id;
	msg.backlog = backlog;
	if (h->server_nonblock)
		msg.flags |= CLUSTER_LISTEN_NONBLOCK_CONNS;
	if (shim_channel_request(&msg, -1, &reply, fds, &nfds) < 0)
		return -1;
	if (reply.error == 0 &&
	    install_listener(fd, slot, &reply, fds, nfds) == 0) {
		errno = saved;
		return 0;
	}
	if (reply.error != 0)
		errno = reply.error;
	saved = errno;
	/* install_listener consumed nothing when it failed before dup3;
	 * after a failed dup3 fds[0] is still ours too. */
	for (i = 0; i < nfds; i++)
		real_close(fds[i]);
	errno = saved;
	return -1;
}

int listen(int fd, int backlog)
{
	struct shim_fd_info info;

	if (!shim_active() || !shim_fd_lookup(fd, &info))
		return real_listen(fd, backlog);
	if (info.kind != SHIM_FD_PENDING)
		return 0;
	return listen_via_supervisor(fd, info.slot, backlog);
}
