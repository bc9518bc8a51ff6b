/*
 * test_recycle.c - --max-memory, --max-conns, --max-lifetime: a worker
 * past its limit is replaced as in a rolling reload of its slot (the new
 * one first, the old one drained once the new one listens), under a
 * steady load that loses no request; one line says why, with the figure,
 * and `ctl status` keeps it.  A --max-memory below a worker's size as it
 * starts is said once and does not recycle it in a loop.
 */
#include "ops.h"
#include "ops_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(recycle, .fini = ops_fini, .timeout = 90);

#define LOAD_THREADS 4
/* A bound the load never reaches (LOAD_RUN_MS is the one that counts):
 * 4 threads of sequential requests made 100,000 in the ~20 s the reload
 * test took in a sanitizer build, and stopped before its last wait. */
#define LOAD_MAX 2000000
#define LOAD_RUN_MS 40000
#define QUERY_MS 10000
#define RECYCLES 2

/* cluster-run -n 2 OPTS -- FIXTURE --port P */
static void start(struct ops_cluster *oc, const char *fixture,
		  const char *const *opts)
{
	const char *args[24];
	const char *port = ops_prepare(oc);
	size_t n = 0;

	args[n++] = "-n";
	args[n++] = "2";
	for (size_t i = 0; opts[i] && n < 18; i++)
		args[n++] = opts[i];
	args[n++] = "--";
	args[n++] = hx_fixture(fixture);
	args[n++] = "--port";
	args[n++] = port;
	args[n] = NULL;
	oc->c = ops_start_args(oc->sock, args);
	hx_assert(oc->c, hx_wait_count(oc->c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
}

/* The most slots that had two workers at once (a new one and the one it
 * replaces), from the lifecycle lines in order. */
static unsigned most_slots_in_replacement(const struct hx_cluster *c)
{
	unsigned live[HX_MAX_WORKERS + 1] = { 0 }, now = 0, most = 0;

	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *e = &c->events[i];

		if (e->id < 1 || e->id > HX_MAX_WORKERS)
			continue;
		if (e->kind == HX_FORKED && ++live[e->id] == 2)
			now++;
		else if ((e->kind == HX_EXITED || e->kind == HX_KILLED) &&
			 live[e->id] > 0 && live[e->id]-- == 2)
			now--;
		most = now > most ? now : most;
	}
	return most;
}

/* Under load until RECYCLES recycles are done (each new worker ready, and
 * the old one gone); asserts not one request failed.  The index of the
 * first line with `why`. */
static long recycle_under_load(struct ops_cluster *oc, const char *reason,
			       const char *why)
{
	struct ops_load load;
	long first;
	size_t exits = hx_count(oc->c, HX_EXITED) + hx_count(oc->c, HX_KILLED);

	ops_load_start(&load, &oc->target, LOAD_THREADS, LOAD_MAX, QUERY_MS,
		       LOAD_RUN_MS);
	first = ops_wait_line(oc->c, why, 0, 20000);
	hx_assert(oc->c, first >= 0, "no \"%s\" line", why);
	for (int64_t deadline = hx_now_ms() + 30000;
	     ops_count_lines(oc->c, "recycle: worker ", 0) < RECYCLES &&
	     hx_now_ms() < deadline;)
		hx_pump(oc->c, 50);
	hx_assert(oc->c, ops_count_lines(oc->c, "recycle: worker ", 0) >=
		  RECYCLES, "want %d \"recycle: worker N (pid P) ready\" lines",
		  RECYCLES);
	hx_assert(oc->c, hx_wait_count(oc->c, HX_EXITED, exits + RECYCLES,
				       20000), "the old workers did not exit");
	hx_assert(oc->c, ops_load_wait(oc->c, &load,
				       atomic_load(&load.served) + 100, 20000),
		  "the load does not go on after the recycling");
	ops_load_stop(oc->c, &load);
	cr_log_info("%s: served %ld, failed %ld", reason,
		    atomic_load(&load.served), atomic_load(&load.failed));
	hx_assert(oc->c, atomic_load(&load.failed) == 0, "%ld of %ld requests "
		  "failed (last: %s)", atomic_load(&load.failed),
		  atomic_load(&load.served) + atomic_load(&load.failed),
		  strerror(-atomic_load(&load.last_error)));
	/* a drain, not a kill: every old worker exited on its own signal */
	hx_assert(oc->c, hx_count(oc->c, HX_KILLED) == 0, "a worker was killed");
	/* --reload-parallel 1 (the default): one slot at a time */
	hx_assert(oc->c, most_slots_in_replacement(oc->c) == 1, "%u slots were "
		  "replaced at once", most_slots_in_replacement(oc->c));
	return first;
}

/* The status of some slot says reason, with a figure that starts with
 * figure_head. */
static void assert_status_reason(struct ops_cluster *oc, const char *reason,
				 const char *figure_head)
{
	char cond[256];

	snprintf(cond, sizeof(cond), "int(any(w['last_replaced'] and "
		 "w['last_replaced']['reason'] == '%s' and w['last_replaced']"
		 "['figure'].startswith('%s') for w in W))", reason,
		 figure_head);
	hx_assert(oc->c, ops_status_long(oc, cond) == 1, "no worker in the "
		  "status replaced for %s (%s...)", reason, figure_head);
}

Test(recycle, max_conns_drains_without_a_failed_request)
{
	struct ops_cluster oc;
	unsigned long handed, limit;
	long at;

	start(&oc, "fx_blocking_accept",
	      (const char *[]){ "--max-conns", "50:20", NULL });
	at = recycle_under_load(&oc, "conns", "connections (limit ");
	hx_assert(oc.c, sscanf(strstr(oc.c->err.lines[at], "was handed "),
			       "was handed %lu connections (limit %lu); "
			       "recycling it", &handed, &limit) == 2 &&
		  limit >= 50 && limit <= 70 && handed >= limit,
		  "line: %s", oc.c->err.lines[at]);
	assert_status_reason(&oc, "conns", "");
}

Test(recycle, max_lifetime_drains_without_a_failed_request)
{
	struct ops_cluster oc;
	long long ran, limit;
	long at;

	start(&oc, "fx_blocking_accept",
	      (const char *[]){ "--max-lifetime", "1:1", NULL });
	at = recycle_under_load(&oc, "lifetime", "s); recycling it");
	hx_assert(oc.c, sscanf(strstr(oc.c->err.lines[at], "has run "),
			       "has run %lld s (limit %lld s)", &ran,
			       &limit) == 2 && (limit == 1 || limit == 2) &&
		  ran >= limit, "line: %s", oc.c->err.lines[at]);
	assert_status_reason(&oc, "lifetime", "");
}

Test(recycle, max_memory_drains_without_a_failed_request)
{
	struct ops_cluster oc;
	double size, limit;
	long at;

	/* fx_grow keeps 64 KiB per connection: past 8 MiB within 120 */
	start(&oc, "fx_grow", (const char *[]){ "--max-memory", "8M", "--env",
						"FX_GROW_KB=64", NULL });
	at = recycle_under_load(&oc, "memory", "MiB); recycling it");
	hx_assert(oc.c, sscanf(strstr(oc.c->err.lines[at], " uses "),
			       " uses %lf MiB (limit %lf MiB)", &size,
			       &limit) == 2 && limit == 8.0 && size > 8.0,
		  "line: %s", oc.c->err.lines[at]);
	hx_assert(oc.c, ops_count_lines(oc.c, "right after it started", 0) == 0,
		  "a worker was taken for too big from the start");
	assert_status_reason(&oc, "memory", "");
}

/* 64K is below any worker's size: said once, and nothing recycled. */
Test(recycle, max_memory_below_the_start_size_is_said_once)
{
	struct ops_cluster oc;
	struct ops_load load;
	long at;

	start(&oc, "fx_blocking_accept",
	      (const char *[]){ "--max-memory", "64K", NULL });
	at = ops_wait_line(oc.c, "right after it started listening, above "
			   "--max-memory 64 KiB", 0, 10000);
	hx_assert(oc.c, at >= 0, "no line about the too-low --max-memory");
	/* both workers are known to be above it from the start */
	hx_assert(oc.c, ops_wait_status(&oc, "all(w['rss_start_bytes'] and "
					"w['rss_start_bytes'] > 65536 for w in W)",
					10000), "no start size in the status");
	ops_load_start(&load, &oc.target, 2, 300, QUERY_MS, LOAD_RUN_MS);
	hx_assert(oc.c, ops_load_wait(oc.c, &load, 300, 20000), "load");
	ops_load_stop(oc.c, &load);
	hx_assert(oc.c, atomic_load(&load.failed) == 0, "requests failed");
	hx_assert(oc.c, ops_count_lines(oc.c, "recycling it", 0) == 0 &&
		  ops_count_lines(oc.c, "recycle: worker", 0) == 0 &&
		  hx_count(oc.c, HX_FORKED) == 2, "a worker was recycled");
	hx_assert(oc.c, ops_count_lines(oc.c, "right after it started", 0) == 1,
		  "the too-low limit said more than once");
}

/* A reload while workers recycle (every second, --max-lifetime 1): the
 * two share --reload-parallel (1): never two slots in replacement at
 * once, the reload ends done, and no request fails. */
Test(recycle, a_reload_and_recycling_share_the_budget)
{
	struct ops_cluster oc;
	struct ops_load load;
	struct ops_run r;

	start(&oc, "fx_blocking_accept",
	      (const char *[]){ "--max-lifetime", "1", NULL });
	ops_load_start(&load, &oc.target, LOAD_THREADS, LOAD_MAX, QUERY_MS,
		       LOAD_RUN_MS);
	hx_assert(oc.c, ops_wait_line(oc.c, "recycling it", 0, 10000) >= 0,
		  "no recycling");
	ops_ctl(oc.c, oc.sock, (const char *[]){ "reload", "--wait", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl reload --wait: exit %d, %s",
		  ops_exit_code(&r), r.err);
	ops_run_free(&r);
	hx_assert(oc.c, ops_load_wait(oc.c, &load,
				      atomic_load(&load.served) + 100, 20000),
		  "the load does not go on");
	ops_load_stop(oc.c, &load);
	cr_log_info("reload + recycling: served %ld, failed %ld",
		    atomic_load(&load.served), atomic_load(&load.failed));
	hx_assert(oc.c, atomic_load(&load.failed) == 0, "%ld requests failed",
		  atomic_load(&load.failed));
	hx_assert(oc.c, ops_count_lines(oc.c, "reload: done", 0) == 1,
		  "the reload did not end done");
	hx_assert(oc.c, most_slots_in_replacement(oc.c) == 1, "%u slots were "
		  "replaced at once", most_slots_in_replacement(oc.c));
}
