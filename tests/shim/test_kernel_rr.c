/*
 * test_kernel_rr.c - the kernel's round robin over the live slots
 * (reuseport_rr.c) as slots come and go, and the graceful drain of a
 * seccomp worker's slot (reuseport_handle.c, worker_drain.c), with the
 * static fixture (fx_static: no shim, so nothing but the kernel's
 * selection keeps connections from a leaving worker):
 *
 *   - a scale-down 4 -> 3 under sequential load answers every request, and
 *     the next 300 connections go exactly 100 to each worker left;
 *   - a leaving worker's slot gets no new connection from the moment it
 *     is scaled away, and the connection queued in it is answered by that
 *     worker (stopped meanwhile: it gets its graceful signal only after);
 *   - a worker that closed its listener on its own leaves a queue nobody
 *     takes: scaled away, its slot goes at once and that queue moves on;
 *   - a reload with a request in hand in each worker: an old worker
 *     drains its own socket and answers what it holds (fx_static hold);
 *   - a reload and a scale-down of a Go server under wrk: no request fails.
 *
 * Where the program cannot be loaded (no CAP_BPF) or the kernel has no
 * seccomp user notification, each test says so and skips.
 */
#include "seccomp_support.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4
/* Sequential requests while a worker leaves, at most (HX_EXIT_MS bounds
 * it too): its drain waits for a census or two, a few hundred requests
 * at loopback speed, but thousands where a previous test's wrk left 100k
 * TIME_WAIT sockets for the census to walk on a loaded machine. */
#define LOAD_MAX 100000

TestSuite(kernel_rr, .init = ss_skip_without_user_notification,
	  .fini = hx_cleanup, .timeout = 90);

/* cluster-run ARGS, up with `workers` listening; skips (after stopping
 * it) where the kernel hashes. */
static struct hx_cluster *start_with_kernel_rr(const char *const *args,
					       size_t workers)
{
	struct hx_cluster *c = ss_wait_listening(hx_start(HX_CAPTURE_STDOUT,
							  args), workers, NULL);

	ss_assert_kernel_rr(c);
	return c;
}

/* Whether worker id's end (an exit or a kill) is among c's events. */
static const struct hx_event *worker_end(struct hx_cluster *c, int id)
{
	const struct hx_event *ev = hx_find_event(c, HX_EXITED, id, 0, 0);

	return ev ? ev : hx_find_event(c, HX_KILLED, id, 0, 0);
}

/* `requests` sequential connections: exactly requests / workers answered by
 * each of workers 1..workers (none by another). */
static void assert_exact(struct hx_cluster *c, int port, int requests,
			 int workers, const char *when)
{
	struct hx_tally tally;

	st_load(c, port, requests, workers, false, &tally);
	for (int id = 1; id <= workers; id++)
		hx_assert(c, tally.served[id] == requests / workers,
			  "%s: worker %d served %d of %d, want exactly %d",
			  when, id, tally.served[id], requests,
			  requests / workers);
	cr_log_info("%s: %d connections, %d to each of %d workers", when,
		    requests, requests / workers, workers);
}

Test(kernel_rr, scale_down_under_sequential_load_stays_exact)
{
	int port = hx_free_port(SOCK_STREAM), queries = 0;
	const char *args[] = { "-n", "4", "--", hx_fixture("fx_static"),
			       ss_port_text(port), NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_cluster *c = start_with_kernel_rr(args, WORKERS);
	int64_t deadline = hx_now_ms() + HX_EXIT_MS;
	const struct hx_event *end;

	assert_exact(c, port, 400, WORKERS, "4 workers");
	kill(c->pid, SIGTTOU); /* one fewer: worker 4 leaves */
	while (!(end = worker_end(c, WORKERS))) {
		struct hx_answer ans;
		int err = hx_query(&t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);
		hx_assert(c, err == 0, "request %d during the scale-down "
			  "failed: %s", queries, strerror(-err));
		hx_assert(c, ++queries < LOAD_MAX && hx_now_ms() < deadline,
			  "worker 4 did not leave after %d requests", queries);
	}
	hx_assert(c, end->kind == HX_EXITED, "worker 4 was killed, not "
		  "stopped by its graceful signal");
	cr_log_info("scale-down 4 -> 3: %d sequential requests while worker 4 "
		    "left, none failed", queries);
	assert_exact(c, port, 300, WORKERS - 1, "after 4 -> 3");
	st_stop(c);
}

/* The answer on fd within timeout_ms: its worker's pid, 0 if none came. */
static pid_t answer_on(struct hx_cluster *c, int fd, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64] = "";
	struct hx_answer ans;
	ssize_t n;

	while (hx_now_ms() < deadline) {
		hx_pump(c, 0);
		if (poll(&p, 1, 20) == 1)
			break;
	}
	if (!p.revents)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 && hx_parse_answer(buf, &ans) ? ans.pid : -1;
}

/* WORKERS connections, one per slot as the kernel deals them, into fds:
 * how many got no answer within 300 ms (the one dealt to a slot whose
 * worker does not accept), the last of those in *queued. */
static int one_per_slot(struct hx_cluster *c, const struct hx_target *t,
			int *fds, int *queued)
{
	int unanswered = 0;

	for (int i = 0; i < WORKERS; i++) {
		fds[i] = hx_connect(t, HX_QUERY_MS);
		hx_assert(c, fds[i] >= 0, "connect: %s", strerror(-fds[i]));
	}
	for (int i = 0; i < WORKERS; i++) {
		pid_t got = answer_on(c, fds[i], 300);

		hx_assert(c, got >= 0, "connection %d closed unanswered", i);
		if (got == 0) {
			unanswered++;
			*queued = i;
		}
	}
	return unanswered;
}

Test(kernel_rr, leaving_slot_gets_nothing_new_and_its_worker_takes_its_queue)
{
	int port = hx_free_port(SOCK_STREAM), fds[WORKERS], queued = -1;
	const char *args[] = { "-n", "4", "--kill-timeout", "20", "--",
			       hx_fixture("fx_static"), ss_port_text(port), NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_cluster *c = start_with_kernel_rr(args, WORKERS);
	pid_t leaving = hx_worker_pid(c, WORKERS), got;
	const struct hx_event *end;

	/* Worker 4 accepts nothing: of 4 connections, dealt one each, the
	 * one dealt to it waits in its slot's queue. */
	cr_assert(kill(leaving, SIGSTOP) == 0);
	hx_assert(c, hx_wait_stopped(leaving, HX_QUERY_MS), "worker pid %d "
		  "did not stop", (int)leaving);
	hx_assert(c, one_per_slot(c, &t, fds, &queued) == 1, "want exactly "
		  "one of 4 connections unanswered with worker 4 stopped "
		  "(dealt one each)");

	kill(c->pid, SIGTTOU); /* 4 -> 3: worker 4's slot leaves */
	/* (the line comes once the disconnect has taken it out) */
	hx_assert(c, hx_wait_event(c, HX_DISCONNECT, WORKERS, 0, 0,
				   HX_QUERY_MS), "no \"disconnect\" of worker 4");
	/* out of the selection at once: exactly even over the 3 others (a
	 * connection dealt to the stopped worker would fail the load) */
	assert_exact(c, port, 30, WORKERS - 1, "worker 4 leaving, stopped");
	hx_pump(c, 0);
	hx_assert(c, !worker_end(c, WORKERS), "worker 4 ended before it took "
		  "the connection queued in its slot");

	cr_assert(kill(leaving, SIGCONT) == 0);
	got = answer_on(c, fds[queued], HX_QUERY_MS);
	hx_assert(c, got == leaving, "the connection queued in worker 4's "
		  "slot: answered by pid %d, want worker 4 (pid %d)", (int)got,
		  (int)leaving);
	hx_assert(c, hx_wait_event(c, HX_EXITED, WORKERS, 0, 0, HX_EXIT_MS),
		  "worker 4 did not exit after it drained");
	end = worker_end(c, WORKERS);
	hx_assert(c, end && end->kind == HX_EXITED, "worker 4 was killed");
	for (int i = 0; i < WORKERS; i++)
		close(fds[i]);
	assert_exact(c, port, 300, WORKERS - 1, "after 4 -> 3");
	st_stop(c);
}

/* A seccomp worker that closed its listener (fx_static_drop, on SIGUSR1)
 * leaves its slot's queue to nobody: once it is scaled away, the drain
 * sees it (kcmp of its fd with ours) and lets the slot go at once, and
 * what was queued there moves to a live slot, well before the drain's
 * deadline (10 s here). */
Test(kernel_rr, closed_listener_noticed_by_the_drain)
{
	int port = hx_free_port(SOCK_STREAM), fds[WORKERS], queued = -1;
	const char *args[] = { "-n", "4", "--kill-timeout", "20", "--",
			       hx_fixture("fx_static_drop"), ss_port_text(port),
			       NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_cluster *c = start_with_kernel_rr(args, WORKERS);
	pid_t dropping = hx_worker_pid(c, WORKERS), got;
	int64_t t0;

	cr_assert(kill(dropping, SIGUSR1) == 0);
	hx_assert(c, hx_wait_stdout_lines(c, 1, HX_QUERY_MS) &&
		  st_stdout_line(c, "4 closed its listener"),
		  "worker 4 did not say it closed its listener");
	hx_assert(c, one_per_slot(c, &t, fds, &queued) >= 1, "all 4 "
		  "answered with worker 4's listener closed");
	t0 = hx_now_ms();
	kill(c->pid, SIGTTOU); /* 4 -> 3 */
	got = answer_on(c, fds[queued], 2000);
	hx_assert(c, got > 0 && got != dropping, "the connection queued in "
		  "worker 4's slot: answered by pid %d within 2 s, want "
		  "another worker's", (int)got);
	cr_log_info("closed listener: its queued connection answered by "
		    "another worker %lld ms after the scale-down",
		    (long long)(hx_now_ms() - t0));
	hx_assert(c, st_wait_err_line(c, (const char *[]){ "closed its "
							   "listener on", NULL },
				      HX_QUERY_MS), "no line saying worker 4 closed its "
		  "listener");
	hx_assert(c, hx_wait_event(c, HX_EXITED, WORKERS, 0, 0, HX_EXIT_MS),
		  "worker 4 did not exit");
	for (int i = 0; i < WORKERS; i++)
		close(fds[i]);
	assert_exact(c, port, 300, WORKERS - 1, "after 4 -> 3");
	st_stop(c);
}

/* Whether any of fds[0..n-1] is readable or hung up now (an answer, or
 * its worker gone). */
static bool any_ready(const int *fds, int n)
{
	struct pollfd p[WORKERS];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	return poll(p, (nfds_t)n, 0) > 0;
}

/* A reload with a request in hand in every worker (fx_static hold: each
 * holds its connection until its client writes, and dies at once on
 * SIGTERM).  Worker 1's old process keeps its slot's socket, out of the
 * selection, and gets its graceful signal only once it holds nothing: the
 * request it holds while its replacement serves is answered by it, not
 * lost.  (With one socket shared by the two, it was signalled at its
 * disconnect and that request was lost.) */
Test(kernel_rr, reload_answers_the_request_an_old_worker_holds)
{
	int port = hx_free_port(SOCK_STREAM), fds[WORKERS];
	const char *args[] = { "-n", "4", "--kill-timeout", "20", "--",
			       hx_fixture("fx_static"), ss_port_text(port),
			       "hold", NULL };
	const char *done[] = { "reload: done", NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = port };
	struct hx_cluster *c = start_with_kernel_rr(args, WORKERS);
	pid_t old[WORKERS + 1] = { 0 };
	struct hx_tally tally = { 0 };
	const struct hx_event *ev;

	for (int id = 1; id <= WORKERS; id++)
		old[id] = hx_worker_pid(c, id);
	for (int i = 0; i < WORKERS; i++) { /* dealt one each */
		fds[i] = hx_connect(&t, HX_QUERY_MS);
		hx_assert(c, fds[i] >= 0, "connect: %s", strerror(-fds[i]));
	}
	hx_assert(c, hx_wait_stdout_lines(c, WORKERS, HX_QUERY_MS),
		  "not every worker said it holds a connection");
	for (int id = 1; id <= WORKERS; id++) {
		char said[32];

		snprintf(said, sizeof(said), "%d holds", id);
		hx_assert(c, st_stdout_line(c, said), "worker %d holds no "
			  "connection", id);
	}

	kill(c->pid, SIGHUP);
	ev = hx_wait_event(c, HX_DISCONNECT, 1, 0, 0, HX_START_MS);
	hx_assert(c, ev && ev->pid == old[1], "no \"disconnect\" of worker "
		  "1's old process");
	hx_assert(c, !any_ready(fds, WORKERS), "a connection in hand ended "
		  "unanswered at worker 1's disconnect");
	for (int i = 0; i < WORKERS; i++) {
		bool by_old = false;
		pid_t got;

		hx_assert(c, hx_send_all(fds[i], "x") == 0, "send: %s",
			  strerror(errno));
		got = answer_on(c, fds[i], HX_QUERY_MS);
		for (int id = 1; id <= WORKERS; id++)
			by_old |= got > 0 && got == old[id];
		hx_assert(c, by_old, "connection %d, in hand through the "
			  "reload: answered by pid %d, not by the old worker "
			  "that held it", i, (int)got);
		close(fds[i]);
	}
	hx_assert(c, st_wait_err_line(c, done, 2 * HX_START_MS) != NULL,
		  "no \"reload: done\"");
	ev = hx_find_event(c, HX_EXITED, 1, 0, 0);
	hx_assert(c, ev && ev->pid == old[1] && ev->code == 0, "worker 1's "
		  "old process did not exit 0 after it drained");
	for (int i = 0; i < 40; i++) {
		char buf[64];
		struct hx_answer ans;

		hx_assert(c, hx_exchange(&t, "x", buf, sizeof(buf),
					 HX_QUERY_MS) == 0 &&
			  hx_parse_answer(buf, &ans), "request %d after the "
			  "reload got no answer", i);
		hx_assert(c, ans.id >= 1 && ans.id <= WORKERS &&
			  ans.pid == hx_worker_pid(c, ans.id) &&
			  ans.pid != old[ans.id], "request %d answered by "
			  "%d %d, not a replacement", i, ans.id, (int)ans.pid);
		tally.served[ans.id]++;
	}
	for (int id = 1; id <= WORKERS; id++)
		hx_assert(c, tally.served[id] == 10, "after the reload worker "
			  "%d served %d of 40, want 10", id, tally.served[id]);
	st_stop(c);
}

/* ---- under wrk ---- */

Test(kernel_rr, reload_and_scale_down_under_wrk_fail_no_request)
{
	int port = hx_free_port(SOCK_STREAM), out, status;
	const char *args[] = { "-n", "4", "--", hx_fixture("fx_gohttp"),
			       ss_port_text(port), NULL };
	const char *done[] = { "reload: done", NULL };
	struct hx_cluster *c;
	long requests;
	size_t mark;
	pid_t wrk;

	ss_skip_unless_built("fx_gohttp", "golang-go missing");
	ss_skip_unless_wrk();
	c = start_with_kernel_rr(args, WORKERS);
	wrk = ss_wrk_start(port, 10, &out);
	hx_pump(c, 300); /* the load is on */
	kill(c->pid, SIGHUP);
	hx_assert(c, st_wait_err_line(c, done, 2 * HX_START_MS) != NULL,
		  "no \"reload: done\"");
	mark = c->n_events;
	kill(c->pid, SIGTTOU); /* 4 -> 2, under load (one at a time: two
				  pending SIGTTOUs are one) */
	hx_assert(c, st_wait_err_line(c, (const char *[]){ "scale: 4 -> 3",
							   NULL },
				      HX_QUERY_MS), "no \"scale: 4 -> 3\"");
	kill(c->pid, SIGTTOU);
	for (int id = 3; id <= 4; id++)
		hx_assert(c, hx_wait_event(c, HX_EXITED, id, 0, mark,
					   HX_EXIT_MS), "worker %d did not "
			  "exit after the scale-down", id);
	hx_assert(c, waitpid(wrk, &status, WNOHANG) == 0, "wrk ended before "
		  "the scale-down did: not under load");
	requests = ss_wrk_finish(c, wrk, out, HX_START_MS,
				 "the reload and the scale-down");
	cr_log_info("reload and scale 4 -> 2 under wrk: %ld requests, none "
		    "failed", requests);
	st_stop(c);
}
