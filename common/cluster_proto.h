/*
 * cluster_proto.h - the messages exchanged between the supervisor and the
 * shim running inside each worker.  This header is the one definition both
 * sides compile against.
 *
 * Transport
 *   - The worker channel is a SOCK_SEQPACKET socketpair per worker.  The
 *     worker only ever *writes* requests to it; the supervisor reads them.
 *   - A request that needs an answer carries, as its first SCM_RIGHTS fd, a
 *     fresh "reply socket" (one end of a SOCK_SEQPACKET socketpair the shim
 *     made for this one request).  The supervisor writes exactly one
 *     cluster_msg_reply on it and closes it.  Because every request has its
 *     own reply path, threads and forked children of a worker can query at
 *     the same time without a lock and without stealing each other's replies.
 *   - A round-robin listener in the worker ("faux handle") is its end of
 *     another SOCK_SEQPACKET socketpair; the supervisor writes one
 *     cluster_msg_newconn per accepted connection, the connection's fd
 *     attached with SCM_RIGHTS.
 *
 * Every message starts with cluster_msg_header.  Every message has a fixed
 * size per type; a receiver rejects a message whose length does not match.
 */
#ifndef CLUSTER_PROTO_H
#define CLUSTER_PROTO_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#define CLUSTER_PROTO_VERSION 1

/* Environment contract between supervisor and shim (Node: NODE_UNIQUE_ID). */
#define CLUSTER_ENV_WORKER_ID "CLUSTER_WORKER_ID"
#define CLUSTER_ENV_CHANNEL_FD "CLUSTER_CHANNEL_FD"
/* The worker's pid.  A program the worker process itself execs (a wrapper
 * script exec'ing the real server) keeps the pid and stays the worker; a
 * program a forked child execs (CGI, sh -c) has another pid and is not. */
#define CLUSTER_ENV_WORKER_PID "CLUSTER_WORKER_PID"

/* Sent by the supervisor to a worker whose shim checked in, at the start of
 * a graceful disconnect in none/reuseport: the shim puts a listening socket
 * nobody can reach in place of each shared stream listener, so the server
 * stops accepting without noticing while the connections it holds finish.
 * A real-time signal: servers do not use the top ones. */
#define CLUSTER_SIG_STOP_ACCEPTING (SIGRTMAX - 3)

/* Largest number of fds any message carries. */
#define CLUSTER_MSG_MAX_FDS 2

enum cluster_msg_type {
	CLUSTER_MSG_HELLO = 1,    /* w->s  worker's shim is up ("online")      */
	CLUSTER_MSG_QUERY_SERVER, /* w->s  bind(): fds [reply, server socket]  */
	CLUSTER_MSG_LISTEN,       /* w->s  listen(): fds [reply]               */
	CLUSTER_MSG_CLOSE,        /* w->s  worker let go of a handle: fds
				     [reply], or none; a reply comes once the
				     supervisor let go too (the listening
				     socket closed, if it was the last)     */
	CLUSTER_MSG_UNLINK_PATH,  /* w->s unlink() of a socket path: fds [reply] */
	CLUSTER_MSG_REPLY,        /* s->w  answer on a reply socket, fd opt.   */
	CLUSTER_MSG_NEWCONN,      /* s->w  accepted connection on a faux handle */
	CLUSTER_MSG_EXEC,         /* w->s  the worker is about to exec a
				     program that will not load the shim:
				     fds [reply]; exec follows the answer */
	CLUSTER_MSG_TYPE_MAX
};

struct cluster_msg_header {
	uint16_t version; /* CLUSTER_PROTO_VERSION */
	uint16_t type;    /* enum cluster_msg_type */
	uint32_t length;  /* whole message, header included */
};

/* A socket address as bind() got it, in a fixed-size field. */
struct cluster_sockaddr {
	uint32_t len; /* socklen_t as passed to bind() */
	uint32_t pad;
	struct sockaddr_storage ss;
};

struct cluster_msg_hello {
	struct cluster_msg_header hdr;
	int32_t pid;
	uint32_t worker_id;
};

/* How a handle is shared, as told to the shim in a reply. */
enum cluster_handle_kind {
	CLUSTER_HANDLE_PENDING = 0, /* bound; the fd to install comes with LISTEN */
	CLUSTER_HANDLE_SHARED = 1,  /* the fd is the shared socket itself        */
	CLUSTER_HANDLE_FAUX = 2,    /* the fd is a faux handle fed with newconn  */
};

struct cluster_msg_query_server {
	struct cluster_msg_header hdr;
	int32_t domain;   /* AF_INET, AF_INET6, AF_UNIX                        */
	int32_t type;     /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (no flags) */
	int32_t protocol;
	uint32_t flags;   /* reserved, 0 */
	struct cluster_sockaddr addr;
};

/* listen flags */
#define CLUSTER_LISTEN_NONBLOCK_CONNS 0x1 /* the listener is non-blocking:
	the server will want its connections so (accept4 SOCK_NONBLOCK), and
	rr delivers them that way, sparing the worker a syscall per accept */

struct cluster_msg_listen {
	struct cluster_msg_header hdr;
	uint32_t handle_id;
	int32_t backlog;
	uint32_t flags;   /* CLUSTER_LISTEN_* */
	uint32_t pad;
};

struct cluster_msg_close {
	struct cluster_msg_header hdr;
	uint32_t handle_id;
	uint32_t pad;
};

/* "Remove this unix socket path unless it is a live listener."  Done by the
 * supervisor, which binds those paths, so that the check and the unlink are
 * one step: a worker's unlink() can never remove a path that another
 * worker's bind() has just created. */
struct cluster_msg_unlink_path {
	struct cluster_msg_header hdr;
	char path[108]; /* sizeof(sun_path); NUL-terminated */
	uint32_t pad;
};

/* reply flags */
#define CLUSTER_REPLY_SUPERVISOR_ACCEPTS 0x1 /* rr: the supervisor owns the
	listener's O_NONBLOCK (the first worker's socket is that listener) */

struct cluster_msg_reply {
	struct cluster_msg_header hdr;
	int32_t error;     /* 0 or an errno value for the libc call to return */
	uint32_t handle_id;
	uint32_t kind;     /* enum cluster_handle_kind of the attached fd */
	uint32_t nfds;     /* fds attached: 0, 1 (listener/faux) or 2 (faux + real listener) */
	uint32_t flags;    /* CLUSTER_REPLY_* */
	uint32_t pad;
	struct cluster_sockaddr bound; /* the address the handle really has */
};

/* newconn flags */
#define CLUSTER_NEWCONN_NONBLOCK 0x1 /* the socket's O_NONBLOCK is already set */

struct cluster_msg_newconn {
	struct cluster_msg_header hdr;
	uint32_t flags;
	uint32_t pad;
	struct cluster_sockaddr peer;
};

/* Why the program a worker execs will not load the shim (exec.c). */
enum cluster_exec_reason {
	CLUSTER_EXEC_STATIC = 1,   /* no program interpreter */
	CLUSTER_EXEC_GO,           /* makes its own socket system calls */
	CLUSTER_EXEC_SETUID,       /* secure execution: LD_PRELOAD ignored */
	CLUSTER_EXEC_32BIT,        /* the 64-bit shim cannot load into it */
	CLUSTER_EXEC_NO_PRELOAD,   /* its LD_PRELOAD no longer names the shim */
	CLUSTER_EXEC_NO_WORKER_ENV, /* CLUSTER_CHANNEL_FD or CLUSTER_WORKER_PID
				      gone from its environment */
	CLUSTER_EXEC_REASON_MAX
};

#define CLUSTER_EXEC_PATH_MAX 256

/* Sent by the worker's main process (or its daemon) before it serves, in
 * place of an exec that would leave the shim behind; the exec waits for
 * the answer (a bounded time): the supervisor may switch the cluster to
 * the seccomp mode and restart the worker instead. */
struct cluster_msg_exec {
	struct cluster_msg_header hdr;
	uint32_t reason;  /* enum cluster_exec_reason */
	uint32_t pad;
	char path[CLUSTER_EXEC_PATH_MAX]; /* what it execs; NUL-terminated,
					     cut short if longer */
};

/* Bytes a receiver must be ready to read: the largest message. */
#define CLUSTER_MSG_MAX_SIZE 512

#endif
