/*
 * sticky_peek.c - see sticky_peek.h.
 *
 * Every waiting connection has the same wait, so the set is a list in
 * order of arrival, oldest first, and one timer for the oldest's deadline
 * serves them all.  The client's FIN (EV_CLOSED) or an error means that
 * nothing more will come: the connection is routed with what is there.
 */
#include "sticky_peek.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "sticky.h"
#include "monotonic.h"

#define PEEK_SET_MAX 1024

struct peek_wait {
	struct rr_conn c;
	struct sticky_peek *set;
	struct event *ev;
	long long deadline_ms;
	struct peek_wait *prev, *next;
};

struct sticky_peek {
	struct cluster *cl;
	sticky_peek_done_fn done;
	void *arg;
	bool edge;             /* the loop has edge-triggered events */
	struct event *timer;   /* the oldest's deadline */
	struct peek_wait *oldest, *newest;
	unsigned count;
	char buf[STICKY_PEEK_MAX];
};

void sticky_route_by_address(const struct cluster *cl, struct rr_conn *c)
{
	c->key = sticky_hash_addr(cl->sticky_seed, (struct sockaddr *)&c->addr,
				  c->addrlen);
	c->value = 0;
	c->pin = 0;
}

/* What the request named: a header's value is the client (its slots'
 * order), a cookie or parameter a session, pinned where it first went;
 * X-Forwarded-For, else the address, is the client otherwise. */
static void route_by_request(const struct sticky_peek *p, struct rr_conn *c,
			     const struct sticky_http_found *f)
{
	struct cluster *cl = p->cl;
	uint64_t seed = cl->sticky_seed;

	sticky_route_by_address(cl, c);
	if (!f)
		return;
	if (f->forwarded)
		c->key = sticky_hash_bytes(seed, f->forwarded, f->forwarded_len);
	if (!f->value)
		return;
	if (cl->settings.sticky == CLUSTER_STICKY_HEADER) {
		c->key = sticky_hash_bytes(seed, f->value, f->value_len);
		return;
	}
	c->value = sticky_hash_bytes(seed, f->value, f->value_len);
	c->pin = sticky_table_lookup(cl->sticky_table, c->value);
}

/* Looks at what has come; true once c is routed.  last: route it with
 * what is there. */
static bool peek_look(struct sticky_peek *p, struct rr_conn *c, bool last)
{
	struct sticky_http_found found;
	enum sticky_http_state st;
	ssize_t n;

	n = recv(c->fd, p->buf, sizeof(p->buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !last)
		return false;
	if (n <= 0 || (size_t)n == sizeof(p->buf))
		last = true; /* an error, EOF, or all we look at */
	st = sticky_http_scan(p->buf, n > 0 ? (size_t)n : 0, last,
			      p->cl->settings.sticky, p->cl->settings.sticky_name,
			      &found);
	if (st == STICKY_HTTP_MORE)
		return false;
	route_by_request(p, c, st == STICKY_HTTP_DONE ? &found : NULL);
	return true;
}

static void wait_unlink(struct peek_wait *w)
{
	struct sticky_peek *p = w->set;

	if (w->prev)
		w->prev->next = w->next;
	else
		p->oldest = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		p->newest = w->prev;
	p->count--;
}

static void timer_arm(struct sticky_peek *p)
{
	long long ms;
	struct timeval tv;

	if (!p->oldest) {
		evtimer_del(p->timer);
		return;
	}
	ms = p->oldest->deadline_ms - monotonic_ms();
	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

/* w is done waiting: routed, and on to done(). */
static void wait_finish(struct peek_wait *w)
{
	struct sticky_peek *p = w->set;
	struct rr_conn c = w->c;
	bool was_oldest = p->oldest == w;

	wait_unlink(w);
	event_free(w->ev);
	free(w);
	if (was_oldest)
		timer_arm(p);
	p->done(p->arg, &c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct peek_wait *w = arg;

	if (peek_look(w->set, &w->c, (what & EV_CLOSED) != 0))
		wait_finish(w);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sticky_peek *p = arg;
	long long now = monotonic_ms();

	while (p->oldest && p->oldest->deadline_ms <= now) {
		struct peek_wait *w = p->oldest;

		peek_look(p, &w->c, true);
		wait_finish(w);
	}
	timer_arm(p);
}

bool sticky_peek_route(struct sticky_peek *p, struct rr_conn *c)
{
	struct peek_wait *w;

	/* Without edge-triggered events the next wakeup would come at once
	 * for the bytes already there: one look only. */
	if (peek_look(p, c, !p->edge))
		return true;
	if (p->count >= PEEK_SET_MAX || !(w = calloc(1, sizeof(*w)))) {
		sticky_route_by_address(p->cl, c);
		return true;
	}
	w->c = *c;
	w->set = p;
	w->deadline_ms = monotonic_ms() + p->cl->settings.sticky_wait_ms;
	w->ev = event_new(p->cl->base, c->fd, EV_READ | EV_CLOSED | EV_PERSIST |
			  EV_ET,
			  on_readable, w);
	if (!w->ev || event_add(w->ev, NULL) < 0) {
		if (w->ev)
			event_free(w->ev);
		free(w);
		sticky_route_by_address(p->cl, c);
		return true;
	}
	w->prev = p->newest;
	if (p->newest)
		p->newest->next = w;
	else
		p->oldest = w;
	p->newest = w;
	if (p->count++ == 0)
		timer_arm(p);
	return false;
}

unsigned sticky_peek_count(const struct sticky_peek *p)
{
	return p ? p->count : 0;
}

struct sticky_peek *sticky_peek_new(struct cluster *cl, sticky_peek_done_fn done,
				    void *arg)
{
	struct sticky_peek *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cl = cl;
	p->done = done;
	p->arg = arg;
	p->edge = (event_base_get_features(cl->base) & EV_FEATURE_ET) != 0;
	p->timer = evtimer_new(cl->base, on_deadline, p);
	if (!p->timer) {
		free(p);
		return NULL;
	}
	return p;
}

void sticky_peek_free(struct sticky_peek *p)
{
	if (!p)
		return;
	while (p->oldest) {
		struct peek_wait *w = p->oldest;

		wait_unlink(w);
		event_free(w->ev);
		close(w->c.fd);
		free(w);
	}
	event_free(p->timer);
	free(p);
}
