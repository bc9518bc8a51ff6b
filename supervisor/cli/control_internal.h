/*
 * control_internal.h - what the control socket's server (control_server.c)
 * and the `cluster-run ctl` client (ctl_client.c) share.
 *
 * The protocol, over a unix SOCK_STREAM socket: the client sends one
 * request line ("status", "status --json", "reload", "scale N", "stop"),
 * the server writes its answer and closes.  An answer that starts with
 * "error: " is a failure (ctl exits 1), one that starts with "usage: " a
 * bad request (ctl exits 2); anything else is the output.  So
 * `echo status | socat - UNIX-CONNECT:PATH` works too.
 */
#ifndef CONTROL_INTERNAL_H
#define CONTROL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The longest request line, without its '\n'. */
#define CONTROL_MAX_REQUEST 256
/* A client has this long to send its request and to take the answer. */
#define CONTROL_CLIENT_TIMEOUT_MS 5000
/* Clients served at once; more wait in the listen backlog. */
#define CONTROL_MAX_CLIENTS 32
/* The most workers `scale` may ask for (as -n). */
#define CONTROL_MAX_WORKERS 4096

#define CONTROL_ERROR_PREFIX "error: "
#define CONTROL_USAGE_PREFIX "usage: "

/* Fills a sockaddr_un for path; -1 with a message in err (too long). */
int control_sockaddr(const char *path, struct sockaddr_un *sun,
		     socklen_t *len, char *err, size_t errlen);

/* "scale" argument: a whole number in 1..CONTROL_MAX_WORKERS, or -1. */
long control_parse_count(const char *text);

struct evbuffer;
struct pool;

/* The answer to "status" (a table) or "status --json", added to out; -1
 * when out of memory. */
int control_status(struct pool *p, struct evbuffer *out, bool json);

#endif
