/*
 * ctl_top.h - `cluster-run ctl top`: the status, live.
 */
#ifndef CTL_TOP_H
#define CTL_TOP_H

/* Redraws the status each second until q or Ctrl-C (or SIGTERM, or the
 * cluster-run going away); the exit code (0, or 1 when the control socket
 * failed).  The terminal is put back as it was. */
int ctl_top(const char *path);

#include <stdbool.h>

/* ctl_client.c: one request to the control socket at path; its answer
 * (malloc'd), or NULL with the failure reported on stderr.  It may take
 * 10 s, or with wait as long as it takes. */
char *ctl_exchange(const char *path, const char *request, bool wait);

#endif
