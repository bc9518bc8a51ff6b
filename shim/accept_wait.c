/*
 * Threads blocked in accept() on a shared listener (none, reuseport).
 *
 * When the shim retires a shared listener of this worker (shutdown(),
 * stop-accepting), it puts another file on the fd number; but a thread
 * already blocked in accept() waits on the old file and would take one
 * more connection from the cluster's socket.  So the blocking accept()s on
 * shared listeners are registered here, and a retirement sends each such
 * thread CLUSTER_SIG_STOP_ACCEPTING with tgkill(): the handler (installed
 * with SA_RESTART) does nothing for a signal the process sent itself, and
 * the kernel restarts the accept(), which looks the fd up again and finds
 * the file now there (a shut-down socket: EINVAL; a never-ready one: it
 * sleeps, until a signal: EINTR, which lets a server's graceful signal
 * through).  A fixed table, no allocation, async-signal-safe.
 *
 * That EINTR alone does not reach a server that goes back to select()
 * before it looks at its flag (dropbear: its select() woke for a
 * connection another worker took, so it slept in accept(); the signal
 * came there).  So the never-ready socket is then shut down for reading,
 * which select() and poll() report as readable; the server's next accept()
 * on it puts a fresh never-ready socket in its place and sleeps again.  A
 * signal the server ignores costs it one more wakeup, never a spin.
 * Another thread asleep in accept() on the same fd sees that shutdown as
 * EINVAL: it puts a fresh never-ready socket there and sleeps on.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

#define ACCEPT_WAITERS 128

struct waiter {
	int tid; /* 0: free */
	int fd;
};

static struct waiter waiters[ACCEPT_WAITERS];

/* The fds stop-accepting retired, and the inode of the never-ready
 * socket each holds (a later dup2() onto the number is not ours). */
#define RETIRED_MAX 64

struct retired {
	int fd; /* -1: free */
	unsigned long ino;
	bool woken; /* shut down for reading: readable */
};

static struct retired retired[RETIRED_MAX] = {
	[0 ... RETIRED_MAX - 1] = { .fd = -1 },
};
static int nretired;

static unsigned long inode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

void shim_accept_retire(int fd)
{
	int i;

	for (i = 0; i < RETIRED_MAX; i++)
		if (retired[i].fd < 0) {
			retired[i].ino = inode_of(fd);
			retired[i].woken = false;
			retired[i].fd = fd;
			__atomic_add_fetch(&nretired, 1, __ATOMIC_RELEASE);
			return;
		}
}

static struct retired *retired_entry(int fd)
{
	int i;

	if (__atomic_load_n(&nretired, __ATOMIC_ACQUIRE) == 0)
		return NULL;
	for (i = 0; i < RETIRED_MAX; i++)
		if (retired[i].fd == fd)
			return &retired[i];
	return NULL;
}

bool shim_accept_retired(int fd)
{
	struct retired *r = retired_entry(fd);

	return r && r->ino != 0 && inode_of(fd) == r->ino;
}

void shim_accept_forget(int fd)
{
	struct retired *r = retired_entry(fd);

	if (r) {
		r->fd = -1;
		__atomic_sub_fetch(&nretired, 1, __ATOMIC_RELEASE);
	}
}

/* A never-ready socket that was shut down to wake a select() (or, with
 * force, one found shut down under an accept()): a fresh one in its
 * place. */
static void retired_renew(int fd, bool force)
{
	struct retired *r = retired_entry(fd);
	int nr, fl;

	if (!r || !(r->woken || force) || !shim_accept_retired(fd))
		return;
	fl = real_fcntl(fd, F_GETFL, NULL);
	nr = shim_never_ready_socket();
	if (nr < 0)
		return;
	if (shim_install_fd(nr, fd, fl >= 0 && (fl & O_NONBLOCK)) < 0) {
		real_close(nr);
		return;
	}
	r->ino = inode_of(fd);
	r->woken = false;
}

/* A signal came while the server slept in accept() on it: readable, so
 * that the select() the server goes back to returns. */
static void retired_wake(int fd)
{
	struct retired *r = retired_entry(fd);

	if (r && shim_accept_retired(fd) && real_shutdown(fd, SHUT_RD) == 0)
		r->woken = true;
}
static __thread int cached_tid __attribute__((tls_model("initial-exec")));

static int my_tid(void)
{
	if (cached_tid == 0)
		cached_tid = (int)real_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	return cached_tid;
}

static int waiter_add(int fd)
{
	int tid = my_tid(), i;

	for (i = 0; i < ACCEPT_WAITERS; i++) {
		int expected = 0;

		if (__atomic_compare_exchange_n(&waiters[i].tid, &expected,
						-1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			waiters[i].fd = fd;
			__atomic_store_n(&waiters[i].tid, tid,
					 __ATOMIC_RELEASE);
			return i;
		}
	}
	return -1; /* full: this one is not woken (documented limit) */
}

/* accept() found EAGAIN on fd: whether that is the receive timeout of
 * the never-ready socket that stop-accepting put there (stop_accepting.c)
 * under a blocking accept, which then goes on waiting. */
static bool retired_timeout(int fd)
{
	struct shim_fd_info info;
	int fl;

	if (errno != EAGAIN && errno != EWOULDBLOCK)
		return false;
	fl = real_fcntl(fd, F_GETFL, NULL);
	return fl >= 0 && !(fl & O_NONBLOCK) && !shim_fd_lookup(fd, &info);
}

/* accept() found EINVAL on fd: whether that is the never-ready socket
 * that another thread's retired_wake() shut down, under this thread's
 * accept(); then a fresh one goes in its place and this one waits on.
 * The never-ready socket listens until it is shut down, so EINVAL on it
 * says that alone: the woken flag is not asked for, since retired_wake()
 * sets it only after its shutdown() returns, and this thread can be
 * woken by that shutdown before (seen: fx_threads' stop, EINVAL). */
static bool retired_shut_under_us(int fd)
{
	if (errno != EINVAL || !shim_accept_retired(fd))
		return false;
	retired_renew(fd, true);
	return true;
}

int shim_accept_shared(int fd, struct sockaddr *addr, socklen_t *len,
		       int flags)
{
	int slot, conn, saved;

	retired_renew(fd, false);
	slot = waiter_add(fd);
	do
		conn = real_accept4(fd, addr, len, flags);
	while (conn < 0 && (retired_timeout(fd) || retired_shut_under_us(fd)));
	saved = errno;
	if (conn < 0 && saved == EINTR)
		retired_wake(fd);
	if (slot >= 0)
		__atomic_store_n(&waiters[slot].tid, 0, __ATOMIC_RELEASE);
	errno = saved;
	return conn;
}

void shim_accept_wake(int fd)
{
	pid_t pid = shim_real_pid();
	int self = my_tid(), i;

	for (i = 0; i < ACCEPT_WAITERS; i++) {
		int tid = __atomic_load_n(&waiters[i].tid, __ATOMIC_ACQUIRE);

		if (tid > 0 && tid != self &&
		    (fd < 0 || __atomic_load_n(&waiters[i].fd,
					       __ATOMIC_RELAXED) == fd))
			real_syscall6(SYS_tgkill, pid, tid,
				      CLUSTER_SIG_STOP_ACCEPTING, 0, 0, 0);
	}
}

void shim_accept_wait_after_fork_child(void)
{
	int i;

	cached_tid = 0;
	for (i = 0; i < ACCEPT_WAITERS; i++)
		__atomic_store_n(&waiters[i].tid, 0, __ATOMIC_RELAXED);
}
