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

void st_serve_case(const char *sched, int workers, const char *fixture,
		   const char *arg, int requests, bool any_pid,
		   int min_share_div)
{
	static char port[16];
	const char *args[] = { port, arg, NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, workers, fixture, args, (size_t)workers,
		     (size_t)workers);
	st_load(c, p, requests, workers, any_pid, &tally);
	if (strcmp(sched, "rr") == 0)
		for (int id = 1; id <= workers; id++)
			hx_assert(c, tally.served[id] >= requests / min_share_div,
				  "%s: worker %d served %d of %d", fixture, id,
				  tally.served[id], requests);
	st_assert_steady(c, workers);
	st_stop(c);
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

struct hx_cluster *st_logger_worker_restarts(const char *sched,
					     const char *fixture, int exit_ms,
					     struct hx_target *t, pid_t *first)
{
	static char port[16];
	const char *args[] = { port, "logger", NULL };
	const struct hx_event *ev;
	struct hx_answer ans;
	struct hx_cluster *c;
	size_t mark;
	int64_t t0;

	*t = (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
				 .port = hx_free_port(SOCK_STREAM) };
	snprintf(port, sizeof(port), "%d", t->port);
	c = st_start(sched, 1, fixture, args, 1, 0);
	*first = hx_worker_pid(c, 1);
	mark = c->n_events;
	hx_assert(c, hx_query(t, HX_QUERY_MS, &ans) == 0 && ans.pid == *first,
		  "the worker did not answer its one request");
	t0 = hx_now_ms();
	ev = hx_wait_event(c, HX_EXITED, 1, 0, mark, exit_ms);
	hx_assert(c, ev && ev->pid == *first && ev->code == 3, "worker 1 (pid "
		  "%d) did not exit with code 3: it stands in for its logger",
		  (int)*first);
	cr_log_info("exited %lld ms after serving",
		    (long long)(hx_now_ms() - t0));
	hx_assert(c, hx_wait_event(c, HX_LISTENING, 1, *first, mark,
				   HX_START_MS), "worker 1 was not restarted");
	return c;
}

const char *st_wait_err_line(struct hx_cluster *c, const char *const *texts,
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
