/*
 * sticky.h - sticky sessions in rr: which worker slot a connection goes to,
 * free of I/O so that it can be unit-tested.
 *
 * Every connection has a key (a hash of the client's address, or of what
 * its HTTP request names).  Its slots in order are the rendezvous
 * (highest-random-weight) order of that key: the slot with the highest
 * sticky_score(key, slot id) first.  A slot keeps its clients as long as
 * it has a member (a restarted or reloaded worker has its slot's id), a
 * new slot takes about 1/(N+1) of the clients from the others and moves
 * no one else, and a slot that cannot take a connection hands it to that
 * client's next slot.
 *
 * In cookie and query modes a value (a session id) is pinned to the slot
 * its first request went to, in a bounded table (least recently used
 * out): the server made the session there, so it stays there even if the
 * slots change.  The same table counts, in every mode, the clients seen
 * lately per slot (`ctl status`).
 */
#ifndef STICKY_H
#define STICKY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cluster.h"

/* At most this many clients are remembered (pinned or counted). */
#define STICKY_TABLE_MAX 65536u
/* The longest request head the supervisor looks at. */
#define STICKY_PEEK_MAX 8192u

/* The 64-bit mix of splitmix64 / murmur3's finaliser: cheap, and every bit
 * of the input moves every bit of the output. */
static inline uint64_t sticky_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* The weight of slot for key: the highest wins. */
static inline uint64_t sticky_score(uint64_t key, unsigned slot)
{
	return sticky_mix(key ^ sticky_mix((uint64_t)slot *
					   0x9e3779b97f4a7c15ULL));
}

/* A hash of bytes, keyed by seed (never 0: 0 means "no value"). */
uint64_t sticky_hash_bytes(uint64_t seed, const void *p, size_t len);
/* A hash of the client's address (without its port). */
uint64_t sticky_hash_addr(uint64_t seed, const struct sockaddr *sa,
			  socklen_t len);

/* The table of pinned (or lately seen) clients. */
struct sticky_table;

struct sticky_table *sticky_table_new(unsigned cap);
void sticky_table_free(struct sticky_table *t);
/* The slot value is pinned to, or 0; a hit becomes the most recent. */
unsigned sticky_table_lookup(struct sticky_table *t, uint64_t value);
/* value went to slot: with keep (pinning), an entry already there keeps
 * its slot; without, it takes this one.  The least recently used entry
 * goes when the table is full. */
void sticky_table_note(struct sticky_table *t, uint64_t value, unsigned slot,
		       bool keep);
/* Entries per slot: counts[id] for ids below n; how many entries in all. */
unsigned sticky_table_counts(const struct sticky_table *t, unsigned *counts,
			     unsigned n);

/* ---- HTTP (sticky_http.c) ---- */

enum sticky_http_state {
	STICKY_HTTP_MORE,     /* HTTP so far, the head is not complete */
	STICKY_HTTP_DONE,     /* a complete head (or as much as is looked at) */
	STICKY_HTTP_NOT_HTTP, /* not an HTTP request */
};

struct sticky_http_found {
	const char *value;    /* what the mode names, or NULL */
	size_t value_len;
	const char *forwarded; /* X-Forwarded-For's first address, or NULL */
	size_t forwarded_len;
};

/* Reads the start of a request (len bytes; full: no more will be looked
 * at) for mode's name. */
enum sticky_http_state sticky_http_scan(const char *buf, size_t len, bool full,
					enum cluster_sticky mode,
					const char *name,
					struct sticky_http_found *found);

#endif
