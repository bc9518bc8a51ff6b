/*
 * test_kernel_rules.c - the kernel's rules that other projects' test
 * suites (scripts/peer-suites) showed the shim breaking, each checked from
 * inside one worker (fx_kernel_rules) in rr, none and reuseport: a unix
 * listener's path outlives its close(), a relative unix path is the
 * worker's own and told as bound, a port-0 socket keeps its port at
 * connect(), accept() with no free fd says EMFILE and loses nothing,
 * SO_REUSEPORT reads as the server set it and a conflicting bind fails;
 * and a listener that stopped accepting keeps its name for getsockname()
 * (gunicorn's arbiter at SIGTERM).
 */
#include "shim_tests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(kernel_rules, .fini = hx_cleanup, .timeout = 90);

static const char *const scheds[] = { "rr", "none", "reuseport" };

/* A fresh directory for the unix cases, removed by the caller. */
static void make_dir(char *dir, size_t cap)
{
	snprintf(dir, cap, "/tmp/kernel-rules-XXXXXX");
	cr_assert(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_dir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect(system(cmd) == 0, "could not remove %s", dir);
}

/* The fixture's check in one policy, then one request served and a clean
 * stop. */
static void rule_case(const char *sched, const char *which)
{
	static char port[16], dir[64];
	const char *args[] = { which, port, dir, NULL };
	char ok[64];
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	make_dir(dir, sizeof(dir));
	c = st_start(sched, 1, "fx_kernel_rules", args, 1, 1);
	snprintf(ok, sizeof(ok), "ok %s", which);
	hx_assert(c, st_stdout_line(c, ok) != NULL, "%s: want \"%s\"", sched,
		  ok);
	st_load(c, p, 3, 1, false, &tally);
	st_assert_steady(c, 1);
	st_stop(c);
	remove_dir(dir);
}

static void every_policy(const char *which)
{
	for (size_t i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++)
		rule_case(scheds[i], which);
}

Test(kernel_rules, closing_a_unix_listener_leaves_its_path)
{
	every_policy("unix_path");
}

Test(kernel_rules, relative_unix_path_is_the_workers_and_told_as_bound)
{
	every_policy("unix_rel");
}

Test(kernel_rules, port_zero_socket_keeps_its_port_at_connect)
{
	every_policy("port_kept");
}

Test(kernel_rules, accept_without_a_free_fd_says_emfile_and_loses_nothing)
{
	every_policy("emfile");
}

Test(kernel_rules, so_reuseport_as_set_and_conflicting_bind_refused)
{
	every_policy("reuseport");
}

/* SIGTERM comes after stop-accepting (none, reuseport): the listener's
 * name is still the address it bound. */
Test(kernel_rules, stopped_listener_keeps_its_name)
{
	for (size_t i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++) {
		static char port[16];
		const char *args[] = { "stop_name", port, "/tmp", NULL };
		char want[64];
		struct hx_cluster *c;
		int p = hx_free_port(SOCK_STREAM), status;

		snprintf(port, sizeof(port), "%d", p);
		c = st_start(scheds[i], 1, "fx_kernel_rules", args, 1, 1);
		status = hx_stop(c, SIGTERM, HX_EXIT_MS);
		hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "%s: cluster-run wait status 0x%x after SIGTERM",
			  scheds[i], status);
		snprintf(want, sizeof(want), "stopped name inet %d", p);
		hx_assert(c, st_stdout_line(c, want) != NULL,
			  "%s: want \"%s\" (getsockname() after stop-"
			  "accepting); got:\n%s", scheds[i], want,
			  hx_output(c));
		hx_free(c);
	}
}
