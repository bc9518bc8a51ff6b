/*
 * harness.h - drive cluster-run from Criterion tests.
 *
 * cluster-run is found through $CLUSTER_RUN_BIN and the fixture servers
 * through $FIXTURES_DIR (meson sets both).  The harness starts cluster-run
 * with its stderr (and optionally stdout) on pipes, parses its one-line
 * lifecycle events ("cluster-run: worker 3 (pid 4121) listening on ..."),
 * and talks to the fixtures as a client.
 *
 * Every wait is on an event with a deadline: lines on a pipe (poll), a
 * connection's answer (poll), or the exit of cluster-run (a deadline loop
 * on waitpid(WNOHANG) whose pause is a poll() on the output pipes).
 *
 * LD_PRELOAD is never set here: cluster-run adds the shim to its workers.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#define HX_MAX_WORKERS 16

/* Deadlines, generous for a loaded 2-core machine. */
#define HX_START_MS 15000   /* until the expected "listening" lines */
#define HX_EXIT_MS 10000    /* until cluster-run exits */
#define HX_QUERY_MS 5000    /* one client request and its answer */

enum hx_kind {
	HX_FORKED,
	HX_ONLINE,
	HX_LISTENING,
	HX_DISCONNECT,
	HX_EXITED,          /* code holds the exit code */
	HX_KILLED,          /* code holds the signal number */
};

/* One lifecycle line of cluster-run. */
struct hx_event {
	enum hx_kind kind;
	int id;
	pid_t pid;
	int code;
	char what[200];     /* HX_LISTENING: "127.0.0.1:8080 (rr)" */
};

/* Lines read from one pipe. */
struct hx_stream {
	int fd;             /* read end, -1 after EOF */
	char part[4096];    /* an unfinished last line */
	size_t part_len;
	char **lines;
	size_t n_lines, cap_lines;
};

struct hx_cluster {
	pid_t pid;          /* cluster-run; 0 once reaped */
	int status;         /* its wait status once reaped */
	struct hx_stream err, out;
	struct hx_event *events;
	size_t n_events, cap_events;
	char *text;         /* hx_output()'s buffer */
	char token[64];     /* NAME=VALUE in the environment it runs with */
	char runtime_env[80]; /* "XDG_RUNTIME_DIR=DIR", its own; "" if none */
};

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t hx_now_ms(void);
/* Waits (bounded) until pid has been seen sleeping (state S) 5 times in a
 * row, 10 ms apart: a process idle between requests.  A measurement of its
 * state, not a wait for time to pass; false at the deadline. */
bool hx_wait_asleep(pid_t pid, int timeout_ms);
/* Whether pid is stopped (state T, after SIGSTOP) within timeout_ms. */
bool hx_wait_stopped(pid_t pid, int timeout_ms);

/* Whether ::1 can be bound here. */
bool hx_have_ipv6(void);

/* A port free for socktype on 127.0.0.1 (and ::1 if there) right now,
 * below the ephemeral range (no client's source port takes it meanwhile). */
int hx_free_port(int socktype);

/* $FIXTURES_DIR/name in a small rotating static buffer. */
const char *hx_fixture(const char *name);

#define HX_CAPTURE_STDOUT 1u
/* Keep the test's XDG_RUNTIME_DIR.  By default each cluster-run gets a
 * directory of its own there (removed by hx_free()), so that no two share
 * the default control socket: the second would exit 1. */
#define HX_SHARED_RUNTIME_DIR 2u

/* Starts cluster-run with args (NULL-terminated, without argv[0]). */
struct hx_cluster *hx_start(unsigned flags, const char *const *args);

/* cluster-run -n WORKERS --sched SCHED -- $FIXTURES_DIR/FIXTURE FX_ARGS... */
struct hx_cluster *hx_start_fixture(unsigned flags, int workers,
				    const char *sched, const char *fixture,
				    const char *const *fx_args);

/* Reads what the pipes have within timeout_ms; false when nothing came. */
bool hx_pump(struct hx_cluster *c, int timeout_ms);

size_t hx_count(const struct hx_cluster *c, enum hx_kind kind);

/* Waits until at least n events of kind were seen. */
bool hx_wait_count(struct hx_cluster *c, enum hx_kind kind, size_t n,
		   int timeout_ms);

/*
 * The first event at index >= from of kind for worker id (0: any id) whose
 * pid is not not_pid (0: any pid); NULL if none within timeout_ms.
 * hx_find_event() is the same without waiting.  The pointer is valid until
 * the next read of output (any hx_pump() or hx_wait_*()).
 */
const struct hx_event *hx_wait_event(struct hx_cluster *c, enum hx_kind kind,
				     int id, pid_t not_pid, size_t from,
				     int timeout_ms);
const struct hx_event *hx_find_event(const struct hx_cluster *c,
				     enum hx_kind kind, int id, pid_t not_pid,
				     size_t from);

/* Waits until stdout (HX_CAPTURE_STDOUT) has at least n complete lines. */
bool hx_wait_stdout_lines(struct hx_cluster *c, size_t n, int timeout_ms);

/* The pid of the latest "forked" line for worker id, 0 if none. */
pid_t hx_worker_pid(const struct hx_cluster *c, int id);

/* Whether some "forked" line named worker id with this pid. */
bool hx_is_worker_pid(const struct hx_cluster *c, int id, pid_t pid);

/* All output seen so far, for failure messages. */
const char *hx_output(struct hx_cluster *c);

/* Waits for cluster-run to exit; its wait status, or -1 on timeout. */
int hx_wait_exit(struct hx_cluster *c, int timeout_ms);

/* Sends sig to cluster-run, then hx_wait_exit(). */
int hx_stop(struct hx_cluster *c, int sig, int timeout_ms);

/* Asserts that no process from a "forked" line exists any more. */
void hx_assert_workers_gone(struct hx_cluster *c);

/* Frees c; cluster-run must have been reaped (or hx_cleanup() runs). */
void hx_free(struct hx_cluster *c);

/*
 * Criterion .fini: SIGKILLs every cluster-run this test started and has not
 * reaped, and every worker of theirs still running (recognised by a token
 * the harness puts in cluster-run's environment), then frees them.
 */
void hx_cleanup(void);

/* Asserts cond; the message carries cluster-run's output. */
#define hx_assert(c, cond, fmt, ...)                                       \
	cr_assert((cond), fmt "\n--- cluster-run output ---\n%s",          \
		  ##__VA_ARGS__, hx_output(c))

/* ---- clients ---- */

enum hx_proto { HX_TCP, HX_UDP, HX_UNIX };

struct hx_target {
	enum hx_proto proto;
	const char *host;   /* IPv4 or IPv6 literal (TCP, UDP) */
	int port;
	const char *path;   /* HX_UNIX */
	const char *source; /* TCP: bound before connect (127.0.0.2), or NULL */
};

struct hx_answer {
	int id;
	pid_t pid;
};

/* Parses "<id> <pid>\n"; false if the text is anything else. */
bool hx_parse_answer(const char *text, struct hx_answer *ans);

/* One request; 0, or -errno (-ECONNREFUSED, -ETIMEDOUT, -EPROTO...). */
int hx_query(const struct hx_target *t, int timeout_ms, struct hx_answer *ans);

/* A stream connection to t (from t->source); the fd, or -errno. */
int hx_connect(const struct hx_target *t, int timeout_ms);
/* Sends all of text; 0, or -errno. */
int hx_send_all(int fd, const char *text);
/* Reads until EOF (or until buf is full) within timeout_ms,
 * NUL-terminated; 0, or -errno. */
int hx_read_all(int fd, char *buf, size_t size, int timeout_ms);

/* Sends request on a new stream connection to t and reads the answer until
 * EOF (or until buf is full) within timeout_ms, NUL-terminated; 0, or
 * -errno. */
int hx_exchange(const struct hx_target *t, const char *request, char *buf,
		size_t size, int timeout_ms);

struct hx_load {
	const struct hx_target *targets;  /* used in turn */
	size_t n_targets;
	int requests;
	int workers;        /* answers must carry an id in 1..workers */
	bool any_pid;       /* the pid may be a worker's child (pre-fork) */
};

struct hx_tally {
	int served[HX_MAX_WORKERS + 1];   /* by worker id */
	int total;
};

/*
 * Makes load->requests sequential requests and asserts every one is
 * answered by a worker of c (pid checked unless any_pid).
 */
void hx_run_load(struct hx_cluster *c, const struct hx_load *load,
		 struct hx_tally *tally);

#endif
