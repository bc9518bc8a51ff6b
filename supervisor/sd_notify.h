/*
 * sd_notify.h - systemd without libsystemd: the readiness protocol
 * ($NOTIFY_SOCKET, see sd_notify(3)) and socket activation ($LISTEN_FDS,
 * see sd_listen_fds(3)).
 *
 * Neither variable reaches the workers (worker_spawn.c leaves them out of
 * their environment), so a server that links libsystemd itself does not
 * answer for cluster-run nor take its sockets.
 */
#ifndef SD_NOTIFY_H
#define SD_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>

#include "log_line.h"

/* ---- readiness ---- */

/* Whether $NOTIFY_SOCKET names a socket to tell. */
bool systemd_notify_enabled(void);

/*
 * Sends state ("READY=1\nSTATUS=...") as one datagram to $NOTIFY_SOCKET (a
 * path, or "@name" in the abstract namespace), without waiting: 0 when sent
 * or when there is no $NOTIFY_SOCKET, -1 with errno.
 */
int systemd_notify(const char *state);
int systemd_notifyf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* ---- socket activation ---- */

#define SYSTEMD_LISTEN_FDS_START 3
#define SYSTEMD_LISTEN_FDS_MAX 64

/*
 * The sockets systemd passed: with LISTEN_PID equal to our pid, fds 3 ..
 * 3+LISTEN_FDS-1.  Each socket among them is made close-on-exec and stored
 * in fds (at most max); one line per socket (or per fd left out, or about
 * a LISTEN_PID that is not ours) goes to log (NULL: stderr), named from
 * LISTEN_FDNAMES when it is set.  Returns how many sockets were stored.
 */
unsigned systemd_listen_fds(int *fds, unsigned max, log_line_fn log,
			    void *log_arg);

/*
 * The fd among fds bound to exactly addr with this socket type: same
 * family, address and port (never port 0), or the same unix path or
 * abstract name; never a connected socket (Accept=yes).  -1 if none.
 */
int systemd_listen_match(const int *fds, unsigned n, int type,
			 const struct sockaddr *addr, socklen_t len);

/* For a bind that failed: the fd among fds on the same TCP/UDP port as
 * addr but not a match ("[::]:8080" for a bind of "0.0.0.0:8080"), its
 * address as text in buf; -1 if none. */
int systemd_listen_near_miss(const int *fds, unsigned n,
			     const struct sockaddr *addr, socklen_t len,
			     char *buf, size_t cap);

#endif
