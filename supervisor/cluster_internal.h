/*
 * cluster_internal.h - the supervisor's own structures, shared by its files
 * (cluster.c, worker.c, worker_spawn.c, worker_channel.c, handle_table.c,
 * shared_handle.c, rr_handle.c).  Not part of the public API.
 */
#ifndef CLUSTER_INTERNAL_H
#define CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "cluster.h"
#include "cluster_proto.h"
#include "handle_key.h"
#include "sockaddr_text.h"

struct event;
struct handle;
struct membership;
struct output_pipe;
struct rr_handle;
struct rr_member;

#define CLUSTER_MAX_SUBSCRIBERS 8

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
	unsigned ndraining;
	void (*disconnect_done)(struct cluster *c, void *arg);
	void *disconnect_arg;
};

struct cluster_worker {
	struct cluster *cluster;
	unsigned id;
	pid_t pid;
	enum worker_state state;
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
	long long drain_deadline_ms;
	unsigned drain_ports[16];   /* its TCP listeners' ports, as it began */
	unsigned ndrain_ports;
	unsigned long handed;
	struct output_pipe *output[2]; /* prefix_output: its stdout, stderr */
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
	bool owns_path;   /* a unix path we bound: unlinked when freed */
	bool adopted;     /* fd is a copy of a socket systemd passed */
	bool preset_backlog; /* that socket listened already: keep its backlog */
	struct rr_handle *rr;
	struct membership *members; /* singly linked via next_in_handle */
	struct handle *prev, *next;
};

/* One worker's share of one handle. */
struct membership {
	struct handle *handle;
	struct cluster_worker *worker;
	bool listening;
	struct rr_member *rr;
	struct membership *next_in_worker;
	struct membership *next_in_handle;
};

/* cluster.c */
void cluster_emit(struct cluster *c, const struct cluster_event *ev);
void cluster_logf(struct cluster *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cluster_worker_unlink(struct cluster *c, struct cluster_worker *w);

/* worker.c */
void worker_mark_online(struct cluster_worker *w);
void worker_mark_listening(struct cluster_worker *w, struct handle *h);
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

/* worker_spawn.c: fork+exec; returns pid and the supervisor's channel end,
 * and with prefix_output the readers of its stdout and stderr pipes in
 * output[0] and output[1] (else NULL) */
pid_t worker_spawn(struct cluster *c, unsigned id, int *channel_fd,
		   struct output_pipe **output);

/* worker_channel.c */
int worker_channel_start(struct cluster_worker *w);
void worker_channel_stop(struct cluster_worker *w);
int reply_send(int reply_fd, int error, const struct handle *h,
	       enum cluster_handle_kind kind, const int *fds, int nfds);
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

/* handle_table.c */
void handle_query_server(struct cluster_worker *w,
			 const struct cluster_msg_query_server *q, int sock_fd,
			 int reply_fd);
void handle_listen(struct cluster_worker *w,
		   const struct cluster_msg_listen *msg, int reply_fd);
void handle_close_by_worker(struct cluster_worker *w, uint32_t handle_id);
bool handle_path_is_live(struct cluster *c, const char *path);
/* The socket inodes of every listener the cluster holds; how many. */
size_t handle_inodes(struct cluster *c, unsigned long *out, size_t max);
/* "rr", "none", or "shared" (datagrams) */
const char *handle_policy_name(const struct handle *h);
/* The worker stops getting connections on every handle (disconnect). */
void handle_worker_stop_routing(struct cluster_worker *w);
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
int reuseport_join(struct handle *h, unsigned slot, int sock);
int reuseport_listen(struct handle *h, unsigned slot, int backlog, int *fd);
void reuseport_free(struct handle *h);

/* rr_handle.c: the supervisor accepts and hands connections out */
struct rr_handle *rr_handle_new(struct handle *h);
void rr_handle_free(struct rr_handle *rr);
void rr_handle_start(struct rr_handle *rr);
/* New member; fds[0] = the worker's faux end, fds[1] = the listener. */
struct rr_member *rr_handle_add(struct rr_handle *rr,
				struct cluster_worker *w, bool wants_nonblock,
				int *fds);
/* No new connections for this member; unread ones go to others. */
void rr_member_stop(struct rr_handle *rr, struct rr_member *m);
/* The member's worker is gone: stop, reclaim and free. */
void rr_member_free(struct rr_handle *rr, struct rr_member *m);
size_t rr_calibrate_truesize(void);

#endif
