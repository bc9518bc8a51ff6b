/*
 * Start-up: a process is a worker when CLUSTER_CHANNEL_FD names an open
 * socket and CLUSTER_WORKER_PID is its own pid.  The worker's own exec chain
 * (a wrapper script that execs the server) keeps the pid, the variables and
 * the channel fd, so the server it finally runs is the worker.  A program
 * that a forked child execs (CGI, sh -c) has another pid: it closes the
 * inherited channel fd, drops the variables and stays a plain process.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

extern char **environ;

int shim_channel_fd = -1;
pid_t shim_worker_pid;

static int parse_fd(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < 0 || v > 1 << 20)
		return -1;
	return (int)v;
}

static pid_t parse_pid(const char *text)
{
	return text ? (pid_t)strtol(text, NULL, 10) : 0;
}

static bool is_seqpacket_socket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_SEQPACKET;
}

static void say_hello(const char *id)
{
	struct cluster_msg_hello msg;

	cluster_msg_init(&msg, CLUSTER_MSG_HELLO);
	msg.pid = getpid();
	msg.worker_id = id ? (uint32_t)strtoul(id, NULL, 10) : 0;
	(void)shim_channel_notify(&msg);
}

/* A program a forked child exec'd inherited the channel: let it go.  The
 * environment is left alone: shells such as bash replace setenv() and
 * unsetenv() with their own, which must not run before the shell is up. */
static void forget_channel(int fd)
{
	if (fd >= 0 && is_seqpacket_socket(fd))
		real_close(fd);
}

/* environ read directly, for the same reason (bash's getenv() reads the
 * shell's variables, which do not exist yet while constructors run). */
static const char *env_lookup(const char *name)
{
	size_t len = strlen(name);
	char **e;

	for (e = environ; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

/* In a forked child the channel stays open (a daemonizing server's child
 * may be the worker from now on) but not across exec: what a child execs
 * (CGI, sh -c) is never the worker.  Only the worker's own exec chain keeps
 * it. */
static void after_fork_child(void)
{
	int fd = __atomic_load_n(&shim_channel_fd, __ATOMIC_ACQUIRE);

	if (fd >= 0) {
		real_fcntl(fd, F_SETFD, (void *)(long)FD_CLOEXEC);
		shim_daemon_after_fork_child();
		shim_ownership_after_fork_child();
		shim_accept_wait_after_fork_child();
	}
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *text = env_lookup(CLUSTER_ENV_CHANNEL_FD);
	int saved = errno;
	int fd;

	if (!text)
		return;
	fd = parse_fd(text);
	if (parse_pid(env_lookup(CLUSTER_ENV_WORKER_PID)) != getpid() ||
	    fd < 0 || !is_seqpacket_socket(fd)) {
		forget_channel(fd);
		goto out;
	}
	/* The supervisor put the channel high, out of the server's way, and
	 * left it open across exec for the worker's own exec chain. */
	shim_worker_pid = getpid();
	shim_ownership_init();
	shim_channel_set_fd(fd);
	shim_stop_accepting_install();
	pthread_atfork(NULL, NULL, after_fork_child);
	say_hello(env_lookup(CLUSTER_ENV_WORKER_ID));
out:
	errno = saved;
}
