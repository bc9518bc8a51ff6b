/*
 * Servers that daemonize: fork(), setsid() in the child, the parent exits
 * (or glibc's daemon(), or a double fork).  cluster-run knows the worker by
 * the pid it started, and must neither take the parent's exit for a crash
 * nor lose the daemon at stop.  So the parent does not really exit while
 * its daemon lives: it stays as the daemon's stand-in, passes every signal
 * it gets (cluster-run's SIGTERM, a SIGHUP) on to the daemon, and exits
 * with the daemon's status when the daemon is gone.  Each process of that
 * line has a parent-death signal (SIGKILL), so a stand-in that is killed
 * takes the daemon with it, and no worker outlives cluster-run.
 *
 * Who lingers (decided when the process exits: exit(), return from main,
 * _exit(), _Exit(), daemon()):
 *   - the worker's main process, when a process of the worker called
 *     setsid() and is alive, or when it forked exactly one child so far and
 *     that child is alive (the parent often exits before its child reaches
 *     setsid(); pre-fork pools and fork-per-connection servers fork more);
 *   - the first child of a double fork (it called setsid(), served nothing,
 *     forked one child that is alive): that child is the daemon now.
 * A process with more than one thread never lingers.  daemon() is the
 * shim's own (glibc's calls _exit() inside libc, out of reach): its parent
 * waits until the child has called setsid().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <paths.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

/* Shared by the worker's processes (a MAP_SHARED page made at start-up). */
struct daemon_page {
	pid_t daemon_pid; /* the process that serves for the worker now */
};

static struct daemon_page *page;
static pid_t self_pid;        /* this process, kept up to date at fork */
static pid_t last_child;      /* the last child this process forked */
static unsigned forks;        /* children this process forked */
static bool called_setsid;    /* this process called setsid() */
static bool detached_line;    /* it, or an ancestor in the worker, did */
bool shim_served;             /* it bound through the supervisor or
				 accepted on a listener */

bool shim_is_daemon(void)
{
	return page && self_pid != 0 &&
	       __atomic_load_n(&page->daemon_pid, __ATOMIC_ACQUIRE) == self_pid;
}

static bool alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		prctl(PR_SET_PDEATHSIG, 0); /* too late: nobody to die with */
}

void shim_daemon_after_fork_child(void)
{
	pid_t parent = self_pid;

	self_pid = getpid();
	last_child = 0;
	forks = 0;
	called_setsid = false;
	shim_served = false;
	if (detached_line)
		die_with_parent(parent);
}

/* Passes signals on to the daemon until child (the daemon, or the stand-in
 * of the next generation) ends, then ends as it did.  Never returns. */
static void stand_in(pid_t child, int code)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t all;
	int status;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	sigaction(SIGCHLD, &dfl, NULL); /* SIG_IGN would reap it unseen */
	for (;;) {
		siginfo_t si;
		pid_t r = waitpid(child, &status, WNOHANG), target;
		int sig;

		if (r == child)
			break;
		if (r < 0 && errno != EINTR)
			real__exit(code); /* not ours to wait for after all */
		sig = sigwaitinfo(&all, &si);
		if (sig <= 0 || sig == SIGCHLD)
			continue;
		target = __atomic_load_n(&page->daemon_pid, __ATOMIC_ACQUIRE);
		if (!alive(target))
			target = child;
		kill(target, sig);
	}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		sigset_t one;

		sigaction(sig, &dfl, NULL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		pthread_sigmask(SIG_UNBLOCK, &one, NULL);
		raise(sig);
		real__exit(128 + sig);
	}
	real__exit(WIFEXITED(status) ? WEXITSTATUS(status) : code);
}

/* Whether this process has one thread.  A daemonizing parent has (fork()
 * in a threaded program is for exec()); a threaded server that exits while
 * a child it spawned lives (node, a child_process) is not daemonizing, and
 * its other threads must not run on while it would linger. */
static bool single_threaded(void)
{
	char buf[1024];
	int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int tasks = 0;
	ssize_t n;

	if (dir < 0)
		return true;
	while (tasks < 2 && (n = getdents64(dir, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			off += d->d_reclen;
			tasks += d->d_name[0] >= '0' && d->d_name[0] <= '9';
		}
	real_close(dir);
	return tasks < 2;
}

/* The process is exiting with code: linger if it stands for a daemon. */
static void maybe_stand_in(int code)
{
	pid_t d;

	if (!shim_active() || !page || self_pid != getpid() ||
	    !single_threaded())
		return;
	d = __atomic_load_n(&page->daemon_pid, __ATOMIC_ACQUIRE);
	if (self_pid == shim_worker_pid) {
		if (last_child > 0 && alive(last_child) &&
		    ((d > 0 && d != self_pid && alive(d)) || forks == 1))
			stand_in(last_child, code);
		return;
	}
	if (d == self_pid && called_setsid && !shim_served && forks == 1 &&
	    alive(last_child)) {
		__atomic_store_n(&page->daemon_pid, last_child,
				 __ATOMIC_RELEASE);
		stand_in(last_child, code);
	}
}

static void on_exit_hook(int code, void *arg)
{
	(void)arg;
	maybe_stand_in(code);
}

void shim_daemon_init(void)
{
	void *p = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	self_pid = getpid();
	if (p == MAP_FAILED)
		return;
	page = p;
	on_exit(on_exit_hook, NULL);
}

pid_t fork(void)
{
	pid_t pid = real_fork();

	if (pid > 0) {
		last_child = pid;
		forks++;
	}
	return pid;
}

pid_t setsid(void)
{
	pid_t sid = real_setsid();

	if (sid >= 0 && shim_active() && page && self_pid != shim_worker_pid) {
		pid_t parent = getppid();

		called_setsid = true;
		detached_line = true;
		__atomic_store_n(&page->daemon_pid, self_pid,
				 __ATOMIC_RELEASE);
		die_with_parent(parent);
	}
	return sid;
}

void _exit(int code)
{
	maybe_stand_in(code);
	real__exit(code);
}

void _Exit(int code)
{
	maybe_stand_in(code);
	real__exit(code);
}

/* glibc's daemon(), with a parent that waits for the child's setsid(). */
int daemon(int nochdir, int noclose)
{
	int sync[2], fd;
	pid_t pid;
	char c = 0;

	if (!shim_active())
		return real_daemon(nochdir, noclose);
	if (pipe2(sync, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		int saved = errno;

		real_close(sync[0]);
		real_close(sync[1]);
		errno = saved;
		return -1;
	}
	if (pid > 0) {
		real_close(sync[1]);
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	real_close(sync[0]);
	if (setsid() < 0) {
		real_close(sync[1]);
		return -1;
	}
	(void)!write(sync[1], &c, 1);
	real_close(sync[1]);
	if (!nochdir)
		(void)!chdir("/");
	if (!noclose && (fd = open(_PATH_DEVNULL, O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}
