#include "rr_scheduler.h"

#include <stdlib.h>

void rr_scheduler_init(struct rr_scheduler *s)
{
	s->entries = NULL;
	s->count = s->cap = s->cursor = 0;
}

void rr_scheduler_fini(struct rr_scheduler *s)
{
	free(s->entries);
	rr_scheduler_init(s);
}

int rr_scheduler_add(struct rr_scheduler *s, struct rr_sched_entry *e)
{
	if (s->count == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 8;
		void *p = realloc(s->entries, cap * sizeof(*s->entries));

		if (!p)
			return -1;
		s->entries = p;
		s->cap = cap;
	}
	e->index = s->count;
	s->entries[s->count++] = e;
	return 0;
}

bool rr_scheduler_contains(const struct rr_scheduler *s,
			   const struct rr_sched_entry *e)
{
	return e->index < s->count && s->entries[e->index] == e;
}

void rr_scheduler_remove(struct rr_scheduler *s, struct rr_sched_entry *e)
{
	unsigned i = e->index;

	if (!rr_scheduler_contains(s, e))
		return;
	/* Move the last entry into the hole: O(1). */
	s->entries[i] = s->entries[--s->count];
	s->entries[i]->index = i;
	e->index = (unsigned)-1;
	if (s->cursor > s->count)
		s->cursor = 0;
}

struct rr_sched_entry *rr_scheduler_peek(struct rr_scheduler *s,
					 rr_has_credit_fn has_credit,
					 void *ctx)
{
	unsigned n, i;

	for (n = 0; n < s->count; n++) {
		i = (s->cursor + n) % s->count;
		if (has_credit(s->entries[i], ctx))
			return s->entries[i];
	}
	return NULL;
}

void rr_scheduler_take(struct rr_scheduler *s, struct rr_sched_entry *e)
{
	if (rr_scheduler_contains(s, e))
		s->cursor = (e->index + 1) % s->count;
}

struct rr_sched_entry *rr_scheduler_pick(struct rr_scheduler *s,
					 rr_has_credit_fn has_credit,
					 void *ctx)
{
	struct rr_sched_entry *e = rr_scheduler_peek(s, has_credit, ctx);

	if (e)
		rr_scheduler_take(s, e);
	return e;
}
