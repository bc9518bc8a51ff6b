/*
 * test_proc_sample.c - proc_tree_sample() on real process trees: every
 * descendant found (100 children, grandchildren, a thread's children), CPU
 * time of live and of exited-and-waited descendants, RSS, a gone root, and
 * what a sample of a 101-process tree costs the caller.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_sample.h"

#define READY_MS 10000
/* What one sample of a 101-process tree may cost in CPU time. */
#define TREE_SAMPLE_BUDGET_NS (5 * 1000 * 1000)

static pid_t root_pid;
static int release_fd = -1;   /* closing it lets the tree end */

static void tree_fini(void)
{
	if (release_fd >= 0)
		close(release_fd);
	if (root_pid > 0) {
		kill(root_pid, SIGKILL);
		waitpid(root_pid, NULL, 0);
	}
}

TestSuite(proc_sample, .fini = tree_fini, .timeout = 60);

static double thread_cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spins until this process has used sec seconds of CPU. */
static void burn(double sec)
{
	struct timespec ts;

	do
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 < sec);
}

/* A child of the tree: waits for the release pipe to close, then exits. */
static void park(int release)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (read(release, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

struct tree_shape {
	int children;       /* parked children of the root */
	int grandchildren;  /* parked children of the first child */
	double reaped_cpu;  /* a child burns this much, exits, is waited for */
	double live_cpu;    /* the root itself burns this much, then parks */
	bool thread_child;  /* a second thread of the root forks a child */
};

static int release_r;
static int thread_forked[2];

/* Stays alive: a child whose parent thread lives is listed only in that
 * thread's /proc/PID/task/TID/children. */
static void *thread_fork(void *arg)
{
	char c;

	if (fork() == 0)
		park(release_r);
	if (write(thread_forked[1], "t", 1) < 0)
		return arg;
	while (read(release_r, &c, 1) < 0 && errno == EINTR)
		;
	return arg;
}

/* In the root: make the shape, say "ready" on ready_w, then park. */
static void grow(const struct tree_shape *shape, int ready_w)
{
	pid_t kid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (shape->reaped_cpu > 0) {
		kid = fork();
		if (kid == 0) {
			burn(shape->reaped_cpu);
			_exit(0);
		}
		waitpid(kid, NULL, 0);
	}
	for (int i = 0; i < shape->children; i++) {
		if (fork() != 0)
			continue;
		for (int j = 0; i == 0 && j < shape->grandchildren; j++)
			if (fork() == 0)
				park(release_r);
		if (i == 0 && shape->grandchildren > 0) {
			/* our children are forked: tell the root */
			if (write(ready_w, "g", 1) < 0)
				_exit(1);
		}
		park(release_r);
	}
	if (shape->thread_child) {
		pthread_t t;
		char c;

		if (pipe(thread_forked) < 0 ||
		    pthread_create(&t, NULL, thread_fork, NULL) != 0 ||
		    read(thread_forked[0], &c, 1) != 1)
			_exit(1);
	}
	if (shape->live_cpu > 0)
		burn(shape->live_cpu);
	if (write(ready_w, "r", 1) < 0)
		_exit(1);
	park(release_r);
}

/* Forks the tree and waits until it has the shape. */
static void tree_start(const struct tree_shape *shape)
{
	int ready[2], release[2];
	int want = 1 + (shape->grandchildren > 0), got = 0;

	cr_assert(pipe(ready) == 0 && pipe(release) == 0);
	release_r = release[0];
	root_pid = fork();
	cr_assert(root_pid >= 0);
	if (root_pid == 0) {
		close(ready[0]);
		close(release[1]);
		grow(shape, ready[1]);
	}
	close(ready[1]);
	close(release[0]);
	release_fd = release[1];
	while (got < want) {
		struct pollfd pfd = { ready[0], POLLIN, 0 };
		char c;

		cr_assert(poll(&pfd, 1, READY_MS) == 1, "the tree never got "
			  "ready");
		cr_assert(read(ready[0], &c, 1) == 1, "the tree's root died");
		got++;
	}
	close(ready[0]);
	/* Children are forked before the root says ready; the grandchildren
	 * before the first child says so. */
}

Test(proc_sample, hundred_children_and_grandchildren_found_cheaply)
{
	struct tree_shape shape = { .children = 100, .grandchildren = 5 };
	struct proc_tree_usage u;
	double before, per_sample;
	const int rounds = 20;

	tree_start(&shape);
	cr_assert(proc_tree_sample(root_pid, &u) == 0, "sample: %s",
		  strerror(errno));
	cr_assert(u.processes == 106, "want 106 processes (root, 100 "
		  "children, 5 grandchildren), got %u", u.processes);
	cr_assert(u.rss_bytes >= 106ull * 4096, "RSS %llu bytes for 106 "
		  "processes", u.rss_bytes);
	before = thread_cpu_seconds();
	for (int i = 0; i < rounds; i++)
		cr_assert(proc_tree_sample(root_pid, &u) == 0);
	per_sample = (thread_cpu_seconds() - before) / rounds;
	fprintf(stderr, "proc_tree_sample of 106 processes: %.3f ms of CPU "
		"each (mean of %d)\n", per_sample * 1e3, rounds);
	cr_assert(per_sample * 1e9 < TREE_SAMPLE_BUDGET_NS, "one sample of "
		  "106 processes costs %.3f ms of CPU, more than %.1f ms",
		  per_sample * 1e3, TREE_SAMPLE_BUDGET_NS / 1e6);
}

Test(proc_sample, cpu_of_live_and_reaped_descendants)
{
	struct tree_shape shape = { .children = 1, .reaped_cpu = 0.3,
				    .live_cpu = 0.2 };
	struct proc_tree_usage u;
	double sec;

	tree_start(&shape);
	cr_assert(proc_tree_sample(root_pid, &u) == 0);
	sec = (double)u.cpu_ticks / (double)proc_ticks_per_second();
	/* 0.5 s burnt in all; ticks round down, one tick each field */
	cr_assert(sec >= 0.45 && sec < 5.0, "want about 0.5 s of CPU in the "
		  "tree, got %.2f s", sec);
	cr_assert(u.processes == 2, "root and one child, got %u", u.processes);
}

Test(proc_sample, children_of_a_second_thread)
{
	struct tree_shape shape = { .children = 2, .thread_child = true };
	struct proc_tree_usage u;

	tree_start(&shape);
	cr_assert(proc_tree_sample(root_pid, &u) == 0);
	cr_assert(u.processes == 4, "want root, two children and the "
		  "thread's child, got %u", u.processes);
}

Test(proc_sample, gone_root_is_esrch)
{
	struct proc_tree_usage u;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	cr_assert(waitpid(pid, NULL, 0) == pid);
	errno = 0;
	cr_assert(proc_tree_sample(pid, &u) == -1 && errno == ESRCH,
		  "a reaped pid: rc and errno %d", errno);
	cr_assert(u.processes == 0);
}
