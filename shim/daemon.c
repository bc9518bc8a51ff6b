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
 *     setsid() and is alive: a daemon has taken over.  When it forked
 *     exactly one child so far and that child is alive, it waits up to
 *     TAKEOVER_MS for a setsid() (the parent often exits before its child
 *     reaches it; pre-fork pools and fork-per-connection servers fork
 *     more); none by then (a piped logger, a helper that lives on): it
 *     exits for real, and cluster-run restarts the worker (its process
 *     group, the child with it, is killed) and deals the connections it
 *     left unread to the others;
 *   - the first child of a double fork (it called setsid(), served nothing,
 *     forked one child that is alive): that child is the daemon now.
 * A process with more than one thread never lingers.  daemon() is the
 * shim's own (glibc's calls _exit() inside libc, out of reach): its parent
 * waits until the child has called setsid().
 */
#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <paths.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

/* daemon_pid lives in the worker's shared page (ownership.c). */
static pid_t last_child;      /* the last child this process forked */
static unsigned forks;        /* children this process forked */
static bool called_setsid;    /* this process called setsid() */
static bool detached_line;    /* it, or an ancestor in the worker, did */
static bool daemon_heir;      /* forked by the daemon before it bound or
				 accepted anything: the second fork of a
				 double fork, the daemon-to-be */
bool shim_served;             /* it bound through the supervisor or
				 accepted on a listener */

bool shim_is_daemon(void)
{
	return shim_page && shim_self_pid != 0 &&
	       __atomic_load_n(&shim_page->daemon_pid, __ATOMIC_ACQUIRE) ==
		       shim_self_pid;
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

/* Runs before shim_ownership_after_fork_child(): shim_self_pid is still
 * the parent's. */
bool shim_is_daemon_heir(void)
{
	return daemon_heir;
}

void shim_daemon_after_fork_child(void)
{
	pid_t parent = shim_self_pid;
	/* the parent's state, still: its daemon() heir binds for the worker
	 * before the parent has even exited to hand over (maybe_stand_in) */
	bool heir = shim_is_daemon() && called_setsid && !shim_served;

	last_child = 0;
	forks = 0;
	called_setsid = false;
	shim_served = false;
	daemon_heir = heir;
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
		target = __atomic_load_n(&shim_page->daemon_pid,
					 __ATOMIC_ACQUIRE);
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

#define TAKEOVER_MS 2000

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A process of the worker other than this one called setsid() and lives. */
static bool daemon_took_over(void)
{
	pid_t d = __atomic_load_n(&shim_page->daemon_pid, __ATOMIC_ACQUIRE);

	return d > 0 && d != shim_self_pid && alive(d);
}

/* The worker's main process exits with its one child alive: waits, at most
 * TAKEOVER_MS, for that child (or one of its own) to call setsid().  The
 * signals that come meanwhile are passed on to the child, as a stand-in
 * does.  Called with every signal blocked (maybe_stand_in).  Whether a
 * daemon took over. */
static bool await_takeover(pid_t child)
{
	long long deadline = monotonic_ms() + TAKEOVER_MS;
	bool took = false;
	sigset_t all;

	sigfillset(&all);
	while (!(took = daemon_took_over()) && alive(child)) {
		long long left = deadline - monotonic_ms();
		struct timespec step = { 0, 20 * 1000000L };
		siginfo_t si;
		int sig;

		if (left <= 0)
			break;
		if (left < 20)
			step.tv_nsec = left * 1000000L;
		sig = sigtimedwait(&all, &si, &step);
		if (sig > 0 && sig != SIGCHLD)
			kill(child, sig);
	}
	return took;
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
	sigset_t all, old;
	pid_t d;

	if (!shim_active() || !shim_page || !shim_owns_memory())
		return;
	/* From here to the stand-in's wait, a signal is held for it to pass
	 * on: one let through to the server's handler meanwhile (SIGTERM
	 * while the parent waits for its child's setsid()) would end in that
	 * handler, and the daemon would never hear of it (seen: a daemon
	 * that outlived cluster-run's stop, 1 run in about 25 of the shim
	 * suite ten at a time). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!single_threaded()) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return;
	}
	d = __atomic_load_n(&shim_page->daemon_pid, __ATOMIC_ACQUIRE);
	if (shim_self_pid == shim_worker_pid) {
		/* a worker that served is not daemonizing: its one child is
		 * a session (dropbear), not its daemon */
		if (last_child > 0 && alive(last_child) &&
		    (daemon_took_over() ||
		     (forks == 1 && !shim_worker_serving() &&
		      await_takeover(last_child))))
			stand_in(last_child, code);
	} else if (d == shim_self_pid && called_setsid && !shim_served &&
		   forks == 1 && alive(last_child)) {
		__atomic_store_n(&shim_page->daemon_pid, last_child,
				 __ATOMIC_RELEASE);
		stand_in(last_child, code);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL); /* it exits for real */
}

static void on_exit_hook(int code, void *arg)
{
	(void)arg;
	maybe_stand_in(code);
}

/* The exit hook is registered at a process's first fork (only a process
 * with a child can linger), not at start-up: exit handlers run the last
 * registered first, so this one runs before those registered earlier.
 * Until it blocks the signals, the server's own handlers are in place, and
 * a slow handler before it (LeakSanitizer's leak check) left a window
 * where cluster-run's SIGTERM ran the server's handler, whose _exit()
 * then stood in for a daemon that never heard of the stop (the shim
 * suite under the sanitizers, 3 runs in 12). */
static void register_exit_hook(void)
{
	static bool registered; /* a child inherits it, and the entry */

	if (!registered && shim_page) {
		registered = true;
		on_exit(on_exit_hook, NULL);
	}
}

pid_t fork(void)
{
	pid_t pid = real_fork();

	if (pid > 0 && shim_owns_memory()) {
		register_exit_hook();
		last_child = pid;
		forks++;
		shim_handle_note_fork(pid);
	}
	return pid;
}

pid_t setsid(void)
{
	pid_t sid = real_setsid();

	/* Rule 1: only before the worker serves; a session child that calls
	 * setsid() (dropbear's, sshd's) is not the worker's daemon. */
	if (sid >= 0 && shim_active() && shim_page && shim_owns_memory() &&
	    shim_self_pid != shim_worker_pid && !shim_worker_serving()) {
		pid_t parent = getppid();

		called_setsid = true;
		detached_line = true;
		__atomic_store_n(&shim_page->daemon_pid, shim_self_pid,
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
		sigset_t all;

		/* what comes meanwhile is the daemon's: held for the
		 * stand-in to pass on (maybe_stand_in), not run here */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
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
