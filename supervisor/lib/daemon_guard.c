/*
 * daemon_guard.c - a seccomp worker's daemon (seccomp_daemon.c) has no
 * parent-death signal: the kernel clears it at fork(), and only the
 * process itself may set it.  So that no daemon outlives a cluster-run
 * that is killed (SIGKILL, a crash), a small process forked from the
 * supervisor at the first daemon holds a pidfd of each daemon, sent over a
 * socket; when the supervisor's end closes (it exited, whichever way), the
 * guard SIGKILLs the daemons still alive, with their process groups, and
 * exits.  After a clean stop they are gone already, and so is the guard:
 * cluster_free() closes its socket and reaps it.
 *
 * The guard runs only system calls (the supervisor may have threads), with
 * every signal blocked (a terminal's ^C is cluster-run's to handle) and no
 * fd but its socket and the pidfds (a listener it kept would keep a slot's
 * socket alive).  A pidfd names its process for good: no pid is reused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "proto_codec.h"

#define GUARD_MAX 1024 /* daemons watched at once */
#define GUARD_FD 3

/* One message: the pid (for its process group), its pidfd attached. */
static int guard_receive(int sock, pid_t *pid, int *pidfd)
{
	char data[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = pid, .iov_len = sizeof(*pid) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = data, .msg_controllen = sizeof(data),
	};
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

	*pidfd = -1;
	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(pidfd, CMSG_DATA(cm), sizeof(int));
	return n == sizeof(*pid) && *pidfd >= 0 ? 1 : 0;
}

static void guard_kill_all(const struct pollfd *pfd, const pid_t *pids, int n)
{
	for (int i = 1; i < n; i++)
		if (syscall(SYS_pidfd_send_signal, pfd[i].fd, 0, NULL, 0) == 0) {
			kill(-pids[i], SIGKILL); /* its per-connection children */
			syscall(SYS_pidfd_send_signal, pfd[i].fd, SIGKILL, NULL,
				0);
		}
}

/* The guard's life: never returns. */
static void guard_run(int sock)
{
	static struct pollfd pfd[1 + GUARD_MAX];
	static pid_t pids[1 + GUARD_MAX];
	sigset_t all;
	int n = 1;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_NAME, "cr-daemon-guard", 0, 0, 0);
	if (sock != GUARD_FD && dup2(sock, GUARD_FD) < 0)
		_exit(1);
	syscall(SYS_close_range, GUARD_FD + 1, ~0U, 0);
	pfd[0] = (struct pollfd){ .fd = GUARD_FD, .events = POLLIN };
	for (;;) {
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			int r = guard_receive(GUARD_FD, &pids[n], &pfd[n].fd);

			if (r < 0)
				break; /* the supervisor has gone */
			if (r > 0 && n <= GUARD_MAX - 1)
				pfd[n++].events = POLLIN;
			else if (pfd[n].fd >= 0)
				close(pfd[n].fd);
			continue;
		}
		if (pfd[0].revents)
			break; /* hung up */
		for (int i = n - 1; i >= 1; i--)
			if (pfd[i].revents) { /* it exited */
				close(pfd[i].fd);
				pfd[i] = pfd[--n];
				pids[i] = pids[n];
			}
	}
	guard_kill_all(pfd, pids, n);
	_exit(0);
}

static int guard_start(struct cluster *c)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		guard_run(sv[1]);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	c->guard_pid = pid;
	c->guard_fd = sv[0];
	return 0;
}

static int guard_send(int sock, pid_t pid, int pidfd)
{
	return cluster_msg_send(sock, &pid, sizeof(pid), &pidfd, 1,
				MSG_DONTWAIT) < 0 ? -1 : 0;
}

/* The guard died (killed by hand): forget it; the loop reaps it. */
static void guard_lost(struct cluster *c)
{
	close(c->guard_fd);
	c->guard_fd = -1;
	c->guard_pid = 0;
}

static int guard_take(struct cluster *c, pid_t pid, int pidfd)
{
	if (c->guard_pid <= 0 && guard_start(c) < 0)
		return -1;
	if (guard_send(c->guard_fd, pid, pidfd) == 0)
		return 0;
	if (errno == EAGAIN)
		return -1;
	guard_lost(c);
	if (guard_start(c) < 0)
		return -1;
	return guard_send(c->guard_fd, pid, pidfd);
}

void daemon_guard_watch(struct cluster *c, pid_t pid)
{
	int pidfd = pidfd_open(pid, 0);

	if (pidfd < 0)
		return; /* gone already: its exit is the worker's */
	if (guard_take(c, pid, pidfd) < 0 && !c->said_guard_failed) {
		c->said_guard_failed = true;
		cluster_logf(c, "cannot guard daemon pid %d (%s): it would "
			     "outlive a cluster-run that is killed", (int)pid,
			     strerror(errno));
	}
	close(pidfd);
}

void daemon_guard_free(struct cluster *c)
{
	pid_t pid = c->guard_pid;

	if (pid <= 0)
		return;
	guard_lost(c); /* EOF: it ends the daemons left (none), and exits */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
