/*
 * rr_scheduler.h - round robin with flow control, free of any I/O so it can
 * be unit-tested: entries are embedded in the caller's members, and the
 * caller says through has_credit() whether a member may take one more
 * connection right now.  Add, remove and a pick that finds a member with
 * credit are O(1) (a pick scans past members without credit).
 */
#ifndef RR_SCHEDULER_H
#define RR_SCHEDULER_H

#include <stdbool.h>

struct rr_sched_entry {
	unsigned index; /* position in the scheduler, maintained by it */
};

struct rr_scheduler {
	struct rr_sched_entry **entries;
	unsigned count, cap;
	unsigned cursor; /* where the next pick starts */
};

typedef bool (*rr_has_credit_fn)(struct rr_sched_entry *e, void *ctx);

void rr_scheduler_init(struct rr_scheduler *s);
void rr_scheduler_fini(struct rr_scheduler *s);
int rr_scheduler_add(struct rr_scheduler *s, struct rr_sched_entry *e);
void rr_scheduler_remove(struct rr_scheduler *s, struct rr_sched_entry *e);
bool rr_scheduler_contains(const struct rr_scheduler *s,
			   const struct rr_sched_entry *e);
/* The next entry in turn that has credit, or NULL when none has; the turn
 * is not used up (see rr_scheduler_take). */
struct rr_sched_entry *rr_scheduler_peek(struct rr_scheduler *s,
					 rr_has_credit_fn has_credit,
					 void *ctx);
/* e got a connection: the turn moves on past it. */
void rr_scheduler_take(struct rr_scheduler *s, struct rr_sched_entry *e);
/* peek + take. */
struct rr_sched_entry *rr_scheduler_pick(struct rr_scheduler *s,
					 rr_has_credit_fn has_credit,
					 void *ctx);

#endif
