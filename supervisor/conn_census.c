#include "conn_census.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TCP_LISTEN_STATE 0x0A

struct inode_set {
	unsigned long *v;
	size_t n, cap;
};

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* (An empty set has no array: qsort and bsearch must not see NULL.) */
static bool inode_set_has(const struct inode_set *s, unsigned long ino)
{
	return s->n > 0 &&
	       bsearch(&ino, s->v, s->n, sizeof(*s->v), cmp_ulong) != NULL;
}

static void inode_set_add(struct inode_set *s, unsigned long ino)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		unsigned long *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ino;
}

/* The inodes of every socket among the process's fds. */
static int socket_inodes(pid_t pid, struct inode_set *s)
{
	char dir[64], path[320], link[64];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		unsigned long ino;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			inode_set_add(s, ino);
	}
	closedir(d);
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_ulong);
	return 0;
}

static int port_wanted(unsigned port, const unsigned *ports, unsigned nports)
{
	unsigned i;

	for (i = 0; i < nports; i++)
		if (ports[i] == port)
			return 1;
	return 0;
}

/* Rows of one table ("sl local rem st ... uid timeout inode") that are
 * connections on one of the ports. */
static void read_table(const char *table, struct inode_set *out,
		       const unsigned *ports, unsigned nports)
{
	char line[512], local[64];
	unsigned port, state;
	unsigned long ino;
	FILE *f = fopen(table, "r");

	if (!f)
		return;
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *colon;

		if (sscanf(line, "%*s %63s %*s %x %*s %*s %*s %*s %*s %lu",
			   local, &state, &ino) != 3)
			continue;
		colon = strrchr(local, ':');
		if (!colon || sscanf(colon + 1, "%x", &port) != 1)
			continue;
		if (state != TCP_LISTEN_STATE && ino != 0 &&
		    port_wanted(port, ports, nports))
			inode_set_add(out, ino);
	}
	fclose(f);
}

int conn_table_read(struct conn_table *t, const unsigned *ports,
		    unsigned nports)
{
	struct inode_set s = { 0 };

	read_table("/proc/net/tcp", &s, ports, nports);
	read_table("/proc/net/tcp6", &s, ports, nports);
	if (s.n > 0)
		qsort(s.v, s.n, sizeof(*s.v), cmp_ulong);
	t->inodes = s.v;
	t->n = s.n;
	t->cap = s.cap;
	return 0;
}

void conn_table_free(struct conn_table *t)
{
	free(t->inodes);
	t->inodes = NULL;
	t->n = t->cap = 0;
}

int conn_table_count(const struct conn_table *t, pid_t pid)
{
	struct inode_set mine = { 0 };
	size_t i;
	int n = 0;

	if (t->n == 0)
		return 0;
	if (socket_inodes(pid, &mine) < 0) {
		free(mine.v);
		return -1;
	}
	for (i = 0; i < mine.n; i++) /* t->n > 0: checked above */
		n += bsearch(&mine.v[i], t->inodes, t->n, sizeof(*t->inodes),
			     cmp_ulong) != NULL;
	free(mine.v);
	return n;
}

/* "0100007F:1F90" (IPv4) or 32 hex digits of host-order words (IPv6). */
static void proc_address_text(const char *hex, char *out, size_t cap)
{
	const char *colon = strrchr(hex, ':');
	unsigned port = 0, w[4];
	unsigned char b[16];
	char host[INET6_ADDRSTRLEN];
	int i;

	if (!colon || sscanf(colon + 1, "%x", &port) != 1)
		goto raw;
	if (colon - hex == 8 && sscanf(hex, "%8x", &w[0]) == 1) {
		memcpy(b, &w[0], 4);
		inet_ntop(AF_INET, b, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, port);
		return;
	}
	if (colon - hex == 32 &&
	    sscanf(hex, "%8x%8x%8x%8x", &w[0], &w[1], &w[2], &w[3]) == 4) {
		for (i = 0; i < 4; i++)
			memcpy(b + 4 * i, &w[i], 4);
		inet_ntop(AF_INET6, b, host, sizeof(host));
		snprintf(out, cap, "[%s]:%u", host, port);
		return;
	}
raw:
	snprintf(out, cap, "%s", hex);
}

static int find_foreign(const char *table, const struct inode_set *mine,
			const unsigned long *known, size_t nknown, char *out,
			size_t cap)
{
	char line[512], local[64];
	unsigned state;
	unsigned long ino;
	size_t i;
	FILE *f = fopen(table, "r");

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		bool ours = false;

		if (sscanf(line, "%*s %63s %*s %x %*s %*s %*s %*s %*s %lu",
			   local, &state, &ino) != 3 ||
		    state != TCP_LISTEN_STATE || ino == 0 ||
		    !inode_set_has(mine, ino))
			continue;
		for (i = 0; i < nknown && !ours; i++)
			ours = known[i] == ino;
		if (ours)
			continue;
		proc_address_text(local, out, cap);
		fclose(f);
		return 1;
	}
	fclose(f);
	return 0;
}

int conn_census_foreign_listener(pid_t pid, const unsigned long *known,
				 size_t nknown, char *out, size_t cap)
{
	struct inode_set mine = { 0 };
	int found;

	if (socket_inodes(pid, &mine) < 0) {
		free(mine.v);
		return -1;
	}
	found = mine.n > 0 &&
		(find_foreign("/proc/net/tcp", &mine, known, nknown, out, cap) ||
		 find_foreign("/proc/net/tcp6", &mine, known, nknown, out, cap));
	free(mine.v);
	return found;
}
