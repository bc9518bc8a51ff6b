/*
 * test_prefix.c - `cluster-run --prefix`: each line a worker writes on
 * stdout or stderr comes out once, whole, as "[ID] line" on cluster-run's
 * stdout or stderr; a last line without a newline comes out (with one) when
 * the worker exits.  Without --prefix the workers write there themselves.
 * The fixture, fx_chatty, says what it writes.
 */
#include "ops.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(prefix, .fini = ops_fini, .timeout = 60);

static const char *chatty(void)
{
	static char path[4096];
	const char *dir = getenv("SYSTEMD_TESTS_DIR");

	cr_assert(dir != NULL, "SYSTEMD_TESTS_DIR is not set (meson test)");
	snprintf(path, sizeof(path), "%s/fx_chatty", dir);
	return path;
}

static size_t count_lines(const struct hx_stream *s, const char *line)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_lines; i++)
		n += strcmp(s->lines[i], line) == 0;
	return n;
}

static void expect_once(struct hx_cluster *c, const struct hx_stream *s,
			const char *name, const char *line)
{
	size_t n = count_lines(s, line);

	hx_assert(c, n == 1, "%s has \"%.60s...\" %zu times, want once", name,
		  line, n);
}

/* fx_chatty's "long xxx...x of worker N", prefixed. */
static char *long_line(int id)
{
	char *line = malloc(3100);
	size_t n;

	cr_assert(line != NULL, "out of memory");
	n = (size_t)sprintf(line, "[%d] long ", id);
	memset(line + n, 'x', 3000);
	sprintf(line + n + 3000, " of worker %d", id);
	return line;
}

static struct hx_cluster *start_chatty(const char *workers, bool prefix,
					int *port)
{
	static char portbuf[16];
	const char *args[16];
	size_t n = 0;

	*port = hx_free_port(SOCK_STREAM);
	snprintf(portbuf, sizeof(portbuf), "%d", *port);
	args[n++] = "-n";
	args[n++] = workers;
	if (prefix)
		args[n++] = "--prefix";
	args[n++] = "--";
	args[n++] = chatty();
	args[n++] = "--port";
	args[n++] = portbuf;
	args[n] = NULL;
	/* ops_start_args() captures stderr only: start it here for stdout */
	{
		const char *argv[24] = { "--control", ops_path("ctl.sock") };
		size_t k = 2;

		for (size_t i = 0; args[i]; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		return hx_start(HX_CAPTURE_STDOUT, argv);
	}
}

Test(prefix, every_line_once_whole_and_prefixed)
{
	struct hx_target target = { .proto = HX_TCP, .host = "127.0.0.1" };
	struct hx_load load = { .targets = &target, .n_targets = 1,
				.requests = 4, .workers = 2 };
	struct hx_tally tally;
	struct hx_cluster *c = start_chatty("2", true, &target.port);
	char line[128];
	size_t prefixed = 0;

	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	/* Every complete line is out before the worker listens; the last,
	 * unfinished ones wait for its exit. */
	hx_assert(c, hx_wait_stdout_lines(c, 8, HX_START_MS),
		  "want 8 lines on stdout");
	hx_run_load(c, &load, &tally);
	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0,
		  "cluster-run did not exit 0 after SIGTERM");

	for (int id = 1; id <= 2; id++) {
		char *lng = long_line(id);

		for (int k = 1; k <= 3; k++) {
			snprintf(line, sizeof(line), "[%d] out %d of worker %d",
				 id, k, id);
			expect_once(c, &c->out, "stdout", line);
		}
		expect_once(c, &c->out, "stdout", lng);
		snprintf(line, sizeof(line), "[%d] out partial of worker %d",
			 id, id);
		expect_once(c, &c->out, "stdout", line);
		snprintf(line, sizeof(line), "[%d] err 1 of worker %d", id, id);
		expect_once(c, &c->err, "stderr", line);
		snprintf(line, sizeof(line), "[%d] err partial of worker %d",
			 id, id);
		expect_once(c, &c->err, "stderr", line);
		free(lng);
	}
	hx_assert(c, c->out.n_lines == 10 && c->out.part_len == 0,
		  "stdout has %zu lines (and %zu bytes without a newline), "
		  "want 10 whole lines", c->out.n_lines, c->out.part_len);
	for (size_t i = 0; i < c->out.n_lines; i++)
		hx_assert(c, strncmp(c->out.lines[i], "[1] ", 4) == 0 ||
			  strncmp(c->out.lines[i], "[2] ", 4) == 0,
			  "stdout line %zu is not prefixed: \"%.60s\"", i,
			  c->out.lines[i]);
	for (size_t i = 0; i < c->err.n_lines; i++)
		prefixed += c->err.lines[i][0] == '[';
	hx_assert(c, prefixed == 4, "%zu prefixed lines on stderr, want 4",
		  prefixed);
}

/* Without --prefix the worker writes on cluster-run's stdout and stderr
 * itself: the lines come as they are.  (One worker: two would merge a
 * line without its newline with the other's next line.) */
Test(prefix, off_by_default)
{
	struct hx_cluster *c;
	int port;

	c = start_chatty("1", false, &port);
	/* (its stderr line without a newline runs into cluster-run's own
	 * "listening" line: what --prefix is for) */
	hx_assert(c, hx_wait_stdout_lines(c, 4, HX_START_MS),
		  "want 4 lines on stdout");
	cr_assert(kill(c->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	hx_assert(c, hx_wait_exit(c, HX_EXIT_MS) == 0, "exit status");
	expect_once(c, &c->out, "stdout", "out 1 of worker 1");
	expect_once(c, &c->out, "stdout", "out 3 of worker 1");
	expect_once(c, &c->err, "stderr", "err 1 of worker 1");
	for (size_t i = 0; i < c->out.n_lines; i++)
		hx_assert(c, c->out.lines[i][0] != '[',
			  "stdout line %zu is prefixed: \"%.60s\"", i,
			  c->out.lines[i]);
}
