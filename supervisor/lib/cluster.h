/*
 * cluster.h - the supervisor as a library, modelled on Node's cluster module.
 *
 *   struct cluster *c = cluster_new(base, &settings);
 *   cluster_on(c, CLUSTER_EV_LISTENING, on_listening, arg);
 *   struct cluster_worker *w = cluster_fork(c, 1);
 *   ...
 *   worker_disconnect(w);        // graceful: stop routing, then signal
 *   cluster_disconnect(c, done, arg);
 *
 * Every function runs on the libevent loop the cluster was created on; the
 * library installs its own SIGCHLD handling on that loop (it reaps its
 * workers by pid; in the seccomp mode the process becomes a child
 * subreaper, to follow servers that daemonize, and reaps every child that
 * exits, see seccomp_daemon.c).  Events are
 * delivered from the loop once the call or callback that caused them has
 * returned (as Node's primary emits on process.nextTick): never inside an
 * API call, so a subscriber may call any function here.
 */
#ifndef CLUSTER_H
#define CLUSTER_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct listen_addr;
struct cluster;
struct cluster_worker;

enum cluster_sched {
	CLUSTER_SCHED_RR,   /* the supervisor accepts and hands out (default) */
	CLUSTER_SCHED_NONE, /* workers accept on the shared socket */
	/* one SO_REUSEPORT socket per worker slot, kept by the supervisor:
	 * the kernel hashes connections, a restarted worker gets its slot's
	 * socket back with the connections queued in it */
	CLUSTER_SCHED_REUSEPORT,
};

/* How a worker's bind() and listen() reach the supervisor. */
enum cluster_intercept {
	/* the shim where it can load; seccomp for static, Go and 32-bit
	 * binaries, and for setuid ones when the supervisor is root */
	CLUSTER_INTERCEPT_AUTO,
	CLUSTER_INTERCEPT_SHIM,    /* LD_PRELOAD only, as with no choice */
	/* a seccomp filter notifies the supervisor of each bind() and
	 * listen() (seccomp_notify.c); listeners are shared by reuseport */
	CLUSTER_INTERCEPT_SECCOMP,
};

/* rr only: connections from one client go to one worker slot (sticky.h). */
enum cluster_sticky {
	CLUSTER_STICKY_OFF,
	CLUSTER_STICKY_IP,     /* by the client's address */
	CLUSTER_STICKY_HEADER, /* by an HTTP header's value (X-Forwarded-For) */
	CLUSTER_STICKY_COOKIE, /* by a cookie, pinned where it first went */
	CLUSTER_STICKY_QUERY,  /* by a query parameter (socket.io's sid), too */
};

enum cluster_event_type {
	CLUSTER_EV_FORK,       /* worker process created */
	CLUSTER_EV_ONLINE,     /* its shim checked in */
	CLUSTER_EV_LISTENING,  /* it holds a listener (once per listener) */
	CLUSTER_EV_DISCONNECT, /* its channel is gone / it was disconnected */
	CLUSTER_EV_EXIT,       /* its process ended (last event for it) */
	CLUSTER_EV_BIND_ERROR, /* a bind it asked for failed */
	CLUSTER_EV_COUNT
};

enum worker_state {
	WORKER_NONE,
	WORKER_ONLINE,
	WORKER_LISTENING,
	WORKER_DISCONNECTING,
	WORKER_DISCONNECTED,
	WORKER_DEAD,
};

struct cluster_event {
	enum cluster_event_type type;
	struct cluster_worker *worker;
	const char *address; /* LISTENING, BIND_ERROR: "127.0.0.1:8080" */
	const char *policy;  /* LISTENING: "rr", "none", "shared" */
	int error;           /* BIND_ERROR: errno; EXIT: the errno of a fork
				or exec that failed (the worker never ran
				the command), else 0 */
	bool undeclared;     /* BIND_ERROR: EACCES as the address is not
				among the --listen ones (with --uid) */
	int exit_code;       /* EXIT: code, or -1 when signalled or when it
				never had a process (pid 0) */
	int term_signal;     /* EXIT: signal, or 0 */
};

typedef void (*cluster_event_cb)(struct cluster *c,
				 const struct cluster_event *ev, void *arg);

struct cluster_settings {
	char *const *argv;       /* the worker command; argv[0] searched in PATH */
	enum cluster_sched sched;
	enum cluster_intercept intercept;
	const char *shim_path;   /* absolute path of libcluster_shim.so */
	int graceful_signal;     /* sent by worker_disconnect (0: SIGTERM) */
	int kill_timeout_ms;     /* then SIGKILL (0: 30000) */
	unsigned rr_window;      /* connections queued per worker (0: 16) */
	/* Sticky sessions (rr): the mode, the header, cookie or parameter
	 * name (HEADER, COOKIE, QUERY), and how long the supervisor waits
	 * for a request's head before it goes by the client's address
	 * (0: 200 ms). */
	enum cluster_sticky sticky;
	const char *sticky_name;
	unsigned sticky_wait_ms;
	/* Workers run as this user and group (the supervisor keeps its own
	 * rights, binds the listeners and hands them over). */
	bool set_uid, set_gid;
	uid_t uid;
	gid_t gid;
	const char *chdir_path;  /* workers start in this directory, or NULL */
	char *const *extra_env;  /* "KEY=VALUE", NULL-terminated, or NULL */
	/* With set_uid: the only addresses workers may listen on (--listen);
	 * anything else fails in the worker with EACCES. */
	const struct listen_addr *allowed_listen;
	size_t nallowed_listen;
	/* Each worker's stdout and stderr are pipes the supervisor reads; each
	 * line comes out on the supervisor's own stdout or stderr as "[ID] "
	 * and the line (output_prefix.h).  false: workers inherit them. */
	bool prefix_output;
	/* Sockets systemd passed (LISTEN_FDS, sd_notify.h): a worker that binds
	 * exactly the address one of them is bound to gets that socket instead
	 * of binding its own.  The cluster does not close them. */
	const int *listen_fds;
	unsigned n_listen_fds;
	/* The workers start with these signals ignored (NULL: none), every
	 * other at its default, and this mask (NULL: empty): what the
	 * supervisor inherited, as the command alone would (nohup's SIGHUP).
	 * Besides, SIGTTOU and SIGTTIN are ignored when fd 0, 1 or 2 is the
	 * controlling terminal (worker_spawn.c says why). */
	const sigset_t *worker_ignored;
	const sigset_t *worker_mask;
	/* Why the caller cannot have the seccomp mode (an option that needs
	 * rr), or NULL: a worker found to exec a program that will not load
	 * the shim (worker_exec.c) then switches the cluster to it only where
	 * this is NULL. */
	const char *seccomp_refused;
	/* Diagnostics that are not events ("protocol error from worker 2").
	 * NULL: printed on stderr as "cluster-run: ...". */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

struct cluster *cluster_new(struct event_base *base,
			    const struct cluster_settings *settings);
/* Kills (SIGKILL) whatever workers remain, closes every listener. */
void cluster_free(struct cluster *c);

/* Subscribe to one event type; several subscribers are called in order. */
int cluster_on(struct cluster *c, enum cluster_event_type type,
	       cluster_event_cb cb, void *arg);

/* Start worker `id` (1..N, exported as CLUSTER_WORKER_ID).  Never waits for
 * the exec: a failed exec (ENOENT, EACCES, ...) is the worker's EXIT event,
 * with `error` set.  At most 16 workers are starting at once (from fork
 * until the worker listens, exits, or 1 s after its exec); beyond that the
 * worker is queued (pid 0, no FORK event yet) and forked as earlier ones
 * settle; disconnecting or killing it there ends it (EXIT, pid 0) without
 * a process.  NULL with errno set when an immediate fork fails. */
struct cluster_worker *cluster_fork(struct cluster *c, unsigned id);

/* Gracefully disconnect every worker; done() runs once all have exited. */
void cluster_disconnect(struct cluster *c,
			void (*done)(struct cluster *c, void *arg), void *arg);

enum cluster_sched cluster_sched(const struct cluster *c);
/* Whether the workers run in the seccomp mode (settings.intercept, and in
 * auto what the program's ELF file says).  The program is judged at the
 * first call (at the latest, the first fork), once; the mode is said in
 * one line where it is not the shim's, and the policy is reuseport from
 * then on. */
bool cluster_seccomp_mode(struct cluster *c);
const char *cluster_sched_name(enum cluster_sched sched);
unsigned cluster_worker_count(const struct cluster *c);
/* Connections accepted by the supervisor (rr) and handed to workers. */
unsigned long cluster_handed_connections(const struct cluster *c);
/* Sticky sessions: clients pinned (or seen lately) per slot, as
 * counts[id] for ids below n (an estimate: at most 65536 are remembered);
 * how many in all, 0 when sticky is off. */
unsigned cluster_sticky_counts(const struct cluster *c, unsigned *counts,
			       unsigned n);
const char *cluster_sticky_name(enum cluster_sticky mode);
/* The mode, and its header, cookie or parameter name in *name (NULL for
 * ip and off) when name is not NULL. */
enum cluster_sticky cluster_sticky_mode(const struct cluster *c,
					const char **name);
/* Workers cut off for breaking the channel protocol, since the start. */
unsigned long cluster_protocol_violations(const struct cluster *c);

/* One listener as the kernel sees it now (listener_stats.c). */
struct cluster_listener_stats {
	char address[160];      /* "127.0.0.1:8080", "unix:/run/x.sock" */
	const char *policy;     /* "rr", "none", "reuseport", "shared" */
	bool stream;            /* a listening stream socket (not datagrams) */
	/* Connections the kernel has completed and nobody accepted yet, and
	 * the most it queues (TCP: TCP_INFO; reuseport: every slot's socket
	 * added up); -1 where the kernel does not tell (unix, datagrams). */
	long queued, backlog;
	bool rr;                /* the supervisor accepts (the next two) */
	unsigned long accepted; /* accepted since the listener was made */
	unsigned held;          /* accepted, not yet accept()ed by a worker */
};

/* Fills up to max entries; returns how many listeners there are.  One
 * getsockopt per listener (per slot in reuseport) and, in rr, one ioctl
 * per worker: for a status request, not for every connection. */
unsigned cluster_listener_stats(const struct cluster *c,
				struct cluster_listener_stats *out,
				unsigned max);

/* Node's Worker API.  A worker stays valid until its EXIT event returns. */
int worker_disconnect(struct cluster_worker *w);
int worker_kill(struct cluster_worker *w, int sig);
bool worker_is_dead(const struct cluster_worker *w);
bool worker_is_connected(const struct cluster_worker *w);
bool worker_exited_after_disconnect(const struct cluster_worker *w);
unsigned worker_id(const struct cluster_worker *w);
pid_t worker_pid(const struct cluster_worker *w);
enum worker_state worker_state(const struct cluster_worker *w);
const char *worker_state_name(enum worker_state state);
/* Listeners this worker holds (bound and listening, or datagram). */
unsigned worker_listener_count(const struct cluster_worker *w);
/* Connections handed to this worker (rr). */
unsigned long worker_handed_connections(const struct cluster_worker *w);
/* The worker's process tree (the worker and its descendants), sampled by
 * the cluster about once a second (worker_usage.c). */
struct worker_resources {
	unsigned samples;        /* 0: not sampled yet (the rest are 0) */
	double cpu_seconds;      /* user + system, children that exited too */
	double cpu_percent;      /* over the last period (100: one core);
				    -1 until there are two samples */
	unsigned long long rss_bytes; /* resident memory, summed */
	unsigned processes;
};
void worker_resources(const struct cluster_worker *w,
		      struct worker_resources *out);
/* Connections waiting for this worker alone that it has not taken: in rr
 * those handed on its faux handles and not yet read, in reuseport those
 * queued in its slot's sockets; -1 when none of its listeners has a
 * queue of its own (none, unix sockets).  One ioctl or getsockopt per
 * listener it holds: for a periodic check, not per connection. */
long worker_waiting_connections(const struct cluster_worker *w);
/* User data slot for the embedding program. */
void worker_set_data(struct cluster_worker *w, void *data);
void *worker_data(const struct cluster_worker *w);

#endif
