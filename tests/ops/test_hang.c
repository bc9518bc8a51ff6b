/*
 * test_hang.c - --hang-timeout: a worker that takes none of the
 * connections waiting for it (SIGSTOPped: the plainest hang) is killed
 * with its process group and replaced, and what waited for it is served
 * by the others: under a steady load, no request fails.  In rr what waits
 * is on its faux handle, in reuseport in its slot's accept queue.  The
 * status then says why the slot was replaced, with the figure.
 */
#include "ops.h"
#include "ops_load.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

TestSuite(hang, .fini = ops_fini, .timeout = 90);

#define LOAD_THREADS 4
#define LOAD_MAX 20000
#define LOAD_RUN_MS 40000
/* a request held by the stopped worker waits for the timeout, the check
 * (once a second) and the re-deal */
#define QUERY_MS 15000

/* The stopped worker 2 is replaced while the load runs; returns the
 * index of the hang line. */
static long stop_worker_under_load(struct ops_cluster *oc, const char *sched,
				   struct ops_load *load)
{
	const char *opts[] = { "--sched", sched, "--hang-timeout", "1", NULL };
	pid_t stopped;
	long at;
	char want[128];

	ops_start(oc, 3, opts);
	/* cluster-run sets it when it may: looked at once it runs */
	if (strcmp(sched, "reuseport") == 0 && !ops_migrate_req_on()) {
		cr_log_warn("skipped: net.ipv4.tcp_migrate_req is not 1 (not "
			    "root?): a hung slot's queue is reset, as the "
			    "README says");
		cr_skip_test();
	}
	stopped = hx_worker_pid(oc->c, 2);
	cr_assert(kill(stopped, SIGSTOP) == 0);
	hx_assert(oc->c, hx_wait_stopped(stopped, 5000), "worker 2 not stopped");
	ops_load_start(load, &oc->target, LOAD_THREADS, LOAD_MAX, QUERY_MS,
		       LOAD_RUN_MS);
	snprintf(want, sizeof(want), "worker 2 (pid %d) took none of its ",
		 (int)stopped);
	at = ops_wait_line(oc->c, want, 0, 20000);
	hx_assert(oc->c, at >= 0, "no hang line for the stopped worker 2");
	hx_assert(oc->c, strstr(oc->c->err.lines[at], " connections in 1 s; "
				"killing it"), "line: %s", oc->c->err.lines[at]);
	/* killed, and its slot refilled */
	hx_assert(oc->c, hx_wait_event(oc->c, HX_KILLED, 2, 0, 0, 10000),
		  "the stopped worker was not killed");
	ops_wait_forked(oc->c, 2, stopped, 0);
	hx_assert(oc->c, hx_wait_count(oc->c, HX_LISTENING, 4, HX_START_MS),
		  "the new worker 2 does not listen");
	/* load on the new worker too, then the end */
	hx_assert(oc->c, ops_load_wait(oc->c, load,
				       atomic_load(&load->served) + 200, 20000),
		  "the load does not go on");
	ops_load_stop(oc->c, load);
	return at;
}

static void assert_no_failure(struct ops_cluster *oc, struct ops_load *load)
{
	long served = atomic_load(&load->served), failed =
		atomic_load(&load->failed);

	cr_log_info("served %ld, failed %ld", served, failed);
	hx_assert(oc->c, failed == 0, "%ld of %ld requests failed (last: %s)",
		  failed, served + failed, strerror(-atomic_load(&load->last_error)));
	hx_assert(oc->c, served > 200, "only %ld requests served", served);
}

Test(hang, stopped_rr_worker_is_replaced_without_a_failed_request)
{
	struct ops_cluster oc;
	struct ops_load load;

	stop_worker_under_load(&oc, "rr", &load);
	assert_no_failure(&oc, &load);
	/* one hang line: the new worker is not taken for hung */
	hx_assert(oc.c, ops_count_lines(oc.c, "took none of its", 0) == 1,
		  "want one hang line");
}

/* What queued in the stopped worker's slot moves to the others when its
 * socket closes, with net.ipv4.tcp_migrate_req (else it is reset). */
Test(hang, stopped_reuseport_worker_is_replaced_without_a_failed_request)
{
	struct ops_cluster oc;
	struct ops_load load;

	stop_worker_under_load(&oc, "reuseport", &load);
	assert_no_failure(&oc, &load);
}

Test(hang, status_says_the_slot_was_replaced_as_hung)
{
	struct ops_cluster oc;
	struct ops_load load;
	struct ops_row rows[8];
	size_t n, i;
	char *figure;

	stop_worker_under_load(&oc, "rr", &load);
	figure = ops_status_eval(&oc, "[w['last_replaced'] for w in W "
				 "if w['id'] == 2][0]['figure']");
	hx_assert(oc.c, ops_status_long(&oc, "int([w['last_replaced']['reason'] "
					"for w in W if w['id'] == 2] == "
					"['hang'])") == 1, "reason not hang");
	hx_assert(oc.c, strncmp(figure, "took none of ", 13) == 0 &&
		  strstr(figure, " connections in 1 s"), "figure: %s", figure);
	free(figure);
	hx_assert(oc.c, ops_status_long(&oc, "int([w['last_replaced'] for w in "
					"W if w['id'] != 2] == [None, None])")
		  == 1, "the other slots were not replaced");
	n = ops_status(oc.c, oc.sock, rows, 8);
	for (i = 0; i < n && rows[i].id != 2; i++)
		;
	hx_assert(oc.c, i < n && strncmp(rows[i].note, "replaced: hang, took "
					 "none of ", 21) == 0,
		  "row of worker 2: \"%s\"", i < n ? rows[i].note : "none");
}
