/*
 * conn_load.c - closed-loop new-connection load from many client addresses.
 *
 *   conn_load --port P --duration S --concurrency C --sources N
 *
 * Keeps C connections to 127.0.0.1:P in flight for S seconds: each sends
 * "GET / HTTP/1.1" with "Connection: close", reads until the server
 * closes, checks for HTTP 200, and is replaced by the next at once.  The
 * k-th connection comes from 127.0.0.(2 + k % N), so that a server (or
 * cluster-run's --sticky ip) sees N client addresses, not wrk's single
 * 127.0.0.1.  The source is bound with IP_BIND_ADDRESS_NO_PORT, so its
 * port is chosen at connect() by the 4-tuple, as for a plain connect();
 * a source that has run out of ports (EADDRNOTAVAIL) counts one error and
 * the next connection takes the next source.  A connection not done in
 * 5 s counts as an error (as does an answer other than 200).  No new connection starts after S s; those in
 * flight are finished.  Prints one line on stdout:
 *
 *   requests <answered 200> errors <failed> rps <answered / elapsed s>
 *
 * and, when there were errors, one line on stderr saying which kind.
 * Non-blocking sockets, one epoll loop, one thread.
 *
 * Build: cc -O2 -o conn_load conn_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_close.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_CONCURRENCY 4096
#define MAX_SOURCES 253         /* 127.0.0.2 .. 127.0.0.254 */
#define TIMEOUT_NS (5LL * 1000000000)

struct conn {
	int fd;           /* -1: free */
	long long start_ns;
	int sent;
	struct answer answer;
};

/* Why connections failed, for the stderr line. */
enum failure { F_NOPORT, F_CONNECT, F_SEND, F_ANSWER, F_TIMEOUT, F_KINDS };
static const char *const failure_name[F_KINDS] = {
	"addrnotavail", "connect", "send", "answer", "timeout"
};

static struct conn conns[MAX_CONCURRENCY];
static long long answered, failed[F_KINDS];
static unsigned long next_source;

static void finish(int ep, struct conn *c, int ok, enum failure why)
{
	if (ok)
		answered++;
	else
		failed[why]++;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

/* A socket bound to the next source address, its port left to connect(). */
static int source_socket(int sources)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	src.sin_addr.s_addr = htonl(0x7f000002u + (unsigned)(next_source++ % (unsigned long)sources));
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&src, sizeof(src)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Opens a connection in free slot C; 0, or -1 with the failure counted. */
static int start(int ep, struct conn *c, const struct sockaddr_in *sa, int sources)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int fd = source_socket(sources);

	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		fd = -1;
		errno = err;
	}
	if (fd < 0) {
		failed[errno == EADDRNOTAVAIL || errno == EADDRINUSE ? F_NOPORT : F_CONNECT]++;
		return -1;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->start_ns = now_ns();
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

static void on_event(int ep, struct conn *c)
{
	int done;

	if (!c->sent) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		int sent = send_close_request(c->fd);

		if (sent != SEND_OK) {
			finish(ep, c, 0, sent == SEND_CONNECT_FAILED ? F_CONNECT : F_SEND);
			return;
		}
		c->sent = 1;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	done = read_answer(c->fd, &c->answer);
	if (done >= 0)
		finish(ep, c, done, F_ANSWER);
}

static void expire(int ep, int concurrency, long long now)
{
	int i;

	for (i = 0; i < concurrency; i++)
		if (conns[i].fd >= 0 && now - conns[i].start_ns > TIMEOUT_NS)
			finish(ep, &conns[i], 0, F_TIMEOUT);
}

/* Fills every free slot once; how many could not be filled. */
static int refill(int ep, int concurrency, const struct sockaddr_in *sa, int sources)
{
	int i, short_of = 0;

	for (i = 0; i < concurrency; i++)
		if (conns[i].fd < 0 && start(ep, &conns[i], sa, sources) < 0)
			short_of++;
	return short_of;
}

static int in_flight(int concurrency)
{
	int i, n = 0;

	for (i = 0; i < concurrency; i++)
		n += conns[i].fd >= 0;
	return n;
}

static void report(long long elapsed_ns)
{
	long long errors = 0;
	int k;

	for (k = 0; k < F_KINDS; k++)
		errors += failed[k];
	printf("requests %lld errors %lld rps %.1f\n", answered, errors,
	       elapsed_ns > 0 ? (double)answered * 1e9 / (double)elapsed_ns : 0.0);
	if (!errors)
		return;
	fprintf(stderr, "conn_load: errors:");
	for (k = 0; k < F_KINDS; k++)
		if (failed[k])
			fprintf(stderr, " %s %lld", failure_name[k], failed[k]);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event evs[256];
	double duration = 0;
	int port = 0, concurrency = 64, sources = 1, ep, i;
	long long t0, end;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration"))
			duration = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--concurrency"))
			concurrency = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sources"))
			sources = atoi(argv[i + 1]);
		else
			break;
	}
	if (i != argc || port <= 0 || port > 65535 || duration <= 0 ||
	    concurrency < 1 || concurrency > MAX_CONCURRENCY ||
	    sources < 1 || sources > MAX_SOURCES) {
		fprintf(stderr, "usage: conn_load --port P --duration S "
			"--concurrency C (1..%d) --sources N (1..%d)\n",
			MAX_CONCURRENCY, MAX_SOURCES);
		return 2;
	}
	sa = loopback_port(port);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("conn_load: epoll_create1");
		return 1;
	}
	for (i = 0; i < concurrency; i++)
		conns[i].fd = -1;
	t0 = now_ns();
	end = t0 + (long long)(duration * 1e9);
	for (;;) {
		int wait_ms = 100, short_of = 0, n;
		long long now = now_ns();

		if (now < end)
			short_of = refill(ep, concurrency, &sa, sources);
		expire(ep, concurrency, now);
		if (now >= end && in_flight(concurrency) == 0)
			break;
		/* A slot that could not be filled is retried soon, not in a spin. */
		if (short_of)
			wait_ms = 1;
		else if (now < end && (end - now) / 1000000 < wait_ms)
			wait_ms = (int)((end - now + 999999) / 1000000);
		n = epoll_wait(ep, evs, 256, wait_ms);
		for (i = 0; i < n; i++)
			on_event(ep, evs[i].data.ptr);
	}
	report(now_ns() - t0);
	return fflush(stdout) == 0 ? 0 : 1;
}
