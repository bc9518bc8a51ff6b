/*
 * health_internal.h - what the health checks' files share inside the
 * cluster library: health_checker.c (the checker: a target per listening
 * worker, its schedule, the verdicts, what rr_handle.c asks) and
 * health_probe.c (one probe: connect, ask, judge).  health_linger.c keeps
 * a judged probe's socket until its server closes it.
 */
#ifndef HEALTH_INTERNAL_H
#define HEALTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "health_probe.h"

#define ANSWER_MAX 128 /* enough for any status line we judge */

struct event;
struct health_linger;
struct health_probe;

/* One worker's probing. */
struct health_target {
	struct health_checker *hc;
	struct cluster_worker *w;
	struct event *tick;            /* every interval */
	struct health_probe *probe;    /* in flight, or NULL */
	unsigned failed_in_row;
	bool passed_once;
	bool reported;                 /* failed `fails` in a row: no more */
	struct health_target *next;
};

enum probe_phase {
	PROBE_CONNECTING,
	PROBE_ANSWER,   /* http: request sent, reading the status line */
	PROBE_TAKEN,    /* tcp: waiting for the worker to read it */
};

struct health_probe {
	struct health_target *t;
	int fd;
	enum probe_phase phase;
	struct event *io, *timeout, *poll;
	unsigned poll_ms;
	uint32_t handle_id;
	struct sockaddr_storage local;  /* its address: the peer rr sees */
	socklen_t local_len;
	bool aimed;                     /* in the queue, counted in probes_aimed */
	bool connected;                 /* then it lingers (health_linger.h) ... */
	bool eof;                       /* ... unless the server closed it */
	const char *undelivered;        /* rr could not hand it over: why */
	bool delivered;                 /* handed to the worker ... */
	unsigned long seq;              /* ... as its member's seq-th */
	char request[512];
	size_t request_len, request_off;
	char answer[ANSWER_MAX + 1];
	size_t answer_len;
};

struct health_checker {
	struct cluster *c;
	struct health_settings s;
	char what[96];                  /* "http:/health", "tcp" */
	struct health_target *targets;
	struct health_linger *lingering; /* probes' sockets after the verdict */
	bool said_unprobeable;
};

/* health_probe.c: t's worker gets a probe now (t->probe while in flight). */
void health_probe_start(struct health_target *t);
/* Ends p without a verdict (its worker is gone, the checker stops). */
void health_probe_free(struct health_probe *p);

/* health_checker.c: how t's probe ended (why: NULL when it passed;
 * answered: the worker did answer); counts only while t's worker listens. */
void health_target_verdict(struct health_target *t, const char *why,
			   bool answered);

#endif
