/*
 * handoff_limit.c - the physical floor of a round-robin connection hand-off.
 *
 *   handoff_limit --port P [--host 127.0.0.1] [--children N]
 *
 * The least work a round-robin supervisor can do per connection on this
 * machine: a parent blocks in accept4() on a listening socket and passes each
 * accepted connection, with its peer address as payload (as cluster-run's
 * newconn message carries), over a SOCK_SEQPACKET socketpair with
 * sendmsg(SCM_RIGHTS) to one of N children in turn, then closes its copy.
 * Three syscalls per connection in the parent: accept4, sendmsg, close.
 * No epoll, no acks, no flow control beyond the socketpair's buffer (a full
 * one blocks the parent).  Each child recvmsg()s a connection, reads the
 * request up to "\r\n\r\n", writes a minimal HTTP response with
 * "Connection: close" and closes.  Drive it with wrk -H 'Connection: close'.
 *
 * On SIGUSR1 the parent writes one line on stdout, from the signal handler
 * (so the sample is taken at once, even while blocked in accept4):
 *
 *   stats accepted=<connections so far> cpu_us=<parent utime+stime>
 *         utime_us=<..> stime_us=<..> mono_ns=<CLOCK_MONOTONIC>
 *
 * Two samples around a wrk run give connections/s and parent CPU us per
 * connection.  SIGTERM/SIGINT end it; the children die with it
 * (PR_SET_PDEATHSIG).
 *
 * Build: cc -O2 -o handoff_limit handoff_limit.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct newconn {
	uint32_t addrlen;
	uint32_t pad;
	struct sockaddr_storage peer;
};

static _Atomic uint64_t accepted;

static void die(const char *what)
{
	fprintf(stderr, "handoff_limit: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- stats from the signal handler: async-signal-safe formatting -------- */

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static void on_usr1(int sig)
{
	(void)sig;
	int saved = errno;
	struct rusage ru;
	struct timespec ts;
	getrusage(RUSAGE_SELF, &ru);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ut = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
	uint64_t st = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	char buf[256], *p = buf;
	p = put_str(p, "stats accepted=");
	p = put_u64(p, atomic_load_explicit(&accepted, memory_order_relaxed));
	p = put_str(p, " cpu_us=");
	p = put_u64(p, ut + st);
	p = put_str(p, " utime_us=");
	p = put_u64(p, ut);
	p = put_str(p, " stime_us=");
	p = put_u64(p, st);
	p = put_str(p, " mono_ns=");
	p = put_u64(p, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	*p++ = '\n';
	ssize_t off = 0, len = p - buf;
	while (off < len) {
		ssize_t w = write(1, buf + off, (size_t)(len - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += w;
	}
	errno = saved;
}

/* ---- child: serve handed connections one at a time ---------------------- */

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			       "Content-Length: 6\r\nConnection: close\r\n\r\nHello\n";

static void child_loop(int ch)
{
	char req[8192];
	for (;;) {
		struct newconn nc;
		struct iovec iov = {.iov_base = &nc, .iov_len = sizeof nc};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cm;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
		ssize_t r = recvmsg(ch, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(0); /* parent gone */
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int fd;
		memcpy(&fd, CMSG_DATA(c), sizeof fd);

		size_t len = 0;
		for (;;) {
			ssize_t n = read(fd, req + len, sizeof req - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (memmem(req, len, "\r\n\r\n", 4) || len == sizeof req)
				break;
		}
		if (len > 0) {
			size_t off = 0;
			while (off < sizeof response - 1) {
				ssize_t w = send(fd, response + off, sizeof response - 1 - off,
						 MSG_NOSIGNAL);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break;
				off += (size_t)w;
			}
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = -1, nchildren = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--children") && i + 1 < argc)
			nchildren = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: handoff_limit --port P [--host ADDR] [--children N]\n");
			return 2;
		}
	}
	if (port < 0 || port > 65535 || nchildren < 1 || nchildren > 1024) {
		fprintf(stderr, "usage: handoff_limit --port P [--host ADDR] [--children N]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	int *chan = calloc((size_t)nchildren, sizeof *chan);
	if (!chan)
		die("calloc");
	pid_t parent = getpid();
	for (int i = 0; i < nchildren; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair");
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (int j = 0; j < i; j++)
				close(chan[j]);
			close(sv[0]);
			child_loop(sv[1]);
		}
		close(sv[1]);
		chan[i] = sv[0];
	}

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "handoff_limit: bad --host %s\n", host);
		return 2;
	}
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");

	struct sigaction act;
	memset(&act, 0, sizeof act);
	act.sa_handler = on_usr1;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	sigaction(SIGUSR1, &act, NULL);

	fprintf(stderr, "handoff_limit: pid %d listening on %s:%d, %d children\n",
		(int)getpid(), host, port, nchildren);

	int next = 0;
	for (;;) {
		struct newconn nc;
		memset(&nc, 0, sizeof nc);
		socklen_t sl = sizeof nc.peer;
		int fd = accept4(lfd, (struct sockaddr *)&nc.peer, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				struct timespec ts = {0, 1000000};
				nanosleep(&ts, NULL);
				continue;
			}
			die("accept4");
		}
		nc.addrlen = sl;
		struct iovec iov = {.iov_base = &nc, .iov_len = sizeof nc};
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} cm;
		memset(&cm, 0, sizeof cm);
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
		ssize_t w;
		do
			w = sendmsg(chan[next], &mh, MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			die("sendmsg to child");
		close(fd);
		next = next + 1 == nchildren ? 0 : next + 1;
		atomic_fetch_add_explicit(&accepted, 1, memory_order_relaxed);
	}
}
