/*
 * worker_spawn.c - fork and exec one worker: the shim appended to
 * LD_PRELOAD, its id and channel in the environment, a process group of its
 * own (so a stop reaches the children it forks, and the terminal's ^C reaches
 * only cluster-run), and a parent-death signal so no worker outlives us.
 */
#include <errno.h>
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
#include <unistd.h>

#include "cluster_internal.h"
#include "output_prefix.h"

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

static char *preload_value(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;

	if (asprintf(&v, "LD_PRELOAD=%s%s%s", old && *old ? old : "",
		     old && *old ? ":" : "", shim) < 0)
		return NULL;
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
			    unsigned id, int fd)
{
	char *const *extra = c->settings.extra_env;
	size_t n = 0, k = 0, i, nextra = 0;

	memset(we, 0, sizeof(*we));
	while (environ[n])
		n++;
	while (extra && extra[nextra])
		nextra++;
	we->env = calloc(n + nextra + OUR_VARS + 1, sizeof(*we->env));
	we->ours[0] = preload_value(c->settings.shim_path);
	if (asprintf(&we->ours[1], "%s=%u", CLUSTER_ENV_WORKER_ID, id) < 0)
		we->ours[1] = NULL;
	if (asprintf(&we->ours[2], "%s=%d", CLUSTER_ENV_CHANNEL_FD, fd) < 0)
		we->ours[2] = NULL;
	if (asprintf(&we->ours[3], "%s=%*s", CLUSTER_ENV_WORKER_PID,
		     PID_DIGITS, "") < 0)
		we->ours[3] = NULL;
	if (!we->env || !we->ours[0] || !we->ours[1] || !we->ours[2] ||
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
		we->env[k++] = we->ours[i];
	return 0;
}

static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
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

/* In the child: never returns.  pipe_w: NULL, or the write ends of the
 * stdout and stderr pipes (prefix_output). */
static void exec_worker(struct cluster *c, pid_t parent, int channel,
			struct worker_env *we, int err_pipe, const int *pipe_w)
{
	int err;

	reset_signals();
	setpgid(0, 0);
	if (pipe_w && redirect_output(pipe_w) < 0)
		goto fail;
	if (c->settings.chdir_path && chdir(c->settings.chdir_path) < 0)
		goto fail;
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

pid_t worker_spawn(struct cluster *c, unsigned id, int *channel_fd,
		   struct output_pipe **output)
{
	int sv[2], err_pipe[2], pipe_w[2] = { -1, -1 }, err = 0;
	pid_t parent = getpid(), pid;
	struct worker_env we;
	ssize_t n;

	output[0] = output[1] = NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	if (pipe2(err_pipe, O_CLOEXEC) < 0)
		goto fail_pipe;
	if (c->settings.prefix_output && output_open(c, id, pipe_w, output) < 0)
		goto fail_output;
	if (worker_env_build(&we, c, id, c->channel_fd_number) < 0)
		goto fail_env;
	pid = fork();
	if (pid == 0)
		exec_worker(c, parent, sv[1], &we, err_pipe[1],
			    c->settings.prefix_output ? pipe_w : NULL);
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
	/* Blocks only until the child's exec succeeds (EOF) or fails. */
	do
		n = read(err_pipe[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(err_pipe[0]);
	if (n == sizeof(err)) { /* exec failed: the child has exited */
		close(sv[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		output_close(pipe_w, output);
		errno = err;
		return -1;
	}
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
