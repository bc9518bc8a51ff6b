/*
 * test_replace_status.c - `ctl status` says per worker why its slot was
 * last replaced and the figure: a crash (the exit as described), a
 * reload; a slot never replaced says nothing.  (Hang and the recycling
 * reasons: test_hang.c, test_recycle.c.)
 */
#include "ops.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

TestSuite(replace_status, .fini = ops_fini, .timeout = 60);

Test(replace_status, crash_then_reload)
{
	struct ops_cluster oc;
	struct ops_row rows[8];
	struct ops_run r;
	pid_t first = 0;
	size_t n, i;

	ops_start(&oc, 2, NULL);
	hx_assert(oc.c, ops_status_long(&oc, "int(all(w['last_replaced'] is "
					"None for w in W))") == 1,
		  "a slot replaced before anything happened");
	first = hx_worker_pid(oc.c, 1);
	cr_assert(kill(first, SIGKILL) == 0);
	ops_wait_forked(oc.c, 1, first, 0);
	hx_assert(oc.c, ops_wait_status(&oc, "[(w['last_replaced'] or {})."
					"get('figure') for w in W if w['id'] "
					"== 1 and w['state'] == 'listening'] == "
					"['killed by signal 9 (Killed)']", 10000),
		  "worker 1's slot does not say it crashed");
	hx_assert(oc.c, ops_status_long(&oc, "int([w['last_replaced']['reason'] "
					"for w in W if w['id'] == 1] == "
					"['crash'])") == 1, "reason not crash");
	hx_assert(oc.c, ops_status_long(&oc, "int([w['last_replaced'] for w in "
					"W if w['id'] == 2] == [None])") == 1,
		  "slot 2 was never replaced");
	n = ops_status(oc.c, oc.sock, rows, 8);
	for (i = 0; i < n && rows[i].id != 1; i++)
		;
	hx_assert(oc.c, i < n && strcmp(rows[i].note, "replaced: crash, killed "
					"by signal 9 (Killed)") == 0,
		  "row of worker 1: \"%s\"", i < n ? rows[i].note : "none");

	ops_ctl(oc.c, oc.sock, (const char *[]){ "reload", "--wait", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl reload --wait: %s", r.err);
	ops_run_free(&r);
	hx_assert(oc.c, ops_status_long(&oc, "int(sorted(w['last_replaced']"
					"['reason'] for w in W) == ['reload', "
					"'reload'])") == 1,
		  "the reload is not the last replacement of both slots");
}
