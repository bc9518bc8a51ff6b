/*
 * hostile.c - a worker that talks to cluster-run's channel by hand, for
 * tests/hardening.  Static, so the shim never loads into it: every byte on
 * the channel is written here.
 *
 *   hostile STATEFILE MODE[,MODE...] [FIXTURE ARGS...]
 *
 * Worker 1 (CLUSTER_WORKER_ID=1) execs $FIXTURES_DIR/fx_blocking_accept
 * with FIXTURE ARGS: a normal server, which the tests keep querying.  Any
 * other worker is the hostile one: each process started for it appends a
 * byte to STATEFILE, and the Nth one plays the Nth MODE (past the list:
 * "pause").  Reports go to stdout as "hostile: ..." lines.
 *
 * Protocol violations (cluster-run is to log one line and kill it; if it
 * is still alive 10 s later it exits 3):
 *   short empty oversized version type length fds manyfds reply newconn
 *   listen-unissued close-unissued query-bad unlink-unterminated
 * Odd but legal requests, and abuse that is not a violation (it must live):
 *   odd    QUERY, LISTEN, a second LISTEN (EINVAL), CLOSE, a second CLOSE,
 *          LISTEN after CLOSE (EBADF); prints "hostile: odd ok"
 *   deaf   requests whose reply sockets are full and never read
 *   flood  on SIGUSR1: HELLOs for 2 s, then 1100 port-0 queries (the
 *          supervisor holds at most 1024 handles per worker: ENOBUFS)
 *   unlink UNLINK_PATH of $HOSTILE_VICTIM; prints "answered ERRNO"
 *   linger a handle's socket left to the supervisor connected, its queue
 *          full and SO_LINGER set, then CLOSE of the handle
 *   pause  HELLO, then sleep
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cluster_proto.h"

static int chan = -1;
static const char *mode = "pause";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	printf("hostile: %s: ", mode);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void die(const char *what)
{
	say("%s: %s", what, strerror(errno));
	exit(1);
}

/* ---- raw sending ---- */

static void send_raw(const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	while (sendmsg(chan, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			die("sendmsg on the channel");
}

static void init_msg(void *msg, size_t size, unsigned type)
{
	struct cluster_msg_header *hdr = msg;

	memset(msg, 0, size);
	hdr->version = CLUSTER_PROTO_VERSION;
	hdr->type = (uint16_t)type;
	hdr->length = (uint32_t)size;
}

static void hello(void)
{
	struct cluster_msg_hello msg;

	init_msg(&msg, sizeof(msg), CLUSTER_MSG_HELLO);
	msg.pid = getpid();
	send_raw(&msg, sizeof(msg), NULL, 0);
}

static int devnull(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/null");
	return fd;
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

/* A request with a fresh reply socket (and extra, if >= 0); the answer's
 * error, or -1 when none came within 5 s.  *handle_id gets its handle. */
static int request(const void *msg, size_t len, int extra, uint32_t *handle_id)
{
	struct cluster_msg_reply reply = { .error = 0 };
	struct pollfd pfd;
	int sv[2], fds[2], nfds = 1, err = -1;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = &reply, .iov_len = sizeof(reply) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	fds[0] = sv[1];
	if (extra >= 0)
		fds[nfds++] = extra;
	send_raw(msg, len, fds, nfds);
	close(sv[1]);
	pfd = (struct pollfd){ .fd = sv[0], .events = POLLIN };
	if (poll(&pfd, 1, 5000) == 1 &&
	    recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC) == (ssize_t)sizeof(reply)) {
		struct cmsghdr *cm;

		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t i, n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < n; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(int));
				close(fd);
			}
		}
		err = reply.error;
		if (handle_id)
			*handle_id = reply.handle_id;
	}
	close(sv[0]);
	return err;
}

/* A reply socket whose queue is full: the supervisor's answer cannot go. */
static int full_reply_socket(int *keep)
{
	char junk[64] = { 0 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	while (send(sv[1], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	*keep = sv[0];
	return sv[1]; /* blocking, full */
}

static void query_msg(struct cluster_msg_query_server *q)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&q->addr.ss;

	init_msg(q, sizeof(*q), CLUSTER_MSG_QUERY_SERVER);
	q->domain = AF_INET;
	q->type = SOCK_STREAM;
	q->addr.len = sizeof(*sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void listen_msg(struct cluster_msg_listen *l, uint32_t id)
{
	init_msg(l, sizeof(*l), CLUSTER_MSG_LISTEN);
	l->handle_id = id;
	l->backlog = 16;
}

static void close_msg(uint32_t id)
{
	struct cluster_msg_close c;

	init_msg(&c, sizeof(c), CLUSTER_MSG_CLOSE);
	c.handle_id = id;
	send_raw(&c, sizeof(c), NULL, 0);
}

/* ---- violations ---- */

static void violate(void)
{
	union {
		struct cluster_msg_hello hello;
		struct cluster_msg_listen listen;
		struct cluster_msg_query_server query;
		struct cluster_msg_reply reply;
		struct cluster_msg_newconn newconn;
		struct cluster_msg_unlink_path unlink;
		char bytes[2048];
	} m;
	sigset_t waited;
	int fds[8], i;

	memset(&m, 0, sizeof(m));
	if (strcmp(mode, "short") == 0) {
		send_raw("\1\0\1", 3, NULL, 0);
	} else if (strcmp(mode, "empty") == 0) {
		send_raw("", 0, NULL, 0);
	} else if (strcmp(mode, "oversized") == 0) {
		init_msg(&m.hello, sizeof(m.hello), CLUSTER_MSG_HELLO);
		send_raw(&m, sizeof(m.bytes), NULL, 0);
	} else if (strcmp(mode, "version") == 0) {
		init_msg(&m.hello, sizeof(m.hello), CLUSTER_MSG_HELLO);
		m.hello.hdr.version = CLUSTER_PROTO_VERSION + 1;
		send_raw(&m, sizeof(m.hello), NULL, 0);
	} else if (strcmp(mode, "type") == 0) {
		init_msg(&m.hello, sizeof(m.hello), 42);
		send_raw(&m, sizeof(m.hello), NULL, 0);
	} else if (strcmp(mode, "length") == 0) {
		init_msg(&m.hello, sizeof(m.hello), CLUSTER_MSG_HELLO);
		m.hello.hdr.length += 4;
		send_raw(&m, sizeof(m.hello), NULL, 0);
	} else if (strcmp(mode, "fds") == 0) {
		init_msg(&m.hello, sizeof(m.hello), CLUSTER_MSG_HELLO);
		fds[0] = devnull();
		fds[1] = tcp_socket();
		send_raw(&m, sizeof(m.hello), fds, 2);
	} else if (strcmp(mode, "manyfds") == 0) {
		query_msg(&m.query);
		for (i = 0; i < 6; i++)
			fds[i] = devnull();
		send_raw(&m, sizeof(m.query), fds, 6);
	} else if (strcmp(mode, "reply") == 0) {
		init_msg(&m.reply, sizeof(m.reply), CLUSTER_MSG_REPLY);
		m.reply.nfds = 1;
		fds[0] = devnull();
		send_raw(&m, sizeof(m.reply), fds, 1);
	} else if (strcmp(mode, "newconn") == 0) {
		init_msg(&m.newconn, sizeof(m.newconn), CLUSTER_MSG_NEWCONN);
		fds[0] = tcp_socket();
		send_raw(&m, sizeof(m.newconn), fds, 1);
	} else if (strcmp(mode, "listen-unissued") == 0) {
		listen_msg(&m.listen, 0x7fffffff);
		fds[0] = devnull();
		send_raw(&m, sizeof(m.listen), fds, 1);
	} else if (strcmp(mode, "close-unissued") == 0) {
		close_msg(0x7fffffff);
	} else if (strcmp(mode, "query-bad") == 0) {
		query_msg(&m.query);
		m.query.domain = AF_PACKET;
		m.query.addr.ss.ss_family = AF_PACKET;
		fds[0] = devnull();
		fds[1] = tcp_socket();
		send_raw(&m, sizeof(m.query), fds, 2);
	} else if (strcmp(mode, "unlink-unterminated") == 0) {
		init_msg(&m.unlink, sizeof(m.unlink), CLUSTER_MSG_UNLINK_PATH);
		memset(m.unlink.path, 'a', sizeof(m.unlink.path));
		fds[0] = devnull();
		send_raw(&m, sizeof(m.unlink), fds, 1);
	} else {
		say("unknown mode");
		exit(2);
	}
	say("sent");
	/* cluster-run is to kill it for that: wait for the kill, and if it
	 * has not come within 10 s, say so and exit 3 */
	sigemptyset(&waited);
	sigaddset(&waited, SIGALRM);
	sigprocmask(SIG_BLOCK, &waited, NULL);
	alarm(10);
	while (sigwaitinfo(&waited, NULL) < 0 && errno == EINTR)
		;
	say("still alive 10 s later");
	exit(3);
}

/* ---- abuse that is no violation ---- */

static void expect(const char *step, int got, int want)
{
	if (got != want) {
		say("FAIL: %s answered %d, want %d", step, got, want);
		pause();
	}
}

static void odd(void)
{
	struct cluster_msg_query_server q;
	struct cluster_msg_listen l;
	uint32_t id = 0;

	query_msg(&q);
	expect("QUERY_SERVER", request(&q, sizeof(q), tcp_socket(), &id), 0);
	listen_msg(&l, id);
	expect("LISTEN", request(&l, sizeof(l), -1, NULL), 0);
	expect("second LISTEN", request(&l, sizeof(l), -1, NULL), EINVAL);
	close_msg(id);
	close_msg(id);
	expect("LISTEN after CLOSE", request(&l, sizeof(l), -1, NULL), EBADF);
	say("ok");
}

static void deaf(void)
{
	struct cluster_msg_query_server q;
	struct cluster_msg_listen l;
	struct cluster_msg_unlink_path u;
	int i, keep[150], n = 0, fds[2];
	uint32_t id = 0;

	query_msg(&q);
	init_msg(&u, sizeof(u), CLUSTER_MSG_UNLINK_PATH);
	snprintf(u.path, sizeof(u.path), "/nonexistent/hostile.sock");
	for (i = 0; i < 50; i++) {
		expect("QUERY_SERVER", request(&q, sizeof(q), tcp_socket(), &id), 0);
		listen_msg(&l, id);
		fds[0] = full_reply_socket(&keep[n++]);
		send_raw(&l, sizeof(l), fds, 1);
		close(fds[0]);
		fds[0] = full_reply_socket(&keep[n++]);
		fds[1] = tcp_socket();
		send_raw(&q, sizeof(q), fds, 2);
		close(fds[0]);
		close(fds[1]);
		fds[0] = full_reply_socket(&keep[n++]);
		send_raw(&u, sizeof(u), fds, 1);
		close(fds[0]);
	}
	say("sent");
}

/* The socket of a QUERY_SERVER, which the supervisor bound and keeps,
 * connected by hand to a listener that never reads, its send queue full,
 * SO_LINGER 120 s, and our copy closed: when the supervisor closes the
 * last one (CLOSE of the handle), close() would wait out the linger. */
static void linger_trap(void)
{
	struct cluster_msg_query_server q;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	socklen_t plen = sizeof(peer);
	struct linger lg = { .l_onoff = 1, .l_linger = 120 };
	static char junk[65536];
	int l = tcp_socket(), s = tcp_socket(), small = 4096, queued = 0;
	uint32_t id = 0;

	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(l, (struct sockaddr *)&peer, sizeof(peer)) < 0 ||
	    listen(l, 8) < 0 ||
	    getsockname(l, (struct sockaddr *)&peer, &plen) < 0)
		die("listener");
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	query_msg(&q);
	expect("QUERY_SERVER", request(&q, sizeof(q), s, &id), 0);
	if (connect(s, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
		/* in rr the supervisor made the file non-blocking */
		struct pollfd pfd = { .fd = s, .events = POLLOUT };

		if (errno != EINPROGRESS || poll(&pfd, 1, 5000) != 1)
			die("connect");
	}
	while (send(s, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		queued++;
	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("SO_LINGER");
	close(s);
	close_msg(id);
	say("sent (%d sends queued)", queued);
}

/* UNLINK_PATH of $HOSTILE_VICTIM; prints the answer. */
static void unlink_victim(void)
{
	struct cluster_msg_unlink_path u;
	const char *victim = getenv("HOSTILE_VICTIM");

	init_msg(&u, sizeof(u), CLUSTER_MSG_UNLINK_PATH);
	snprintf(u.path, sizeof(u.path), "%s", victim ? victim : "");
	say("answered %d", request(&u, sizeof(u), -1, NULL));
}

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void flood(void)
{
	struct cluster_msg_hello h;
	struct cluster_msg_query_server q;
	struct timespec t0, t;
	unsigned long hellos = 0;
	int i, refused = 0, other = 0;

	while (!go)
		pause();
	init_msg(&h, sizeof(h), CLUSTER_MSG_HELLO);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		send_raw(&h, sizeof(h), NULL, 0);
		hellos++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 2);
	query_msg(&q);
	for (i = 0; i < 1100; i++) {
		int s = tcp_socket(), err = request(&q, sizeof(q), s, NULL);

		close(s);
		if (err == ENOBUFS)
			refused++;
		else if (err != 0)
			other++;
	}
	say("done: %lu hellos, 1100 queries, %d refused (ENOBUFS), %d other "
	    "errors", hellos, refused, other);
}

/* ---- main ---- */

static void be_worker_one(int argc, char **argv)
{
	const char *dir = getenv("FIXTURES_DIR");
	char path[4096];
	char **args = calloc((size_t)argc, sizeof(*args));
	int i;

	if (!dir || !args) {
		fprintf(stderr, "hostile: FIXTURES_DIR is not set\n");
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/fx_blocking_accept", dir);
	args[0] = path;
	for (i = 3; i < argc; i++)
		args[i - 2] = argv[i];
	execv(path, args);
	fprintf(stderr, "hostile: exec %s: %s\n", path, strerror(errno));
	exit(127);
}

/* Which process of the hostile worker this is: 1, 2, ... */
static long generation(const char *statefile)
{
	struct stat st;
	int fd = open(statefile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, "x", 1) != 1 || fstat(fd, &st) < 0)
		die(statefile);
	close(fd);
	return (long)st.st_size;
}

static const char *nth_mode(char *list, long n)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (--n == 0)
			return tok;
	return "pause";
}

int main(int argc, char **argv)
{
	const char *id = getenv(CLUSTER_ENV_WORKER_ID);
	const char *fd = getenv(CLUSTER_ENV_CHANNEL_FD);
	long gen;

	if (argc < 3) {
		fprintf(stderr, "usage: hostile STATEFILE MODE[,MODE...] "
			"[FIXTURE ARGS...]\n");
		return 2;
	}
	if (id && strcmp(id, "1") == 0)
		be_worker_one(argc, argv);
	if (!fd) {
		fprintf(stderr, "hostile: no %s\n", CLUSTER_ENV_CHANNEL_FD);
		return 2;
	}
	chan = atoi(fd);
	signal(SIGUSR1, on_usr1);
	gen = generation(argv[1]);
	mode = nth_mode(argv[2], gen);
	say("generation %ld, pid %d", gen, (int)getpid());
	hello();
	if (strcmp(mode, "odd") == 0)
		odd();
	else if (strcmp(mode, "deaf") == 0)
		deaf();
	else if (strcmp(mode, "flood") == 0)
		flood();
	else if (strcmp(mode, "unlink") == 0)
		unlink_victim();
	else if (strcmp(mode, "linger") == 0)
		linger_trap();
	else if (strcmp(mode, "pause") != 0)
		violate();
	for (;;)
		pause();
}
