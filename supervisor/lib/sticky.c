/*
 * sticky.c - hashing and the table of pinned clients (see sticky.h).
 *
 * The table is a chained hash of entries kept in one array, with a doubly
 * linked list in order of use: a lookup or a note is O(1), and a full
 * table reuses its least recently used entry, so it never grows past its
 * capacity however many clients come.
 */
#include "sticky.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

uint64_t sticky_hash_bytes(uint64_t seed, const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = sticky_mix(seed ^ len);
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		h = sticky_mix(h ^ w);
	}
	if (i < len) {
		uint64_t w = 0;

		memcpy(&w, b + i, len - i);
		h = sticky_mix(h ^ w ^ 0x100);
	}
	return h ? h : 1;
}

uint64_t sticky_hash_addr(uint64_t seed, const struct sockaddr *sa,
			  socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return sticky_hash_bytes(seed, &in->sin_addr,
					 sizeof(in->sin_addr));
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		/* A v4-mapped client is the same client as over IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return sticky_hash_bytes(seed, &in6->sin6_addr.s6_addr[12],
						 4);
		return sticky_hash_bytes(seed, &in6->sin6_addr,
					 sizeof(in6->sin6_addr));
	}
	/* Unix sockets: no address to tell clients apart by. */
	return sticky_hash_bytes(seed, "", 0);
}

/* ---- the table ---- */

struct sticky_entry {
	uint64_t value;
	unsigned slot;
	uint32_t chain;      /* next in its bucket */
	uint32_t newer, older;
};

struct sticky_table {
	struct sticky_entry *e;
	uint32_t *bucket;
	unsigned cap, used, mask;
	uint32_t newest, oldest;
};

struct sticky_table *sticky_table_new(unsigned cap)
{
	struct sticky_table *t = calloc(1, sizeof(*t));
	unsigned nb = 1;

	if (!t)
		return NULL;
	while (nb < cap)
		nb <<= 1;
	t->e = calloc(cap, sizeof(*t->e));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->e || !t->bucket || cap == 0) {
		sticky_table_free(t);
		return NULL;
	}
	memset(t->bucket, 0xff, nb * sizeof(*t->bucket));
	t->cap = cap;
	t->mask = nb - 1;
	t->newest = t->oldest = NIL;
	return t;
}

void sticky_table_free(struct sticky_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->bucket);
	free(t);
}

static uint32_t *bucket_of(struct sticky_table *t, uint64_t value)
{
	return &t->bucket[(value ^ (value >> 32)) & t->mask];
}

static uint32_t table_find(struct sticky_table *t, uint64_t value)
{
	uint32_t i;

	for (i = *bucket_of(t, value); i != NIL; i = t->e[i].chain)
		if (t->e[i].value == value)
			return i;
	return NIL;
}

static void lru_unlink(struct sticky_table *t, uint32_t i)
{
	struct sticky_entry *e = &t->e[i];

	if (e->newer != NIL)
		t->e[e->newer].older = e->older;
	else
		t->newest = e->older;
	if (e->older != NIL)
		t->e[e->older].newer = e->newer;
	else
		t->oldest = e->newer;
}

static void lru_push_newest(struct sticky_table *t, uint32_t i)
{
	t->e[i].older = t->newest;
	t->e[i].newer = NIL;
	if (t->newest != NIL)
		t->e[t->newest].newer = i;
	else
		t->oldest = i;
	t->newest = i;
}

static void chain_remove(struct sticky_table *t, uint32_t i)
{
	uint32_t *p = bucket_of(t, t->e[i].value);

	while (*p != i)
		p = &t->e[*p].chain;
	*p = t->e[i].chain;
}

unsigned sticky_table_lookup(struct sticky_table *t, uint64_t value)
{
	uint32_t i = table_find(t, value);

	if (i == NIL)
		return 0;
	if (t->newest != i) {
		lru_unlink(t, i);
		lru_push_newest(t, i);
	}
	return t->e[i].slot;
}

void sticky_table_note(struct sticky_table *t, uint64_t value, unsigned slot,
		       bool keep)
{
	uint32_t i = table_find(t, value), *b;

	if (i != NIL) {
		if (!keep)
			t->e[i].slot = slot;
		if (t->newest != i) {
			lru_unlink(t, i);
			lru_push_newest(t, i);
		}
		return;
	}
	if (t->used < t->cap) {
		i = t->used++;
	} else { /* the least recently used goes */
		i = t->oldest;
		lru_unlink(t, i);
		chain_remove(t, i);
	}
	t->e[i].value = value;
	t->e[i].slot = slot;
	b = bucket_of(t, value);
	t->e[i].chain = *b;
	*b = i;
	lru_push_newest(t, i);
}

unsigned sticky_table_counts(const struct sticky_table *t, unsigned *counts,
			     unsigned n)
{
	unsigned i;

	for (i = 0; i < t->used; i++)
		if (t->e[i].slot < n)
			counts[t->e[i].slot]++;
	return t->used;
}
