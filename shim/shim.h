/*
 * shim.h - state of libcluster_shim.so inside one worker process.
 *
 * The shim is active only in a worker: a process started by cluster-run with
 * CLUSTER_CHANNEL_FD in its environment, and the processes that worker forks.
 * Everywhere else every interposed function goes straight to libc.
 *
 * The ownership model (ownership.c).  Every rule of the shim follows from it:
 *
 *  1. The worker is its main process: the pid cluster-run started, compared
 *     with the kernel's pid (syscall(SYS_getpid)), never a cached one; or
 *     the daemon it becomes (daemon.c): a process of the worker that calls
 *     setsid() before the worker has started serving (and the child that
 *     daemon forks before it binds or accepts anything: a double fork).  Only the worker
 *     speaks to the supervisor about its handles (queryServer, CLOSE).
 *
 *  2. The worker has started serving once its main process (or its daemon)
 *     has taken its first connection from a cluster listener: an accept()
 *     or accept4() on one returned a connection.  One flag, in a page all
 *     processes of the worker share; it never goes back.
 *
 *  3. A bind() is a cluster bind (sent to the supervisor, shared with the
 *     other workers) when, and only when, the worker makes it before it has
 *     started serving.  Every other bind is the process's own real bind, as
 *     without cluster-run: a forked child's (vsftpd's PASV ports, tftpd's
 *     per-transfer sockets), and any listener the worker opens once it
 *     serves (per-session, passive-mode, forward listeners).  A reload's new
 *     worker is a new worker: the same rule, from its own start.
 *
 *  4. A forked process inherits fds as the kernel gives them: it may accept
 *     on an inherited listener (pre-fork pools), and its close() or
 *     shutdown() of one changes its own fds only, never the worker's
 *     handles.  The worker lets go of a handle when its own last fd on it is
 *     closed and no process it forked holds the listener any more (a
 *     pre-fork master that closes its listener leaves it to its children).
 *
 *  5. A process that shares the worker's memory without being it (a vfork()
 *     or posix_spawn() child, until it execs) never writes the shim's state:
 *     every call it makes goes straight to libc, on its own fds.
 */
#ifndef SHIM_H
#define SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cluster_proto.h"
#include "proto_codec.h"

/* -1 when this process is not a worker. */
extern int shim_channel_fd;
/* The pid that checked in with the supervisor (the worker's main process). */
extern pid_t shim_worker_pid;

/* ---- the ownership model (ownership.c) ---- */

/* Shared by every process of the worker (MAP_SHARED, made at start-up). */
struct shim_worker_page {
	pid_t daemon_pid; /* the daemon serving for the worker now, or 0 */
	int serving;      /* rule 2: the worker has taken a connection */
};

/* NULL if the page could not be made (then nothing is shared). */
extern struct shim_worker_page *shim_page;
/* This process as the shim knows it: set at start-up and in a forked
 * child; a vfork child still has its parent's. */
extern pid_t shim_self_pid;

pid_t shim_real_pid(void);
/* False in a process that shares this memory without being its owner (a
 * vfork or posix_spawn child): it must write nothing (rule 5). */
bool shim_owns_memory(void);
/* Rule 2. */
bool shim_worker_serving(void);
/* Rule 3: whether a bind() now goes to the supervisor. */
bool shim_binds_for_cluster(void);
/* accept() on a cluster listener returned conn: notes rule 2; returns
 * conn. */
int shim_took_connection(int conn);
void shim_ownership_init(void);
void shim_ownership_after_fork_child(void);

static inline bool shim_active(void)
{
	return __atomic_load_n(&shim_channel_fd, __ATOMIC_RELAXED) >= 0;
}

/* Rule 1: this process is the worker (its main process or its daemon). */
bool shim_is_worker_main(void);

/* ---- daemonizing servers (daemon.c) ---- */

/* This process bound through the supervisor or accepted on a listener. */
extern bool shim_served;
/* This process is the daemon serving for the worker. */
bool shim_is_daemon(void);
/* Forked by the daemon before the daemon bound or accepted anything (the
 * second fork of a double fork): the daemon to be. */
bool shim_is_daemon_heir(void);
void shim_daemon_after_fork_child(void);

/* ---- per-process handle slots: this process's share of one handle ---- */

#define SHIM_MAX_HANDLES 256
#define SHIM_HANDLE_HEIRS 16

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
	/* SO_REUSEPORT as the server set it (the reuseport policy sets it on
	 * the real socket): what getsockopt() tells, what a client gets. */
	bool server_reuseport;
	/* Rule 4: the processes forked while this process held the handle
	 * (the latest SHIM_HANDLE_HEIRS), and the inode of the file they
	 * inherited; once this process closed its last fd, the handle is
	 * left to them until none holds that file. */
	unsigned long ino;
	pid_t heirs[SHIM_HANDLE_HEIRS];
	unsigned nheirs;
	bool left_to_heirs;
};

struct shim_handle *shim_handle_get(unsigned slot);
int shim_handle_alloc(void);
/* Frees a slot that never reached the supervisor's books. */
void shim_handle_discard(unsigned slot);
void shim_handle_ref(unsigned slot);
/* Drops one fd's reference; at the last one tells the supervisor (from the
 * worker, once no process it forked holds the listener: rule 4) and frees
 * the slot. */
void shim_handle_unref(unsigned slot);
/* fd is now the slot's file (bind, listen): the one its heirs inherit. */
void shim_handle_set_file(unsigned slot, int fd);
/* The worker forked child: an heir of every handle it holds. */
void shim_handle_note_fork(pid_t child);
/* Lets go of the handles left to heirs that no heir holds any more. */
void shim_handle_recheck_heirs(void);
/* The worker unlinks path: a unix listener on it left to heirs is let go
 * (the supervisor may then remove the path). */
void shim_handle_path_unlinked(const char *path);

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
 * go of the handle only after this process did); 0 otherwise (always in a
 * vfork child), after one load. */
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

/* ---- threads blocked in accept() on a shared listener (accept_wait.c) */

/* accept4() on a shared listener, registered while it blocks. */
int shim_accept_shared(int fd, struct sockaddr *addr, socklen_t *len,
		       int flags);
/* Makes every other thread blocked in accept() on fd (any fd: -1) look
 * its fd up again (async-signal-safe). */
void shim_accept_wake(int fd);
void shim_accept_wait_after_fork_child(void);
/* A listening socket nobody can reach (stop_accepting.c), or -1. */
int shim_never_ready_socket(void);
/* fd now holds a never-ready socket of stop-accepting's. */
void shim_accept_retire(int fd);
/* Whether fd still does (accept() on it goes to shim_accept_shared). */
bool shim_accept_retired(int fd);
/* fd was closed. */
void shim_accept_forget(int fd);

/* The handler for CLUSTER_SIG_STOP_ACCEPTING (stop_accepting.c). */
void shim_stop_accepting_install(void);
/* Whether this thread is in that handler (nothing there may wait). */
bool shim_in_signal_handler(void);

/* stopped_names.c: fd stops accepting, stand_in about to take its place:
 * keep the name getsockname() gives fd now (async-signal-safe). */
void shim_stopped_remember(int fd, int stand_in);
/* fd's name from before the swap, if fd still holds that stand-in. */
bool shim_stopped_name(int fd, struct sockaddr *addr, socklen_t *len);

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
