/*
 * sd_notify.h - systemd's readiness protocol without libsystemd
 * ($NOTIFY_SOCKET, see sd_notify(3)); socket activation is the library's
 * (lib/sd_activation.h).
 *
 * $NOTIFY_SOCKET does not reach the workers (worker_spawn.c leaves it out
 * of their environment), so a server that links libsystemd itself does not
 * answer for cluster-run.
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

/* ---- STATUS=: the cluster at a glance ---- */

enum systemd_reload {
	SYSTEMD_RELOAD_NONE,     /* none since the start */
	SYSTEMD_RELOAD_RUNNING,
	SYSTEMD_RELOAD_DONE,     /* the last one replaced every worker */
	SYSTEMD_RELOAD_STOPPED,  /* the last one stopped, the old ones serve */
};

struct systemd_status {
	unsigned listening;      /* workers in charge that listen */
	unsigned wanted;
	unsigned restarts;       /* unexpected exits replaced, all slots */
	enum systemd_reload reload;
	long long reload_age_ms; /* DONE, STOPPED: since it ended */
	/* Connections waiting for a worker: the kernel's accept queues of
	 * the stream listeners plus, in rr, those cluster-run holds; -1 when
	 * no listener tells (none yet, unix or datagrams only). */
	long queued;
};

/* "8/8 workers listening; 0 queued; reload done 2m ago; 3 restarts" (the
 * parts that
 * apply), into buf. */
void systemd_status_text(const struct systemd_status *st, char *buf,
			 size_t cap);

/*
 * Sends head (may be "": "READY=1\n"...) with "STATUS=" and st's text.
 * With an empty head, nothing is sent when the text is the one sent last:
 * systemctl status shows the latest, and this is called on every change.
 */
int systemd_notify_status(const char *head, const struct systemd_status *st);

#endif
