/*
 * sd_activation.h - systemd socket activation without libsystemd
 * ($LISTEN_FDS, see sd_listen_fds(3)): the cluster library adopts a socket
 * systemd passed when a worker binds exactly its address.
 *
 * $LISTEN_FDS does not reach the workers (worker_spawn.c leaves it out of
 * their environment), so a server that links libsystemd itself does not
 * take cluster-run's sockets.
 */
#ifndef SD_ACTIVATION_H
#define SD_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "log_line.h"

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
