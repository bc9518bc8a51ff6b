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
/* The same with no stdin and a deadline of its own, for a client whose
 * bounded work takes longer than a ctl command (python-socketio's). */
void ops_run_within(const char *const *argv, int timeout_ms,
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
	pid_t pid;          /* 0 for a slot without a worker ("-") */
	char state[32];
	unsigned restarts;
	bool replacement;
	char note[160];     /* the last column: "new (reload)", "restarting
			     * in 3.2 s; last: exited with code 3" */
};

/* `ctl status` must succeed; its rows (up to max), how many in all.
 * last_reload (NULL: not wanted, else at least 256 bytes) gets its "last
 * reload: ..." line, or "". */
size_t ops_status(struct hx_cluster *c, const char *sock,
		  struct ops_row *rows, size_t max);
size_t ops_status_reload(struct hx_cluster *c, const char *sock,
			 struct ops_row *rows, size_t max, char *last_reload);

/* A cluster-run started with a control socket. */
struct ops_cluster {
	struct hx_cluster *c;
	char sock[108];
	int port;
	struct hx_target target;    /* 127.0.0.1:port */
};

/* Fills oc's socket path (ops_path("ctl.sock")), a free port and its
 * target, and nothing else; the port as text (a static buffer). */
const char *ops_prepare(struct ops_cluster *oc);

/*
 * cluster-run -n workers --control ops_path("ctl.sock") [opts...] --
 * fx_blocking_accept --port P; waits for the "listening" lines.
 */
void ops_start(struct ops_cluster *oc, int workers, const char *const *opts);
/* The same with another fixture of $FIXTURES_DIR (it takes --port P). */
void ops_start_fixture(struct ops_cluster *oc, int workers,
		       const char *const *opts, const char *fixture);

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

/* `ctl status --json` through python3: the output of print(expr), where
 * d is the answer, W its workers and L its listeners (malloc'd). */
char *ops_status_eval(struct ops_cluster *oc, const char *expr);
/* The same as a number. */
long ops_status_long(struct ops_cluster *oc, const char *expr);
/* Asks again (every 100 ms or so, pumping cluster-run's output meanwhile)
 * until cond, a python expression as above, is True; false at the
 * deadline. */
bool ops_wait_status(struct ops_cluster *oc, const char *cond,
		     int timeout_ms);

/* Whether net.ipv4.tcp_migrate_req is 1 (cluster-run sets it as root):
 * a reuseport slot's socket that closes then hands its queue on. */
bool ops_migrate_req_on(void);

/* One request to the cluster; asserts an answer from one of pids[0..n). */
void ops_query_from(struct hx_cluster *c, const struct hx_target *t,
		    const pid_t *pids, size_t n, const char *when);

/* The pid in a "forked" line of worker id, other than not_pid, at event
 * index >= from, within HX_START_MS; asserts there is one. */
pid_t ops_wait_forked(struct hx_cluster *c, int id, pid_t not_pid,
		      size_t from);

/*
 * cluster-run on a terminal, as a shell with job control runs it in the
 * background: a session leader (a child of the test) owns a pty with
 * `stty tostop` (and no output processing, so lines end in '\n') and
 * runs cluster-run ARGS in a process group of its own, not the terminal's
 * foreground one, with stdin, stdout and stderr on the pty.  What
 * cluster-run writes on the pty is read into c (its "worker N ..." lines
 * are events as usual); the session leader reports "stopped SIG",
 * "continued" and "exited STATUS" lines as waitpid() sees them.
 */
struct ops_tty {
	struct hx_cluster *c;   /* c->pid: 0 (not our child) */
	pid_t pid;              /* cluster-run */
	pid_t leader;           /* the session leader */
	int report;             /* its report lines, read end */
	int cmd;                /* "fg\n" to it, write end */
	char line[128];         /* the last report line */
};

void ops_tty_start(struct ops_tty *t, const char *const *args);
/* The same, cluster-run in the terminal's foreground from the start (as
 * a shell runs `cluster-run ...` without `&`). */
void ops_tty_start_foreground(struct ops_tty *t, const char *const *args);
/* Waits for a report line that starts with prefix (earlier ones are
 * skipped) and returns it (in t->line); asserts one comes in timeout_ms. */
const char *ops_tty_report(struct ops_tty *t, const char *prefix,
			   int timeout_ms);
/* What `fg` does: cluster-run's group becomes the terminal's foreground
 * group, and gets SIGCONT. */
void ops_tty_fg(struct ops_tty *t);
/* The terminal goes away (its master side is closed: the kernel hangs it
 * up) and, as a shell does then, the session leader sends its job SIGHUP. */
void ops_tty_hangup(struct ops_tty *t);
/* Ends the session leader (and with it anything still running) and frees
 * t->c. */
void ops_tty_free(struct ops_tty *t);

#endif
