/*
 * reuseport_handle.c - the third policy: one SO_REUSEPORT socket per worker
 * slot (worker id), all bound to the handle's address.  The kernel hashes
 * each connection to one of them.  The supervisor keeps every slot's socket,
 * so a worker that restarts (or is replaced in a reload) gets its slot's
 * socket back and the connections queued in it are served, not reset: the
 * known weakness of SO_REUSEPORT in servers that own their sockets.
 * Where eBPF may be loaded, the kernel deals connections round robin
 * instead of hashing them (reuseport_rr.c).
 *
 * Each slot's socket is the first socket a worker of that slot sent with its
 * query, so the server's own options hold on it as on a shared handle.
 *
 * A slot that nobody will serve again (its worker disconnected or killed on
 * purpose, no other worker of that id in charge: a scale-down) lets go of
 * its socket, or the kernel would go on hashing connections to it that
 * nobody accepts.  Its queue: with net.ipv4.tcp_migrate_req=1 (or the
 * kernel round robin's migrate mode) the kernel moves what is queued in a
 * closing listener to the others of its group; cluster-run sets it when it
 * may (root), else those connections are reset when the socket closes
 * (not left to time out).
 *
 * A worker with no shim to stop it accepting (seccomp) leaves more gently
 * where the kernel deals round robin: its slot first leaves the selection
 * (no new connection comes) and stays open while the worker takes what is
 * queued; the drain (worker_drain.c) watches that queue on our copy
 * (TCP_INFO of a listener: its accept queue) and sends the graceful
 * signal once it is empty, then the slot closes.  So does a reload's old
 * worker: its replacement gets a socket of its own in the group, and the
 * old one drains the slot's socket it keeps (retire_slot_for).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

/* The socket m's worker serves h from: the one it kept when a reload's
 * replacement took its slot, else its slot's; -1 if none. */
int reuseport_member_fd(const struct membership *m)
{
	const struct handle *h = m->handle;
	unsigned slot = m->worker->id;

	if (m->retired_slot_fd >= 0)
		return m->retired_slot_fd;
	return h->reuseport && slot < h->nslots ? h->slot_fds[slot] : -1;
}

/*
 * Seccomp worker w joins its slot while another worker of its id still
 * serves from the slot's socket (a reload).  Sharing it, as the shim's
 * workers do, would lose what the old worker has taken when it gets the
 * graceful signal: no shim can make it stop accepting first.  So the old
 * one keeps that socket as its own, to drain as in a scale-down
 * (reuseport_worker_leave), and w gets a socket of its own in the group.
 * Only where the kernel deals round robin: it can take the old socket out
 * of the selection; its hash could not (the old worker would be dealt new
 * connections to the end, and sharing loses less).
 */
static bool retire_slot_for(struct handle *h, const struct cluster_worker *w)
{
	struct membership *m;

	if (!w->seccomp || !h->kernel_rr)
		return false;
	for (m = h->members; m; m = m->next_in_handle)
		if (m->worker != w && m->worker->id == w->id &&
		    m->worker->state < WORKER_DEAD && m->retired_slot_fd < 0) {
			m->retired_slot_fd = h->slot_fds[w->id];
			h->slot_fds[w->id] = -1;
			return true;
		}
	return false;
}

int reuseport_join(struct handle *h, const struct cluster_worker *w, int sock)
{
	unsigned slot = w->id;
	int err = reuseport_grow(h, slot);

	if (err)
		return err;
	/* the slot's socket outlives workers: a restart takes its queue */
	if (h->slot_fds[slot] >= 0 && !retire_slot_for(h, w)) {
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
	reuseport_rr_select(h, slot);
	return 0;
}

void reuseport_free(struct handle *h)
{
	struct membership *m;
	unsigned i;

	for (m = h->members; m; m = m->next_in_handle)
		if (m->retired_slot_fd >= 0 && m->retired_slot_fd != h->fd) {
			worker_fd_close(m->retired_slot_fd);
			m->retired_slot_fd = -1;
		}
	for (i = 0; i < h->nslots; i++)
		if (h->slot_fds[i] >= 0 && h->slot_fds[i] != h->fd)
			worker_fd_close(h->slot_fds[i]);
	free(h->slot_fds);
	h->slot_fds = NULL;
	h->nslots = 0;
	reuseport_rr_free(h);
}

/* Whether another worker of w's id, not leaving, holds h (a reload's
 * replacement, in charge of the slot now). */
static bool slot_has_successor(const struct handle *h,
			       const struct cluster_worker *w)
{
	const struct membership *m;

	for (m = h->members; m; m = m->next_in_handle)
		if (m->worker != w && m->worker->id == w->id &&
		    m->worker->state < WORKER_DISCONNECTING)
			return true;
	return false;
}

/* m's socket, if its worker leaves it to nobody (one kept from a reload,
 * or a slot in a scale-down), else -1. */
static int leaving_slot_fd(const struct membership *m)
{
	if (m->retired_slot_fd >= 0)
		return m->retired_slot_fd;
	if (slot_has_successor(m->handle, m->worker))
		return -1;
	return reuseport_member_fd(m);
}

void reuseport_release_slot(struct membership *m)
{
	struct handle *h = m->handle;
	int fd = leaving_slot_fd(m);

	if (fd < 0)
		return;
	/* out of the selection while its socket is still in the group: the
	 * worker's copy goes when its shim stops accepting, or with it */
	reuseport_rr_deselect(h, fd);
	worker_fd_close(fd);
	if (h->fd == fd)
		h->fd = -1;
	if (m->retired_slot_fd == fd)
		m->retired_slot_fd = -1;
	else
		h->slot_fds[m->worker->id] = -1;
}

void reuseport_member_free(struct membership *m)
{
	if (m->retired_slot_fd >= 0) /* nobody else will take it */
		reuseport_release_slot(m);
}

unsigned reuseport_worker_leave(struct cluster_worker *w)
{
	struct membership *m;
	unsigned n = 0;

	for (m = w->memberships; m; m = m->next_in_worker) {
		int fd = leaving_slot_fd(m);

		if (fd < 0)
			continue;
		if (reuseport_rr_deselect(m->handle, fd)) {
			m->slot_leaving = true; /* no new connection comes */
			n++;
		} else { /* the kernel hashes: nothing to keep it out */
			reuseport_release_slot(m);
		}
	}
	return n;
}

/* The connections waiting in listening socket fd's accept queue (for a
 * listener, TCP_INFO's tcpi_unacked), 0 if it cannot say. */
static unsigned accept_queue(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    ti.tcpi_state != TCP_LISTEN)
		return 0;
	return ti.tcpi_unacked;
}

/* Whether seccomp worker w has closed its listener of h, whose socket we
 * hold as fd (the supervisor's copy keeps it in the group, with its queue,
 * which nobody would take): one kcmp() of the fd it listened on with ours.
 * A worker that moved it to another fd number is taken for one that
 * closed it: harmless here, its slot only closes sooner. */
static bool worker_closed_listener(const struct cluster_worker *w,
				   const struct handle *h, int fd)
{
	int theirs = seccomp_listener_fd(w, h->id);
	long r;

	if (theirs < 0)
		return false; /* not known (a shim worker) */
	r = syscall(SYS_kcmp, w->pid, getpid(), KCMP_FILE, theirs, fd);
	return r > 0 || (r < 0 && errno == EBADF); /* ENOSYS, EPERM: unknown */
}

unsigned reuseport_leaving_queue(struct cluster_worker *w)
{
	struct membership *m;
	unsigned n = 0;
	int fd;

	for (m = w->memberships; m; m = m->next_in_worker) {
		if (!m->slot_leaving || (fd = leaving_slot_fd(m)) < 0)
			continue;
		if (worker_closed_listener(w, m->handle, fd)) {
			cluster_logf(w->cluster, "worker %u (pid %d) closed its "
				     "listener on %s: its slot's queue goes to "
				     "the others", w->id, (int)w->pid,
				     m->handle->text);
			m->slot_leaving = false;
			reuseport_release_slot(m);
			continue;
		}
		n += accept_queue(fd);
	}
	return n;
}

void reuseport_worker_left(struct cluster_worker *w)
{
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker) {
		if (!m->slot_leaving)
			continue;
		m->slot_leaving = false;
		/* what is still queued moves to a live slot once the worker's
		 * copy goes too (SELECT_OR_MIGRATE) */
		reuseport_release_slot(m);
	}
}

#define MIGRATE_REQ "/proc/sys/net/ipv4/tcp_migrate_req"

static void say_no_migration(struct cluster *c, int err)
{
	cluster_logf(c, "reuseport: cannot set net.ipv4.tcp_migrate_req=1 "
		     "(%s): connections queued on a slot that a scale-down "
		     "removes are reset, not moved to the others",
		     strerror(err));
}

void reuseport_enable_migration(struct cluster *c)
{
	int fd = open(MIGRATE_REQ, O_RDONLY | O_CLOEXEC);
	char v = 0;

	if (fd < 0) /* ENOENT: a kernel before 5.14, nothing to be had */
		return;
	if (read(fd, &v, 1) != 1 || v != '0') {
		close(fd);
		return; /* set already (or unreadable: leave it) */
	}
	close(fd);
	fd = open(MIGRATE_REQ, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1\n", 2) != 2) {
		say_no_migration(c, errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	cluster_logf(c, "reuseport: set net.ipv4.tcp_migrate_req=1 (it was "
		     "0), so that a slot's socket that closes hands its queued "
		     "connections to the others");
}
