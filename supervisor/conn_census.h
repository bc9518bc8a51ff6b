/*
 * conn_census.h - how many TCP connections on given local ports a process
 * holds, seen from outside it: the socket inodes among its fds, matched
 * against /proc/net/tcp and /proc/net/tcp6.  Used to drain a worker (its
 * open connections finish before it gets the graceful signal).  Costs a
 * scan of the process's fds and of the tables: for drains, not hot paths.
 */
#ifndef CONN_CENSUS_H
#define CONN_CENSUS_H

#include <sys/types.h>

/* The connections (not listeners) on some local ports, read once from
 * /proc/net/tcp{,6}, then matched against any number of processes. */
struct conn_table {
	unsigned long *inodes; /* sorted */
	size_t n, cap;
};

int conn_table_read(struct conn_table *t, const unsigned *ports,
		    unsigned nports);
void conn_table_free(struct conn_table *t);
/* How many of them the process holds; -1 when its fds cannot be read. */
int conn_table_count(const struct conn_table *t, pid_t pid);

/*
 * A TCP listening socket among the process's fds whose inode is not one of
 * known[] (the cluster's own listeners): the first one's address as text
 * ("127.0.0.1:8080", "[::1]:8080") into out, and 1; 0 when there is none;
 * -1 when the process's fds cannot be read.
 */
int conn_census_foreign_listener(pid_t pid, const unsigned long *known,
				 size_t nknown, char *out, size_t cap);

#endif
