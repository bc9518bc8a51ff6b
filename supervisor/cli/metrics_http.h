/*
 * metrics_http.h - `--metrics ADDR:PORT`: GET /metrics over HTTP, served
 * from the supervisor's event loop.
 */
#ifndef METRICS_HTTP_H
#define METRICS_HTTP_H

#include <stddef.h>

struct event_base;
struct listen_addr;
struct pool;
struct metrics_server;

/* Clients served at once; more wait in the listen backlog. */
#define METRICS_MAX_CLIENTS 16
/* A client that has not sent its whole request by then is closed, and
 * one whose answer is not read by then too. */
#define METRICS_CLIENT_TIMEOUT_MS 5000
/* The request line and headers, at most. */
#define METRICS_MAX_REQUEST 8192

/* Listens on addr; NULL with a one-line message in err.  The caller
 * ignores SIGPIPE (cluster-run does). */
struct metrics_server *metrics_server_new(struct event_base *base,
					  struct pool *p,
					  const struct listen_addr *addr,
					  char *err, size_t errlen);
/* Closes the listener and every client.  NULL is fine. */
void metrics_server_free(struct metrics_server *m);

#endif
