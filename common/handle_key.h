/*
 * handle_key.h - naming shared listeners the way Node's cluster does.
 *
 * A handle is keyed "<address>:<type>:<index>" (Node: address:port:
 * addressType:fd:index).  The index counts identical requests inside one
 * worker: the Nth bind of "127.0.0.1:0" in a worker gets index N-1, so the
 * Nth port-0 listener of every worker lands on the same handle (the same real
 * port), while two port-0 listeners of one worker get different ports.  As in
 * Node's child.js, a worker's counter for an address restarts at 0 once every
 * handle it held under that address is closed.
 */
#ifndef HANDLE_KEY_H
#define HANDLE_KEY_H

#include <stddef.h>
#include <sys/socket.h>

#define HANDLE_KEY_MAX 200
/* Distinct addresses one worker may hold at once: as many as the shim has
 * handle slots per process (SHIM_MAX_HANDLES, shim/shim.h), the 256
 * listeners per worker the README promises. */
#define HANDLE_INDEX_SET_MAX 256

/* "<address>:<stream|dgram|seqpacket>" : the key without its index. */
char *handle_key_base(const struct sockaddr *sa, socklen_t len, int socktype,
		      char *buf, size_t cap);

/* "<base>:<index>" */
char *handle_key_with_index(const char *base, unsigned index, char *buf,
			    size_t cap);

/* One worker's counters, one per base key it currently holds. */
struct handle_index_entry {
	char base[HANDLE_KEY_MAX];
	unsigned next_index;
	unsigned live;
};

struct handle_index_set {
	struct handle_index_entry entries[HANDLE_INDEX_SET_MAX];
	unsigned count;
};

/* Takes the next index for base; returns -1 when the set is full. */
int handle_index_acquire(struct handle_index_set *set, const char *base);

/* Gives one back; once none is live the counter for base restarts at 0. */
void handle_index_release(struct handle_index_set *set, const char *base);

#endif
