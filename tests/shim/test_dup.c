/*
 * test_dup.c - dup()/dup2()/dup3()/F_DUPFD copies of a listener all accept,
 * and closing copies (the original first) does not detach the worker while
 * another copy is open; closing the last one does.  fx_dup's worker 1 serves
 * exactly LIMIT connections through its copies, then closes the last one
 * and prints so: every later request is served by worker 2 (in rr a worker
 * still attached but not accepting would leave requests waiting: they
 * would time out).
 */
#include "shim_tests.h"

#include <stdio.h>
#include <string.h>

#define WORKERS 2
#define LIMIT 16
#define MAX_REQUESTS 400  /* bound on the requests until worker 1 closes */
#define AFTER 20          /* requests after it closed its last copy */

TestSuite(dup, .fini = hx_cleanup, .timeout = 60);

static void query_ok(struct hx_cluster *c, int port, struct hx_tally *t)
{
	struct hx_target target = { .proto = HX_TCP, .host = "127.0.0.1",
				    .port = port };
	struct hx_answer ans;
	int err = hx_query(&target, HX_QUERY_MS, &ans);

	hx_pump(c, 0);
	hx_assert(c, err == 0, "request %d failed: %s", t->total,
		  strerror(-err));
	hx_assert(c, ans.id >= 1 && ans.id <= WORKERS &&
		  hx_is_worker_pid(c, ans.id, ans.pid),
		  "answer \"%d %d\" is from no worker", ans.id, (int)ans.pid);
	t->served[ans.id]++;
	t->total++;
}

static void dup_case(const char *sched)
{
	static char port[16], limit[16];
	const char *args[] = { port, limit, NULL };
	struct hx_cluster *c;
	struct hx_tally tally = { { 0 }, 0 };
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	snprintf(limit, sizeof(limit), "%d", LIMIT);
	c = st_start(sched, WORKERS, "fx_dup", args, WORKERS, WORKERS);
	/* until worker 1 has closed its last copy (in none the kernel picks
	 * who accepts, so how many requests that takes is not known) */
	while (!st_stdout_line(c, "closed 1") && tally.served[1] < LIMIT &&
	       tally.total < MAX_REQUESTS)
		query_ok(c, p, &tally);
	/* its line comes after its LIMITth answer: on a loaded machine the
	 * others may serve hundreds before worker 1 runs again to say it */
	if (tally.served[1] == LIMIT)
		hx_wait_stdout_lines(c, WORKERS + 1, HX_START_MS);
	hx_assert(c, st_stdout_line(c, "closed 1 after 16") != NULL,
		  "worker 1 did not close its last copy within %d requests "
		  "(it served %d)", MAX_REQUESTS, tally.served[1]);
	hx_assert(c, tally.served[1] == LIMIT, "worker 1 served %d, want %d",
		  tally.served[1], LIMIT);
	/* detached: everything goes to worker 2 now */
	for (int i = 0; i < AFTER; i++)
		query_ok(c, p, &tally);
	cr_log_info("%s: workers 1, 2 served %d, %d", sched, tally.served[1],
		    tally.served[2]);
	hx_assert(c, tally.served[1] == LIMIT, "worker 1 served %d after it "
		  "closed its last copy", tally.served[1] - LIMIT);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

Test(dup, tcp_dup_dup2_dup3_rr) { dup_case("rr"); }
Test(dup, tcp_dup_dup2_dup3_none) { dup_case("none"); }
