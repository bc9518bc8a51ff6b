/*
 * worker_spawn.c - fork and exec one worker: the shim appended to
 * LD_PRELOAD, its id and channel in the environment, a process group of its
 * own (so a stop reaches the children it forks, and the terminal's ^C reaches
 * only cluster-run), and a parent-death signal so no worker outlives us.
 *
 * The loop never waits for a child's exec: the exec-status socket is an
 * event (EOF: the exec succeeded; an errno: it failed, and the child exits
 * 127); the start is "in flight" until then and, after an exec, until the
 * worker listens, for CLUSTER_START_SETTLE_MS at most (cluster.c bounds
 * how many).
 *
 * In the seccomp mode (worker_diagnose.c decides) the shim is not added;
 * the child installs the filter instead (seccomp_filter.c) and sends its
 * listener fd on the exec-status socket ahead of the exec, so that it is
 * there to be read when the exec is settled, without waiting for it.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "output_prefix.h"
#include "seccomp_filter.h"

extern char **environ;

/* Overridden by an --env KEY=VALUE of the same KEY? */
static bool is_overridden(const char *entry, char *const *extra)
{
	size_t klen = strcspn(entry, "=");

	for (; extra && *extra; extra++)
		if (strncmp(*extra, entry, klen) == 0 && (*extra)[klen] == '=')
			return true;
	return false;
}

static bool is_our_variable(const char *entry)
{
	static const char *const names[] = {
		"LD_PRELOAD=", CLUSTER_ENV_WORKER_ID "=",
		CLUSTER_ENV_CHANNEL_FD "=", CLUSTER_ENV_WORKER_PID "=",
		/* systemd's, for cluster-run alone: a worker that links
		 * libsystemd must neither notify nor take our sockets */
		"NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=",
		"LISTEN_FDNAMES=",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(entry, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

/* The worker's environment: environ without our variables, plus ours.
 * Built before fork() so that the child only execs. */
#define OUR_VARS 4
#define PID_DIGITS 12

struct worker_env {
	char **env;
	char *ours[OUR_VARS]; /* the last is CLUSTER_WORKER_PID, filled in by
				 the child, which alone knows its pid */
};

/* shim NULL (the seccomp mode): LD_PRELOAD as it was, or NULL if unset. */
static char *preload_value(const char *shim, bool *failed)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;

	*failed = false;
	if (!shim && !old)
		return NULL;
	if (asprintf(&v, "LD_PRELOAD=%s%s%s", old && *old ? old : "",
		     old && *old && shim ? ":" : "", shim ? shim : "") < 0) {
		*failed = true;
		return NULL;
	}
	return v;
}

static void worker_env_free(struct worker_env *we)
{
	int i;

	for (i = 0; i < OUR_VARS; i++)
		free(we->ours[i]);
	free(we->env);
}

/* In the child, after fork(): no allocation, just digits into the slot. */
static void worker_env_set_pid(struct worker_env *we, pid_t pid)
{
	char *p = we->ours[OUR_VARS - 1] + sizeof(CLUSTER_ENV_WORKER_PID);
	char digits[PID_DIGITS];
	int n = 0;

	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0 && n < PID_DIGITS);
	while (n > 0)
		*p++ = digits[--n];
	*p = '\0';
}

static int worker_env_build(struct worker_env *we, struct cluster *c,
			    unsigned id, int fd, bool seccomp)
{
	char *const *extra = c->settings.extra_env;
	size_t n = 0, k = 0, i, nextra = 0;
	bool preload_failed;

	memset(we, 0, sizeof(*we));
	while (environ[n])
		n++;
	while (extra && extra[nextra])
		nextra++;
	we->env = calloc(n + nextra + OUR_VARS + 1, sizeof(*we->env));
	we->ours[0] = preload_value(seccomp ? NULL : c->settings.shim_path,
				    &preload_failed);
	if (asprintf(&we->ours[1], "%s=%u", CLUSTER_ENV_WORKER_ID, id) < 0)
		we->ours[1] = NULL;
	if (asprintf(&we->ours[2], "%s=%d", CLUSTER_ENV_CHANNEL_FD, fd) < 0)
		we->ours[2] = NULL;
	if (asprintf(&we->ours[3], "%s=%*s", CLUSTER_ENV_WORKER_PID,
		     PID_DIGITS, "") < 0)
		we->ours[3] = NULL;
	if (!we->env || preload_failed || !we->ours[1] || !we->ours[2] ||
	    !we->ours[3]) {
		worker_env_free(we);
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!is_our_variable(environ[i]) &&
		    !is_overridden(environ[i], extra))
			we->env[k++] = environ[i];
	for (i = 0; i < nextra; i++)
		if (!is_our_variable(extra[i]))
			we->env[k++] = extra[i];
	for (i = 0; i < OUR_VARS; i++)
		if (we->ours[i])
			we->env[k++] = we->ours[i];
	return 0;
}

/*
 * The worker's signals as the command alone would have them: the ones
 * cluster-run inherited ignored (nohup's SIGHUP; SIGINT and SIGQUIT for a
 * background job of a non-interactive shell) ignored, every other one at
 * its default (not cluster-run's handlers, nor the SIGPIPE it ignores),
 * and the mask cluster-run inherited.
 */
static void reset_signals(const struct cluster_settings *s)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa.sa_handler = s->worker_ignored &&
				sigismember(s->worker_ignored, sig) == 1 ?
				SIG_IGN : SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, s->worker_mask ? s->worker_mask : &none, NULL);
}

/*
 * A worker is in a process group of its own, never the terminal's
 * foreground one: with `stty tostop` its write on the terminal would stop
 * it (the kernel's SIGTTOU) where the command alone in the foreground
 * writes, and nothing would continue it (`fg` continues cluster-run's
 * group).  With SIGTTOU ignored the kernel lets the write, and tcsetattr(),
 * through.  With SIGTTIN ignored a read from the terminal fails with EIO at
 * once rather than stopping the worker for good.  What stays different:
 * the worker sees both ignored; its read fails where alone it would wait
 * for input; the workers of a background cluster-run write too (cluster-
 * run itself stops); a program that puts SIGTTOU back to its default at
 * start (Node.js does so with every ignored signal) is stopped as before.
 * Only when one of fds 0-2 is cluster-run's controlling terminal (after
 * --prefix's pipes are in place): job control is about that one.
 */
static void ignore_terminal_stops(void)
{
	struct sigaction ign;
	int fd;

	for (fd = 0; fd < 3; fd++)
		if (tcgetpgrp(fd) >= 0)
			break;
	if (fd == 3)
		return;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGTTOU, &ign, NULL);
	sigaction(SIGTTIN, &ign, NULL);
}

/* Group first (it needs the rights the user change gives up). */
static int drop_privileges(const struct cluster_settings *s)
{
	if (s->set_gid && (setgroups(1, &s->gid) < 0 || setgid(s->gid) < 0))
		return -1;
	if (s->set_uid && setuid(s->uid) < 0)
		return -1;
	return 0;
}

/* prefix_output: the write ends of the pipes onto 1 and 2.  Moved above 2
 * first, in case one of them sits on 1 or 2 already. */
static int redirect_output(const int *pipe_w)
{
	int high[2], i;

	for (i = 0; i < 2; i++)
		if ((high[i] = fcntl(pipe_w[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return -1;
	for (i = 0; i < 2; i++)
		if (dup2(high[i], STDOUT_FILENO + i) < 0)
			return -1;
	return 0;
}

/* The seccomp mode: the filter, its listener sent to the supervisor on
 * the exec-status socket.  Ahead of the credentials change: without
 * PR_SET_NO_NEW_PRIVS (a setuid program, we are root) only CAP_SYS_ADMIN
 * may install it. */
static int install_filter(const struct cluster *c, int status_sock)
{
	int listener = seccomp_filter_install(!c->seccomp_keeps_privs), rc;

	if (listener < 0)
		return -1;
	rc = seccomp_listener_send(status_sock, listener);
	close(listener);
	return rc;
}

/* In the child: never returns.  pipe_w: NULL, or the write ends of the
 * stdout and stderr pipes (prefix_output). */
static void exec_worker(struct cluster *c, pid_t parent, int channel,
			struct worker_env *we, int err_pipe, const int *pipe_w,
			bool seccomp)
{
	int err;

	reset_signals(&c->settings);
	setpgid(0, 0);
	if (pipe_w && redirect_output(pipe_w) < 0)
		goto fail;
	ignore_terminal_stops();
	if (c->settings.chdir_path && chdir(c->settings.chdir_path) < 0)
		goto fail;
	if (seccomp && install_filter(c, err_pipe) < 0) {
		int said[2] = { SECCOMP_FILTER_FAILED, errno };

		(void)!write(err_pipe, said, sizeof(said));
		_exit(127);
	}
	if (drop_privileges(&c->settings) < 0)
		goto fail;
	/* After the credentials change, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the supervisor died before prctl */
		_exit(127);
	/* The one fd the worker inherits, at the number its environment
	 * names, open across exec (dup2 clears close-on-exec). */
	if (channel != c->channel_fd_number &&
	    dup2(channel, c->channel_fd_number) < 0)
		_exit(127);
	if (channel == c->channel_fd_number)
		fcntl(channel, F_SETFD, 0);
	setrlimit(RLIMIT_NOFILE, &c->worker_nofile);
	worker_env_set_pid(we, getpid());
	execvpe(c->settings.argv[0], c->settings.argv, we->env);
fail:
	err = errno;
	(void)!write(err_pipe, &err, sizeof(err));
	_exit(127);
}

/* prefix_output: two pipes (stdout, stderr), their read ends already in
 * output pipes on the loop; the write ends in pipe_w.  0, or -1. */
static int output_open(struct cluster *c, unsigned id, int *pipe_w,
		       struct output_pipe **output)
{
	int fds[2], i, err;

	for (i = 0; i < 2; i++) {
		if (pipe2(fds, O_CLOEXEC) < 0)
			goto fail;
		pipe_w[i] = fds[1];
		output[i] = output_pipe_new(c->base, fds[0], id,
					    output_sink_stdio(STDOUT_FILENO + i));
		if (!output[i]) {
			i++;
			goto fail;
		}
	}
	return 0;
fail:
	err = errno;
	while (i-- > 0) {
		close(pipe_w[i]);
		output_pipe_free(output[i]);
		output[i] = NULL;
	}
	errno = err;
	return -1;
}

static void output_close(int *pipe_w, struct output_pipe **output)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (pipe_w[i] >= 0)
			close(pipe_w[i]);
		output_pipe_free(output[i]);
		output[i] = NULL;
	}
}

/* fork() with every signal blocked: until the child has put the worker's
 * actions in place, a signal must not run the supervisor's handlers
 * (libevent's would write into the supervisor's own signal pipe). */
static pid_t fork_quietly(void)
{
	sigset_t all, old;
	pid_t pid;
	int err;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		return 0; /* exec_worker() unblocks */
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

pid_t worker_spawn(struct cluster *c, unsigned id, int *channel_fd,
		   int *exec_fd, struct output_pipe **output)
{
	int sv[2], err_pipe[2], pipe_w[2] = { -1, -1 }, err = 0;
	pid_t parent = getpid(), pid;
	struct worker_env we;
	bool seccomp = cluster_seccomp_mode(c);

	if (seccomp) /* before its first fork: the orphans it leaves */
		seccomp_daemon_enable(c);
	output[0] = output[1] = NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	/* the exec-status socket: an errno, or (seccomp) the listener fd */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, err_pipe) < 0)
		goto fail_pipe;
	if (c->settings.prefix_output && output_open(c, id, pipe_w, output) < 0)
		goto fail_output;
	if (worker_env_build(&we, c, id, c->channel_fd_number, seccomp) < 0)
		goto fail_env;
	pid = fork_quietly();
	if (pid == 0)
		exec_worker(c, parent, sv[1], &we, err_pipe[1],
			    c->settings.prefix_output ? pipe_w : NULL, seccomp);
	worker_env_free(&we);
	close(err_pipe[1]);
	close(sv[1]);
	for (int i = 0; i < 2; i++) {
		if (pipe_w[i] >= 0)
			close(pipe_w[i]);
		pipe_w[i] = -1;
	}
	if (pid < 0) {
		err = errno;
		close(err_pipe[0]);
		close(sv[0]);
		output_close(pipe_w, output);
		errno = err;
		return -1;
	}
	/* The child does it too; whichever comes first, a kill(-pid) that
	 * follows reaches the group (it may fail once the child has exec'd,
	 * by which time the child has done it). */
	setpgid(pid, pid);
	fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
	*exec_fd = err_pipe[0];
	*channel_fd = sv[0];
	return pid;

fail_env:
	err = errno;
	output_close(pipe_w, output);
	errno = err;
fail_output:
	close(err_pipe[0]);
	close(err_pipe[1]);
fail_pipe:
	err = errno;
	close(sv[0]);
	close(sv[1]);
	errno = err;
	return -1;
}

/* ---- the exec-status socket, on the loop ---- */

/* One message: its ints (one or two) in value, and the fd it brought in
 * *passed (-1 if none).  recvmsg()'s result. */
static ssize_t status_recv(int fd, int value[2], int *passed)
{
	char data[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = value, .iov_len = 2 * sizeof(int) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = data, .msg_controllen = sizeof(data),
	};
	struct cmsghdr *cm;
	ssize_t n;

	*passed = -1;
	do
		n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(passed, CMSG_DATA(cm), sizeof(int));
	return n;
}

/* The seccomp listener a worker's child sent: watched from now on (final:
 * the worker is gone, nothing to watch).  Unwatched, its calls would
 * wait: closed, they fail with ENOSYS. */
static void take_listener(struct cluster_worker *w, int listener, bool final)
{
	if (final) {
		close(listener);
		return;
	}
	if (seccomp_notify_start(w, listener) < 0)
		cluster_logf(w->cluster, "worker %u (pid %d): cannot watch its "
			     "seccomp listener (%s); its bind() and listen() "
			     "fail with ENOSYS", w->id, (int)w->pid,
			     strerror(errno));
}

/* The filter was refused (once per cluster: a crash loop repeats it). */
static void say_filter_refused(struct cluster_worker *w, int err)
{
	struct cluster *c = w->cluster;

	if (c->said_filter_refused)
		return;
	c->said_filter_refused = true;
	cluster_logf(c, "worker %u (pid %d): the kernel refused the seccomp "
		     "filter (%s): it lacks seccomp user notification, or "
		     "cluster-run runs under a seccomp notifier of its own "
		     "(EBUSY: one per process); --intercept shim runs %s "
		     "without it", w->id, (int)w->pid, strerror(err),
		     c->settings.argv[0]);
}

bool worker_exec_settle(struct cluster_worker *w, bool final)
{
	ssize_t n;
	int said[2], listener;

	if (w->exec_fd < 0)
		return true;
	while ((n = status_recv(w->exec_fd, said, &listener)) > 0 &&
	       listener >= 0)
		take_listener(w, listener, final);
	if (n < 0 && errno == EAGAIN && !final)
		return false;
	if (n == sizeof(int)) /* exec failed: the child exits 127 */
		w->start_error = said[0];
	if (n == sizeof(said) && said[0] == SECCOMP_FILTER_FAILED) {
		w->start_error = said[1];
		say_filter_refused(w, said[1]);
	}
	if (w->exec_ev) {
		event_free(w->exec_ev);
		w->exec_ev = NULL;
	}
	close(w->exec_fd);
	w->exec_fd = -1;
	if (w->start_error) {
		worker_start_settled(w);
	} else {
		worker_start_exec_done(w);
		if (w->seccomp) /* no shim to say hello: the exec is its word */
			worker_mark_online(w);
	}
	return true;
}

static void exec_on_readable(evutil_socket_t fd, short what, void *arg)
{
	worker_exec_settle(arg, false);
}

int worker_exec_watch(struct cluster_worker *w)
{
	w->exec_ev = event_new(w->cluster->base, w->exec_fd,
			       EV_READ | EV_PERSIST, exec_on_readable, w);
	if (!w->exec_ev || event_add(w->exec_ev, NULL) < 0)
		return -1;
	return 0;
}
