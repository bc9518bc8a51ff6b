/* cluster-run's option parsing: what it accepts and the one-line errors. */
#include <criterion/criterion.h>
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
