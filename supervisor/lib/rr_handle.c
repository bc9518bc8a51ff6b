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
 * wait is an event, not a poll.  A worker the kernel says is full is
 * skipped on that event too, not asked again at each of its turns (a
 * saturated worker would otherwise cost an ioctl per connection handed
 * to the others).  Connections queued on
 * a worker that stops, closes its listener or dies are taken back (we keep a
 * copy of the worker's end of the faux handle) and handed to others.
 *
 * The kernel also limits the fds one user has in flight (queued in unix
 * sockets, unread) to its RLIMIT_NOFILE, unless it is root: a sendmsg past
 * it fails with ETOOMANYREFS.  Workers that stopped reading (SIGSTOP)
 * hold up to a window each.  That is back-pressure, not a broken worker:
 * nobody leaves the rotation; the connections queued on workers with half
 * a window or more unread are taken back (received here, no longer in flight, so the budget is free
 * again for the others and for a restarted worker's bind), those workers
 * get no connection for RR_STALLED_MS (then a window's worth again), and
 * the accepting pauses for RR_INFLIGHT_RETRY_USEC while the budget is
 * spent.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "proto_codec.h"
#include "rr_conn.h"
#include "rr_scheduler.h"
#include "sticky.h"
#include "sticky_peek.h"
#include "monotonic.h"

#define RR_ACCEPT_BURST 64
#define RR_RETRY_USEC 1000        /* fallback poll when writability fails us */
#define RR_EMFILE_RETRY_USEC 100000
#define RR_INFLIGHT_RETRY_USEC 10000
#define RR_STALLED_MS 1000
#define RR_FD_RESERVE 16

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
	unsigned long sent;   /* connections sent on its faux handle */
	bool full; /* the kernel said so: no turns until writable_ev fires */
	bool wants_nonblock;  /* the server's listener is non-blocking */
	long long stalled_until_ms; /* its queue was taken back for the
				       in-flight budget: no turn before */
};

struct rr_handle {
	struct handle *h;
	struct event *accept_ev;
	struct event *retry_timer;
	struct rr_scheduler sched;
	struct rr_queue pending;
	bool accepting;
	unsigned long accepted; /* since the listener was made */
	bool out_of_fds; /* said so once; says so again when it recovers */
	bool inflight_full; /* ETOOMANYREFS: hand nothing until the retry */
	bool sticky;        /* settings.sticky: a client keeps its slot */
	struct sticky_peek *peek; /* sticky by HTTP request: those waiting */
	bool door_closed;   /* a full stop shut the listener down */
};

static bool rr_member_stalled(const struct rr_member *m)
{
	return m->stalled_until_ms != 0 && monotonic_ms() < m->stalled_until_ms;
}

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

	if (m->stalled_until_ms != 0) {
		if (rr_member_stalled(m))
			return false;
		m->stalled_until_ms = 0;
	}
	if (m->full)
		return false;
	if (m->outstanding < rr_window(rr))
		return true;
	/* Only when our count says full do we ask the kernel: one ioctl per
	 * window of connections, not one per connection. */
	m->outstanding = rr_member_unread(rr, m);
	if (m->outstanding < rr_window(rr))
		return true;
	/* Really full: wait for its reads to make room, without asking again
	 * at each of its turns. */
	m->full = true;
	event_add(m->writable_ev, NULL);
	return false;
}

/* Whose turn it is, without using the turn up: only a connection handed
 * over does that (rr_send), so an accept that finds nothing costs no one
 * their turn. */
static struct rr_member *rr_next(struct rr_handle *rr)
{
	struct rr_sched_entry *e;

	if (rr->inflight_full)
		return NULL;
	e = rr_scheduler_peek(&rr->sched, rr_member_has_credit, rr);
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

static unsigned rr_member_reclaim_some(struct rr_handle *rr,
				       struct rr_member *m, unsigned max);

/* How many more fds this process may open, less a reserve for accepting
 * and for the workers' requests: what taking connections back may use (a
 * connection received past the limit is lost).  Read from /proc/self/fd,
 * only when the in-flight budget is spent. */
static unsigned rr_fd_room(void)
{
	struct rlimit rl;
	struct dirent *de;
	unsigned long open_fds = 0;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || !(d = opendir("/proc/self/fd")))
		return 0;
	while ((de = readdir(d)) != NULL)
		open_fds += de->d_name[0] != '.';
	closedir(d);
	if (rl.rlim_cur == RLIM_INFINITY)
		return UINT_MAX;
	return rl.rlim_cur > open_fds + RR_FD_RESERVE
		? (unsigned)(rl.rlim_cur - open_fds - RR_FD_RESERVE) : 0;
}

/* ETOOMANYREFS: the user's fds in flight are at its limit.  The queues of
 * the workers that hold half a window or more unread (not reading, or
 * slow) come back here, as many as this process has room for, which frees
 * the budget; they sit out RR_STALLED_MS. */
static void rr_inflight_exhausted(struct rr_handle *rr)
{
	unsigned i, room = rr_fd_room();

	rr->inflight_full = true;
	for (i = 0; i < rr->sched.count; i++) {
		struct rr_member *m = member_of(rr->sched.entries[i]);

		if (2 * rr_member_unread(rr, m) < rr_window(rr))
			continue;
		room -= rr_member_reclaim_some(rr, m, room);
		m->outstanding = rr_member_unread(rr, m);
		m->stalled_until_ms = monotonic_ms() + RR_STALLED_MS;
	}
}

static void rr_sticky_note(struct rr_handle *rr, const struct rr_member *m,
			   const struct rr_conn *c);

/* The connection goes on m's faux handle; m's turn stays as it was. */
static bool rr_deliver(struct rr_handle *rr, struct rr_member *m,
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
		else if (errno == ETOOMANYREFS)
			rr_inflight_exhausted(rr); /* back-pressure */
		else /* broken: no more turns; taken back when it is freed */
			rr_scheduler_remove(&rr->sched, &m->sched);
		return false;
	}
	close(c->fd);
	m->outstanding++;
	m->sent++;
	m->worker->handed++;
	rr->h->cluster->handed++;
	return true;
}

/* To m, which had the turn: the turn moves on. */
static bool rr_send(struct rr_handle *rr, struct rr_member *m,
		    struct rr_conn *c)
{
	if (!rr_deliver(rr, m, c))
		return false;
	if (rr->sticky)
		rr_sticky_note(rr, m, c);
	rr_scheduler_take(&rr->sched, &m->sched);
	return true;
}

static bool rr_sticky_handoff(struct rr_handle *rr, struct rr_conn *c);

/* To whoever has credit; false (connection still ours) when nobody has. */
static bool rr_handoff(struct rr_handle *rr, struct rr_conn *c)
{
	struct rr_member *m;

	if (rr->sticky)
		return rr_sticky_handoff(rr, c);
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

/* ---- sticky sessions (sticky.h) ---- */

/* The member of c's slot with the highest weight among those with credit
 * (its pinned slot's before any): the client's first slot that can take
 * it.  Credit is asked only of a member that would beat the best so far,
 * so a pick asks once or twice, not once per member. */
static struct rr_member *rr_sticky_next(struct rr_handle *rr,
					const struct rr_conn *c)
{
	struct rr_member *best = NULL;
	uint64_t best_score = 0;
	unsigned i;

	if (rr->inflight_full)
		return NULL;
	for (i = 0; c->pin && i < rr->sched.count; i++) {
		struct rr_member *m = member_of(rr->sched.entries[i]);

		if (m->worker->id == c->pin &&
		    rr_member_has_credit(&m->sched, rr))
			return m;
	}
	for (i = 0; i < rr->sched.count; i++) {
		struct rr_member *m = member_of(rr->sched.entries[i]);
		uint64_t score = sticky_score(c->key, m->worker->id);

		if (best && score <= best_score)
			continue;
		if (!rr_member_has_credit(&m->sched, rr))
			continue;
		best = m;
		best_score = score;
	}
	return best;
}

static bool rr_sticky_handoff(struct rr_handle *rr, struct rr_conn *c)
{
	struct rr_member *m;

	while ((m = rr_sticky_next(rr, c)) != NULL)
		if (rr_send(rr, m, c))
			return true;
	return false;
}

/* c went to m: a value seen for the first time is pinned to m's slot;
 * otherwise the client is counted there. */
static void rr_sticky_note(struct rr_handle *rr, const struct rr_member *m,
			   const struct rr_conn *c)
{
	struct cluster *cl = rr->h->cluster;
	bool pins = cl->settings.sticky == CLUSTER_STICKY_COOKIE ||
		    cl->settings.sticky == CLUSTER_STICKY_QUERY;

	if (c->value)
		sticky_table_note(cl->sticky_table, c->value, m->worker->id, true);
	else if (!pins)
		sticky_table_note(cl->sticky_table, c->key, m->worker->id, false);
}

static void rr_wait_for_credit(struct rr_handle *rr);

/* A connection routed: to its slot, else queued (the accepting stops). */
static bool rr_sticky_deliver(struct rr_handle *rr, struct rr_conn *c)
{
	if (rr_flush_pending(rr) && rr_sticky_handoff(rr, c))
		return true;
	if (rr_queue_push(&rr->pending, c) < 0)
		close(c->fd);
	return false;
}

/* After a wait for its request (sticky_peek.c). */
static void rr_sticky_peeked(void *arg, struct rr_conn *c)
{
	struct rr_handle *rr = arg;

	if (!rr_sticky_deliver(rr, c))
		rr_wait_for_credit(rr);
}

/* Just accepted; false when it is queued (nobody could take it). */
static bool rr_sticky_accepted(struct rr_handle *rr, struct rr_conn *c)
{
	if (!rr->peek)
		sticky_route_by_address(rr->h->cluster, c);
	else if (!sticky_peek_route(rr->peek, c))
		return true; /* waits for its request: rr_sticky_peeked */
	return rr_sticky_deliver(rr, c);
}

static int rr_sticky_init(struct rr_handle *rr)
{
	struct cluster *cl = rr->h->cluster;

	rr->sticky = cl->settings.sticky != CLUSTER_STICKY_OFF &&
		     cl->sticky_table;
	if (!rr->sticky || cl->settings.sticky == CLUSTER_STICKY_IP)
		return 0;
	rr->peek = sticky_peek_new(cl, rr_sticky_peeked, rr);
	return rr->peek ? 0 : -1;
}

/* ---- health probes (health_probe.c aims them) ---- */

static struct rr_member *rr_member_of(struct rr_handle *rr,
				      const struct cluster_worker *w)
{
	unsigned i;

	for (i = 0; i < rr->sched.count; i++)
		if (member_of(rr->sched.entries[i])->worker == w)
			return member_of(rr->sched.entries[i]);
	return NULL;
}

/* A health probe's connection goes to the worker it probes, whoever's
 * turn it is and whatever its credit; true when c was one (handed, or
 * closed when that worker takes no connections here now: the probe
 * fails).  Other connections pay the one compare of probes_aimed. */
static bool rr_take_probe(struct rr_handle *rr, struct rr_conn *c)
{
	struct health_probe *p;
	struct rr_member *m;

	if (rr->h->cluster->probes_aimed == 0)
		return false;
	p = health_probe_claim(rr->h->cluster, (struct sockaddr *)&c->addr,
			       c->addrlen);
	if (!p)
		return false;
	m = rr_member_of(rr, health_probe_worker(p));
	if (m && rr_deliver(rr, m, c)) {
		health_probe_delivered(p, m->sent);
		return true;
	}
	close(c->fd); /* the probe hears of it from its socket */
	health_probe_undelivered(p, m ? "its queue is full" :
				 "it takes no connections there");
	return true;
}

/* FIFO: the seq-th connection has been read once fewer are unread than
 * were sent after it. */
int rr_handle_probe_taken(struct rr_handle *rr, const struct cluster_worker *w,
			  unsigned long seq)
{
	struct rr_member *m = rr_member_of(rr, w);

	if (!m)
		return -1;
	return rr_member_unread(rr, m) <= m->sent - seq;
}

/* ---- accepting ---- */

static void rr_stop_accepting(struct rr_handle *rr)
{
	if (rr->accepting) {
		event_del(rr->accept_ev);
		rr->accepting = false;
	}
}

/* Out of fds: stop accepting, look again after a while. */
static void rr_retry_later(struct rr_handle *rr, long usec)
{
	struct timeval tv = { usec / 1000000, usec % 1000000 };

	rr_stop_accepting(rr);
	evtimer_add(rr->retry_timer, &tv);
}

/* Every worker is full, each waiting on its writable_ev (armed when it was
 * found full): sleep until one of them reads.  With no member at all there
 * is nothing to wait for but a new one (rr_handle_add resumes). */
static void rr_wait_for_credit(struct rr_handle *rr)
{
	long long wake = 0;
	unsigned i;

	if (rr->inflight_full) { /* no worker's reading frees that budget */
		rr_retry_later(rr, RR_INFLIGHT_RETRY_USEC);
		return;
	}
	rr_stop_accepting(rr);
	/* A full worker waits on its writable event, armed when it was
	 * marked full (rr_member_has_credit).  A stalled one's queue is
	 * empty, so writable at once: its turn comes back by the clock. */
	for (i = 0; i < rr->sched.count; i++) {
		struct rr_member *m = member_of(rr->sched.entries[i]);

		if (rr_member_stalled(m) &&
		    (wake == 0 || m->stalled_until_ms < wake))
			wake = m->stalled_until_ms;
	}
	if (wake != 0) {
		long long ms = wake - monotonic_ms();

		rr_retry_later(rr, ms > 0 ? ms * 1000 : RR_RETRY_USEC);
	}
}

static void rr_resume(struct rr_handle *rr)
{
	if (!rr->h->listening || rr->door_closed)
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
			rr->accepted++;
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

/* Is a connection waiting in the listener's accept queue?  Asked before
 * each accept4 after the first of a wakeup, because an accept4 that finds
 * the queue empty is dear: the kernel makes the new socket and its file
 * before it looks, and frees them again for the EAGAIN (8 us on Linux 6.18
 * here, against 0.5 us for this poll); with a wakeup or two per connection
 * handed, that was most of what rr cost over the hand-off floor. */
static bool rr_listener_has_queued(const struct rr_handle *rr)
{
	struct pollfd p = { .fd = rr->h->fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
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
		/* The first is what libevent woke us for. */
		if (i > 0 && !rr_listener_has_queued(rr))
			return;
		if (!rr_accept_one(rr, &c, m->wants_nonblock))
			return;
		if (rr_take_probe(rr, &c))
			continue;
		if (rr->sticky) {
			if (rr_sticky_accepted(rr, &c))
				continue;
			rr_wait_for_credit(rr); /* it is queued */
			return;
		}
		if (rr_send(rr, m, &c) || rr_handoff(rr, &c))
			continue;
		if (rr_queue_push(&rr->pending, &c) < 0)
			close(c.fd);
		rr_wait_for_credit(rr);
		return;
	}
}

/* A full stop, before the workers are told: what waits in the kernel's
 * accept queue is dealt as usual, as far as the workers have room, then
 * the listener is shut down, so that a client who comes now is refused at
 * once (as under none and reuseport, whose workers' listeners close)
 * instead of waiting in the queue until cluster-run exits, to be reset.
 * A socket systemd passed is left as it is: what comes next is for the
 * service's next start. */
void rr_handle_close_door(struct rr_handle *rr)
{
	unsigned long before;

	if (rr->door_closed || !rr->h->listening || rr->h->adopted)
		return;
	do {
		before = rr->accepted;
		if (rr_listener_has_queued(rr))
			rr_on_acceptable(rr->h->fd, EV_READ, rr);
	} while (rr->accepted != before);
	rr_stop_accepting(rr);
	evtimer_del(rr->retry_timer);
	rr->door_closed = true;
	shutdown(rr->h->fd, SHUT_RDWR);
}

/* Every member is asked the kernel again: the poll rr_on_member_writable
 * falls back to. */
static void rr_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct rr_handle *rr = arg;
	unsigned i;

	rr->inflight_full = false;
	for (i = 0; i < rr->sched.count; i++)
		member_of(rr->sched.entries[i])->full = false;
	rr_resume(rr);
}

static void rr_on_member_writable(evutil_socket_t fd, short what, void *arg)
{
	struct rr_member *m = arg;

	m->outstanding = rr_member_unread(m->rr, m);
	if (m->outstanding < rr_window(m->rr)) {
		m->full = false;
		rr_resume(m->rr);
	} else { /* woken without room: this kernel's buffers differ; poll
		  * it (the others, if any has credit, keep their turns) */
		struct timeval tv = { 0, RR_RETRY_USEC };

		evtimer_add(m->rr->retry_timer, &tv);
	}
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
	if (!rr->accept_ev || !rr->retry_timer || rr_sticky_init(rr) < 0) {
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
	sticky_peek_free(rr->peek);
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

/* Unread connections on the member's faux handle come back to the queue,
 * at most max of them; how many came. */
static unsigned rr_member_reclaim_some(struct rr_handle *rr,
				       struct rr_member *m, unsigned max)
{
	struct cluster_msg_newconn msg;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i;
	unsigned got = 0;
	ssize_t n;

	while (got < max &&
	       (n = cluster_msg_recv(m->worker_end, &msg, sizeof(msg), fds,
				     &nfds, MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
				     NULL)) > 0) {
		struct rr_conn c;

		got++;

		if (cluster_msg_validate(&msg, (size_t)n, nfds) != 0) {
			for (i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		c.fd = fds[0];
		c.nonblock = msg.flags & CLUSTER_NEWCONN_NONBLOCK;
		c.addrlen = msg.peer.len <= sizeof(c.addr) ? msg.peer.len : 0;
		memcpy(&c.addr, &msg.peer.ss, c.addrlen);
		if (rr->sticky) /* what its request named is not kept */
			sticky_route_by_address(rr->h->cluster, &c);
		if (rr_queue_push(&rr->pending, &c) < 0)
			close(c.fd);
	}
	return got;
}

static void rr_member_reclaim(struct rr_handle *rr, struct rr_member *m)
{
	(void)rr_member_reclaim_some(rr, m, UINT_MAX);
}

static void rr_member_leave(struct rr_handle *rr, struct rr_member *m,
			    bool reclaim)
{
	event_del(m->writable_ev);
	rr_scheduler_remove(&rr->sched, &m->sched);
	if (reclaim)
		rr_member_reclaim(rr, m);
	rr_resume(rr);
}

/* In a full stop nobody is left to take a stopping worker's unread
 * connections: they stay with it, and its drain waits until it has read
 * them (worker_rr_unread). */
void rr_member_stop(struct rr_handle *rr, struct rr_member *m)
{
	rr_member_leave(rr, m, !rr->h->cluster->disconnecting);
}

void rr_member_free(struct rr_handle *rr, struct rr_member *m)
{
	rr_member_leave(rr, m, true);
	event_free(m->writable_ev);
	close(m->sup_end);
	close(m->worker_end);
	free(m);
}

/* ---- figures for ctl status and /metrics ---- */

unsigned long rr_handle_accepted(const struct rr_handle *rr)
{
	return rr->accepted;
}

/* One SIOCOUTQ: for the pool's hang check, about once a second. */
unsigned rr_member_waiting(const struct rr_member *m)
{
	return rr_member_unread(m->rr, m);
}

/* Queued in our hands, and sent on faux handles but not yet read: one
 * SIOCOUTQ per member, asked only when an operator asks. */
unsigned rr_handle_held(const struct rr_handle *rr)
{
	unsigned i, held = rr->pending.count + sticky_peek_count(rr->peek);

	for (i = 0; i < rr->sched.count; i++)
		held += rr_member_unread(rr, member_of(rr->sched.entries[i]));
	return held;
}
