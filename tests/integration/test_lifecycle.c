/*
 * test_lifecycle.c - stopping cluster-run with SIGTERM and SIGINT, and the
 * replacement of a worker killed with SIGKILL while clients keep coming.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3
#define VICTIM 2                 /* the worker id that gets SIGKILL */
#define CHURN_MS 10000           /* bound on the client loop around the kill */
#define CHURN_MAX 1000           /* ... and on its number of connections */
#define AFTER_REPLACEMENT 30     /* requests once the replacement listens */

TestSuite(lifecycle, .fini = hx_cleanup, .timeout = 120);

struct started {
	struct hx_cluster *c;
	struct hx_target target;
};

/* cluster-run -n 3 --sched SCHED -- fx_blocking_accept, all listening. */
static struct started start_blocking(const char *sched)
{
	static char port[16];
	const char *args[] = { "--port", port, NULL };
	struct started s = {
		.target = { .proto = HX_TCP, .host = "127.0.0.1" },
	};

	s.target.port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", s.target.port);
	s.c = hx_start_fixture(0, WORKERS, sched, "fx_blocking_accept", args);
	hx_assert(s.c, hx_wait_count(s.c, HX_LISTENING, WORKERS, HX_START_MS),
		  "want %d \"listening\" lines within %d ms", WORKERS,
		  HX_START_MS);
	return s;
}

static void query_ok(struct hx_cluster *c, const struct hx_target *t,
		     struct hx_answer *ans, const char *when)
{
	int err = hx_query(t, HX_QUERY_MS, ans);

	hx_pump(c, 0);
	hx_assert(c, err == 0, "%s: request failed: %s", when, strerror(-err));
	hx_assert(c, hx_is_worker_pid(c, ans->id, ans->pid),
		  "%s: answer \"%d %d\" is from no worker of the cluster", when,
		  ans->id, (int)ans->pid);
}

/* The "exited" or "killed" line of the worker with this pid. */
static const struct hx_event *end_of(const struct hx_cluster *c, pid_t pid)
{
	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i];

		if ((ev->kind == HX_EXITED || ev->kind == HX_KILLED) &&
		    ev->pid == pid)
			return ev;
	}
	return NULL;
}

/* Every worker that was forked has an "exited with code 0" line. */
static void check_clean_exits(struct hx_cluster *c)
{
	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i], *end;

		if (ev->kind != HX_FORKED)
			continue;
		end = end_of(c, ev->pid);
		hx_assert(c, end && end->kind == HX_EXITED && end->code == 0,
			  "worker %d (pid %d): want \"exited with code 0\"",
			  ev->id, (int)ev->pid);
	}
}

static void stop_with(const char *sched, int sig)
{
	struct started s = start_blocking(sched);
	struct hx_answer ans;
	int status;

	query_ok(s.c, &s.target, &ans, "before the signal");
	status = hx_stop(s.c, sig, HX_EXIT_MS);
	hx_assert(s.c, status != -1, "cluster-run did not exit within %d ms "
		  "of signal %d", HX_EXIT_MS, sig);
	hx_assert(s.c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "wait status 0x%x after signal %d, want exit 0", status, sig);
	check_clean_exits(s.c);
	hx_assert_workers_gone(s.c);
	hx_free(s.c);
}

Test(lifecycle, sigterm_rr) { stop_with("rr", SIGTERM); }
Test(lifecycle, sigterm_none) { stop_with("none", SIGTERM); }
Test(lifecycle, sigint_rr) { stop_with("rr", SIGINT); }
Test(lifecycle, sigint_none) { stop_with("none", SIGINT); }

struct churn_result {
	int requests;
	int refused;        /* ECONNREFUSED, or the listener gone */
	int dropped;        /* closed without an answer, reset, timed out */
};

/*
 * Clients keep connecting while worker VICTIM is killed and replaced, until
 * the replacement has listened and served AFTER_REPLACEMENT requests, or
 * the loop's bounds run out.
 */
static struct churn_result churn(struct hx_cluster *c,
				 const struct hx_target *t, pid_t victim,
				 size_t mark)
{
	int64_t deadline = hx_now_ms() + CHURN_MS;
	struct churn_result r = { 0 };
	int after = 0;

	for (; r.requests < CHURN_MAX && hx_now_ms() < deadline; r.requests++) {
		struct hx_answer ans;
		int err = hx_query(t, HX_QUERY_MS, &ans);

		/* Paces the loop: waits up to 1 ms for a cluster-run line. */
		hx_pump(c, 1);
		if (err) {
			cr_log_info("request %d failed: %s", r.requests,
				    strerror(-err));
			if (err == -ECONNREFUSED || err == -ENOENT)
				r.refused++;
			else
				r.dropped++;
			continue;
		}
		hx_assert(c, hx_is_worker_pid(c, ans.id, ans.pid),
			  "request %d: answer \"%d %d\" is from no worker",
			  r.requests, ans.id, (int)ans.pid);
		if (hx_find_event(c, HX_LISTENING, VICTIM, victim, mark) &&
		    ++after >= AFTER_REPLACEMENT)
			break;
	}
	cr_log_info("%d requests around the replacement: %d refused, "
		    "%d dropped", r.requests, r.refused, r.dropped);
	return r;
}

static void sigkill_replaced(const char *sched)
{
	struct started s = start_blocking(sched);
	struct hx_cluster *c = s.c;
	const struct hx_event *ev;
	size_t mark = c->n_events;
	pid_t victim = hx_worker_pid(c, VICTIM), fresh;
	bool rr = strcmp(sched, "rr") == 0;
	struct churn_result churned;
	int fresh_served = 0;

	hx_assert(c, victim > 0, "no \"forked\" line for worker %d", VICTIM);
	/* Killed between requests, so it holds no client connection.  In rr
	 * no request may be refused (the listener stays open and the
	 * supervisor routes around the dead worker).  One may be lost: until
	 * the supervisor reaps the worker it is still in turn, and a worker
	 * woken by SIGKILL in recvmsg() can dequeue the connection in the
	 * kernel before the signal ends it.  Requests are sequential, so at
	 * most one can be in flight on it. */
	hx_assert(c, kill(victim, SIGKILL) == 0, "kill: %s", strerror(errno));
	churned = churn(c, &s.target, victim, mark);
	hx_assert(c, !rr || churned.refused == 0, "rr: %d of %d requests "
		  "refused while worker %d was replaced", churned.refused,
		  churned.requests, VICTIM);
	hx_assert(c, !rr || churned.dropped <= 1, "rr: %d of %d connections "
		  "dropped (closed unanswered, reset or timed out) while worker "
		  "%d was replaced: more than the one in flight on it",
		  churned.dropped, churned.requests, VICTIM);

	ev = hx_wait_event(c, HX_KILLED, VICTIM, 0, mark, HX_START_MS);
	hx_assert(c, ev && ev->pid == victim && ev->code == SIGKILL,
		  "want \"worker %d (pid %d) killed by signal 9\"", VICTIM,
		  (int)victim);
	ev = hx_wait_event(c, HX_FORKED, VICTIM, victim, mark, HX_START_MS);
	hx_assert(c, ev != NULL, "worker %d was not forked again", VICTIM);
	fresh = ev->pid;
	ev = hx_wait_event(c, HX_LISTENING, VICTIM, victim, mark, HX_START_MS);
	hx_assert(c, ev && ev->pid == fresh, "replacement worker %d (pid %d) "
		  "did not listen", VICTIM, (int)fresh);

	for (int i = 0; i < AFTER_REPLACEMENT; i++) {
		struct hx_answer ans;

		query_ok(c, &s.target, &ans, "after the replacement listened");
		fresh_served += ans.pid == fresh;
	}
	hx_assert(c, !rr || fresh_served > 0, "rr: the replacement served "
		  "none of %d requests", AFTER_REPLACEMENT);

	hx_assert(c, WIFEXITED(hx_stop(c, SIGTERM, HX_EXIT_MS)),
		  "cluster-run did not exit cleanly after SIGTERM");
	hx_assert(c, WEXITSTATUS(c->status) == 0, "exit status %d, want 0",
		  WEXITSTATUS(c->status));
	hx_assert_workers_gone(c);
	hx_free(c);
}

Test(lifecycle, sigkill_replaced_rr) { sigkill_replaced("rr"); }
Test(lifecycle, sigkill_replaced_none) { sigkill_replaced("none"); }

/*
 * cluster-run itself killed with SIGKILL (no chance to clean up): every
 * worker must still die, through its parent-death signal.  Workers are not
 * our children, so their end is watched through pidfds (readable once the
 * process has exited), with a deadline.
 */
static bool workers_exit_within(const pid_t *pids, int n, int timeout_ms)
{
	struct pollfd p[HX_MAX_WORKERS];
	int64_t deadline = hx_now_ms() + timeout_ms;
	int i, left = 0;

	for (i = 0; i < n; i++) {
		p[i].fd = (int)syscall(SYS_pidfd_open, pids[i], 0);
		p[i].events = POLLIN;
		left += p[i].fd >= 0; /* ESRCH: already gone */
	}
	while (left > 0 && hx_now_ms() < deadline) {
		if (poll(p, (nfds_t)n, (int)(deadline - hx_now_ms())) <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (p[i].fd >= 0 && (p[i].revents & POLLIN)) {
				close(p[i].fd);
				p[i].fd = -1;
				left--;
			}
	}
	for (i = 0; i < n; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	return left == 0;
}

static void supervisor_killed(const char *sched)
{
	struct started s = start_blocking(sched);
	pid_t pids[WORKERS];
	int i;

	for (i = 0; i < WORKERS; i++) {
		pids[i] = hx_worker_pid(s.c, i + 1);
		hx_assert(s.c, pids[i] > 0, "no pid for worker %d", i + 1);
	}
	hx_assert(s.c, kill(s.c->pid, SIGKILL) == 0, "kill: %s",
		  strerror(errno));
	hx_assert(s.c, hx_wait_exit(s.c, HX_EXIT_MS) != -1,
		  "cluster-run did not die of SIGKILL");
	hx_assert(s.c, workers_exit_within(pids, WORKERS, HX_EXIT_MS),
		  "a worker outlived cluster-run killed with SIGKILL");
	hx_free(s.c);
}

Test(lifecycle, supervisor_sigkill_takes_workers_rr) { supervisor_killed("rr"); }
Test(lifecycle, supervisor_sigkill_takes_workers_none) { supervisor_killed("none"); }
