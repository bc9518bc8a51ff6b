/*
 * The names of listeners that stopped accepting.  The stop-accepting swap
 * (stop_accepting.c) puts an unreachable abstract unix socket on a shared
 * listener's fd; the server must go on seeing the address it bound there:
 * gunicorn's arbiter calls getsockname() on its listener at SIGTERM and
 * unlink()s a unix path, and raised at the abstract name instead of
 * stopping its workers.
 *
 * A small fixed table, written from the signal handler (no lock, no
 * malloc).  An entry holds for its fd only while that fd is still the very
 * socket put there (its own abstract name, which no other socket has): a
 * closed and reused fd number no longer matches, with no hook in close().
 */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "real.h"
#include "shim.h"

#define STOPPED_MAX 64

struct stopped_name {
	int fd;                          /* -1: free */
	struct cluster_sockaddr shown;   /* what getsockname() said before */
	struct sockaddr_un stand_in;     /* the swapped-in socket's own name */
	socklen_t stand_in_len;
};

static struct stopped_name names[STOPPED_MAX];
static unsigned written; /* entries ever written: the next is written % MAX */

static bool same_stand_in(const struct stopped_name *e,
			  const struct sockaddr_un *sun, socklen_t len)
{
	return e->stand_in_len == len && memcmp(&e->stand_in, sun, len) == 0;
}

void shim_stopped_remember(int fd, int stand_in)
{
	struct stopped_name *e;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	unsigned n = __atomic_load_n(&written, __ATOMIC_ACQUIRE), i;
	bool fresh;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    len > sizeof(ss))
		return;
	/* the fd's old entry if it has one, else the next (oldest) one */
	for (i = 0; i < n && i < STOPPED_MAX; i++)
		if (names[i].fd == fd)
			break;
	fresh = i == n || i == STOPPED_MAX;
	e = &names[fresh ? n % STOPPED_MAX : i];
	e->fd = -1;
	e->stand_in_len = sizeof(e->stand_in);
	if (real_getsockname(stand_in, (struct sockaddr *)&e->stand_in,
			     &e->stand_in_len) < 0 ||
	    e->stand_in_len > sizeof(e->stand_in))
		return;
	e->shown.len = len;
	memcpy(&e->shown.ss, &ss, len);
	__atomic_store_n(&e->fd, fd, __ATOMIC_RELEASE);
	if (fresh)
		__atomic_store_n(&written, n + 1, __ATOMIC_RELEASE);
}

bool shim_stopped_name(int fd, struct sockaddr *addr, socklen_t *len)
{
	unsigned n = __atomic_load_n(&written, __ATOMIC_ACQUIRE), i;
	struct sockaddr_un sun;
	socklen_t sun_len = sizeof(sun);
	bool probed = false;

	for (i = 0; i < n && i < STOPPED_MAX; i++) {
		const struct stopped_name *e = &names[i];

		if (__atomic_load_n(&e->fd, __ATOMIC_ACQUIRE) != fd)
			continue;
		if (!probed && real_getsockname(fd, (struct sockaddr *)&sun,
						&sun_len) < 0)
			return false;
		probed = true;
		if (!same_stand_in(e, &sun, sun_len))
			continue;
		if (addr && len) {
			memcpy(addr, &e->shown.ss,
			       e->shown.len < *len ? e->shown.len : *len);
			*len = e->shown.len;
		}
		return true;
	}
	return false;
}
