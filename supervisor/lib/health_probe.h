/*
 * health_probe.h - health checks through the shared port, aimed at one
 * worker at a time (rr only).
 *
 * Every listening worker gets a probe every interval, the first as soon as
 * it listens.  The supervisor opens a connection to the worker's own
 * listener (its first rr stream listener) from an address it bound for
 * the purpose, and the rr accept loop, which knows the probe by that peer
 * address, hands the connection to that worker, whoever's turn it is
 * (rr_handle.c).  So every worker is probed, through the very socket its
 * clients use, which no load balancer in front can do.
 *
 *   http: "GET PATH HTTP/1.0" must be answered with a 2xx or 3xx status
 *         line within the timeout (the request names the worker it is
 *         aimed at, "X-Cluster-Run-Worker: 2 (pid 4388)", for the
 *         server's logs);
 *   tcp:  the worker must take the connection from its queue within the
 *         timeout, and not reset it.
 *
 * A worker that fails `fails` probes in a row is reported once, and not
 * probed again.  health_checker.c keeps the targets and their verdicts,
 * health_probe.c runs one probe, health_linger.c its socket afterwards.  In reuseport and none the kernel picks the worker, so a
 * probe cannot be aimed: cluster-run refuses the option there (README).
 */
#ifndef HEALTH_PROBE_H
#define HEALTH_PROBE_H

#include <stdbool.h>
#include <stddef.h>

struct cluster;
struct cluster_worker;
struct health_checker;

enum health_kind {
	HEALTH_HTTP = 1,
	HEALTH_TCP,
};

struct health_settings {
	enum health_kind kind;
	const char *path;        /* HEALTH_HTTP: "/health" (kept, not copied) */
	unsigned interval_ms;    /* 0: 5000 */
	unsigned timeout_ms;     /* 0: 2000 */
	unsigned fails;          /* in a row (0: 3) */
	/* w passed a probe; first: its first since it listens (a reload's
	 * replacement is ready then) */
	void (*passed)(void *arg, struct cluster_worker *w, bool first);
	/* w failed `fails` probes in a row; why says how the last one failed:
	 * "http:/health: timeout after 2 s"; answered: it did answer (with
	 * a status that is not 2xx or 3xx), so it still serves */
	void (*failed)(void *arg, struct cluster_worker *w, unsigned fails,
		       const char *why, bool answered);
	void *arg;
};

/* Probes the cluster's workers from now on (one checker per cluster);
 * NULL with errno set.  Free it before the cluster. */
struct health_checker *health_checker_new(struct cluster *c,
					  const struct health_settings *s);
void health_checker_free(struct health_checker *hc);

/* "http:/health" or "tcp", for log lines. */
void health_describe(const struct health_settings *s, char *buf, size_t cap);

#endif
