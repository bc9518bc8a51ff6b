/* The round-robin scheduler: strict turns, members without credit skipped,
 * O(1) removal that keeps the others' turns. */
#include <criterion/criterion.h>

#include "rr_scheduler.h"

struct member {
	struct rr_sched_entry e;
	int credit; /* connections it may still take */
	int taken;
};

static bool has_credit(struct rr_sched_entry *e, void *ctx)
{
	return ((struct member *)e)->credit > 0;
}

/* Picks n times, giving each pick to its member. */
static void deal(struct rr_scheduler *s, int n)
{
	while (n-- > 0) {
		struct member *m = (struct member *)rr_scheduler_pick(s, has_credit, NULL);

		if (!m)
			return;
		m->credit--;
		m->taken++;
	}
}

Test(rr_scheduler, strict_turns)
{
	struct rr_scheduler s;
	struct member m[3] = { { .credit = 1000 }, { .credit = 1000 }, { .credit = 1000 } };
	int i;

	rr_scheduler_init(&s);
	for (i = 0; i < 3; i++)
		cr_assert_eq(rr_scheduler_add(&s, &m[i].e), 0);
	for (i = 0; i < 9; i++)
		cr_expect_eq(rr_scheduler_pick(&s, has_credit, NULL), &m[i % 3].e);
	rr_scheduler_fini(&s);
}

Test(rr_scheduler, even_shares_over_many_picks)
{
	struct rr_scheduler s;
	struct member m[4] = { { .credit = 1 << 20 }, { .credit = 1 << 20 },
			       { .credit = 1 << 20 }, { .credit = 1 << 20 } };
	int i;

	rr_scheduler_init(&s);
	for (i = 0; i < 4; i++)
		rr_scheduler_add(&s, &m[i].e);
	deal(&s, 4000);
	for (i = 0; i < 4; i++)
		cr_expect_eq(m[i].taken, 1000);
	rr_scheduler_fini(&s);
}

Test(rr_scheduler, full_member_is_skipped_and_none_means_null)
{
	struct rr_scheduler s;
	struct member a = { .credit = 0 }, b = { .credit = 2 };

	rr_scheduler_init(&s);
	rr_scheduler_add(&s, &a.e);
	rr_scheduler_add(&s, &b.e);
	deal(&s, 10);
	cr_expect_eq(a.taken, 0);  /* a stopped worker gets nothing */
	cr_expect_eq(b.taken, 2);  /* b only up to its window */
	cr_expect_null(rr_scheduler_pick(&s, has_credit, NULL));
	a.credit = 1; /* a drains its queue: it is back in turn */
	cr_expect_eq(rr_scheduler_pick(&s, has_credit, NULL), &a.e);
	rr_scheduler_fini(&s);
}

Test(rr_scheduler, remove_keeps_the_rest_in_turn)
{
	struct rr_scheduler s;
	struct member m[3] = { { .credit = 100 }, { .credit = 100 }, { .credit = 100 } };

	rr_scheduler_init(&s);
	for (int i = 0; i < 3; i++)
		rr_scheduler_add(&s, &m[i].e);
	rr_scheduler_remove(&s, &m[1].e);
	cr_expect_not(rr_scheduler_contains(&s, &m[1].e));
	cr_expect(rr_scheduler_contains(&s, &m[2].e));
	rr_scheduler_remove(&s, &m[1].e); /* twice is harmless */
	deal(&s, 10);
	cr_expect_eq(m[0].taken, 5);
	cr_expect_eq(m[1].taken, 0);
	cr_expect_eq(m[2].taken, 5);
	rr_scheduler_remove(&s, &m[0].e);
	rr_scheduler_remove(&s, &m[2].e);
	cr_expect_null(rr_scheduler_pick(&s, has_credit, NULL));
	rr_scheduler_fini(&s);
}

Test(rr_scheduler, grows_past_initial_capacity)
{
	struct rr_scheduler s;
	static struct member m[100];
	int i;

	rr_scheduler_init(&s);
	for (i = 0; i < 100; i++) {
		m[i].credit = 1;
		cr_assert_eq(rr_scheduler_add(&s, &m[i].e), 0);
	}
	deal(&s, 1000);
	for (i = 0; i < 100; i++)
		cr_expect_eq(m[i].taken, 1);
	rr_scheduler_fini(&s);
}

Test(rr_scheduler, peek_does_not_use_up_a_turn)
{
	struct rr_scheduler s;
	struct member m[4] = { { .credit = 100 }, { .credit = 100 },
			       { .credit = 100 }, { .credit = 100 } };
	int i;

	rr_scheduler_init(&s);
	for (i = 0; i < 4; i++)
		rr_scheduler_add(&s, &m[i].e);
	/* the supervisor looks whose turn it is before every accept(); an
	 * accept that finds nothing must not skip that member (with an even
	 * number of workers, half of them would never be served) */
	for (i = 0; i < 8; i++) {
		struct rr_sched_entry *e = rr_scheduler_peek(&s, has_credit, NULL);

		cr_assert_eq(e, rr_scheduler_peek(&s, has_credit, NULL));
		rr_scheduler_take(&s, e);
		((struct member *)e)->taken++;
	}
	for (i = 0; i < 4; i++)
		cr_expect_eq(m[i].taken, 2);
	rr_scheduler_fini(&s);
}
