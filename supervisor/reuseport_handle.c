/*
 * reuseport_handle.c - the third policy: one SO_REUSEPORT socket per worker
 * slot (worker id), all bound to the handle's address.  The kernel hashes
 * each connection to one of them.  The supervisor keeps every slot's socket,
 * so a worker that restarts (or is replaced in a reload) gets its slot's
 * socket back and the connections queued in it are served, not reset: the
 * known weakness of SO_REUSEPORT in servers that own their sockets.
 *
 * Each slot's socket is the first socket a worker of that slot sent with its
 * query, so the server's own options hold on it as on a shared handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster_internal.h"

int reuseport_prepare(int fd)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		return errno;
	return 0;
}

static int reuseport_grow(struct handle *h, unsigned slot)
{
	unsigned n = h->nslots, i;
	int *fds;

	if (slot < n)
		return 0;
	fds = realloc(h->slot_fds, (slot + 1) * sizeof(*fds));
	if (!fds)
		return ENOMEM;
	for (i = n; i <= slot; i++)
		fds[i] = -1;
	h->slot_fds = fds;
	h->nslots = slot + 1;
	return 0;
}

int reuseport_adopt(struct handle *h, unsigned slot, int fd)
{
	int err = reuseport_grow(h, slot);

	if (err)
		return err;
	h->slot_fds[slot] = fd;
	return 0;
}

int reuseport_join(struct handle *h, unsigned slot, int sock)
{
	int err = reuseport_grow(h, slot);

	if (err)
		return err;
	if (h->slot_fds[slot] >= 0) { /* the slot's socket outlives workers */
		worker_fd_close(sock);
		return 0;
	}
	err = reuseport_prepare(sock);
	if (!err && bind(sock, (struct sockaddr *)&h->addr, h->addrlen) < 0)
		err = errno;
	if (err) {
		worker_fd_close(sock);
		return err;
	}
	h->slot_fds[slot] = sock;
	return 0;
}

int reuseport_listen(struct handle *h, unsigned slot, int backlog, int *fd)
{
	if (slot >= h->nslots || h->slot_fds[slot] < 0)
		return EBADF;
	if (listen(h->slot_fds[slot], backlog) < 0)
		return errno;
	if (backlog > h->backlog)
		h->backlog = backlog;
	h->listening = true;
	*fd = h->slot_fds[slot];
	return 0;
}

void reuseport_free(struct handle *h)
{
	unsigned i;

	for (i = 0; i < h->nslots; i++)
		if (h->slot_fds[i] >= 0 && h->slot_fds[i] != h->fd)
			worker_fd_close(h->slot_fds[i]);
	free(h->slot_fds);
	h->slot_fds = NULL;
	h->nslots = 0;
}
