/* cluster-run's option parsing: what it accepts and the one-line errors. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>

#include "cli_options.h"

static int parse(const char *env, struct cli_options *o, char *err,
		 char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return cli_parse(argc, argv, env, o, err, 256);
}

#define ARGV(...) ((char *[]){ "cluster-run", __VA_ARGS__, NULL })

Test(cli_options, workers_policy_and_command)
{
	/* o.command points into argv: it must outlive the assertion's block */
	char **argv = ARGV("-n", "8", "--sched", "none", "--", "./srv",
			   "--port", "8080");
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, argv), 0);
	cr_expect_eq(o.workers, 8);
	cr_expect_eq(o.sched, CLUSTER_SCHED_NONE);
	cr_expect_str_eq(o.command[0], "./srv");
	cr_expect_str_eq(o.command[1], "--port"); /* server options untouched */
	cr_expect_str_eq(o.command[2], "8080");
}

Test(cli_options, defaults_rr_and_cpu_count)
{
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, ARGV("srv")), 0);
	cr_expect_eq(o.sched, CLUSTER_SCHED_RR);
	cr_expect_eq(o.workers, cli_default_workers());
	cr_expect_geq(o.workers, 1);
	cr_expect_eq(o.kill_timeout_ms, 30000);
}

Test(cli_options, environment_sets_policy_option_overrides)
{
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse("none", &o, err, ARGV("srv")), 0);
	cr_expect_eq(o.sched, CLUSTER_SCHED_NONE);
	cr_assert_eq(parse("none", &o, err, ARGV("--sched", "rr", "srv")), 0);
	cr_expect_eq(o.sched, CLUSTER_SCHED_RR);
	cr_expect_eq(parse("fifo", &o, err, ARGV("srv")), -1);
	cr_expect(strstr(err, "CLUSTER_SCHED_POLICY"));
}

Test(cli_options, bad_usage_says_what_is_wrong)
{
	struct cli_options o;
	char err[256];

	cr_expect_eq(parse(NULL, &o, err, ARGV("-n", "0", "srv")), -1);
	cr_expect(strstr(err, "worker count '0'"), "%s", err);
	cr_expect_eq(parse(NULL, &o, err, ARGV("-n", "-3", "srv")), -1);
	cr_expect_eq(parse(NULL, &o, err, ARGV("-n", "lots", "srv")), -1);
	cr_expect_eq(parse(NULL, &o, err, ARGV("--sched", "bogus", "srv")), -1);
	cr_expect(strstr(err, "'bogus'"), "%s", err);
	cr_expect_eq(parse(NULL, &o, err, ARGV("--frobnicate", "srv")), -1);
	cr_expect(strstr(err, "--frobnicate"), "%s", err);
	cr_expect_eq(parse(NULL, &o, err, ARGV("-n")), -1);
	cr_expect(strstr(err, "needs a value"), "%s", err);
	cr_expect_eq(parse(NULL, &o, err, ARGV("-n", "2")), -1);
	cr_expect(strstr(err, "no command"), "%s", err);
	cr_expect_null(strchr(err, '\n'));
}

Test(cli_options, help_and_version_need_no_command)
{
	struct cli_options o;
	char err[256];

	cr_expect_eq(parse(NULL, &o, err, ARGV("--help")), 0);
	cr_expect(o.help);
	cr_expect_eq(parse(NULL, &o, err, ARGV("--version")), 0);
	cr_expect(o.version);
}

Test(cli_options, command_check_finds_path_and_refuses_missing)
{
	char err[256];

	cr_expect_eq(cli_check_command("sh", err, sizeof(err)), 0);
	cr_expect_eq(cli_check_command("/bin/sh", err, sizeof(err)), 0);
	cr_expect_eq(cli_check_command("no-such-server-xyz", err, sizeof(err)), -1);
	cr_expect(strstr(err, "not found"), "%s", err);
	cr_expect_eq(cli_check_command("/etc/passwd", err, sizeof(err)), -1);
	cr_expect(strstr(err, "not an executable"), "%s", err);
	cr_expect_eq(cli_check_command("/nonexistent/srv", err, sizeof(err)), -1);
}

#include <arpa/inet.h>
#include <sys/un.h>

#include "listen_policy.h"

Test(cli_options, listen_addresses_parse_and_match)
{
	struct listen_addr a[3];
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/run/a.sock" };

	cr_assert_eq(listen_addr_parse("127.0.0.1:80", &a[0]), 0);
	cr_assert_eq(listen_addr_parse("[::1]:8080", &a[1]), 0);
	cr_assert_eq(listen_addr_parse("unix:/run/a.sock", &a[2]), 0);
	inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
	cr_expect(listen_addr_allowed(a, 3, (struct sockaddr *)&v4, sizeof(v4)));
	v4.sin_port = htons(81);
	cr_expect_not(listen_addr_allowed(a, 3, (struct sockaddr *)&v4, sizeof(v4)));
	v4.sin_port = 0; /* port 0 is never declared */
	cr_expect_not(listen_addr_allowed(a, 3, (struct sockaddr *)&v4, sizeof(v4)));
	cr_expect(listen_addr_allowed(a, 3, (struct sockaddr *)&un,
				      offsetof(struct sockaddr_un, sun_path) + 12));
	cr_expect_eq(listen_addr_parse("127.0.0.1", &a[0]), -1);
	cr_expect_eq(listen_addr_parse("127.0.0.1:0", &a[0]), -1);
	cr_expect_eq(listen_addr_parse("localhost:80", &a[0]), -1);
	cr_expect_eq(listen_addr_parse("[::1:80", &a[0]), -1);
	cr_expect_eq(listen_addr_parse("unix:relative", &a[0]), -1);
}

/* Issue 13: each refusal names the real cause, in one line. */
static void refused(char **argv, const char *want)
{
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, argv), -1, "accepted, want \"%s\"",
		     want);
	cr_expect(strstr(err, want), "got \"%s\", want \"%s\"", err, want);
	cr_expect_null(strchr(err, '\n'), "more than one line: %s", err);
	cli_options_free(&o);
}

Test(cli_options, a_value_for_an_option_that_takes_none)
{
	refused(ARGV("--prefix=yes", "srv"),
		"--prefix takes no value ('--prefix=yes')");
	refused(ARGV("--pref=1", "srv"), "--prefix takes no value");
	refused(ARGV("--help=me"), "--help takes no value");
}

Test(cli_options, an_ambiguous_abbreviation_lists_the_candidates)
{
	struct cli_options o;
	char err[256];

	refused(ARGV("--re", "1", "srv"), "ambiguous option '--re'");
	cr_assert_eq(parse(NULL, &o, err, ARGV("--re", "1", "srv")), -1);
	cr_expect(strstr(err, "--reload-parallel"), "%s", err);
	cr_expect(strstr(err, "--ready-timeout"), "%s", err);
	cr_expect(strstr(err, "--restart-delay"), "%s", err);
	cr_expect(strstr(err, "--restart-reset"), "%s", err);
	cr_expect_null(strstr(err, "--workers"), "%s", err);
	refused(ARGV("--restart=5", "srv"), "it could be --restart-delay, "
		"--restart-reset");
	/* a unique abbreviation still works */
	cr_assert_eq(parse(NULL, &o, err, ARGV("--work", "3", "srv")), 0, "%s",
		     err);
	cr_expect_eq(o.workers, 3);
	refused(ARGV("--frob", "srv"), "unknown option '--frob'");
}

Test(cli_options, gid_needs_uid)
{
	refused(ARGV("--gid", "nogroup", "srv"), "--gid nogroup goes with --uid");
}

Test(cli_options, restart_delay_max_below_first)
{
	struct cli_options o;
	char err[256];

	refused(ARGV("--restart-delay", "5:1", "srv"),
		"the longest delay (1 ms) is below the first (5 ms)");
	cr_assert_eq(parse(NULL, &o, err, ARGV("--restart-delay", "5:5", "srv")),
		     0, "%s", err);
	cr_expect_eq(o.backoff_first_ms, 5);
	cr_expect_eq(o.backoff_max_ms, 5);
}

Test(cli_options, graceful_signal_must_let_a_worker_stop)
{
	struct cli_options o;
	char err[256];

	refused(ARGV("--graceful-signal", "KILL", "srv"), "SIGKILL cannot be "
		"handled");
	refused(ARGV("--graceful-signal", "9", "srv"), "SIGKILL cannot be");
	refused(ARGV("--graceful-signal", "SIGSTOP", "srv"), "SIGSTOP pauses");
	refused(ARGV("--graceful-signal", "BOGUS", "srv"), "unknown signal");
	cr_assert_eq(parse(NULL, &o, err, ARGV("--graceful-signal", "QUIT",
					       "srv")), 0, "%s", err);
	cr_expect_eq(o.graceful_signal, SIGQUIT);
}

Test(cli_options, env_of_a_variable_cluster_run_sets_is_refused)
{
	struct cli_options o;
	char err[256];

	refused(ARGV("--env", "LD_PRELOAD=/lib/x.so", "srv"),
		"cluster-run sets the workers' LD_PRELOAD");
	refused(ARGV("--env", "CLUSTER_WORKER_ID=7", "srv"),
		"--env CLUSTER_WORKER_ID=...: cluster-run sets");
	refused(ARGV("--env", "NOTIFY_SOCKET=/run/x", "srv"), "NOTIFY_SOCKET");
	cr_assert_eq(parse(NULL, &o, err, ARGV("--env", "LD_PRELOADX=1", "srv")),
		     0, "%s", err);
	cli_options_free(&o);
}

Test(cli_options, sticky_modes_and_their_errors)
{
	char **argv = ARGV("--sticky", "query:sid", "--sticky-wait", "500",
			   "--", "./srv");
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, argv), 0);
	cr_expect_eq(o.sticky, CLUSTER_STICKY_QUERY);
	cr_expect_str_eq(o.sticky_name, "sid");
	cr_expect_eq(o.sticky_wait_ms, 500);
	argv = ARGV("--sticky", "ip", "--", "./srv");
	cr_assert_eq(parse(NULL, &o, err, argv), 0);
	cr_expect_eq(o.sticky, CLUSTER_STICKY_IP);
	refused(ARGV("--sticky", "ip", "--sched", "reuseport", "--", "./srv"),
		"--sticky needs --sched rr (cluster-run deals the connections); "
		"with --sched reuseport the kernel picks the worker");
	cr_assert_neq(parse("none", &o, err, ARGV("--sticky", "ip", "--", "x")),
		      0, "CLUSTER_SCHED_POLICY=none with --sticky accepted");
	refused(ARGV("--sticky", "cookie:a;b", "--", "./srv"),
		"invalid --sticky 'cookie:a;b': the name after 'cookie:' must be "
		"1 to 64 letters, digits or -_.~!$'*+^`|");
	refused(ARGV("--sticky", "url", "--", "./srv"),
		"unknown --sticky 'url': use ip, header:NAME, cookie:NAME or "
		"query:NAME");
	refused(ARGV("--sticky", "ip", "--sticky-wait", "100", "--", "./srv"),
		"--sticky-wait goes with --sticky header:NAME, cookie:NAME or "
		"query:NAME (only those wait for the request)");
	refused(ARGV("--sticky", "header:X", "--sticky-wait", "0", "--", "./s"),
		"invalid --sticky-wait '0': give a whole number of milliseconds "
		"from 1 to 60000");
}

/* --hang-timeout, --max-memory (powers of 1024), --max-conns and
 * --max-lifetime with and without jitter: the values the pool gets. */
Test(cli_options, hang_and_recycling_limits)
{
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, ARGV("--hang-timeout", "3",
		     "--max-memory", "2g", "--max-conns", "100:7",
		     "--max-lifetime", "60:5", "srv")), 0, "%s", err);
	cr_expect_eq(o.watch.hang_timeout_ms, 3000);
	cr_expect_eq(o.watch.max_memory, 2ULL << 30);
	cr_expect_eq(o.watch.max_conns, 100);
	cr_expect_eq(o.watch.max_conns_jitter, 7);
	cr_expect_eq(o.watch.max_lifetime_ms, 60000);
	cr_expect_eq(o.watch.max_lifetime_jitter_ms, 5000);
	cr_assert_eq(parse(NULL, &o, err, ARGV("--max-memory", "640K",
		     "--max-lifetime", "10", "srv")), 0, "%s", err);
	cr_expect_eq(o.watch.max_memory, 640ULL << 10);
	cr_expect_eq(o.watch.max_lifetime_jitter_ms, 0);
	cr_expect_eq(o.watch.hang_timeout_ms, 0); /* off unless asked */
	cr_assert_eq(parse(NULL, &o, err, ARGV("--max-memory", "512M", "srv")), 0);
	cr_expect_eq(o.watch.max_memory, 512ULL << 20);
}

Test(cli_options, health_check_values)
{
	struct cli_options o;
	char err[256];

	cr_assert_eq(parse(NULL, &o, err, ARGV("srv")), 0);
	cr_expect_eq(o.health.kind, 0); /* off unless asked for */
	cr_assert_eq(parse(NULL, &o, err,
			   ARGV("--health-check", "http:/healthz?full=1",
				"--health-interval", "0.25", "--health-timeout",
				"0.125", "--health-fails", "7", "srv")), 0,
		     "%s", err);
	cr_expect_eq(o.health.kind, HEALTH_HTTP);
	cr_expect_str_eq(o.health.path, "/healthz?full=1");
	cr_expect_eq(o.health.interval_ms, 250);
	cr_expect_eq(o.health.timeout_ms, 125);
	cr_expect_eq(o.health.fails, 7);
	cr_assert_eq(parse(NULL, &o, err, ARGV("--health-check", "tcp", "srv")),
		     0);
	cr_expect_eq(o.health.kind, HEALTH_TCP);
	cr_expect_eq(o.health.interval_ms, 5000);
	cr_expect_eq(o.health.timeout_ms, 2000);
	cr_expect_eq(o.health.fails, 3);
	/* the default timeout gives way to a shorter interval */
	cr_assert_eq(parse(NULL, &o, err, ARGV("--health-check", "tcp",
					       "--health-interval", "1", "srv")),
		     0);
	cr_expect_eq(o.health.timeout_ms, 1000);
	/* CLUSTER_SCHED_POLICY counts as --sched */
	cr_expect_eq(parse("reuseport", &o, err,
			   ARGV("--health-check", "tcp", "srv")), -1);
	cr_expect(strstr(err, "needs --sched rr"), "%s", err);
	cr_expect_eq(parse(NULL, &o, err, ARGV("--health-check", "tcp",
					       "--health-interval", "0.0001",
					       "srv")), -1);
	cr_expect_eq(parse(NULL, &o, err, ARGV("--health-check", "http:/a b",
					       "srv")), -1);
	cr_expect(strstr(err, "no spaces"), "%s", err);
}
