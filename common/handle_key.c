#include "handle_key.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sockaddr_text.h"

static const char *socktype_name(int socktype)
{
	switch (socktype) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	}
	return "other";
}

char *handle_key_base(const struct sockaddr *sa, socklen_t len, int socktype,
		      char *buf, size_t cap)
{
	char addr[SOCKADDR_TEXT_MAX];

	snprintf(buf, cap, "%s:%s", sockaddr_text(sa, len, addr, sizeof(addr)),
		 socktype_name(socktype));
	return buf;
}

char *handle_key_with_index(const char *base, unsigned index, char *buf,
			    size_t cap)
{
	snprintf(buf, cap, "%s:%u", base, index);
	return buf;
}

static struct handle_index_entry *find_entry(struct handle_index_set *set,
					     const char *base)
{
	unsigned i;

	for (i = 0; i < set->count; i++)
		if (strcmp(set->entries[i].base, base) == 0)
			return &set->entries[i];
	return NULL;
}

int handle_index_acquire(struct handle_index_set *set, const char *base)
{
	struct handle_index_entry *e = find_entry(set, base);

	if (!e) {
		if (set->count == HANDLE_INDEX_SET_MAX)
			return -1;
		e = &set->entries[set->count++];
		snprintf(e->base, sizeof(e->base), "%s", base);
		e->next_index = 0;
		e->live = 0;
	}
	e->live++;
	return (int)e->next_index++;
}

void handle_index_release(struct handle_index_set *set, const char *base)
{
	struct handle_index_entry *e = find_entry(set, base);

	if (!e || e->live == 0)
		return;
	if (--e->live == 0)
		*e = set->entries[--set->count]; /* forget it: restart at 0 */
}
