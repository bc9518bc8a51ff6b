/*
 * test_exec.c - a worker that execs a program which will not load the
 * shim (shim/exec.c tells the supervisor, supervisor/lib/worker_exec.c
 * decides), under cluster-run -n 3 in --intercept auto:
 *
 *   - a wrapper script (#!/bin/sh, exec fx_static "$@") - the command's
 *     file is a script, so nothing said seccomp before the first fork:
 *     the line is said, the cluster switches to the seccomp mode before
 *     any listener exists, every request is answered, by 3 distinct
 *     workers, each listening by reuseport; no worker exited on its own
 *     (EADDRINUSE would), the only deaths are the restarts' SIGKILLs;
 *     SIGTERM leaves nothing;
 *   - a dynamic server that clears LD_PRELOAD and execs itself again
 *     (fx_unpreload): the same;
 *   - a wrapper execing a 32-bit server (fx_i386, where -m32 builds): the
 *     same (the filter covers the i386 ABI);
 *   - with --intercept shim the line only: the worker binds on its own;
 *   - with an option the seccomp mode cannot do (--sticky) the line says
 *     so, and the exec goes on;
 *   - an exec once a listener exists (fx_unpreload inherit: it listens
 *     through the shim, then execs itself without it, serving on that
 *     socket): too late to switch, the line says so, the worker serves;
 *   - a dynamic server that shells out after it serves (fx_shellout:
 *     system(), and a forked child's execle() with an empty environment):
 *     no line, still rr, no worker restarted.
 */
#include "seccomp_support.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORKERS 3
#define REQUESTS 60

TestSuite(exec, .fini = hx_cleanup, .timeout = 90);

static char script_dir[64], script[128];

/* A test's .fini in place of the suite's: hx_cleanup() too. */
static void remove_script(void)
{
	hx_cleanup();
	if (script[0])
		unlink(script);
	if (script_dir[0])
		rmdir(script_dir);
	script[0] = script_dir[0] = '\0';
}

/* #!/bin/sh, exec FIXTURE "$@": a file that says nothing of what runs. */
static const char *wrapper_of(const char *fixture)
{
	FILE *f;

	snprintf(script_dir, sizeof(script_dir), "/tmp/cr-exec.XXXXXX");
	cr_assert(mkdtemp(script_dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(script, sizeof(script), "%s/run.sh", script_dir);
	f = fopen(script, "w");
	cr_assert(f != NULL, "%s: %s", script, strerror(errno));
	fprintf(f, "#!/bin/sh\nexec '%s' \"$@\"\n", hx_fixture(fixture));
	fclose(f);
	cr_assert(chmod(script, 0755) == 0, "chmod: %s", strerror(errno));
	return script;
}

static void assert_line(struct hx_cluster *c, const char *const *texts)
{
	const char *line = st_wait_err_line(c, texts, HX_START_MS);

	hx_assert(c, line != NULL, "no line with \"%s\" ... \"%s\"", texts[0],
		  texts[1]);
}

/* REQUESTS answered, each by a worker's own pid, all WORKERS of them. */
static void assert_all_serve(struct hx_cluster *c, int port, int min_each)
{
	struct hx_tally tally;

	st_load(c, port, REQUESTS, WORKERS, false, &tally);
	for (int id = 1; id <= WORKERS; id++)
		hx_assert(c, tally.served[id] >= min_each,
			  "worker %d served %d of %d: want at least %d", id,
			  tally.served[id], REQUESTS, min_each);
}

/* The switch restarted the workers started so far, by SIGKILL: each at
 * most once, and none ended on its own (as one failing with EADDRINUSE
 * would, or one that ran its exec without the filter). */
static void assert_only_restarts(struct hx_cluster *c)
{
	size_t killed = 0;

	hx_pump(c, 0);
	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i];

		hx_assert(c, ev->kind != HX_EXITED, "worker %d (pid %d) "
			  "exited with code %d", ev->id, (int)ev->pid, ev->code);
		if (ev->kind == HX_KILLED) {
			hx_assert(c, ev->code == SIGKILL, "worker %d killed by "
				  "signal %d", ev->id, ev->code);
			killed++;
		}
	}
	hx_assert(c, killed <= WORKERS && hx_count(c, HX_FORKED) ==
		  WORKERS + killed, "%zu killed, %zu forked: want each "
		  "restarted once at most", killed, hx_count(c, HX_FORKED));
}

/* cluster-run -n 3 -- COMMAND [MODE] PORT */
static void switch_case(const char *command, const char *mode,
			const char *const *texts)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "3", "--", command,
			       mode ? mode : ss_port_text(port),
			       mode ? ss_port_text(port) : NULL, NULL };
	struct hx_cluster *c = hx_start(HX_CAPTURE_STDOUT, args);

	assert_line(c, texts);
	ss_wait_listening(c, WORKERS, "(reuseport)");
	assert_all_serve(c, port, 1);
	assert_only_restarts(c);
	st_stop(c);
}

Test(exec, wrapper_script_execing_a_static_binary_switches_to_seccomp,
     .init = ss_skip_without_user_notification, .fini = remove_script)
{
	const char *texts[] = { "worker ", " execs ", "fx_static, which does "
				"not load the shim (a static binary)",
				"its workers run in the seccomp mode", NULL };

	switch_case(wrapper_of("fx_static"), NULL, texts);
}

Test(exec, program_clearing_ld_preload_switches_to_seccomp,
     .init = ss_skip_without_user_notification)
{
	const char *texts[] = { "fx_unpreload, which does not load the shim "
				"(its LD_PRELOAD no longer names the shim)",
				"its workers run in the seccomp mode", NULL };

	switch_case(hx_fixture("fx_unpreload"), NULL, texts);
}

/* The filter covers the i386 ABI: a 32-bit server is run in the mode. */
Test(exec, wrapper_script_execing_a_32bit_binary_switches_to_seccomp,
     .init = ss_skip_without_user_notification, .fini = remove_script)
{
	const char *texts[] = { "fx_i386, which does not load the shim (a "
				"32-bit program", "its workers run in the "
				"seccomp mode", NULL };

	ss_skip_unless_built("fx_i386", "no -m32 toolchain: gcc-multilib");
	switch_case(wrapper_of("fx_i386"), "libc", texts);
}

/* The line comes, port answers: worker 1 serves, once started, never
 * restarted. */
static void assert_one_worker_serves(struct hx_cluster *c, int port)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	int64_t deadline = hx_now_ms() + HX_START_MS;
	struct hx_answer ans;

	while (hx_query(&t, HX_QUERY_MS, &ans) != 0) {
		hx_assert(c, hx_now_ms() < deadline, "port %d never answered",
			  port);
		hx_pump(c, 50);
	}
	hx_assert(c, ans.id == 1 && hx_is_worker_pid(c, 1, ans.pid),
		  "answer from %d (pid %d), want worker 1", ans.id,
		  (int)ans.pid);
	hx_pump(c, 0);
	hx_assert(c, hx_count(c, HX_KILLED) == 0 && hx_count(c, HX_EXITED) == 0
		  && hx_count(c, HX_FORKED) == 1,
		  "want one worker, never restarted");
}

/* cluster-run ARGS (one worker serving on port): the line with texts
 * comes, then that worker serves (assert_one_worker_serves); c. */
static struct hx_cluster *one_worker_after_line(const char *const *args,
						const char *const *texts,
						int port)
{
	struct hx_cluster *c = hx_start(HX_CAPTURE_STDOUT, args);

	assert_line(c, texts);
	assert_one_worker_serves(c, port);
	return c;
}

Test(exec, intercept_shim_only_says_so, .fini = remove_script)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "1", "--intercept", "shim", "--",
			       wrapper_of("fx_static"), ss_port_text(port),
			       NULL };
	const char *texts[] = { "fx_static, which does not load the shim "
				"(a static binary); with --intercept shim",
				"EADDRINUSE", NULL };
	struct hx_cluster *c = one_worker_after_line(args, texts, port);

	/* the worker binds on its own, through no cluster listener */
	hx_assert(c, hx_count(c, HX_LISTENING) == 0,
		  "want no listener through cluster-run");
	st_stop(c);
}

Test(exec, option_needing_rr_keeps_the_shim_mode, .fini = remove_script)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "1", "--sticky", "ip", "--",
			       wrapper_of("fx_static"), ss_port_text(port),
			       NULL };
	const char *texts[] = { "fx_static, which does not load the shim "
				"(a static binary); --sticky needs --sched rr, "
				"which the seccomp mode cannot do", "EADDRINUSE",
				NULL };

	st_stop(one_worker_after_line(args, texts, port));
}

Test(exec, exec_after_a_listener_exists_is_said_too_late)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "1", "--sched", "none", "--",
			       hx_fixture("fx_unpreload"), ss_port_text(port),
			       "inherit", NULL };
	const char *texts[] = { "fx_unpreload, which does not load the shim "
				"(its LD_PRELOAD no longer names the shim); "
				"cluster-run listens for the cluster already, "
				"too late for the seccomp mode", "EADDRINUSE",
				NULL };
	struct hx_cluster *c = one_worker_after_line(args, texts, port);

	hx_assert(c, hx_count(c, HX_LISTENING) == 1,
		  "want the listener it made through the shim");
	st_stop(c);
}

Test(exec, shelling_out_after_serving_is_no_worker_exec)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "3", "--", hx_fixture("fx_shellout"),
			       ss_port_text(port), NULL };
	struct hx_cluster *c = hx_start(HX_CAPTURE_STDOUT, args);

	ss_wait_listening(c, WORKERS, "(rr)");
	assert_all_serve(c, port, REQUESTS / WORKERS / 2);
	st_assert_steady(c, WORKERS);
	for (size_t i = 0; i < c->err.n_lines; i++)
		hx_assert(c, !strstr(c->err.lines[i], "does not load the shim")
			  && !strstr(c->err.lines[i], "seccomp"),
			  "unexpected line: %s", c->err.lines[i]);
	st_stop(c);
}
