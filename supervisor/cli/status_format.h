/*
 * status_format.h - figures as `ctl status` and `ctl top` show them.
 */
#ifndef STATUS_FORMAT_H
#define STATUS_FORMAT_H

#include <stddef.h>

/* 45s, 2m07s, 3h05m, 2d04h. */
void status_format_uptime(long long ms, char *buf, size_t cap);
/* 824K, 12.3M, 1.2G: what fits a column. */
void status_format_bytes(unsigned long long bytes, char *buf, size_t cap);

#endif
