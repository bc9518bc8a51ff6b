/*
 * test_watch_input.c - bad values of --hang-timeout, --max-memory,
 * --max-conns and --max-lifetime, and the policies they cannot work
 * with: one line that names the option, the value and what to give
 * instead, exit status 2, and no worker started.
 */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

TestSuite(watch_input, .fini = ops_fini, .timeout = 60);

struct bad_input {
	const char *args[5];   /* options, NULL-terminated */
	const char *line;      /* the whole line cluster-run writes */
};

static const struct bad_input cases[] = {
	{ { "--max-memory", "12Q" }, "cluster-run: invalid --max-memory '12Q': "
	  "give a size such as 512M or 2G\n" },
	{ { "--max-memory", "512" }, "cluster-run: invalid --max-memory '512': "
	  "give a size such as 512M or 2G\n" },
	{ { "--max-memory", "0M" }, "cluster-run: invalid --max-memory '0M': "
	  "give a size such as 512M or 2G\n" },
	{ { "--max-memory", "99999999999G" }, "cluster-run: invalid "
	  "--max-memory '99999999999G': give a size such as 512M or 2G\n" },
	{ { "--hang-timeout", "0" }, "cluster-run: invalid --hang-timeout '0': "
	  "give a whole number of seconds from 1 to 86400\n" },
	{ { "--hang-timeout", "1.5" }, "cluster-run: invalid --hang-timeout "
	  "'1.5': give a whole number of seconds from 1 to 86400\n" },
	{ { "--max-conns", "0" }, "cluster-run: invalid --max-conns '0': give N "
	  "or N:JITTER, whole numbers with N at least 1, such as 10000 or "
	  "10000:1000\n" },
	{ { "--max-conns", "100:x" }, "cluster-run: invalid --max-conns "
	  "'100:x': give N or N:JITTER, whole numbers with N at least 1, such "
	  "as 10000 or 10000:1000\n" },
	{ { "--max-lifetime", "-5" }, "cluster-run: invalid --max-lifetime "
	  "'-5': give SEC or SEC:JITTER in whole seconds (SEC from 1, both up "
	  "to 30 days), such as 3600 or 3600:600\n" },
	{ { "--max-lifetime", "60:" }, "cluster-run: invalid --max-lifetime "
	  "'60:': give SEC or SEC:JITTER in whole seconds (SEC from 1, both up "
	  "to 30 days), such as 3600 or 3600:600\n" },
	{ { "--sched", "none", "--hang-timeout", "5" }, "cluster-run: "
	  "--hang-timeout needs --sched rr or reuseport: with none, no "
	  "connection waits for one worker alone, so none can tell it hangs\n" },
	{ { "--sched", "reuseport", "--max-conns", "10" }, "cluster-run: "
	  "--max-conns counts the connections cluster-run hands out, which "
	  "only --sched rr does; use --sched rr, or --max-lifetime instead\n" },
};

Test(watch_input, each_bad_value_gets_one_line_and_exit_2)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[12] = { getenv("CLUSTER_RUN_BIN") };
		struct ops_run r;
		size_t n = 1;

		cr_assert(argv[0], "CLUSTER_RUN_BIN is not set");
		for (size_t k = 0; cases[i].args[k]; k++)
			argv[n++] = cases[i].args[k];
		argv[n++] = "--";
		argv[n++] = hx_fixture("fx_blocking_accept");
		argv[n] = NULL;
		ops_run(argv, NULL, &r);
		cr_expect(ops_exit_code(&r) == 2 && strcmp(r.err, cases[i].line)
			  == 0, "%s %s: exit %d, stderr \"%s\", want \"%s\"",
			  cases[i].args[0], cases[i].args[1], ops_exit_code(&r),
			  r.err, cases[i].line);
		ops_run_free(&r);
	}
}

/* The good forms are taken (with a command that fails at once, so that
 * nothing runs: the error is then about the command, not the option). */
Test(watch_input, good_values_are_taken)
{
	static const char *const good[][2] = {
		{ "--max-memory", "512M" }, { "--max-memory", "2g" },
		{ "--max-memory", "640K" }, { "--max-conns", "10000:1000" },
		{ "--max-conns", "5:0" }, { "--max-lifetime", "3600:600" },
		{ "--hang-timeout", "30" },
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *argv[] = { getenv("CLUSTER_RUN_BIN"), good[i][0],
				       good[i][1], "--", "/nonexistent/server",
				       NULL };
		struct ops_run r;

		ops_run(argv, NULL, &r);
		cr_expect(ops_exit_code(&r) == 2 && strstr(r.err, "cannot run "
			  "'/nonexistent/server'") && !strstr(r.err, "invalid"),
			  "%s %s: exit %d, %s", good[i][0], good[i][1],
			  ops_exit_code(&r), r.err);
		ops_run_free(&r);
	}
}
