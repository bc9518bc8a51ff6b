/*
 * conn_census.h - the TCP sockets a process holds, seen from outside it:
 * the socket inodes among its fds, matched against the kernel's socket
 * table as NETLINK_SOCK_DIAG (inet_diag) dumps it, filtered in the kernel
 * by state and local port.  Used to drain a worker (its open connections
 * finish before it gets the graceful signal) and to notice a listener a
 * worker opened behind the shim's back.  See conn_census.c for why one
 * dump is read from the event loop and the other at once.
 */
#ifndef CONN_CENSUS_H
#define CONN_CENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct event_base;

/* The connections (established or closing, never listeners nor
 * TIME_WAIT) on some local ports: their socket inodes, sorted. */
struct conn_table {
	unsigned long *inodes;
	size_t n, cap;
	size_t rows; /* rows the kernel sent (n counts those with an inode) */
	/* A census's: the processes it was asked about, and how many of the
	 * connections each held (-1: its fds could not be read). */
	pid_t *pids;
	int *counts;
	bool *listening; /* ... and whether each held a watched listener */
	size_t npids;
};

void conn_table_free(struct conn_table *t);
/* How many of them the process holds, read now from its fds; -1 when they
 * cannot be read. */
int conn_table_count(const struct conn_table *t, pid_t pid);
/* What the census found pid holds (as conn_table_count() then), without
 * reading anything; false when the census was not asked about pid. */
bool conn_table_lookup(const struct conn_table *t, pid_t pid, int *count);
/* Whether the census saw one of the listening sockets it was told to
 * watch (conn_census_watch_listener) among pid's fds, read before the
 * connections were; false when it was not asked, or pid's fds could not
 * be read. */
bool conn_table_holds_listener(const struct conn_table *t, pid_t pid);

/* ---- a census of connections, read from the event loop ---- */

struct conn_census;

/* The dump is complete: t (the census's own; valid during the call), or
 * error (an errno: sock_diag unavailable) and t empty.  The callback may
 * free the census. */
typedef void (*conn_census_done_fn)(void *arg, const struct conn_table *t,
				    int error);

/* A census whose answers come on base.  NULL when out of memory. */
struct conn_census *conn_census_new(struct event_base *base,
				    conn_census_done_fn done, void *arg);

/* The families a census asks about (those of the listeners drained). */
#define CONN_CENSUS_IPV4 1u
#define CONN_CENSUS_IPV6 2u
#define CONN_CENSUS_ALL (CONN_CENSUS_IPV4 | CONN_CENSUS_IPV6)

/* Has a thread ask the kernel for the connections on ports[0..nports)
 * (1..64 ports) in families, and count those each of pids[0..npids)
 * holds (its fds read by the thread too); done() follows from the loop.
 * 0, or -1 with errno (EBUSY while a census runs, EINVAL for nports or
 * families). */
int conn_census_request(struct conn_census *cc, const unsigned *ports,
			unsigned nports, unsigned families, const pid_t *pids,
			size_t npids);
bool conn_census_busy(const struct conn_census *cc);
/* The next request also tells, for each of its pids, whether the socket
 * with inode ino is among its fds (a listener a worker was asked to let
 * go of: its shim has done so once it is not).  Read before the dump, so
 * that a process found holding none of them then has every connection it
 * holds in the census; the set goes with that request. */
void conn_census_watch_listener(struct conn_census *cc, unsigned long ino);
/* A census in flight is dropped (its thread ends on its own).  NULL is
 * fine. */
void conn_census_free(struct conn_census *cc);

/* Most ports one census filters on. */
#define CONN_CENSUS_PORTS_MAX 64

/* ---- listeners ---- */

/*
 * A TCP listening socket among the process's fds whose inode is not one of
 * known[] (the cluster's own listeners): the first one's address as text
 * ("127.0.0.1:8080", "[::1]:8080") into out, and 1; 0 when there is none;
 * -1 when the process's fds or the kernel's table cannot be read.
 */
int conn_census_foreign_listener(pid_t pid, const unsigned long *known,
				 size_t nknown, char *out, size_t cap);

#endif
