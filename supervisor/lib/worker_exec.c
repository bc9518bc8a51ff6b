/*
 * worker_exec.c - a worker about to exec a program that will not load the
 * shim (shim/exec.c sends CLUSTER_MSG_EXEC and waits for the answer): a
 * wrapper script that execs a static or Go server, a program that clears
 * LD_PRELOAD before it execs the real one.  The command's own file said
 * nothing (worker_diagnose.c reads it before the first fork), so this is
 * the first word of it.
 *
 * With --intercept auto, while no listener exists yet, the cluster
 * switches to the seccomp mode, as it would have for a static command:
 * the policy becomes reuseport, and every worker started so far is killed
 * and, as after any kill, started again at once (pool.c counts no crash),
 * now with the filter; the one that asked is killed before its exec, so
 * none ever runs the program without it.  Otherwise - --intercept shim,
 * a listener already bound (too late: its socket is the shim's), or what
 * the seccomp mode cannot do for it - one line says so, once per cluster,
 * and the exec goes on.
 */
#include <signal.h>
#include <unistd.h>

#include "cluster_internal.h"

static const char *reason_text(uint32_t reason)
{
	switch (reason) {
	case CLUSTER_EXEC_STATIC:
		return "a static binary";
	case CLUSTER_EXEC_GO:
		return "a Go binary, which makes its own socket system calls";
	case CLUSTER_EXEC_SETUID:
		return "setuid or setgid: the loader ignores LD_PRELOAD";
	case CLUSTER_EXEC_32BIT:
		return "a 32-bit program, which the 64-bit shim cannot load "
		       "into";
	case CLUSTER_EXEC_NO_PRELOAD:
		return "its LD_PRELOAD no longer names the shim";
	default:
		return "its environment lost CLUSTER_CHANNEL_FD or "
		       "CLUSTER_WORKER_PID, or another process than the "
		       "worker's execs it";
	}
}

/* Why the cluster cannot switch to the seccomp mode for it, or NULL. */
static const char *why_not_seccomp(const struct cluster *c, uint32_t reason)
{
	if (c->settings.intercept == CLUSTER_INTERCEPT_SHIM)
		return "with --intercept shim";
	if (c->handles)
		return "cluster-run listens for the cluster already, too late "
		       "for the seccomp mode (--intercept seccomp runs it "
		       "from the start)";
	if (reason == CLUSTER_EXEC_SETUID && geteuid() != 0)
		return "the seccomp mode would run it without its owner's "
		       "rights (run cluster-run as root, or --intercept "
		       "seccomp)";
	if (c->settings.seccomp_refused)
		return c->settings.seccomp_refused;
	return NULL;
}

/* Every worker with a process is killed; pool.c starts each again at
 * once (a kill is no crash), with the filter now. */
static void restart_started_workers(struct cluster *c)
{
	struct cluster_worker *w;

	for (w = c->workers; w; w = w->next) {
		pid_t pid = w->pid;

		if (w->queued || pid <= 0 || w->state == WORKER_DEAD)
			continue;
		worker_kill(w, SIGKILL);
		kill(-pid, SIGKILL);
	}
}

void worker_exec_notice(struct cluster_worker *w,
			const struct cluster_msg_exec *msg, int reply_fd)
{
	struct cluster *c = w->cluster;
	const char *why = why_not_seccomp(c, msg->reason);

	/* already switched: w is one of those being killed */
	if (c->seccomp || c->settings.intercept == CLUSTER_INTERCEPT_SECCOMP) {
		worker_fd_close(reply_fd);
		return;
	}
	if (why) {
		if (!c->said_exec)
			cluster_logf(c, "worker %u execs %s, which does not load "
				     "the shim (%s); %s: its listeners are not "
				     "shared, each worker binds on its own, and "
				     "with more than one the others fail with "
				     "EADDRINUSE", w->id, msg->path,
				     reason_text(msg->reason), why);
		c->said_exec = true;
		worker_fd_close(reply_fd); /* the end of it: the exec goes on */
		return;
	}
	c->said_exec = true;
	cluster_logf(c, "worker %u execs %s, which does not load the shim "
		     "(%s): its workers run in the seccomp mode; those started "
		     "so far start again with its filter", w->id, msg->path,
		     reason_text(msg->reason));
	cluster_seccomp_enter(c, msg->reason == CLUSTER_EXEC_SETUID);
	restart_started_workers(c); /* w first dies with its exec unmade */
	worker_fd_close(reply_fd);
}
