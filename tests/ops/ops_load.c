/* ops_load.c - see ops_load.h. */
#include "ops_load.h"

#include <string.h>

static void *load_thread(void *arg)
{
	struct ops_load *l = arg;

	while (!atomic_load(&l->stop) && hx_now_ms() < l->deadline_ms &&
	       atomic_fetch_add(&l->started, 1) < l->max) {
		struct hx_answer ans;
		int rc = hx_query(&l->target, l->query_ms, &ans);

		if (rc == 0 && ans.id > 0) {
			atomic_fetch_add(&l->served, 1);
		} else {
			atomic_store(&l->last_error, rc);
			atomic_fetch_add(&l->failed, 1);
		}
	}
	return NULL;
}

void ops_load_start(struct ops_load *l, const struct hx_target *t,
		    int threads, long max, int query_ms, int run_ms)
{
	int i;

	memset(l, 0, sizeof(*l));
	l->target = *t;
	l->threads = threads < 1 ? 1 : threads > OPS_LOAD_THREADS
			? OPS_LOAD_THREADS : threads;
	l->max = max;
	l->query_ms = query_ms;
	l->deadline_ms = hx_now_ms() + run_ms;
	for (i = 0; i < l->threads; i++)
		cr_assert(pthread_create(&l->tids[i], NULL, load_thread, l) == 0,
			  "cannot start a load thread");
}

bool ops_load_wait(struct hx_cluster *c, struct ops_load *l, long n,
		   int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	while (atomic_load(&l->served) + atomic_load(&l->failed) < n) {
		if (hx_now_ms() >= deadline)
			return false;
		hx_pump(c, 20); /* the pause is a poll on cluster-run's output */
	}
	return true;
}

void ops_load_stop(struct hx_cluster *c, struct ops_load *l)
{
	int i;

	atomic_store(&l->stop, true);
	hx_pump(c, 0);
	/* each thread ends within one request's deadline */
	for (i = 0; i < l->threads; i++)
		pthread_join(l->tids[i], NULL);
}
