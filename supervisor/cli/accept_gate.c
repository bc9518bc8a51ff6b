/* accept_gate.c - see accept_gate.h. */
#include "accept_gate.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* After accept() failed for want of fds or memory. */
#define ACCEPT_RETRY_MS 1000

static void gate_resume(struct accept_gate *g)
{
	if (!g->accepting && g->nclients < g->max &&
	    !evtimer_pending(g->retry_ev, NULL)) {
		event_add(g->accept_ev, NULL);
		g->accepting = true;
	}
}

static void gate_pause(struct accept_gate *g)
{
	event_del(g->accept_ev);
	g->accepting = false;
}

static void gate_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct accept_gate *g = arg;
	struct timeval retry = { ACCEPT_RETRY_MS / 1000,
				 (ACCEPT_RETRY_MS % 1000) * 1000 };
	char line[160];

	while (g->nclients < g->max) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			g->nclients++;
			g->on_client(g->arg, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* EMFILE, ENFILE, ENOBUFS, ENOMEM: the clients wait in the
		 * backlog; try again in a while rather than spin. */
		snprintf(line, sizeof(line), "cannot accept a client: %s; "
			 "trying again in %d ms", strerror(errno),
			 ACCEPT_RETRY_MS);
		g->log(line);
		gate_pause(g);
		evtimer_add(g->retry_ev, &retry);
		return;
	}
	/* As many clients as are served at once: the rest wait in the
	 * backlog until one goes (accept_gate_client_gone). */
	gate_pause(g);
}

static void gate_on_retry(evutil_socket_t fd, short what, void *arg)
{
	gate_resume(arg);
}

int accept_gate_start(struct accept_gate *g, struct event_base *base,
		      int listen_fd, unsigned max)
{
	g->max = max;
	g->nclients = 0;
	g->accept_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST,
				 gate_on_accept, g);
	g->retry_ev = evtimer_new(base, gate_on_retry, g);
	if (!g->accept_ev || !g->retry_ev || event_add(g->accept_ev, NULL) < 0) {
		accept_gate_stop(g);
		return -1;
	}
	g->accepting = true;
	return 0;
}

void accept_gate_client_gone(struct accept_gate *g)
{
	if (g->nclients > 0)
		g->nclients--;
	gate_resume(g);
}

void accept_gate_stop(struct accept_gate *g)
{
	if (g->accept_ev)
		event_free(g->accept_ev);
	if (g->retry_ev)
		event_free(g->retry_ev);
	g->accept_ev = g->retry_ev = NULL;
	g->accepting = false;
}
