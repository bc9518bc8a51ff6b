/*
 * listener_stats.c - each listener's accept queue, from the kernel.
 *
 * For a TCP socket in state LISTEN, getsockopt(TCP_INFO) answers with the
 * accept queue in tcpi_unacked (connections established, not yet
 * accepted) and its limit in tcpi_sacked (the backlog the kernel applies,
 * already capped by net.core.somaxconn): one syscall on a socket the
 * supervisor holds, where NETLINK_SOCK_DIAG would need a socket, a dump
 * request and a filter for the same two numbers.  In reuseport each slot
 * has its own queue: they are added up.  The kernel has no such call for
 * unix listeners nor a queue for datagrams: those say -1.
 *
 * In rr the supervisor itself accepts, so it also counts what it accepted
 * and holds what workers have not taken yet (rr_handle.c).
 *
 * Per worker, what waits for it alone: in rr its faux handles' unread
 * connections, in reuseport its slot's accept queue (the pool's hang
 * check).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster_internal.h"

/* 0 with the queue and its limit when fd is a listening TCP socket. */
static int tcp_accept_queue(int fd, long *queued, long *backlog)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    ti.tcpi_state != TCP_LISTEN)
		return -1;
	*queued = ti.tcpi_unacked;
	*backlog = ti.tcpi_sacked;
	return 0;
}

/* One more reuseport socket's queue into st's sums. */
static void add_queue(struct cluster_listener_stats *st, int fd)
{
	long q, b;

	if (tcp_accept_queue(fd, &q, &b) < 0)
		return;
	st->queued = (st->queued < 0 ? 0 : st->queued) + q;
	st->backlog = (st->backlog < 0 ? 0 : st->backlog) + b;
}

static void fill_queue(const struct handle *h,
		       struct cluster_listener_stats *st)
{
	const struct membership *m;
	long q, b;
	unsigned i;

	st->queued = st->backlog = -1;
	if (!st->stream || (h->domain != AF_INET && h->domain != AF_INET6))
		return;
	if (!h->reuseport) {
		if (tcp_accept_queue(h->fd, &q, &b) == 0) {
			st->queued = q;
			st->backlog = b;
		}
		return;
	}
	for (i = 0; i < h->nslots; i++)
		add_queue(st, h->slot_fds[i]);
	for (m = h->members; m; m = m->next_in_handle)
		add_queue(st, m->retired_slot_fd); /* (-1: none) */
}

static void fill_stats(const struct handle *h,
		       struct cluster_listener_stats *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->address, sizeof(st->address), "%s", h->text);
	st->policy = handle_policy_name(h);
	st->stream = h->type != SOCK_DGRAM;
	fill_queue(h, st);
	if (h->rr) {
		st->rr = true;
		st->accepted = rr_handle_accepted(h->rr);
		st->held = rr_handle_held(h->rr);
	}
}

unsigned cluster_listener_stats(const struct cluster *c,
				struct cluster_listener_stats *out,
				unsigned max)
{
	const struct handle *h;
	unsigned n = 0;

	for (h = c->handles; h; h = h->next) {
		if (!h->listening && h->type != SOCK_DGRAM)
			continue;   /* bound, never listened: no queue yet */
		if (n < max)
			fill_stats(h, &out[n]);
		n++;
	}
	return n;
}

/* What waits for w on one of its listeners; -1 when it has no queue of
 * its own there. */
static long member_waiting(const struct membership *m,
			   const struct cluster_worker *w)
{
	const struct handle *h = m->handle;
	long q, b;

	if (m->rr)
		return rr_member_waiting(m->rr);
	if (h->reuseport && tcp_accept_queue(reuseport_member_fd(m), &q, &b) == 0)
		return q;
	return -1;
}

unsigned worker_rr_unread(const struct cluster_worker *w)
{
	const struct membership *m;
	unsigned unread = 0;

	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->rr)
			unread += rr_member_waiting(m->rr);
	return unread;
}

long worker_waiting_connections(const struct cluster_worker *w)
{
	const struct membership *m;
	long waiting = -1, v;

	for (m = w->memberships; m; m = m->next_in_worker) {
		if (!m->listening || (v = member_waiting(m, w)) < 0)
			continue;
		waiting = (waiting < 0 ? 0 : waiting) + v;
	}
	return waiting;
}
