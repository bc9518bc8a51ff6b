#include "health_policy.h"
#include "log_line.h"

static void on_passed(void *arg, struct cluster_worker *w, bool first)
{
	if (first)
		pool_worker_probe_passed(arg, w);
}

/*
 * A worker that still answers (500, 503) still serves: it is replaced as
 * in a reload of its slot (the new worker first, then it drains), so no
 * request it holds is lost.  One that does not answer (timeout, reset,
 * refused, not taken from its queue) is replaced like a hung one: killed
 * with its process group, its unread connections dealt to the others.
 */
static void on_failed(void *arg, struct cluster_worker *w, unsigned fails,
		      const char *why, bool answered)
{
	struct pool *p = arg;

	if (pool_worker_probe_failed(p, w, fails, why) || pool_stopping(p))
		return;
	log_printf("worker %u (pid %d) failed %u health checks in a row (%s); "
		   "replacing it", worker_id(w), (int)worker_pid(w), fails, why);
	pool_worker_replace(p, w, REPLACE_HEALTH, why, answered);
}

struct health_checker *health_policy_start(struct cluster *c, struct pool *p,
					   const struct health_options *o)
{
	struct health_settings s = {
		.kind = o->kind,
		.path = o->path,
		.interval_ms = o->interval_ms,
		.timeout_ms = o->timeout_ms,
		.fails = o->fails,
		.passed = on_passed,
		.failed = on_failed,
		.arg = p,
	};

	if (!o->kind)
		return NULL;
	return health_checker_new(c, &s);
}
