/*
 * rr_handle.c - round robin (Node's RoundRobinHandle, with flow control).
 *
 * The supervisor accepts on the shared listener and sends each connection to
 * a worker as a newconn message on that worker's faux handle.  Credit: the
 * kernel says how much of a faux handle is still unread (SIOCOUTQ on our
 * end), so a worker with `rr_window` connections queued is skipped without
 * any ack from the worker.  When no worker has credit the supervisor stops
 * accepting and leaves clients in the kernel backlog until one has: each
 * faux handle's send buffer is sized so that our end turns writable exactly
 * when its worker has fewer than `rr_window` connections unread, so that
 * wait is an event, not a poll.  Connections queued on
 * a worker that stops, closes its listener or dies are taken back (we keep a
 * copy of the worker's end of the faux handle) and handed to others.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "proto_codec.h"
#include "rr_scheduler.h"

#define RR_ACCEPT_BURST 64
#define RR_RETRY_USEC 1000        /* fallback poll when writability fails us */
#define RR_EMFILE_RETRY_USEC 100000

struct rr_conn {
	int fd;
	bool nonblock; /* accepted with SOCK_NONBLOCK */
	socklen_t addrlen;
	struct sockaddr_storage addr;
};

/* Connections accepted (or taken back) and not yet handed to anyone. */
struct rr_queue {
	struct rr_conn *items;
	unsigned head, count, cap;
};

struct rr_member {
	struct rr_sched_entry sched;
	struct rr_handle *rr;
	struct cluster_worker *worker;
	struct event *writable_ev; /* one-shot: its queue fell below the window */
	int sup_end;    /* we write newconn here */
	int worker_end; /* our copy of the worker's end, to take back */
	unsigned outstanding; /* believed unread; refreshed from SIOCOUTQ */
	bool wants_nonblock;  /* the server's listener is non-blocking */
};

struct rr_handle {
	struct handle *h;
	struct event *accept_ev;
	struct event *retry_timer;
	struct rr_scheduler sched;
	struct rr_queue pending;
	bool accepting;
	bool out_of_fds; /* said so once; says so again when it recovers */
};

#define member_of(e) \
	((struct rr_member *)((char *)(e) - offsetof(struct rr_member, sched)))

/* ---- pending queue ---- */

static int rr_queue_push(struct rr_queue *q, const struct rr_conn *c)
{
	if (q->count == q->cap) {
		unsigned cap = q->cap ? q->cap * 2 : 16, i;
		struct rr_conn *items = malloc(cap * sizeof(*items));

		if (!items)
			return -1;
		for (i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->head = 0;
		q->cap = cap;
	}
	q->items[(q->head + q->count++) % q->cap] = *c;
	return 0;
}

static struct rr_conn *rr_queue_front(struct rr_queue *q)
{
	return q->count ? &q->items[q->head] : NULL;
}

static void rr_queue_pop(struct rr_queue *q)
{
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

/* ---- credit ---- */

static unsigned rr_window(const struct rr_handle *rr)
{
	return rr->h->cluster->settings.rr_window;
}

static unsigned rr_member_unread(const struct rr_handle *rr,
				 const struct rr_member *m)
{
	size_t truesize = rr->h->cluster->newconn_truesize;
	int outq = 0;

	if (ioctl(m->sup_end, SIOCOUTQ, &outq) < 0 || outq < 0)
		return m->outstanding;
	return (unsigned)(((size_t)outq + truesize - 1) / truesize);
}

static bool rr_member_has_credit(struct rr_sched_entry *e, void *ctx)
{
	struct rr_handle *rr = ctx;
	struct rr_member *m = member_of(e);

	if (m->outstanding < rr_window(rr))
		return true;
	/* Only when our count says full do we ask the kernel: one ioctl per
	 * window of connections, not one per connection. */
	m->outstanding = rr_member_unread(rr, m);
	return m->outstanding < rr_window(rr);
}

/* Whose turn it is, without using the turn up: only a connection handed
 * over does that (rr_send), so an accept that finds nothing costs no one
 * their turn. */
static struct rr_member *rr_next(struct rr_handle *rr)
{
	struct rr_sched_entry *e =
		rr_scheduler_peek(&rr->sched, rr_member_has_credit, rr);

	return e ? member_of(e) : NULL;
}

size_t rr_calibrate_truesize(void)
{
	struct cluster_msg_newconn msg;
	int sv[2], outq = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return 1024;
	cluster_msg_init(&msg, CLUSTER_MSG_NEWCONN);
	if (cluster_msg_send(sv[0], &msg, sizeof(msg), &sv[0], 1,
			     MSG_DONTWAIT) < 0 ||
	    ioctl(sv[0], SIOCOUTQ, &outq) < 0 || outq <= 0)
		outq = 1024;
	close(sv[0]);
	close(sv[1]);
	return (size_t)outq;
}

/* ---- hand-off ---- */

static bool rr_send(struct rr_handle *rr, struct rr_member *m,
		    struct rr_conn *c)
{
	struct cluster_msg_newconn msg;

	cluster_msg_init(&msg, CLUSTER_MSG_NEWCONN);
	if (c->nonblock)
		msg.flags = CLUSTER_NEWCONN_NONBLOCK;
	msg.peer.len = c->addrlen;
	memcpy(&msg.peer.ss, &c->addr, c->addrlen);
	if (cluster_msg_send(m->sup_end, &msg, sizeof(msg), &c->fd, 1,
			     MSG_DONTWAIT) < 0) {
		if (errno == EAGAIN || errno == ENOBUFS)
			m->outstanding = rr_window(rr); /* full: skip it */
		else /* broken: no more turns; taken back when it is freed */
			rr_scheduler_remove(&rr->sched, &m->sched);
		return false;
	}
	close(c->fd);
	rr_scheduler_take(&rr->sched, &m->sched);
	m->outstanding++;
	m->worker->handed++;
	rr->h->cluster->handed++;
	return true;
}

/* To whoever has credit; false (connection still ours) when nobody has. */
static bool rr_handoff(struct rr_handle *rr, struct rr_conn *c)
{
	struct rr_member *m;

	while ((m = rr_next(rr)) != NULL)
		if (rr_send(rr, m, c))
			return true;
	return false;
}

static bool rr_flush_pending(struct rr_handle *rr)
{
	struct rr_conn *c;

	while ((c = rr_queue_front(&rr->pending)) != NULL) {
		if (!rr_handoff(rr, c))
			return false;
		rr_queue_pop(&rr->pending);
	}
	return true;
}

/* ---- accepting ---- */

static void rr_stop_accepting(struct rr_handle *rr)
{
	if (rr->accepting) {
		event_del(rr->accept_ev);
		rr->accepting = false;
	}
}

/* Look again after a while (out of fds, or a kernel whose send buffers do
 * not wake us as rr_wait_for_credit expects). */
static void rr_retry_later(struct rr_handle *rr, long usec)
{
	struct timeval tv = { 0, usec };

	rr_stop_accepting(rr);
	evtimer_add(rr->retry_timer, &tv);
}

/* Every worker is full: sleep until one of them reads.  With no member at
 * all there is nothing to wait for but a new one (rr_handle_add resumes). */
static void rr_wait_for_credit(struct rr_handle *rr)
{
	unsigned i;

	rr_stop_accepting(rr);
	for (i = 0; i < rr->sched.count; i++)
		event_add(member_of(rr->sched.entries[i])->writable_ev, NULL);
}

static void rr_resume(struct rr_handle *rr)
{
	if (!rr->h->listening)
		return;
	if (!rr_flush_pending(rr)) {
		rr_wait_for_credit(rr);
		return;
	}
	if (!rr->accepting) {
		event_add(rr->accept_ev, NULL);
		rr->accepting = true;
	}
}

/* In the mode the next member's server will want: O_NONBLOCK lives on the
 * file, which the worker gets; the shim corrects it if another member ends
 * up with the connection. */
static bool rr_accept_one(struct rr_handle *rr, struct rr_conn *c,
			  bool nonblock)
{
	c->nonblock = nonblock;
	for (;;) {
		c->addrlen = sizeof(c->addr);
		c->fd = accept4(rr->h->fd, (struct sockaddr *)&c->addr,
				&c->addrlen,
				SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
		if (c->fd >= 0) {
			if (rr->out_of_fds) {
				rr->out_of_fds = false;
				cluster_logf(rr->h->cluster, "accept on %s: "
					     "accepting again", rr->h->text);
			}
			return true;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			if (!rr->out_of_fds)
				cluster_logf(rr->h->cluster,
					     "accept on %s: %s; pausing accepts "
					     "(retrying every %d ms)", rr->h->text,
					     strerror(errno),
					     RR_EMFILE_RETRY_USEC / 1000);
			rr->out_of_fds = true;
			rr_retry_later(rr, RR_EMFILE_RETRY_USEC);
			return false;
		default: /* EAGAIN and the rest: wait for the next wakeup */
			return false;
		}
	}
}

static void rr_on_acceptable(evutil_socket_t fd, short what, void *arg)
{
	struct rr_handle *rr = arg;
	struct rr_member *m;
	struct rr_conn c;
	int i;

	for (i = 0; i < RR_ACCEPT_BURST; i++) {
		/* Pick before accepting: when nobody can take a connection,
		 * it stays in the kernel backlog. */
		if (!rr_flush_pending(rr) || (m = rr_next(rr)) == NULL) {
			rr_wait_for_credit(rr);
			return;
		}
		if (!rr_accept_one(rr, &c, m->wants_nonblock))
			return;
		if (rr_send(rr, m, &c) || rr_handoff(rr, &c))
			continue;
		if (rr_queue_push(&rr->pending, &c) < 0)
			close(c.fd);
		rr_wait_for_credit(rr);
		return;
	}
}

static void rr_on_retry(evutil_socket_t fd, short what, void *arg)
{
	rr_resume(arg);
}

static void rr_on_member_writable(evutil_socket_t fd, short what, void *arg)
{
	struct rr_member *m = arg;

	if (rr_member_has_credit(&m->sched, m->rr))
		rr_resume(m->rr);
	else /* woken without room: this kernel's buffers differ; poll */
		rr_retry_later(m->rr, RR_RETRY_USEC);
}

/* Our end is writable exactly while the worker has fewer than `window`
 * connections unread: the kernel doubles SO_SNDBUF and reports writable
 * while a quarter of it is free. */
static void rr_member_size_buffer(struct rr_handle *rr, int sup_end)
{
	int bytes = (int)(2 * rr_window(rr) * rr->h->cluster->newconn_truesize);

	setsockopt(sup_end, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/* ---- lifecycle ---- */

struct rr_handle *rr_handle_new(struct handle *h)
{
	struct rr_handle *rr = calloc(1, sizeof(*rr));
	int fl;

	if (!rr)
		return NULL;
	rr->h = h;
	rr_scheduler_init(&rr->sched);
	fl = fcntl(h->fd, F_GETFL);
	if (fl >= 0)
		fcntl(h->fd, F_SETFL, fl | O_NONBLOCK);
	rr->accept_ev = event_new(h->cluster->base, h->fd, EV_READ | EV_PERSIST,
				  rr_on_acceptable, rr);
	rr->retry_timer = evtimer_new(h->cluster->base, rr_on_retry, rr);
	if (!rr->accept_ev || !rr->retry_timer) {
		rr_handle_free(rr);
		return NULL;
	}
	return rr;
}

void rr_handle_free(struct rr_handle *rr)
{
	struct rr_conn *c;

	if (!rr)
		return;
	while ((c = rr_queue_front(&rr->pending)) != NULL) {
		close(c->fd);
		rr_queue_pop(&rr->pending);
	}
	free(rr->pending.items);
	if (rr->accept_ev)
		event_free(rr->accept_ev);
	if (rr->retry_timer)
		event_free(rr->retry_timer);
	rr_scheduler_fini(&rr->sched);
	free(rr);
}

void rr_handle_start(struct rr_handle *rr)
{
	rr_resume(rr);
}

struct rr_member *rr_handle_add(struct rr_handle *rr,
				struct cluster_worker *w, bool wants_nonblock,
				int *fds)
{
	struct rr_member *m = calloc(1, sizeof(*m));
	int sv[2];

	if (!m)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0, sv) < 0) {
		free(m);
		return NULL;
	}
	/* The worker's end must block unless the server asks otherwise: the
	 * shim copies the server's own O_NONBLOCK onto it. */
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);
	m->rr = rr;
	m->worker = w;
	m->wants_nonblock = wants_nonblock;
	m->sup_end = sv[0];
	m->worker_end = sv[1];
	rr_member_size_buffer(rr, sv[0]);
	m->writable_ev = event_new(rr->h->cluster->base, sv[0], EV_WRITE,
				   rr_on_member_writable, m);
	if (!m->writable_ev || rr_scheduler_add(&rr->sched, &m->sched) < 0) {
		if (m->writable_ev)
			event_free(m->writable_ev);
		close(sv[0]);
		close(sv[1]);
		free(m);
		return NULL;
	}
	fds[0] = m->worker_end;
	fds[1] = rr->h->fd;
	rr_resume(rr);
	return m;
}

/* Unread connections on the member's faux handle come back to the queue. */
static void rr_member_reclaim(struct rr_handle *rr, struct rr_member *m)
{
	struct cluster_msg_newconn msg;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i;
	ssize_t n;

	while ((n = cluster_msg_recv(m->worker_end, &msg, sizeof(msg), fds,
				     &nfds, MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
				     NULL)) > 0) {
		struct rr_conn c;

		if (cluster_msg_validate(&msg, (size_t)n, nfds) != 0) {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		c.fd = fds[0];
		c.nonblock = msg.flags & CLUSTER_NEWCONN_NONBLOCK;
		c.addrlen = msg.peer.len <= sizeof(c.addr) ? msg.peer.len : 0;
		memcpy(&c.addr, &msg.peer.ss, c.addrlen);
		if (rr_queue_push(&rr->pending, &c) < 0)
			close(c.fd);
	}
}

void rr_member_stop(struct rr_handle *rr, struct rr_member *m)
{
	event_del(m->writable_ev);
	rr_scheduler_remove(&rr->sched, &m->sched);
	rr_member_reclaim(rr, m);
	rr_resume(rr);
}

void rr_member_free(struct rr_handle *rr, struct rr_member *m)
{
	rr_member_stop(rr, m);
	event_free(m->writable_ev);
	close(m->sup_end);
	close(m->worker_end);
	free(m);
}
