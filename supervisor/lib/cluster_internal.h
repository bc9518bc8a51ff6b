/*
 * cluster_internal.h - the cluster library's own structures, shared by the
 * files of supervisor/lib (cluster.c, worker*.c, handle_table.c,
 * shared_handle.c, rr_handle.c, reuseport_handle.c, ...).  Not part of the
 * public API (cluster.h); supervisor/cli never includes it.
 *
 * The layers, as Node's: the handles (handle_table.c and the *_handle.c)
 * are leaves that return results and emit nothing; only the channel layer
 * (worker_channel.c) replies to a worker; only cluster.c delivers events,
 * deferred (cluster_emit() just queues them).
 */
#ifndef CLUSTER_INTERNAL_H
#define CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "cluster.h"
#include "cluster_proto.h"
#include "handle_key.h"
#include "sockaddr_text.h"

struct conn_census;
struct event;
struct handle;
struct health_checker;
struct health_probe;
struct membership;
struct output_pipe;
struct rr_handle;
struct rr_member;
struct seccomp_daemon;
struct seccomp_notify;
struct sticky_table;

#define CLUSTER_MAX_SUBSCRIBERS 8
/* Workers starting at once (from fork() until the worker listens, exits,
 * or CLUSTER_START_SETTLE_MS after its exec); later ones wait in a queue.
 * The loop never waits for an exec, and a scale of hundreds does not start
 * hundreds of servers at once: their start-up (a Python server's imports)
 * would starve the supervisor of CPU, and signals and control requests
 * would wait for it. */
#define CLUSTER_STARTS_IN_FLIGHT 16
#define CLUSTER_START_SETTLE_MS 1000

/* An event waiting in the cluster's queue (cluster.c), with copies of the
 * strings it points to (a handle may be gone by the time it is read). */
struct cluster_note {
	struct cluster_event ev;
	char address[SOCKADDR_TEXT_MAX + 8];
	char policy[16];
	bool ends_worker;     /* EXIT: the worker goes once it is delivered */
	struct cluster_note *next;
};

/* worker_usage.c: the latest sample of a worker's process tree. */
struct worker_usage_state {
	unsigned long long last_ticks;  /* as read the last time */
	unsigned long long total_ticks; /* what has been seen rising: never falls */
	unsigned long long rss_bytes;
	long long last_ms;              /* of the last sample */
	long long tried_ms;             /* of the last try (the tree may be gone) */
	double cpu_percent;
	unsigned processes;
	unsigned samples;
};

struct cluster {
	struct event_base *base;
	struct cluster_settings settings;
	struct event *sigchld_ev;
	struct {
		cluster_event_cb cb;
		void *arg;
	} subs[CLUSTER_EV_COUNT][CLUSTER_MAX_SUBSCRIBERS];
	unsigned nsubs[CLUSTER_EV_COUNT];
	struct cluster_worker *workers; /* doubly linked */
	unsigned nworkers;
	struct handle *handles;         /* doubly linked */
	uint32_t next_handle_id;
	unsigned long handed;
	size_t newconn_truesize;        /* kernel bytes one queued newconn costs */
	struct rlimit worker_nofile;    /* RLIMIT_NOFILE as it was when the
					   cluster was made: workers get it back
					   even if the supervisor raises its own */
	int channel_fd_number;          /* where a worker finds its channel */
	bool disconnecting;
	struct event *drain_timer;      /* worker_drain.c: one tick for all */
	struct conn_census *drain_census; /* while any worker drains */
	unsigned drain_tick_ms;         /* the next tick, growing */
	bool drain_said_blind;          /* logged that it cannot count */
	bool diag_program_read;         /* worker_diagnose.c: its ELF file */
	bool diag_program_said;         /* ... said the shim cannot reach it */
	const char *diag_cause;         /* ... why the shim cannot, or NULL */
	bool seccomp;                   /* ... its workers run in the seccomp
					   mode (seccomp_notify.c) */
	bool seccomp_keeps_privs;       /* ... setuid, we are root: no
					   PR_SET_NO_NEW_PRIVS */
	bool subreaper;                 /* seccomp_daemon.c: orphans come here */
	pid_t guard_pid;                /* daemon_guard.c: its process, or 0 */
	int guard_fd;                   /* ... its socket (with guard_pid) */
	bool said_guard_failed;
	bool said_filter_refused;       /* worker_spawn.c: the seccomp filter */
	bool said_exec;                 /* worker_exec.c: a worker's exec */
	bool said_kernel_rr;            /* reuseport_rr.c: said which */
	bool no_kernel_rr;              /* ... the program would not load */
	unsigned ndraining;
	struct event *usage_timer;      /* worker_usage.c: one tick for all */
	unsigned long protocol_violations; /* workers cut off (worker_channel.c) */
	void (*disconnect_done)(struct cluster *c, void *arg);
	void *disconnect_arg;
	bool said_fd_shortage;          /* worker_channel.c: once per episode */
	unsigned nstarting;             /* workers in flight (starting) */
	struct cluster_worker *start_queue, *start_queue_tail; /* not forked */
	struct event *start_ev;         /* deferred: works the queue */
	/* Events, delivered from a callback of their own once the one that
	 * caused them has returned (Node's process.nextTick): a subscriber
	 * never runs inside handle_listen(), the SIGCHLD loop or an API call. */
	struct cluster_note *notes, **notes_tail;
	struct event *notes_ev;
	/* Sticky sessions (sticky.h): this run's hash seed, and the clients
	 * pinned or lately seen; NULL when sticky is off. */
	uint64_t sticky_seed;
	struct sticky_table *sticky_table;
	/* health_checker.c: the checker, and how many of its probes wait in
	 * a listener's queue (while none does, rr's accept pays one compare) */
	struct health_checker *health;
	unsigned probes_aimed;
};

struct cluster_worker {
	struct cluster *cluster;
	unsigned id;
	pid_t pid;
	enum worker_state state;
	bool queued;                /* in the start queue: no process yet */
	bool cancelled;             /* disconnected or killed while queued */
	struct cluster_worker *next_queued;
	int exec_fd;                /* the exec-error pipe, -1 once settled */
	struct event *exec_ev;
	int start_error;            /* errno of a failed fork or exec, or 0 */
	bool in_flight;             /* counted in cluster.nstarting */
	struct event *settle_timer; /* exec'd: in flight until this at most */
	int channel_fd;
	struct event *channel_ev;
	bool connected;
	bool exited_after_disconnect;
	bool noted_odd_request;     /* worker_channel.c logged one already */
	struct membership *memberships; /* singly linked via next_in_worker */
	struct handle_index_set *indexes;
	struct event *kill_timer;
	bool draining;              /* worker_drain.c: waiting for its connections */
	struct event *diag_timer;   /* worker_diagnose.c */
	unsigned diag_rounds;
	bool diag_said_no_shim, diag_said_foreign;
	struct seccomp_notify *seccomp; /* seccomp mode: its notifications */
	struct seccomp_daemon *daemon;  /* ... the daemon it may become */
	long long drain_deadline_ms;
	unsigned drain_ports[16];   /* its TCP listeners' ports, as it began */
	unsigned ndrain_ports;
	bool drain_queue_empty;     /* ... its leaving slots' queues, as the
				       last census was asked for */
	/* ... the listeners its shim was told to stop accepting on (their
	 * socket inodes), whether a census saw it hold none of them (or
	 * their time, DRAIN_LET_GO_MS, is up), and whether the last census
	 * was asked for after that: only such a census counts them all */
	unsigned long stop_inodes[16];
	unsigned nstop_inodes;
	bool drain_let_go, drain_counted_after_let_go;
	long long drain_let_go_deadline_ms;
	unsigned long handed;
	struct worker_usage_state usage;
	struct output_pipe *output[2]; /* prefix_output: its stdout, stderr */
	struct cluster_note exit_note; /* its EXIT: queued without allocating */
	void *data;
	struct cluster_worker *prev, *next;
};

struct handle {
	struct cluster *cluster;
	uint32_t id;
	char base[HANDLE_KEY_MAX]; /* key without index */
	char key[HANDLE_KEY_MAX];
	char text[SOCKADDR_TEXT_MAX];
	int domain, type, protocol;
	struct sockaddr_storage addr; /* as really bound (port 0 resolved) */
	socklen_t addrlen;
	int fd;           /* the listening (or datagram) socket */
	int backlog;
	bool listening;
	bool shared;      /* none policy, or datagram: workers get fd itself */
	bool reuseport;   /* reuseport policy: a socket per worker slot */
	int *slot_fds;    /* reuseport: by worker id, -1 where none yet */
	unsigned nslots;
	bool kernel_rr;   /* reuseport_rr.c: its group deals round robin */
	int rr_map, rr_socks; /* ... the program's maps: { counter, n }, and
			     the selectable slots' sockets (with kernel_rr) */
	int *rr_key_fd;   /* ... the socket at each key 0..rr_n-1 */
	unsigned rr_n, rr_cap;
	bool path_removed; /* its unix path was removed (unlink()) */
	bool adopted;     /* fd is a copy of a socket systemd passed */
	bool preset_backlog; /* that socket listened already: keep its backlog */
	struct rr_handle *rr;
	struct membership *members; /* singly linked via next_in_handle */
	/* Held by nobody (handle_table.c, orphans): who held it last, how
	 * many listeners that worker had, whether it left on purpose. */
	bool orphan;
	unsigned orphan_id, orphan_need;
	bool orphan_left;
	struct handle *prev, *next;
};

/* One worker's share of one handle. */
struct membership {
	struct handle *handle;
	struct cluster_worker *worker;
	bool listening;
	int retired_slot_fd; /* reuseport_handle.c: the slot socket this
				seccomp worker kept when a reload's replacement
				took its slot (its own to drain), or -1 */
	bool slot_leaving; /* reuseport_handle.c: its slot is out of the
			      kernel's selection, to close once it drained */
	struct rr_member *rr;
	struct membership *next_in_worker;
	struct membership *next_in_handle;
};

/* cluster_sticky.c: the seed and table (settings.sticky); -1 with errno
 * (EINVAL: sticky without rr, or without a name) */
int cluster_sticky_setup(struct cluster *c);
void cluster_sticky_free(struct cluster *c);

/* cluster.c: events go through the queue (see struct cluster) */
void cluster_emit(struct cluster *c, const struct cluster_event *ev);
/* w's EXIT, its last event: once delivered, w is unlinked and freed. */
void cluster_emit_exit(struct cluster_worker *w, const struct cluster_event *ev);
void cluster_logf(struct cluster *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cluster_worker_unlink(struct cluster *c, struct cluster_worker *w);
/* w is no longer starting (it listens, exited, its exec failed, or it was
 * exec'd CLUSTER_START_SETTLE_MS ago): the next queued one may go, from
 * the loop.  Once; later calls do nothing. */
void worker_start_settled(struct cluster_worker *w);
/* w's exec succeeded: it stays in flight until it listens, at most
 * CLUSTER_START_SETTLE_MS. */
void worker_start_exec_done(struct cluster_worker *w);
/* A queued worker's disconnect or kill: it ends without a process. */
void cluster_start_cancel(struct cluster_worker *w);

/* worker.c */
void worker_mark_online(struct cluster_worker *w);
void worker_mark_listening(struct cluster_worker *w, struct handle *h);
/* Its bind of q's address failed with err (EADDRINUSE, EACCES,
 * EADDRNOTAVAIL): a BIND_ERROR event, and the likely cause logged. */
void worker_report_bind_error(struct cluster_worker *w,
			      const struct cluster_msg_query_server *q, int err);
void worker_channel_lost(struct cluster_worker *w);
void worker_reap(struct cluster_worker *w, int status);
/* prefix_output: reads what is left of its pipes, then closes them. */
void worker_output_stop(struct cluster_worker *w);

/* worker.c: step 3 of a disconnect (and the kill timer) */
void worker_signal_graceful(struct cluster_worker *w);

/* worker_drain.c: step 2; false when there is nothing to wait for */
bool worker_drain_start(struct cluster_worker *w);
void worker_drain_cancel(struct cluster_worker *w);

/* worker_diagnose.c: a worker the shim cannot reach gets one line */
void worker_diagnose_start(struct cluster_worker *w);
void worker_diagnose_stop(struct cluster_worker *w);
/* worker_diagnose.c: the cluster runs its workers in the seccomp mode
 * from now on (a worker execs what will not load the shim); keeps_privs:
 * no PR_SET_NO_NEW_PRIVS (a setuid program, we are root). */
void cluster_seccomp_enter(struct cluster *c, bool keeps_privs);
/* worker_exec.c: w is about to exec a program that will not load the
 * shim (CLUSTER_MSG_EXEC); reply_fd is answered or closed. */
void worker_exec_notice(struct cluster_worker *w,
			const struct cluster_msg_exec *msg, int reply_fd);
/* seccomp_notify.c: w's notifications (bind, listen) answered on the
 * loop from the listener fd its child sent; stop frees what start made. */
int seccomp_notify_start(struct cluster_worker *w, int listener);
void seccomp_notify_stop(struct cluster_worker *w);
/* ... the listener fd (-1: none, or every caller gone), and the
 * notifications waiting there answered now */
int seccomp_notify_fd(const struct cluster_worker *w);
void seccomp_notify_drain(struct cluster_worker *w);

/* seccomp_daemon.c: a seccomp worker that daemonizes goes on as its
 * daemon.  enable: the supervisor becomes a child subreaper (before the
 * first seccomp worker forks); from then on reap takes the SIGCHLD loop's
 * place (every child is reaped: a worker's, or an orphan of one). */
void seccomp_daemon_enable(struct cluster *c);
void seccomp_daemon_reap(struct cluster *c);
/* A process of w (its thread tid) calls setsid(). */
void seccomp_daemon_setsid(struct cluster_worker *w, pid_t tid);
/* Every process of w has gone (its seccomp listener hung up). */
void seccomp_daemon_listener_gone(struct cluster_worker *w);
/* w's main process exited (reaped) and w waits for a setsid(): then the
 * status it exited with. */
bool seccomp_daemon_awaiting(const struct cluster_worker *w);
int seccomp_daemon_held_status(const struct cluster_worker *w);
void seccomp_daemon_stop(struct cluster_worker *w);
/* daemon_guard.c: the daemon pid is SIGKILLed if the supervisor dies
 * (it has no parent-death signal); free, at the end: the guard exits. */
void daemon_guard_watch(struct cluster *c, pid_t pid);
void daemon_guard_free(struct cluster *c);
/* The fd number w listened on for handle_id (as it bound it), or -1. */
int seccomp_listener_fd(const struct cluster_worker *w, uint32_t handle_id);

/* worker_usage.c: sampling runs while there are workers; stop frees it */
void worker_usage_arm(struct cluster *c);
void worker_usage_stop(struct cluster *c);

/* rr_handle.c: connections accepted on the listener so far, and those the
 * supervisor holds (accepted, not yet accepted by a worker) */
unsigned long rr_handle_accepted(const struct rr_handle *rr);
unsigned rr_handle_held(const struct rr_handle *rr);
/* ... and those on one member's faux handle, not yet read by its worker */
unsigned rr_member_waiting(const struct rr_member *m);

/* worker_spawn.c: fork+exec without waiting for the exec; returns pid, the
 * supervisor's channel end, the exec-error pipe (non-blocking), and with
 * prefix_output the readers of its stdout and stderr pipes in output[0]
 * and output[1] (else NULL) */
pid_t worker_spawn(struct cluster *c, unsigned id, int *channel_fd,
		   int *exec_fd, struct output_pipe **output);
/* Watches w->exec_fd on the loop until the exec is settled. */
int worker_exec_watch(struct cluster_worker *w);
/* Reads the exec-error pipe: true once settled (EOF, or an errno kept in
 * start_error).  final: settle even when nothing can be read (reaped). */
bool worker_exec_settle(struct cluster_worker *w, bool final);

/* worker_channel.c */
int worker_channel_start(struct cluster_worker *w);
void worker_channel_stop(struct cluster_worker *w);
/* close() of an fd a worker handed over (or of the socket it sent with a
 * query), which never waits: the worker shares the socket and may have
 * connected it, filled its send queue and set SO_LINGER, so that the last
 * close() would wait out the linger time.  A connected socket with
 * SO_LINGER loses it and closes in the background. */
void worker_fd_close(int fd);
/* One message as read from w's channel, with the fds that came with it
 * (at most CLUSTER_MSG_RECV_FDS; every one is used or closed).  0, or -1
 * when it broke the protocol: the worker is cut off and killed, its
 * channel closed (read no more of it).  The read loop and the fuzzer's
 * entry point. */
int worker_channel_handle(struct cluster_worker *w, const void *buf,
			  size_t len, int *fds, int nfds);

/* handle_table.c: what a worker's QUERY_SERVER or LISTEN comes to, for
 * the channel layer to answer with (the handle table sends nothing and
 * emits nothing; see its head). */
struct handle_result {
	int error;                     /* 0, or the errno the worker's call gets */
	struct handle *h;              /* named in the reply; NULL with an error */
	enum cluster_handle_kind kind;
	int fds[2];                    /* sent with the reply (h's: not to close) */
	int nfds;
	bool listening;                /* the worker serves on h once answered */
	bool bind_failed;              /* error came from the bind: report it */
};
/* sock_fd: the worker's socket, used or closed. */
struct handle_result handle_query_server(struct cluster_worker *w,
					 const struct cluster_msg_query_server *q,
					 int sock_fd);
struct handle_result handle_listen(struct cluster_worker *w,
				   const struct cluster_msg_listen *msg);
void handle_close_by_worker(struct cluster_worker *w, uint32_t handle_id);
/* A worker's unlink() of path: false when no live listener has it; else
 * true, with *err the errno for unlink() to return (handle_table.c says
 * what is removed when). */
bool handle_unlink_live_path(struct cluster_worker *w, const char *path,
			     int *err);
/* The socket inodes of every listener the cluster holds; how many. */
size_t handle_inodes(struct cluster *c, unsigned long *out, size_t max);
/* The handle with this id, or NULL (it is gone). */
struct handle *handle_find_id(struct cluster *c, uint32_t id);
/* "rr", "none", or "shared" (datagrams) */
const char *handle_policy_name(const struct handle *h);
/* The worker stops getting connections on every handle (disconnect). */
void handle_worker_stop_routing(struct cluster_worker *w);
/* It leaves on purpose (disconnect, kill): reuseport slots nobody else of
 * its id holds let go of their sockets. */
void handle_worker_release_slots(struct cluster_worker *w);
/* The socket inodes of its stream listeners that it accepts on itself
 * (none, reuseport: not rr); how many. */
unsigned handle_worker_accepting_inodes(const struct cluster_worker *w,
					unsigned long *inodes, unsigned max);
/* The ports of its TCP listeners (all, or the rr ones); how many. */
unsigned handle_worker_tcp_ports(const struct cluster_worker *w, bool rr_only,
				 unsigned *ports, unsigned max);
/* The worker is dead: drop its memberships, keep the listeners. */
void handle_worker_gone(struct cluster_worker *w);
void handle_free_all(struct cluster *c);

/* shared_handle.c: the worker serves from the shared socket itself */
int shared_handle_fds(struct handle *h, int *fds);

/* reuseport_handle.c: a SO_REUSEPORT socket per worker slot; errno or 0 */
int reuseport_prepare(int fd);
int reuseport_adopt(struct handle *h, unsigned slot, int fd);
/* w's slot: a socket of w's own where the one there still serves w's
 * predecessor (a seccomp reload with the kernel's round robin). */
int reuseport_join(struct handle *h, const struct cluster_worker *w,
		   int sock);
int reuseport_listen(struct handle *h, unsigned slot, int backlog, int *fd);
void reuseport_free(struct handle *h);
/* m's worker left its slot on purpose (disconnect, kill): unless another
 * worker of its id holds the handle, the slot's socket (or the one it kept
 * from a reload) is closed (no more connections hashed to it). */
void reuseport_release_slot(struct membership *m);
/* The membership goes: a socket kept from a reload goes with it. */
void reuseport_member_free(struct membership *m);
/* The socket m's worker serves from (-1: none). */
int reuseport_member_fd(const struct membership *m);
/* reuseport_handle.c: w leaves without a shim to stop it accepting
 * (seccomp): its slots nobody else holds leave the kernel's selection but
 * stay open while it takes their queues; how many.  Then, once it
 * drained (or is gone), they close. */
unsigned reuseport_worker_leave(struct cluster_worker *w);
/* Connections queued on w's leaving slots (0 once none, or unknown); a
 * slot w itself has closed (it would never take that queue) is let go now,
 * so that its queue moves to a live slot. */
unsigned reuseport_leaving_queue(struct cluster_worker *w);
void reuseport_worker_left(struct cluster_worker *w);
/* reuseport_rr.c: the kernel's round robin over h's selectable slot
 * sockets: a slot joins once it listens (the first attaches the program);
 * a socket leaves before it closes or while it drains (false: it was not
 * in). */
void reuseport_rr_select(struct handle *h, unsigned slot);
bool reuseport_rr_deselect(struct handle *h, int sock);
void reuseport_rr_free(struct handle *h);
/* net.ipv4.tcp_migrate_req=1 where we may, so that a slot's socket that
 * closes hands what is queued in it to the others; one line if we may not. */
void reuseport_enable_migration(struct cluster *c);

/* rr_handle.c: the supervisor accepts and hands connections out */
struct rr_handle *rr_handle_new(struct handle *h);
void rr_handle_free(struct rr_handle *rr);
void rr_handle_start(struct rr_handle *rr);
/* New member; fds[0] = the worker's faux end, fds[1] = the listener. */
struct rr_member *rr_handle_add(struct rr_handle *rr,
				struct cluster_worker *w, bool wants_nonblock,
				int *fds);
/* No new connections for this member; unread ones go to others (in a
 * full stop they stay: nobody else is left). */
void rr_member_stop(struct rr_handle *rr, struct rr_member *m);
/* A full stop: deal the accept queue, then shut the listener down. */
void rr_handle_close_door(struct rr_handle *rr);
/* handle_table.c: rr_handle_close_door() for every rr handle. */
void handle_close_rr_doors(struct cluster *c);
/* listener_stats.c: connections handed to w on its rr faux handles and
 * not yet read (one ioctl per rr listener). */
unsigned worker_rr_unread(const struct cluster_worker *w);
/* The member's worker is gone: stop, reclaim and free. */
void rr_member_free(struct rr_handle *rr, struct rr_member *m);
size_t rr_calibrate_truesize(void);
/* 1 once w's member of rr has read the seq-th connection it was sent, 0
 * while not, -1 when w is no member of rr (any more). */
int rr_handle_probe_taken(struct rr_handle *rr, const struct cluster_worker *w,
			  unsigned long seq);

/* health_checker.c and health_probe.c, for rr_handle.c: the probe whose
 * connection came from peer (accepted now: no longer aimed), or NULL for
 * any other; only asked while probes_aimed > 0. */
struct health_probe *health_probe_claim(struct cluster *c,
					const struct sockaddr *peer,
					socklen_t len);
struct cluster_worker *health_probe_worker(const struct health_probe *p);
/* It was handed to its worker, as the seq-th connection of its member;
 * or it could not be (why: a static string), and rr closed it. */
void health_probe_delivered(struct health_probe *p, unsigned long seq);
void health_probe_undelivered(struct health_probe *p, const char *why);

#endif
