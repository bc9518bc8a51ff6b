/*
 * hello.c - the benchmark's hello-world HTTP server (one process, one thread).
 *
 *   hello --port P [--host 127.0.0.1] [--burn-us N] [--backlog N] [--reuseport]
 *
 * An ordinary single-process epoll server, the kind cluster-run is meant to
 * run unmodified: a non-blocking listener, an accept4() loop until EAGAIN,
 * level-triggered epoll, keep-alive.  Every response is
 *
 *   HTTP/1.1 200 OK
 *   Content-Type: text/plain
 *   Content-Length: 6
 *   X-Worker: <$CLUSTER_WORKER_ID, or the pid when unset>
 *   [Connection: close | Connection: keep-alive]
 *
 *   Hello
 *
 * HTTP parsing is the minimum wrk and curl need: read until "\r\n\r\n"
 * (pipelined requests are answered in order), ignore any body, close after the
 * response when the request says "Connection: close" (or is HTTP/1.0 without
 * "Connection: keep-alive").
 *
 * --burn-us N burns about N microseconds of CPU per request with a busy loop
 * calibrated at start-up against CLOCK_THREAD_CPUTIME_ID (so the calibration
 * is not fooled by being preempted), to make the server CPU-bound.
 *
 * Build: cc -O2 -o hello hello.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP 8192

struct conn {
	size_t len;          /* bytes in in[] */
	char in[IN_CAP];
	char *out;           /* pending response bytes */
	size_t olen, ooff, ocap;
	int close_after;     /* close once out[] is written */
	int want_out;        /* EPOLLOUT registered */
};

static struct conn **tab; /* indexed by fd */
static size_t tab_cap;
static int ep, lfd;

static char resp_keep[256], resp_close[256], resp_keep10[256];
static size_t resp_keep_len, resp_close_len, resp_keep10_len;

static uint64_t burn_iters;
static volatile uint64_t burn_sink;

static void die(const char *what)
{
	fprintf(stderr, "hello: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- CPU burn ------------------------------------------------------------ */

static void spin(uint64_t iters)
{
	uint64_t x = burn_sink;
	for (uint64_t i = 0; i < iters; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		__asm__ volatile("" : "+r"(x));
	}
	burn_sink = x;
}

static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Iterations of spin() per microsecond of CPU: best of several samples. */
static double calibrate(void)
{
	double best = 0;
	uint64_t n = 1 << 16;
	for (int round = 0; round < 12; round++) {
		double t0 = thread_cpu_ns();
		spin(n);
		double dt = thread_cpu_ns() - t0;
		if (dt < 5e6) { /* under 5 ms: too short to trust, grow */
			n *= 2;
			round--;
			continue;
		}
		double rate = n / (dt / 1e3);
		if (rate > best)
			best = rate;
	}
	return best;
}

/* ---- connections --------------------------------------------------------- */

static struct conn *conn_get(int fd)
{
	if ((size_t)fd >= tab_cap) {
		size_t ncap = tab_cap ? tab_cap : 1024;
		while (ncap <= (size_t)fd)
			ncap *= 2;
		struct conn **nt = realloc(tab, ncap * sizeof *nt);
		if (!nt)
			return NULL;
		memset(nt + tab_cap, 0, (ncap - tab_cap) * sizeof *nt);
		tab = nt;
		tab_cap = ncap;
	}
	if (!tab[fd]) {
		tab[fd] = calloc(1, sizeof(struct conn));
		if (!tab[fd])
			return NULL;
	}
	struct conn *c = tab[fd];
	c->len = c->olen = c->ooff = 0;
	c->close_after = c->want_out = 0;
	return c;
}

static void conn_close(int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static int out_append(struct conn *c, const char *p, size_t n)
{
	if (c->olen + n > c->ocap) {
		size_t ncap = c->ocap ? c->ocap : 1024;
		while (ncap < c->olen + n)
			ncap *= 2;
		char *no = realloc(c->out, ncap);
		if (!no)
			return -1;
		c->out = no;
		c->ocap = ncap;
	}
	memcpy(c->out + c->olen, p, n);
	c->olen += n;
	return 0;
}

/* Case-insensitive search of needle in s[0..n). */
static int contains_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(s + i, needle, k) == 0)
			return 1;
	return 0;
}

/* Decide keep-alive for the request in req[0..n) (headers incl. CRLFCRLF). */
static int request_wants_close(const char *req, size_t n, int *http10)
{
	const char *eol = memmem(req, n, "\r\n", 2);
	if (!eol)
		return 1;
	*http10 = contains_ci(req, (size_t)(eol - req), "HTTP/1.0");
	int close = *http10, keep = 0;
	const char *p = eol + 2, *end = req + n;
	while (p < end) {
		const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!e || e == p)
			break;
		if ((size_t)(e - p) > 11 && strncasecmp(p, "connection:", 11) == 0) {
			if (contains_ci(p + 11, (size_t)(e - p - 11), "close"))
				close = 1, keep = 0;
			else if (contains_ci(p + 11, (size_t)(e - p - 11), "keep-alive"))
				keep = 1, close = 0;
		}
		p = e + 2;
	}
	(void)keep;
	return close;
}

/* Write what is pending. Returns -1 when the connection is finished. */
static int flush_out(int fd, struct conn *c)
{
	while (c->ooff < c->olen) {
		ssize_t w = send(fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out) {
					struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
								 .data.fd = fd};
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
					c->want_out = 1;
				}
				return 0;
			}
			return -1;
		}
		c->ooff += (size_t)w;
	}
	c->olen = c->ooff = 0;
	if (c->close_after)
		return -1;
	if (c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		c->want_out = 0;
	}
	return 0;
}

/* Answer every complete request in the input buffer. */
static int process(struct conn *c)
{
	for (;;) {
		char *hend = memmem(c->in, c->len, "\r\n\r\n", 4);
		if (!hend)
			break;
		size_t reqlen = (size_t)(hend - c->in) + 4;
		int http10 = 0;
		int close = request_wants_close(c->in, reqlen, &http10);
		if (burn_iters)
			spin(burn_iters);
		int rc;
		if (close)
			rc = out_append(c, resp_close, resp_close_len);
		else if (http10)
			rc = out_append(c, resp_keep10, resp_keep10_len);
		else
			rc = out_append(c, resp_keep, resp_keep_len);
		if (rc < 0)
			return -1;
		memmove(c->in, c->in + reqlen, c->len - reqlen);
		c->len -= reqlen;
		if (close) {
			c->close_after = 1;
			c->len = 0;
			break;
		}
	}
	if (c->len == IN_CAP) /* headers too large: give up on it */
		return -1;
	return 0;
}

static void on_readable(int fd, struct conn *c)
{
	int eof = 0;
	while (!c->close_after && c->len < IN_CAP) {
		ssize_t r = read(fd, c->in + c->len, IN_CAP - c->len);
		if (r > 0) {
			c->len += (size_t)r;
			continue;
		}
		if (r == 0) {
			eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_close(fd);
		return;
	}
	if (process(c) < 0 || flush_out(fd, c) < 0 || (eof && c->olen == 0)) {
		conn_close(fd);
		return;
	}
	if (eof) /* answer what we had, then close */
		c->close_after = 1;
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				static int warned;
				if (!warned++)
					fprintf(stderr, "hello: accept4: %s\n", strerror(errno));
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = conn_get(fd);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
		if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: hello --port P [--host ADDR] [--burn-us N] "
			"[--backlog N] [--reuseport]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = -1, backlog = 4096, reuseport = 0;
	long burn_us = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else if (!strcmp(argv[i], "--burn-us") && i + 1 < argc)
			burn_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--backlog") && i + 1 < argc)
			backlog = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reuseport"))
			reuseport = 1;
		else
			usage();
	}
	if (port < 0 || port > 65535)
		usage();

	signal(SIGPIPE, SIG_IGN);

	char idbuf[32];
	const char *id = getenv("CLUSTER_WORKER_ID");
	if (!id || !*id) {
		snprintf(idbuf, sizeof idbuf, "%d", (int)getpid());
		id = idbuf;
	}
	static const char body[] = "Hello\n";
	const char *fmt = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			  "Content-Length: %zu\r\nX-Worker: %s\r\n%s\r\n%s";
	resp_keep_len = (size_t)snprintf(resp_keep, sizeof resp_keep, fmt,
					 sizeof body - 1, id, "", body);
	resp_close_len = (size_t)snprintf(resp_close, sizeof resp_close, fmt, sizeof body - 1,
					  id, "Connection: close\r\n", body);
	resp_keep10_len = (size_t)snprintf(resp_keep10, sizeof resp_keep10, fmt,
					   sizeof body - 1, id, "Connection: keep-alive\r\n", body);

	if (burn_us > 0) {
		double per_us = calibrate();
		burn_iters = (uint64_t)(per_us * (double)burn_us);
		if (!burn_iters)
			burn_iters = 1;
	}

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport && setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("SO_REUSEPORT");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "hello: bad --host %s\n", host);
		return 2;
	}
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, backlog) < 0)
		die("listen");
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
		die("epoll_ctl listener");

	fprintf(stderr, "hello: pid %d worker %s listening on %s:%d (burn %ld us = %llu iters)\n",
		(int)getpid(), id, host, ntohs(sa.sin_port), burn_us,
		(unsigned long long)burn_iters);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint32_t e = evs[i].events;
			if (fd == lfd) {
				on_accept();
				continue;
			}
			struct conn *c = tab[fd];
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				on_readable(fd, c);
			} else if (e & EPOLLOUT) {
				if (flush_out(fd, c) < 0)
					conn_close(fd);
			}
		}
	}
}
