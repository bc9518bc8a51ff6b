/*
 * proc_sample.h - CPU time and resident memory of a process and all its
 * descendants, read from /proc (see proc_sample.c for why this way).
 */
#ifndef PROC_SAMPLE_H
#define PROC_SAMPLE_H

#include <sys/types.h>

/* At most this many processes are visited per tree: bounds the cost of a
 * worker that forks without limit (about 13 ms for 1024 processes; the rest
 * are not counted). */
#define PROC_TREE_MAX 1024

struct proc_tree_usage {
	/* utime + stime + cutime + cstime of every live process of the tree,
	 * in clock ticks: children that exited and were waited for are in
	 * their parent's cutime/cstime, so each CPU second counts once. */
	unsigned long long cpu_ticks;
	/* Sum of the processes' RSS: pages shared after fork() count in
	 * each process (as pm2 and ps add them up). */
	unsigned long long rss_bytes;
	unsigned processes;
};

/* 0, or -1 with errno (ESRCH: root is gone). */
int proc_tree_sample(pid_t root, struct proc_tree_usage *out);

/* Clock ticks per second (sysconf(_SC_CLK_TCK)). */
long proc_ticks_per_second(void);

#endif
