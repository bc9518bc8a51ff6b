/*
 * control.h - the control socket of a running cluster-run, and the
 * `cluster-run ctl` client that talks to it.
 */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>

struct event_base;
struct pool;
struct control;

/* The default path: $XDG_RUNTIME_DIR/cluster-run.sock, or
 * /run/cluster-run.sock for root.  -1 when none can be had (err says why). */
int control_default_path(char *out, size_t cap, char *err, size_t errlen);

/* Listens on path (mode 0600 from the start, peers checked with
 * SO_PEERCRED: same uid or root).  An existing path is refused when a
 * server answers there or it is not a socket, and replaced when it is a
 * stale socket.  NULL with a one-line message in err, and errno
 * EADDRINUSE (another cluster-run answers at path), EEXIST (path is not a
 * socket) or 0 (anything else: the socket could not be made).  Clients are served
 * on base's loop with non-blocking fds and a timeout each; the caller
 * ignores SIGPIPE (cluster-run does). */
struct control *control_new(struct event_base *base, struct pool *p,
			    const char *path, char *err, size_t errlen);
/* Stops listening, closes the clients and removes the socket file (if it
 * is still the one control_new() made).  NULL is fine. */
void control_free(struct control *ctl);

/* `cluster-run ctl [--control PATH] status [--json] | reload | scale N |
 * stop`: argv[0] is "ctl".  Returns the process exit code. */
int ctl_main(int argc, char **argv);

#endif
