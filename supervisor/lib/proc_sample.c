/*
 * proc_sample.c - a worker's process tree: its CPU time and RSS.
 *
 * How the tree is found: from the worker down, through
 * /proc/PID/task/TID/children (the kernel's list of each thread's
 * children; CONFIG_PROC_CHILDREN, on in Debian's kernels).  The other way,
 * a pid -> ppid scan, reads /proc/N/stat of every process on the machine
 * to find the few that are the worker's: its cost grows with the machine,
 * not with the worker.  Walking down costs per process of the tree one
 * read of /proc/PID/stat and one of its children list (a process with
 * several threads: one per thread, found in /proc/PID/task): about six
 * syscalls, all answered from kernel memory without waiting, so a worker
 * with 100 children costs about 600 syscalls, a millisecond or two, once a
 * second (tests/unit/test_proc_sample.c measures it).  A process that
 * daemonized away from the worker (reparented to init) is not its
 * descendant any more and is not counted.
 *
 * A process may exit between reading a list and reading its entries:
 * whatever cannot be read is simply not counted.
 */
#include "proc_sample.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A /proc file read whole (children lists of a few thousand pids fit). */
#define PROC_READ_MAX 65536

long proc_ticks_per_second(void)
{
	static long hz;

	if (hz <= 0) {
		hz = sysconf(_SC_CLK_TCK);
		if (hz <= 0)
			hz = 100;
	}
	return hz;
}

/* The file's text, NUL-terminated, in buf (cap bytes); its length or -1. */
static ssize_t read_text(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (len + 1 < cap &&
	       (n = read(fd, buf + len, cap - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

struct proc_stat {
	unsigned long long ticks;
	unsigned long long rss_pages;
	long threads;
};

/* Fields of /proc/PID/stat after the command name, which may hold
 * blanks and parentheses: counted from the last ')'. */
static int parse_stat(char *text, struct proc_stat *st)
{
	char *p = strrchr(text, ')'), *save = NULL, *tok;
	unsigned long long v[4] = { 0 };
	int field = 3;

	if (!p)
		return -1;
	memset(st, 0, sizeof(*st));
	for (tok = strtok_r(p + 1, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save), field++) {
		if (field >= 14 && field <= 17)
			v[field - 14] = strtoull(tok, NULL, 10);
		else if (field == 20)
			st->threads = strtol(tok, NULL, 10);
		else if (field == 24) {
			long long rss = strtoll(tok, NULL, 10);

			st->rss_pages = rss > 0 ? (unsigned long long)rss : 0;
			break;
		}
	}
	if (field != 24)
		return -1;
	st->ticks = v[0] + v[1] + v[2] + v[3];
	return 0;
}

/* The pids listed in one children file, pushed on the stack. */
static void push_children(const char *path, char *buf, pid_t *stack,
			  unsigned *top, unsigned *seen)
{
	char *p, *end;

	if (read_text(path, buf, PROC_READ_MAX) < 0)
		return;
	for (p = buf;; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			return;
		if (pid > 0 && *seen < PROC_TREE_MAX) {
			stack[(*top)++] = (pid_t)pid;
			(*seen)++;
		}
	}
}

/* Every thread may have children of its own. */
static void push_all_children(pid_t pid, long threads, char *buf,
			      pid_t *stack, unsigned *top, unsigned *seen)
{
	char path[64];
	struct dirent *de;
	DIR *dir;

	if (threads <= 1) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 (int)pid, (int)pid);
		push_children(path, buf, stack, top, seen);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children",
			 (int)pid, de->d_name);
		push_children(path, buf, stack, top, seen);
	}
	closedir(dir);
}

int proc_tree_sample(pid_t root, struct proc_tree_usage *out)
{
	static long page;
	pid_t *stack = malloc(PROC_TREE_MAX * sizeof(*stack));
	char *buf = malloc(PROC_READ_MAX);
	unsigned top = 0, seen = 1;
	char path[64];

	memset(out, 0, sizeof(*out));
	if (!stack || !buf) {
		free(stack);
		free(buf);
		errno = ENOMEM;
		return -1;
	}
	if (page <= 0)
		page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	stack[top++] = root;
	while (top > 0) {
		pid_t pid = stack[--top];
		struct proc_stat st;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (read_text(path, buf, PROC_READ_MAX) < 0 ||
		    parse_stat(buf, &st) < 0)
			continue;   /* gone meanwhile */
		out->cpu_ticks += st.ticks;
		out->rss_bytes += st.rss_pages * (unsigned long long)page;
		out->processes++;
		push_all_children(pid, st.threads, buf, stack, &top, &seen);
	}
	free(stack);
	free(buf);
	if (out->processes == 0) {
		errno = ESRCH;
		return -1;
	}
	return 0;
}
