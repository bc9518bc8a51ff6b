/*
 * seccomp_daemon.c - servers that daemonize, in the seccomp mode (fork,
 * setsid() in the child, the parent exits; busybox httpd without -f; a
 * double fork).  There is no shim in such a worker to stand in for its
 * daemon (shim/daemon.c), so the supervisor follows the daemon itself:
 *
 *   - it is a child subreaper (PR_SET_CHILD_SUBREAPER) from the first
 *     seccomp worker on: whatever a worker's processes leave behind when
 *     they exit (the daemon, once its parent has gone) is re-parented to
 *     the supervisor, which sees its exit status and reaps it (every child
 *     that is not a worker is reaped as it exits, see seccomp_daemon_reap);
 *   - the filter notifies setsid() (seccomp_filter.c; rare, so it costs
 *     nothing per connection): the caller, any process of the worker but
 *     its main one, is noted as the worker's daemon candidate, with the
 *     time, and the call goes on in the kernel;
 *   - when the worker's main process exits 0, not asked to (no disconnect,
 *     no kill), a candidate that called setsid() at most TAKEOVER_MS
 *     before (is now the supervisor's child, and lives) is the worker
 *     from now on: the worker keeps its id, slot and state
 *     with the daemon's pid (one line says so), there is no exit line and
 *     no restart, and the daemon's exit is the worker's.  When the
 *     candidate itself has gone (a double fork: the first child forks the
 *     daemon and exits), the heir is the supervisor's child in the
 *     candidate's session;
 *   - the main process often exits before its child reaches setsid(): then,
 *     while any process of the worker lives (its seccomp listener is not
 *     hung up), the worker's end waits up to TAKEOVER_MS for a setsid();
 *     none by then (a piped logger, a helper that lives on): the worker
 *     ends as it exited, and is restarted, its process group with it.
 *
 * A daemon has no parent-death signal: daemon_guard.c ends it if the
 * supervisor dies.
 *
 * What tells a daemon from a session child (dropbear's, sshd's), which
 * calls setsid() too: a serving worker's main process lives on, so its
 * session children are never taken; only an exit 0 within TAKEOVER_MS of
 * the setsid() is a daemonization, as in the shim (whose rule is "before
 * the worker served", which the supervisor cannot see here).
 *
 * Never waits: the exit status comes from the SIGCHLD loop (WNOHANG), the
 * wait for a setsid() is a timer, and the heir of a double fork is found
 * from /proc/self/task/TID/children (one small file, once per takeover).
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "monotonic.h"

#define TAKEOVER_MS 2000 /* as the shim's (shim/daemon.c) */

struct seccomp_daemon {
	pid_t candidate;          /* called setsid(), or 0 */
	long long candidate_ms;   /* when */
	bool awaiting;            /* the main process exited 0: waits */
	int held_status;          /* ... its status, for the worker's end */
	struct event *timer;      /* ... until TAKEOVER_MS */
};

void seccomp_daemon_enable(struct cluster *c)
{
	if (c->subreaper)
		return;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		cluster_logf(c, "cannot become a child subreaper (%s): a "
			     "server that daemonizes is not followed",
			     strerror(errno));
		return;
	}
	c->subreaper = true;
}

static struct seccomp_daemon *daemon_of(struct cluster_worker *w)
{
	if (!w->daemon)
		w->daemon = calloc(1, sizeof(*w->daemon));
	return w->daemon;
}

void seccomp_daemon_setsid(struct cluster_worker *w, pid_t tid)
{
	struct seccomp_daemon *d;

	/* a process group leader's setsid() fails (EPERM) */
	if (tid <= 0 || tid == w->pid || getpgid(tid) == tid ||
	    !(d = daemon_of(w)))
		return;
	d->candidate = tid;
	d->candidate_ms = monotonic_ms();
	if (d->awaiting) /* the main process has gone: it is the heir */
		event_active(d->timer, EV_TIMEOUT, 0);
}

/* pid is the supervisor's child and has not exited. */
static bool live_child(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return pid > 0 &&
	       waitid(P_PID, (id_t)pid, &si,
		      WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

static bool is_worker_pid(struct cluster *c, pid_t pid)
{
	for (struct cluster_worker *w = c->workers; w; w = w->next)
		if (w->pid == pid)
			return true;
	return false;
}

/* A child of the supervisor in session sid, not a worker; or 0.  The
 * orphans re-parented to a subreaper become children of its first live
 * thread (the main one here). */
static pid_t child_in_session(struct cluster *c, pid_t sid)
{
	char path[64], text[4096], *p, *end;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
		 (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	for (p = text;; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			return 0;
		if (pid > 0 && getsid((pid_t)pid) == sid &&
		    !is_worker_pid(c, (pid_t)pid) && live_child((pid_t)pid))
			return (pid_t)pid;
	}
}

/* Who takes over from w's main process `gone`, or 0. */
static pid_t heir_of(struct cluster_worker *w, pid_t gone)
{
	struct seccomp_daemon *d = w->daemon;
	pid_t cand;

	if (!d || d->candidate <= 0)
		return 0;
	cand = d->candidate;
	if (monotonic_ms() - d->candidate_ms > TAKEOVER_MS)
		return 0;
	if (cand != gone && live_child(cand))
		return cand;
	/* it has gone too (a double fork: it forked the daemon and exited,
	 * or it is the daemon taken over, exiting now) */
	return child_in_session(w->cluster, cand);
}

static void take_over(struct cluster_worker *w, pid_t heir)
{
	pid_t was = w->pid;

	w->pid = heir;
	daemon_guard_watch(w->cluster, heir);
	cluster_logf(w->cluster, "worker %u (pid %d) daemonized: pid %d is "
		     "the worker now", w->id, (int)was, (int)heir);
	/* asked to stop while it changed hands: the daemon hears of it */
	if (w->exited_after_disconnect)
		kill(heir, w->cluster->settings.graceful_signal);
}

static void stop_waiting(struct seccomp_daemon *d)
{
	d->awaiting = false;
	if (d->timer) {
		event_free(d->timer);
		d->timer = NULL;
	}
}

/* The wait is over: a setsid() came, the time is up, or nothing of the
 * worker is left. */
static void on_wait_over(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_worker *w = arg;
	struct seccomp_daemon *d = w->daemon;
	pid_t heir = heir_of(w, w->pid);

	(void)fd;
	(void)what;
	stop_waiting(d);
	if (heir > 0) {
		take_over(w, heir);
		return;
	}
	worker_reap(w, d->held_status);
}

/* Whether a process of w lives: its seccomp listener is not hung up. */
static bool worker_lives_on(struct cluster_worker *w)
{
	struct pollfd pfd = { .fd = seccomp_notify_fd(w), .events = POLLIN };

	return pfd.fd >= 0 && poll(&pfd, 1, 0) >= 0 &&
	       !(pfd.revents & (POLLHUP | POLLERR | POLLNVAL));
}

/* w's main process exited with status (reaped): whether w goes on (a
 * daemon took over, or may yet); false: the worker ends. */
static bool main_exited(struct cluster_worker *w, int status)
{
	struct timeval tv = { TAKEOVER_MS / 1000, (TAKEOVER_MS % 1000) * 1000 };
	struct seccomp_daemon *d;
	pid_t heir;

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    w->exited_after_disconnect)
		return false;
	/* A main process that forks and exits at once can be reaped before
	 * the loop read its exec status, which carries the seccomp listener:
	 * without it nothing of the worker seems to live on, and a setsid()
	 * waiting there is unseen.  Read now (it never waits: the exec closed
	 * the child's end, so all of it is there). */
	worker_exec_settle(w, false);
	seccomp_notify_drain(w); /* a setsid() that waits there counts */
	heir = heir_of(w, w->pid);
	if (heir > 0) {
		take_over(w, heir);
		return true;
	}
	if (!worker_lives_on(w) || !(d = daemon_of(w)))
		return false;
	d->timer = evtimer_new(w->cluster->base, on_wait_over, w);
	if (!d->timer || evtimer_add(d->timer, &tv) < 0) {
		stop_waiting(d);
		return false;
	}
	d->awaiting = true;
	d->held_status = status;
	return true;
}

void seccomp_daemon_listener_gone(struct cluster_worker *w)
{
	if (w->daemon && w->daemon->awaiting)
		event_active(w->daemon->timer, EV_TIMEOUT, 0);
}

static struct cluster_worker *worker_by_pid(struct cluster *c, pid_t pid)
{
	for (struct cluster_worker *w = c->workers; w; w = w->next)
		if (w->pid == pid && w->state != WORKER_DEAD && /* EXIT queued */
		    !(w->daemon && w->daemon->awaiting))
			return w;
	return NULL;
}

void seccomp_daemon_reap(struct cluster *c)
{
	for (;;) {
		struct cluster_worker *w;
		siginfo_t si;
		int status;

		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			return;
		if (waitpid(si.si_pid, &status, WNOHANG) != si.si_pid)
			return; /* not ours to take after all */
		w = worker_by_pid(c, si.si_pid);
		if (w && !main_exited(w, status))
			worker_reap(w, status);
		/* else an orphan of a worker (a daemon's parent, a
		 * connection's child): reaped, nothing else */
	}
}

bool seccomp_daemon_awaiting(const struct cluster_worker *w)
{
	return w->daemon && w->daemon->awaiting;
}

int seccomp_daemon_held_status(const struct cluster_worker *w)
{
	return w->daemon ? w->daemon->held_status : 0;
}

void seccomp_daemon_stop(struct cluster_worker *w)
{
	if (!w->daemon)
		return;
	stop_waiting(w->daemon);
	free(w->daemon);
	w->daemon = NULL;
}
