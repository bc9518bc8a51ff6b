/*
 * accept_gate.h - accepting clients of a small server on the supervisor's
 * loop (the control socket, /metrics), at most a fixed number at once.
 *
 * The gate accepts (non-blocking, close-on-exec) while fewer than max
 * clients are served and hands each fd to on_client; at max it stops
 * watching the listener, so the rest wait in the kernel's backlog until
 * accept_gate_client_gone().  When accept() fails for want of fds or
 * memory it says so through log and tries again a second later rather
 * than spin.
 */
#ifndef ACCEPT_GATE_H
#define ACCEPT_GATE_H

#include <stdbool.h>

struct event;
struct event_base;

struct accept_gate {
	struct event *accept_ev;
	struct event *retry_ev;
	bool accepting;     /* accept_ev is added */
	unsigned nclients, max;
	void (*on_client)(void *arg, int fd); /* counted before the call */
	void (*log)(const char *line);        /* "cannot accept a client: ..." */
	void *arg;
};

/* Starts watching listen_fd (non-blocking).  0, or -1 (out of memory). */
int accept_gate_start(struct accept_gate *g, struct event_base *base,
		      int listen_fd, unsigned max);
/* A client is done: one more may be accepted. */
void accept_gate_client_gone(struct accept_gate *g);
/* Stops watching; the listener itself is the caller's. */
void accept_gate_stop(struct accept_gate *g);

#endif
