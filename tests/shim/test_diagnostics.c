/*
 * test_diagnostics.c - what cannot work is said, not hung on.
 *
 *   - A worker that has not loaded the shim 5 s after it started (a static
 *     binary here; a setuid binary, a program that clears LD_PRELOAD) gets
 *     one line naming the worker, the command and the likely cause.
 *   - A worker found listening on a port it never asked cluster-run for
 *     (raw system calls, as Go binaries make) is reported the same way.
 *
 * Both are the supervisor's to notice (the shim is not there, or is
 * bypassed): the lines this test expects are specified in README ("Known
 * limitations") and the tests stay disabled until cluster-run prints them.
 */
#include "shim_tests.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define NOTICE_MS 12000 /* 5 s, and a scan, on a loaded machine */

TestSuite(diagnostics, .fini = hx_cleanup, .timeout = 60);

/* The first stderr line of c that holds every one of the texts. */
static const char *wait_line(struct hx_cluster *c, const char *const *texts,
			     int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	for (;;) {
		for (size_t i = 0; i < c->err.n_lines; i++) {
			size_t k = 0;

			while (texts[k] && strstr(c->err.lines[i], texts[k]))
				k++;
			if (!texts[k])
				return c->err.lines[i];
		}
		if (hx_now_ms() >= deadline)
			return NULL;
		hx_pump(c, (int)(deadline - hx_now_ms()));
	}
}

static void stop(struct hx_cluster *c)
{
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) != -1,
		  "cluster-run did not exit");
	hx_assert_workers_gone(c);
	hx_free(c);
}

Test(diagnostics, static_binary_never_loads_the_shim)
{
	static char port[16], who[64];
	const char *args[] = { port, NULL };
	struct hx_cluster *c;

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = hx_start_fixture(0, 1, "rr", "fx_static", args);
	hx_assert(c, hx_wait_count(c, HX_FORKED, 1, HX_START_MS), "no worker");
	snprintf(who, sizeof(who), "worker 1 (pid %d) has not loaded the shim",
		 (int)hx_worker_pid(c, 1));
	{
		const char *texts[] = { who, "fx_static", "static binary",
					NULL };

		hx_assert(c, wait_line(c, texts, NOTICE_MS) != NULL,
			  "no line \"%s ... fx_static ... static binary\" "
			  "within %d ms", who, NOTICE_MS);
	}
	hx_assert(c, hx_count(c, HX_ONLINE) == 0, "a static binary checked in");
	stop(c);
}

Test(diagnostics, raw_syscall_listener_is_reported)
{
	static char port[16], who[128];
	const char *args[] = { port, NULL };
	struct hx_cluster *c;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = hx_start_fixture(0, 1, "rr", "fx_rawbind", args);
	hx_assert(c, hx_wait_count(c, HX_ONLINE, 1, HX_START_MS),
		  "the worker did not check in (it loads the shim)");
	snprintf(who, sizeof(who), "worker 1 (pid %d) listens on "
		 "127.0.0.1:%d, which it never asked cluster-run for",
		 (int)hx_worker_pid(c, 1), p);
	{
		const char *texts[] = { who, "fx_rawbind", NULL };

		hx_assert(c, wait_line(c, texts, NOTICE_MS) != NULL,
			  "no line \"%s ... fx_rawbind\" within %d ms", who,
			  NOTICE_MS);
	}
	stop(c);
}
