/*
 * ops.h - helpers of the operations tests (control socket, `cluster-run
 * ctl`, signals), on top of the integration harness.
 *
 * Each test gets a fresh directory (mode 0700) for its control socket and
 * marker files; ops_fini() (the suites' .fini) removes it after
 * hx_cleanup().  Child processes (`cluster-run ctl`, python3, a client
 * under another uid) are waited for with a pidfd and a deadline.
 */
#ifndef OPS_H
#define OPS_H

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define OPS_RUN_MS 10000     /* a child process (ctl, python3) ends */

/* Criterion .fini of the suites. */
void ops_fini(void);

/* This test's directory, made on first use. */
const char *ops_dir(void);
/* ops_dir()/name in a small rotating static buffer. */
const char *ops_path(const char *name);

/* What a child process did. */
struct ops_run {
	int status;     /* wait status */
	char *out;      /* its stdout, NUL-terminated */
	char *err;      /* its stderr */
};

/* The exit code, or -1 when it did not exit normally. */
int ops_exit_code(const struct ops_run *r);

/* Runs argv (argv[0] through PATH) with stdin_text (NULL: /dev/null) and
 * captures its output; asserts it ends within OPS_RUN_MS. */
void ops_run(const char *const *argv, const char *stdin_text,
	     struct ops_run *r);
/* Forks, runs fn(arg) in the child (its stdout is captured), and the
 * child _exit()s with what fn returns. */
void ops_run_fn(int (*fn)(void *), void *arg, struct ops_run *r);
void ops_run_free(struct ops_run *r);

/* `cluster-run ctl --control sock ARGS...`; pumps c's output (c may be
 * NULL). */
void ops_ctl(struct hx_cluster *c, const char *sock, const char *const *args,
	     struct ops_run *r);

/* One row of `cluster-run ctl status`. */
struct ops_row {
	unsigned id;
	pid_t pid;
	char state[32];
	bool replacement;
};

/* `ctl status` must succeed; its rows (up to max), how many in all. */
size_t ops_status(struct hx_cluster *c, const char *sock,
		  struct ops_row *rows, size_t max);

/* A cluster-run started with a control socket. */
struct ops_cluster {
	struct hx_cluster *c;
	char sock[108];
	int port;
	struct hx_target target;    /* 127.0.0.1:port */
};

/*
 * cluster-run -n workers --control ops_path("ctl.sock") [opts...] --
 * fx_blocking_accept --port P; waits for the "listening" lines.
 */
void ops_start(struct ops_cluster *oc, int workers, const char *const *opts);

/* cluster-run --control ops_path("ctl.sock") ARGS (ARGS: options, "--" and
 * the command); waits for nothing. */
struct hx_cluster *ops_start_args(const char *sock, const char *const *args);

/* Index of the first stderr line at index >= from containing text, within
 * timeout_ms; -1 if none. */
long ops_wait_line(struct hx_cluster *c, const char *text, size_t from,
		   int timeout_ms);
/* Stderr lines so far at index >= from containing text. */
size_t ops_count_lines(const struct hx_cluster *c, const char *text,
		       size_t from);

/* One request to the cluster; asserts an answer from one of pids[0..n). */
void ops_query_from(struct hx_cluster *c, const struct hx_target *t,
		    const pid_t *pids, size_t n, const char *when);

/* The pid in a "forked" line of worker id, other than not_pid, at event
 * index >= from, within HX_START_MS; asserts there is one. */
pid_t ops_wait_forked(struct hx_cluster *c, int id, pid_t not_pid,
		      size_t from);

#endif
