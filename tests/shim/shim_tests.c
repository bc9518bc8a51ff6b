/* shim_tests.c - see shim_tests.h. */
#include "shim_tests.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

struct hx_cluster *st_start(const char *sched, int workers,
			    const char *fixture, const char *const *args,
			    size_t listening, size_t ready)
{
	struct hx_cluster *c = hx_start_fixture(HX_CAPTURE_STDOUT, workers,
						sched, fixture, args);

	hx_assert(c, hx_wait_count(c, HX_LISTENING, listening, HX_START_MS),
		  "%s: want %zu \"listening\" lines within %d ms", fixture,
		  listening, HX_START_MS);
	hx_assert(c, hx_wait_stdout_lines(c, ready, HX_START_MS),
		  "%s: want %zu lines on stdout within %d ms", fixture, ready,
		  HX_START_MS);
	for (size_t i = 0; i < c->out.n_lines; i++)
		hx_assert(c, strncmp(c->out.lines[i], "FAIL", 4) != 0,
			  "%s: %s", fixture, c->out.lines[i]);
	return c;
}

void st_load(struct hx_cluster *c, int port, int requests, int workers,
	     bool any_pid, struct hx_tally *tally)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_load load = { .targets = &t, .n_targets = 1,
				.requests = requests, .workers = workers,
				.any_pid = any_pid };

	hx_run_load(c, &load, tally);
}

void st_assert_steady(struct hx_cluster *c, int workers)
{
	hx_pump(c, 0);
	hx_assert(c, hx_count(c, HX_FORKED) == (size_t)workers &&
		  hx_count(c, HX_ONLINE) == (size_t)workers &&
		  hx_count(c, HX_EXITED) + hx_count(c, HX_KILLED) == 0,
		  "want %d workers, none died, none replaced, no other process "
		  "checked in", workers);
}

void st_stop(struct hx_cluster *c)
{
	int status = hx_stop(c, SIGTERM, HX_EXIT_MS);

	hx_assert(c, status != -1, "cluster-run did not exit within %d ms of "
		  "SIGTERM", HX_EXIT_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "cluster-run wait status 0x%x after SIGTERM, want exit 0",
		  status);
	hx_assert_workers_gone(c);
	hx_free(c);
}

const char *st_stdout_line(const struct hx_cluster *c, const char *prefix)
{
	for (size_t i = 0; i < c->out.n_lines; i++)
		if (strncmp(c->out.lines[i], prefix, strlen(prefix)) == 0)
			return c->out.lines[i];
	return NULL;
}
