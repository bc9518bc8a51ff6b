/*
 * health_checker.c - the health checks' checker (health_probe.h): a
 * target per listening worker, probed at once and then every interval,
 * one probe in flight each (health_probe.c); the verdicts, counted in a
 * row; and what rr_handle.c asks of an accepted connection.
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

void health_describe(const struct health_settings *s, char *buf, size_t cap)
{
	if (s->kind == HEALTH_TCP)
		snprintf(buf, cap, "tcp");
	else
		snprintf(buf, cap, "http:%s", s->path ? s->path : "/");
}

static void target_passed(struct health_target *t)
{
	struct health_checker *hc = t->hc;
	bool first = !t->passed_once;

	t->failed_in_row = 0;
	t->passed_once = true;
	if (hc->s.passed)
		hc->s.passed(hc->s.arg, t->w, first);
}

static void target_failed(struct health_target *t, const char *why,
			  bool answered)
{
	struct health_checker *hc = t->hc;
	char line[256];

	if (++t->failed_in_row < hc->s.fails)
		return;
	t->reported = true;
	evtimer_del(t->tick);
	snprintf(line, sizeof(line), "%s: %s", hc->what, why);
	if (hc->s.failed)
		hc->s.failed(hc->s.arg, t->w, t->failed_in_row, line, answered);
}

void health_target_verdict(struct health_target *t, const char *why,
			   bool answered)
{
	/* one that is leaving was not asked to be healthy */
	if (worker_state(t->w) != WORKER_LISTENING || t->hc->c->disconnecting)
		return;
	if (why)
		target_failed(t, why, answered);
	else
		target_passed(t);
}

/* ---- what rr_handle.c asks ---- */

static bool same_peer(const struct sockaddr_storage *a, socklen_t alen,
		      const struct sockaddr *b, socklen_t blen)
{
	if (a->ss_family != b->sa_family)
		return false;
	switch (b->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr,
			      sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX:
		return alen == blen && memcmp(a, b, blen) == 0;
	}
	return false;
}

struct health_probe *health_probe_claim(struct cluster *c,
					const struct sockaddr *peer,
					socklen_t len)
{
	struct health_target *t;

	if (!c->health)
		return NULL;
	for (t = c->health->targets; t; t = t->next) {
		struct health_probe *p = t->probe;

		if (p && p->aimed &&
		    same_peer(&p->local, p->local_len, peer, len)) {
			p->aimed = false;
			c->probes_aimed--;
			return p;
		}
	}
	return NULL;
}

/* ---- targets: one per listening worker ---- */

static struct health_target *target_find(struct health_checker *hc,
					 const struct cluster_worker *w,
					 struct health_target ***link)
{
	struct health_target **pp;

	for (pp = &hc->targets; *pp; pp = &(*pp)->next)
		if ((*pp)->w == w) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

static void target_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct health_target *t = arg;

	/* One probe at a time per worker; none for one that is leaving. */
	if (t->probe || t->reported || t->hc->c->disconnecting ||
	    worker_state(t->w) != WORKER_LISTENING)
		return;
	health_probe_start(t);
}

static void target_free(struct health_target *t)
{
	if (t->probe)
		health_probe_free(t->probe);
	if (t->tick)
		event_free(t->tick);
	free(t);
}

/* Its first listener: probed now, then every interval. */
static void checker_on_listening(struct cluster *c,
				 const struct cluster_event *ev, void *arg)
{
	struct health_checker *hc = arg;
	struct timeval tv = { hc->s.interval_ms / 1000,
			      (hc->s.interval_ms % 1000) * 1000 };
	struct health_target *t;

	if (target_find(hc, ev->worker, NULL))
		return;
	t = calloc(1, sizeof(*t));
	if (!t)
		return;
	t->hc = hc;
	t->w = ev->worker;
	t->tick = event_new(c->base, -1, EV_PERSIST, target_on_tick, t);
	if (!t->tick) {
		free(t);
		return;
	}
	t->next = hc->targets;
	hc->targets = t;
	evtimer_add(t->tick, &tv);
	target_on_tick(-1, 0, t);
}

static void checker_on_exit(struct cluster *c, const struct cluster_event *ev,
			    void *arg)
{
	struct health_target **link, *t = target_find(arg, ev->worker, &link);

	if (!t)
		return;
	*link = t->next;
	target_free(t);
}

static void checker_apply_defaults(struct health_settings *s)
{
	if (!s->interval_ms)
		s->interval_ms = 5000;
	if (!s->timeout_ms)
		s->timeout_ms = 2000;
	if (!s->fails)
		s->fails = 3;
	if (!s->path)
		s->path = "/";
}

struct health_checker *health_checker_new(struct cluster *c,
					  const struct health_settings *s)
{
	struct health_checker *hc;

	if (c->health) {
		errno = EBUSY;
		return NULL;
	}
	hc = calloc(1, sizeof(*hc));
	if (!hc)
		return NULL;
	hc->c = c;
	hc->s = *s;
	checker_apply_defaults(&hc->s);
	health_describe(&hc->s, hc->what, sizeof(hc->what));
	/* Both or neither: a subscription cannot be taken back. */
	if (c->nsubs[CLUSTER_EV_LISTENING] >= CLUSTER_MAX_SUBSCRIBERS ||
	    c->nsubs[CLUSTER_EV_EXIT] >= CLUSTER_MAX_SUBSCRIBERS) {
		free(hc);
		errno = EMFILE;
		return NULL;
	}
	cluster_on(c, CLUSTER_EV_LISTENING, checker_on_listening, hc);
	cluster_on(c, CLUSTER_EV_EXIT, checker_on_exit, hc);
	c->health = hc;
	return hc;
}

void health_checker_free(struct health_checker *hc)
{
	struct health_target *t;

	if (!hc)
		return;
	while ((t = hc->targets) != NULL) {
		hc->targets = t->next;
		target_free(t);
	}
	health_linger_free_all(&hc->lingering);
	hc->c->health = NULL;
	hc->c->probes_aimed = 0;
	free(hc);
}
