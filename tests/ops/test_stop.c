/*
 * test_stop.c - a full stop (SIGTERM to cluster-run) in rr: the port
 * refuses a new client at once, as under none and reuseport, instead of
 * queueing it until cluster-run exits and resetting it then; and what was
 * handed to a worker before the stop and not yet read is still served by
 * that worker (nobody else is left to take it back).
 *
 * Both workers are SIGSTOPped so that connections wait, unread, on their
 * faux handles and the stop lasts until they are continued.
 */
#include "ops.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(stop, .fini = ops_fini, .timeout = 60);

#define WAITING 4          /* requests handed to stopped workers */
#define QUERY_MS 20000
#define REFUSED_MS 2000    /* the door is shut well within this */

struct waiting_query {
	const struct hx_target *t;
	pthread_t thread;
	int err;
	struct hx_answer ans;
};

static void *query_thread(void *arg)
{
	struct waiting_query *q = arg;

	q->err = hx_query(q->t, QUERY_MS, &q->ans);
	return NULL;
}

Test(stop, rr_refuses_new_clients_and_serves_what_waited)
{
	const char *opts[] = { "--sched", "rr", "--kill-timeout", "20", NULL };
	struct waiting_query q[WAITING];
	struct ops_cluster oc;
	pid_t pids[2];
	char cond[64];
	int fd, status;

	ops_start(&oc, 2, opts);
	for (int id = 1; id <= 2; id++) {
		pids[id - 1] = hx_worker_pid(oc.c, id);
		cr_assert(kill(pids[id - 1], SIGSTOP) == 0);
		hx_assert(oc.c, hx_wait_stopped(pids[id - 1], 5000),
			  "worker %d not stopped", id);
	}
	for (int i = 0; i < WAITING; i++) {
		q[i].t = &oc.target;
		cr_assert(pthread_create(&q[i].thread, NULL, query_thread,
					 &q[i]) == 0);
	}
	/* each is on a worker's faux handle, unread */
	snprintf(cond, sizeof(cond), "sum(w['handed'] for w in W) == %d",
		 WAITING);
	hx_assert(oc.c, ops_wait_status(&oc, cond, 10000),
		  "the %d requests were not handed out", WAITING);

	cr_assert(kill(oc.c->pid, SIGTERM) == 0);
	hx_assert(oc.c, ops_wait_line(oc.c, "stopping every worker", 0,
				      5000) >= 0, "no stopping line");
	/* the line comes just before the listener is shut: a client may
	 * still slip in between; from then on each is refused */
	for (int64_t end = hx_now_ms() + REFUSED_MS;;) {
		fd = hx_connect(&oc.target, REFUSED_MS);
		if (fd < 0 || hx_now_ms() >= end)
			break;
		close(fd);
		poll(NULL, 0, 20); /* the next client, not a wait for an event */
	}
	if (fd >= 0)
		close(fd);
	hx_assert(oc.c, fd == -ECONNREFUSED, "clients that came during the "
		  "stop were %s for %d ms, not refused", fd >= 0 ? "accepted"
		  : strerror(-fd), REFUSED_MS);

	for (int i = 0; i < 2; i++)
		cr_assert(kill(pids[i], SIGCONT) == 0);
	for (int i = 0; i < WAITING; i++) {
		pthread_join(q[i].thread, NULL);
		hx_assert(oc.c, q[i].err == 0 && (q[i].ans.pid == pids[0] ||
						  q[i].ans.pid == pids[1]),
			  "request %d, handed before the stop: %s", i,
			  q[i].err ? strerror(-q[i].err) : "a stranger's answer");
	}
	status = hx_wait_exit(oc.c, 15000);
	hx_assert(oc.c, status >= 0 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "cluster-run did not exit 0 "
		  "(status %d)", status);
	hx_assert_workers_gone(oc.c);
}
