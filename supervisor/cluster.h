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
 * library installs its own SIGCHLD handling on that loop.
 */
#ifndef CLUSTER_H
#define CLUSTER_H

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
	int error;           /* BIND_ERROR: errno */
	int exit_code;       /* EXIT: code, or -1 when signalled */
	int term_signal;     /* EXIT: signal, or 0 */
};

typedef void (*cluster_event_cb)(struct cluster *c,
				 const struct cluster_event *ev, void *arg);

struct cluster_settings {
	char *const *argv;       /* the worker command; argv[0] searched in PATH */
	enum cluster_sched sched;
	const char *shim_path;   /* absolute path of libcluster_shim.so */
	int graceful_signal;     /* sent by worker_disconnect (0: SIGTERM) */
	int kill_timeout_ms;     /* then SIGKILL (0: 30000) */
	unsigned rr_window;      /* connections queued per worker (0: 16) */
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

/* Start worker `id` (1..N, exported as CLUSTER_WORKER_ID).  NULL with errno
 * set when fork/exec fails (exec failures: ENOENT, EACCES, ...). */
struct cluster_worker *cluster_fork(struct cluster *c, unsigned id);

/* Gracefully disconnect every worker; done() runs once all have exited. */
void cluster_disconnect(struct cluster *c,
			void (*done)(struct cluster *c, void *arg), void *arg);

enum cluster_sched cluster_sched(const struct cluster *c);
const char *cluster_sched_name(enum cluster_sched sched);
unsigned cluster_worker_count(const struct cluster *c);
/* Connections accepted by the supervisor (rr) and handed to workers. */
unsigned long cluster_handed_connections(const struct cluster *c);

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
/* User data slot for the embedding program. */
void worker_set_data(struct cluster_worker *w, void *data);
void *worker_data(const struct cluster_worker *w);

#endif
