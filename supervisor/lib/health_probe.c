/*
 * health_probe.c - one health probe (health_probe.h says what it is;
 * health_checker.c decides when and what its verdict does).
 *
 * A probe is a non-blocking client socket of the supervisor's, bound to a
 * port of its own on the listener's address (an explicitly bound port is
 * one the kernel gives no other connect(): the peer address names the
 * probe alone), connected to the worker's listener.  While it waits in the
 * listener's queue it is "aimed": rr_handle.c asks health_probe_claim()
 * about each connection it accepts while any probe is, and hands the
 * probe's to its worker.  Everything runs on the loop: a connect that
 * finishes later, reads and writes on readiness, a libevent timer for the
 * timeout, and for tcp a short timer that asks the kernel whether the
 * worker has read its queue up to the probe.
 */
#include "health_internal.h"
#include "cluster_internal.h"
#include "health_linger.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TAKEN_POLL_FIRST_MS 2   /* tcp: is it read yet?  Doubling ... */
#define TAKEN_POLL_MAX_MS 50    /* ... up to this. */
#define LINGER_MIN_MS 10000
#define LINGER_MAX_MS 600000

/* "2 s", "0.5 s", "0.25 s": no trailing zeros. */
static void seconds_text(unsigned ms, char *buf, size_t cap)
{
	unsigned frac = ms % 1000;

	if (frac == 0)
		snprintf(buf, cap, "%u s", ms / 1000);
	else if (frac % 100 == 0)
		snprintf(buf, cap, "%u.%u s", ms / 1000, frac / 100);
	else if (frac % 10 == 0)
		snprintf(buf, cap, "%u.%02u s", ms / 1000, frac / 10);
	else
		snprintf(buf, cap, "%u.%03u s", ms / 1000, frac);
}

/* How long a probe's socket may linger after its verdict.  A probe that
 * timed out in a stopped worker's queue is dealt to another worker once
 * that one is replaced, at most about fails * interval later: its
 * socket is still open then, so that worker's answer finds a reader. */
static unsigned linger_ms(const struct health_settings *s)
{
	unsigned long ms = (unsigned long)s->fails * s->interval_ms +
			   2ul * s->timeout_ms;

	return ms < LINGER_MIN_MS ? LINGER_MIN_MS
	       : ms > LINGER_MAX_MS ? LINGER_MAX_MS : (unsigned)ms;
}

void health_probe_free(struct health_probe *p)
{
	struct cluster *c = p->t->hc->c;

	if (p->aimed && c->probes_aimed > 0)
		c->probes_aimed--;
	if (p->io)
		event_free(p->io);
	if (p->timeout)
		event_free(p->timeout);
	if (p->poll)
		event_free(p->poll);
	if (p->fd >= 0 && p->connected && !p->eof) {
		/* We have nothing more to say: a server that waits for a
		 * request (one left in a queue for later) reads EOF now. */
		shutdown(p->fd, SHUT_WR);
		health_linger_start(c->base, &p->t->hc->lingering, p->fd,
				    linger_ms(&p->t->hc->s));
	} else if (p->fd >= 0) {
		close(p->fd);
	}
	p->t->probe = NULL;
	free(p);
}

/* The probe is over, with its verdict (a failure that rr could not hand
 * it over is told as that, not as the reset or EOF it caused). */
static void probe_end(struct health_probe *p, const char *why)
{
	struct health_target *t = p->t;
	bool answered = p->answer_len > 0;

	if (why && p->undelivered)
		why = p->undelivered;
	health_probe_free(p);
	health_target_verdict(t, why, answered);
}

static void probe_fail_errno(struct health_probe *p, const char *doing,
			     int err)
{
	char why[160];

	if (err == ECONNRESET || err == EPIPE)
		snprintf(why, sizeof(why), "connection reset");
	else
		snprintf(why, sizeof(why), "%s: %s", doing, strerror(err));
	probe_end(p, why);
}

/* "HTTP/1.1 200 ..." -> 200; -1 when not a status line. */
static int status_code(const char *line)
{
	int major, minor, code, n = 0;

	if (sscanf(line, "HTTP/%d.%d %3d%n", &major, &minor, &code, &n) != 3 ||
	    n == 0)
		return -1;
	return code;
}

/* http: judged on the status line, as soon as it is whole. */
static void probe_judge_answer(struct health_probe *p, bool eof)
{
	char why[160];
	int code;

	if (!memchr(p->answer, '\n', p->answer_len) &&
	    p->answer_len < ANSWER_MAX && !eof)
		return;
	if (p->answer_len == 0) {
		probe_end(p, "closed without an answer");
		return;
	}
	code = status_code(p->answer);
	if (code >= 200 && code < 400) {
		probe_end(p, NULL);
		return;
	}
	if (code < 0)
		snprintf(why, sizeof(why), "answered something that is not "
			 "an HTTP status line");
	else
		snprintf(why, sizeof(why), "answered %d", code);
	probe_end(p, why);
}

static void probe_read_answer(struct health_probe *p)
{
	ssize_t n = recv(p->fd, p->answer + p->answer_len,
			 ANSWER_MAX - p->answer_len, 0);

	if (n < 0) {
		p->eof = errno != EAGAIN && errno != EINTR;
		if (p->eof)
			probe_fail_errno(p, "read", errno);
		return;
	}
	p->answer_len += (size_t)n;
	p->answer[p->answer_len] = '\0';
	p->eof = n == 0;
	probe_judge_answer(p, n == 0);
}

/* tcp: readable before the worker read it from its queue means the
 * supervisor closed it (no member to take it) or a reset; after, any
 * news is judged by probe_check_taken(). */
static void probe_tcp_news(struct health_probe *p)
{
	char byte;
	ssize_t n = recv(p->fd, &byte, 1, MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	p->eof = n <= 0;
	if (n < 0)
		probe_fail_errno(p, "read", errno);
	else if (!p->delivered)
		probe_end(p, "closed before the worker took it");
	else
		event_del(p->io); /* data or EOF from the worker: the poll says */
}

static void probe_on_io(evutil_socket_t fd, short what, void *arg);

/* The next phase, and what of the socket it waits for. */
static void probe_watch(struct health_probe *p, enum probe_phase phase,
			short events)
{
	p->phase = phase;
	event_del(p->io);
	event_assign(p->io, p->t->hc->c->base, p->fd, events, probe_on_io, p);
	event_add(p->io, NULL);
}

static void probe_send_request(struct health_probe *p)
{
	ssize_t n = send(p->fd, p->request + p->request_off,
			 p->request_len - p->request_off, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			probe_fail_errno(p, "write", errno);
		return;
	}
	p->request_off += (size_t)n;
	if (p->request_off < p->request_len)
		return; /* the rest when writable again */
	probe_watch(p, PROBE_ANSWER, EV_READ | EV_PERSIST);
}

static void probe_poll_again(struct health_probe *p)
{
	struct timeval tv = { 0, (long)p->poll_ms * 1000 };

	evtimer_add(p->poll, &tv);
	if (p->poll_ms < TAKEN_POLL_MAX_MS)
		p->poll_ms *= 2;
}

/* tcp: healthy once the worker read the probe from its queue, unless it
 * reset it. */
static void probe_check_taken(evutil_socket_t fd, short what, void *arg)
{
	struct health_probe *p = arg;
	struct handle *h = handle_find_id(p->t->hc->c, p->handle_id);
	int taken = p->delivered && h && h->rr
		? rr_handle_probe_taken(h->rr, p->t->w, p->seq) : 0;
	int err = 0;
	socklen_t len = sizeof(err);

	if (taken < 0) {
		probe_end(p, "its worker no longer takes connections there");
		return;
	}
	if (!taken) {
		probe_poll_again(p);
		return;
	}
	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) {
		p->eof = true;
		probe_fail_errno(p, "taken, then", err);
		return;
	}
	probe_end(p, NULL); /* it lingers: what the server writes is read */
}

static void probe_connected(struct health_probe *p)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		probe_fail_errno(p, "connect", err);
		return;
	}
	p->connected = true;
	if (p->t->hc->s.kind == HEALTH_HTTP) {
		probe_send_request(p);
		return;
	}
	probe_watch(p, PROBE_TAKEN, EV_READ | EV_PERSIST);
	probe_poll_again(p);
}

static void probe_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct health_probe *p = arg;

	switch (p->phase) {
	case PROBE_CONNECTING:
		probe_connected(p);
		return;
	case PROBE_ANSWER:
		probe_read_answer(p);
		return;
	case PROBE_TAKEN:
		probe_tcp_news(p);
		return;
	}
}

static void probe_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct health_probe *p = arg;
	char why[96], secs[32];

	seconds_text(p->t->hc->s.timeout_ms, secs, sizeof(secs));
	snprintf(why, sizeof(why), "%s %s", p->t->hc->s.kind == HEALTH_TCP
		 ? "not taken from its queue within" : "timeout after", secs);
	probe_end(p, why);
}

/* Where to connect for h: its own address, loopback for a wildcard. */
static socklen_t probe_address(const struct handle *h,
			       struct sockaddr_storage *to)
{
	memcpy(to, &h->addr, h->addrlen);
	if (h->domain == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)to;

		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (h->domain == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)to;

		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
	}
	return h->addrlen;
}

/* Our own end: a port of its own on the address we connect to (TCP), an
 * autobound abstract name (unix: an unbound client has no name rr could
 * know it by). */
static int probe_bind(int fd, int domain, const struct sockaddr_storage *to,
		      socklen_t to_len)
{
	struct sockaddr_storage me;

	if (domain == AF_UNIX) {
		sa_family_t fam = AF_UNIX;

		return bind(fd, (const struct sockaddr *)&fam, sizeof(fam));
	}
	memcpy(&me, to, to_len);
	if (domain == AF_INET)
		((struct sockaddr_in *)&me)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&me)->sin6_port = 0;
	return bind(fd, (const struct sockaddr *)&me, to_len);
}

/* The worker's first rr stream listener (lowest id), or NULL. */
static struct handle *probe_handle(const struct cluster_worker *w)
{
	struct handle *best = NULL;
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker) {
		struct handle *h = m->handle;

		if (!m->listening || !h->rr || h->type != SOCK_STREAM ||
		    (h->domain != AF_INET && h->domain != AF_INET6 &&
		     h->domain != AF_UNIX))
			continue;
		if (!best || h->id < best->id)
			best = h;
	}
	return best;
}

/* Host: the address connected to ("127.0.0.1:8080" for a listener on
 * 0.0.0.0:8080), "localhost" for a unix socket. */
static void probe_format_request(struct health_probe *p,
				 const struct handle *h)
{
	struct sockaddr_storage to;
	socklen_t to_len = probe_address(h, &to);
	char host[SOCKADDR_TEXT_MAX];
	int n;

	if (p->t->hc->s.kind != HEALTH_HTTP)
		return;
	if (h->domain == AF_UNIX)
		snprintf(host, sizeof(host), "localhost");
	else
		sockaddr_text((const struct sockaddr *)&to, to_len, host,
			      sizeof(host));
	n = snprintf(p->request, sizeof(p->request),
		     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: cluster-run "
		     "health check\r\nX-Cluster-Run-Worker: %u (pid %d)\r\n"
		     "Connection: close\r\n\r\n", p->t->hc->s.path, host,
		     p->t->w->id, (int)p->t->w->pid);
	p->request_len = n > 0 && (size_t)n < sizeof(p->request)
		? (size_t)n : 0;
}

/* Opens the socket and starts the connect; -1 with errno. */
static int probe_open(struct health_probe *p, const struct handle *h)
{
	struct sockaddr_storage to;
	socklen_t to_len = probe_address(h, &to);

	p->fd = socket(h->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0);
	if (p->fd < 0 || probe_bind(p->fd, h->domain, &to, to_len) < 0)
		return -1;
	p->local_len = sizeof(p->local);
	if (getsockname(p->fd, (struct sockaddr *)&p->local, &p->local_len) < 0)
		return -1;
	if (connect(p->fd, (const struct sockaddr *)&to, to_len) < 0 &&
	    errno != EINPROGRESS)
		return -1;
	return 0;
}

void health_probe_start(struct health_target *t)
{
	struct health_checker *hc = t->hc;
	struct event_base *base = hc->c->base;
	struct timeval tv = { hc->s.timeout_ms / 1000,
			      (hc->s.timeout_ms % 1000) * 1000 };
	struct handle *h = probe_handle(t->w);
	struct health_probe *p;

	if (!h) {
		if (!hc->said_unprobeable)
			cluster_logf(hc->c, "health check: worker %u (pid %d) "
				     "has no TCP or unix stream listener in rr "
				     "to probe; it is not probed",
				     t->w->id, (int)t->w->pid);
		hc->said_unprobeable = true;
		health_target_verdict(t, NULL, false); /* nothing to judge it
							 * by: not held back */
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->t = t;
	p->fd = -1;
	p->handle_id = h->id;
	p->poll_ms = TAKEN_POLL_FIRST_MS;
	t->probe = p;
	probe_format_request(p, h);
	p->io = event_new(base, -1, 0, probe_on_io, p);
	p->timeout = evtimer_new(base, probe_on_timeout, p);
	p->poll = evtimer_new(base, probe_check_taken, p);
	if (!p->io || !p->timeout || !p->poll) {
		health_probe_free(p);
		return;
	}
	if (probe_open(p, h) < 0) {
		probe_fail_errno(p, "connect", errno);
		return;
	}
	p->aimed = true;
	hc->c->probes_aimed++;
	probe_watch(p, PROBE_CONNECTING, EV_WRITE);
	evtimer_add(p->timeout, &tv);
}

struct cluster_worker *health_probe_worker(const struct health_probe *p)
{
	return p->t->w;
}

void health_probe_delivered(struct health_probe *p, unsigned long seq)
{
	p->delivered = true;
	p->seq = seq;
}

void health_probe_undelivered(struct health_probe *p, const char *why)
{
	p->undelivered = why;
}
