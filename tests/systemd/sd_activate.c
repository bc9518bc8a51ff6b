/*
 * sd_activate: plays systemd's part in socket activation for the tests.
 *
 * Started by the harness in place of cluster-run (CLUSTER_RUN_BIN), with
 * cluster-run's arguments: connects to the unix socket $SD_ACTIVATE_FROM,
 * where the test sends its listening sockets (SCM_RIGHTS), puts them at
 * fds 3, 4, ..., sets LISTEN_FDS, LISTEN_PID (its own pid, which exec
 * keeps: the pid of cluster-run) and LISTEN_FDNAMES ($SD_ACTIVATE_NAMES, if
 * set), and execs $SD_ACTIVATE_EXEC (cluster-run) with its arguments.
 * SD_ACTIVATE_WRONG_PID=1: LISTEN_PID names another process (its parent).
 * Any failure: a line on stderr and exit 127.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 8
#define HIGH_FD 100

static void die(const char *what) __attribute__((noreturn));

static void die(const char *what)
{
	fprintf(stderr, "sd_activate: %s: %s\n", what, strerror(errno));
	exit(127);
}

/* The fds the test sends, moved to HIGH_FD and up; how many. */
static int receive_fds(const char *path, int *fds)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), n = 0;

	if (sock < 0)
		die("socket");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		die("connect");
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0)
		die("recvmsg");
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t len = cm->cmsg_len - CMSG_LEN(0);
		int got[MAX_FDS];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		memcpy(got, CMSG_DATA(cm), len);
		for (size_t i = 0; i < len / sizeof(int) && n < MAX_FDS; i++) {
			fds[n] = fcntl(got[i], F_DUPFD_CLOEXEC, HIGH_FD);
			if (fds[n++] < 0)
				die("fcntl");
			close(got[i]);
		}
	}
	close(sock);
	if (n == 0) {
		errno = EPROTO;
		die("no fd received");
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *from = getenv("SD_ACTIVATE_FROM");
	const char *exec = getenv("SD_ACTIVATE_EXEC");
	const char *names = getenv("SD_ACTIVATE_NAMES");
	const char *wrong = getenv("SD_ACTIVATE_WRONG_PID");
	int fds[MAX_FDS], n, i;
	char num[32];

	(void)argc;
	if (!from || !exec) {
		errno = EINVAL;
		die("SD_ACTIVATE_FROM and SD_ACTIVATE_EXEC must be set");
	}
	n = receive_fds(from, fds);
	for (i = 0; i < n; i++) { /* dup2 clears close-on-exec */
		if (dup2(fds[i], 3 + i) < 0)
			die("dup2");
		close(fds[i]);
	}
	snprintf(num, sizeof(num), "%d", n);
	setenv("LISTEN_FDS", num, 1);
	snprintf(num, sizeof(num), "%d",
		 wrong && strcmp(wrong, "1") == 0 ? (int)getppid() : (int)getpid());
	setenv("LISTEN_PID", num, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	unsetenv("SD_ACTIVATE_FROM");
	unsetenv("SD_ACTIVATE_EXEC");
	unsetenv("SD_ACTIVATE_NAMES");
	unsetenv("SD_ACTIVATE_WRONG_PID");
	argv[0] = (char *)exec;
	execv(exec, argv);
	die(exec);
}
