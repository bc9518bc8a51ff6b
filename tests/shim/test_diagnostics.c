/*
 * test_diagnostics.c - what cannot work is said, not hung on.
 *
 *   - A program the shim cannot reach whatever it does (a static binary, a
 *     Go binary, a setuid one) is said to be one as its first worker
 *     starts, from its ELF file: with more than one worker the others fail
 *     with EADDRINUSE and end in a crash-loop stop within seconds, and the
 *     line must come before that stop.
 *   - A worker found listening on a port it never asked cluster-run for
 *     (raw system calls, as Go binaries make) is reported 5 s after it
 *     started, with the address.
 *
 * Both are the supervisor's to notice (the shim is not there, or is
 * bypassed): the lines this test expects are specified in README ("Known
 * limitations").  The static and Go binaries run with --intercept shim:
 * by default (auto) they run in the seccomp mode instead (test_seccomp.c).
 */
#include "shim_tests.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOTICE_MS 12000 /* 5 s, and a scan, on a loaded machine */

TestSuite(diagnostics, .fini = hx_cleanup, .timeout = 60);

static void stop(struct hx_cluster *c)
{
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) != -1,
		  "cluster-run did not exit");
	hx_assert_workers_gone(c);
	hx_free(c);
}

#define SAID_MS 5000 /* at the first fork: long before any 5 s check */

/* The index of the first stderr line of c that holds every text, or -1. */
static long line_index(const struct hx_cluster *c, const char *const *texts)
{
	for (size_t i = 0; i < c->err.n_lines; i++) {
		size_t k = 0;

		while (texts[k] && strstr(c->err.lines[i], texts[k]))
			k++;
		if (!texts[k])
			return (long)i;
	}
	return -1;
}

Test(diagnostics, static_binary_is_said_as_it_starts)
{
	static char port[16];
	const char *args[] = { "-n", "1", "--intercept", "shim", "--",
			       hx_fixture("fx_static"), port, NULL };
	const char *texts[] = { "fx_static is a static binary",
				"never loads the shim",
				"its listeners are not shared", NULL };
	struct hx_cluster *c;

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	c = hx_start(0, args);
	hx_assert(c, st_wait_err_line(c, texts, SAID_MS) != NULL,
		  "no line \"fx_static is a static binary ... never loads the "
		  "shim ... its listeners are not shared\" within %d ms",
		  SAID_MS);
	hx_assert(c, hx_count(c, HX_ONLINE) == 0, "a static binary checked in");
	stop(c);
}

/*
 * Three workers of a program that binds on its own: the first serves, the
 * others fail with EADDRINUSE, again and again, and cluster-run stops
 * (--crash-limit 4).  The line that says why comes first, once.
 */
static void said_before_the_crash_loop(const char *fixture, const char *what)
{
	static char port[16];
	char prog[64];
	const char *stop_line[] = { "workers keep failing to start", NULL };
	const char *why[] = { prog, "its listeners are not shared", NULL };
	const char *args[] = { "-n", "3", "--crash-limit", "4:60",
			       "--intercept", "shim", "--",
			       hx_fixture(fixture), port, NULL };
	struct hx_cluster *c;
	long said, stopped;
	int status;

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	snprintf(prog, sizeof(prog), "%s %s", fixture, what);
	c = hx_start(0, args);
	status = hx_wait_exit(c, 20000);
	hx_assert(c, status != -1, "cluster-run did not stop its crash loop "
		  "within 20 s");
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 1,
		  "a crash-loop stop exits 1");
	stopped = line_index(c, stop_line);
	said = line_index(c, why);
	hx_assert(c, stopped >= 0, "no crash-loop line");
	hx_assert(c, said >= 0, "no line \"%s ... its listeners are not "
		  "shared\"", prog);
	hx_assert(c, said < stopped, "the line that says why came after the "
		  "crash-loop stop");
	for (size_t i = (size_t)said + 1; i < c->err.n_lines; i++)
		hx_assert(c, !strstr(c->err.lines[i], what),
			  "said more than once: %s", c->err.lines[i]);
	hx_assert_workers_gone(c);
	hx_free(c);
}

Test(diagnostics, static_binary_said_before_the_crash_loop)
{
	said_before_the_crash_loop("fx_static", "is a static binary");
}

Test(diagnostics, go_binary_said_before_the_crash_loop)
{
	if (access(hx_fixture("fx_gobin"), X_OK) != 0)
		cr_skip_test("fx_gobin not built (objcopy missing)");
	said_before_the_crash_loop("fx_gobin", "is a Go binary");
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

		hx_assert(c, st_wait_err_line(c, texts, NOTICE_MS) != NULL,
			  "no line \"%s ... fx_rawbind\" within %d ms", who,
			  NOTICE_MS);
	}
	stop(c);
}
