/*
 * shim.h - state of libcluster_shim.so inside one worker process.
 *
 * The shim is active only in a worker: a process started by cluster-run with
 * CLUSTER_CHANNEL_FD in its environment, and the processes that worker forks.
 * Everywhere else every interposed function goes straight to libc.
 */
#ifndef SHIM_H
#define SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cluster_proto.h"
#include "proto_codec.h"

/* -1 when this process is not a worker. */
extern int shim_channel_fd;
/* The pid that checked in with the supervisor (the worker's main process). */
extern pid_t shim_worker_pid;

static inline bool shim_active(void)
{
	return __atomic_load_n(&shim_channel_fd, __ATOMIC_RELAXED) >= 0;
}

/* Only the worker's main process (or the daemon it became, daemon.c)
 * speaks for the worker when it lets go of a handle; a forked child closing
 * its inherited copy changes nothing. */
bool shim_is_worker_main(void);

/* ---- daemonizing servers (daemon.c) ---- */

/* This process bound through the supervisor or accepted on a listener. */
extern bool shim_served;
/* This process is the daemon serving for the worker. */
bool shim_is_daemon(void);
void shim_daemon_init(void);
void shim_daemon_after_fork_child(void);

/* ---- per-process handle slots: this process's share of one handle ---- */

#define SHIM_MAX_HANDLES 256

struct shim_handle {
	int in_use;              /* atomic: slot claimed */
	uint32_t handle_id;      /* the supervisor's id */
	int domain, type, protocol;
	struct cluster_sockaddr requested; /* what bind() asked for */
	struct cluster_sockaddr bound;     /* what the handle really has */
	int shadow_fd;           /* rr: a copy of the real listener, for
				    get/setsockopt on the faux fd; else -1 */
	int refs;                /* atomic: fds of this process on it */
	/* The server's own O_NONBLOCK for this listener, as of bind() and
	 * every F_SETFL/FIONBIO since.  In rr the first worker's socket *is*
	 * the supervisor's non-blocking listener, so the file cannot tell. */
	bool server_nonblock;
	bool supervisor_accepts; /* rr: pending fd's file flags are not ours */
};

struct shim_handle *shim_handle_get(unsigned slot);
int shim_handle_alloc(void);
/* Frees a slot that never reached the supervisor's books. */
void shim_handle_discard(unsigned slot);
void shim_handle_ref(unsigned slot);
/* Drops one fd's reference; at the last one tells the supervisor (from the
 * main process) and frees the slot. */
void shim_handle_unref(unsigned slot);

/* ---- fd table: which fds are cluster listeners ---- */

#define SHIM_MAX_FD 65536

enum shim_fd_kind {
	SHIM_FD_NONE = 0,
	SHIM_FD_PENDING, /* bound through the supervisor, not listening yet */
	SHIM_FD_SHARED,  /* the shared socket itself is installed */
	SHIM_FD_FAUX,    /* a faux handle fed with newconn messages */
	SHIM_FD_INTERNAL, /* the shim's own: the channel, a shadow listener;
			     the server can neither close it nor see it */
};

/* The slot of the channel's SHIM_FD_INTERNAL entry (a shadow's is the slot
 * of its handle). */
#define SHIM_SLOT_CHANNEL 0xffffffu

struct shim_fd_info {
	enum shim_fd_kind kind;
	unsigned slot;
};

/* Fast: false for every fd that is not a cluster listener (the shim's own
 * fds included). */
bool shim_fd_lookup(int fd, struct shim_fd_info *info);
/* Whether fd is one of the shim's own (and whose: *slot). */
bool shim_fd_internal(int fd, unsigned *slot);
/* The highest fd that ever had an entry, -1 if none. */
int shim_fd_high(void);
/* close(fd) is about to happen: -1 if fd is the shim's own and must stay
 * open; 1 if it was a listener, whose entry is cleared and whose slot is in
 * *slot (drop that reference once the fd is closed, so the supervisor lets
 * go of the handle only after this process did); 0 otherwise, after one
 * load. */
int shim_fd_take(int fd, unsigned *slot);
void shim_fd_set(int fd, enum shim_fd_kind kind, unsigned slot);
void shim_fd_clear(int fd);
/* The fd forgets its handle (its reference is dropped). */
void shim_fd_detach(int fd);
/* fd2 becomes another reference to what fd is (dup and friends). */
void shim_fd_copy(int fd, int fd2);

/* ---- the channel to the supervisor ---- */

/*
 * Sends a request with a private reply socket (and extra_fd, or -1) and waits
 * for the reply.  Received fds land in fds[], *nfds of them, close-on-exec.
 * Returns 0, or -1 with errno set when the supervisor cannot be reached.
 */
int shim_channel_request(void *msg, int extra_fd,
			 struct cluster_msg_reply *reply,
			 int fds[CLUSTER_MSG_RECV_FDS], int *nfds);
/* A message that needs no answer. */
int shim_channel_notify(void *msg);

/* The server wants fd2's number: move the shim's own fd away if it is
 * there (the channel, a shadow listener). */
void shim_channel_vacate(int fd2);
/* Sets the channel's fd (at start-up, or when it moves). */
void shim_channel_set_fd(int fd);

/* The handler for CLUSTER_SIG_STOP_ACCEPTING (stop_accepting.c). */
void shim_stop_accepting_install(void);

/* Moves fd to a high number out of the server's way. */
int shim_move_fd_high(int fd, bool cloexec);

/* Makes newfd take fd's place with fd's FD_CLOEXEC, the given O_NONBLOCK
 * and fd's epoll registrations. */
int shim_install_fd(int newfd, int fd, bool nonblock);

/* ---- epoll registrations that follow an fd number (epoll_carry.c) ---- */

#define SHIM_EPOLL_MAX_REGS 16

struct shim_epoll_reg {
	int epfd;
	uint32_t events;
	uint64_t data;
};

/* The registrations of fd's current file under fd, at most max. */
int shim_epoll_regs(int fd, struct shim_epoll_reg *regs, int max);
/* Before the swap: removes them; after it: makes them on the new file. */
void shim_epoll_drop(int fd, const struct shim_epoll_reg *regs, int n);
void shim_epoll_restore(int fd, const struct shim_epoll_reg *regs, int n);

/* fcntl(F_SETFL) or ioctl(FIONBIO) on a listener still waiting for listen():
 * records the server's wish; returns true when the real call must be
 * skipped because the file belongs to the supervisor's accept loop. */
bool shim_pending_set_nonblock(int fd, bool nonblock);
/* F_GETFL on such an fd: the flags with the server's own O_NONBLOCK. */
int shim_pending_getfl(int fd, int real_flags);

#endif
