/*
 * http_close.h - what latency_probe.c and conn_load.c share: one
 * "Connection: close" GET on a non-blocking socket and reading its answer
 * until the server closes.  Header-only (static functions), so that each
 * helper still builds with one cc command.
 */
#ifndef BENCH_HTTP_CLOSE_H
#define BENCH_HTTP_CLOSE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

static const char close_request[] =
	"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/* The start of one answer: enough for its status line. */
struct answer {
	char head[13];    /* "HTTP/1.1 200" */
	size_t got;
};

enum { SEND_OK = 0, SEND_CONNECT_FAILED = -1, SEND_FAILED = -2 };

/* 127.0.0.1:PORT, where every helper's server listens. */
static inline struct sockaddr_in loopback_port(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sa;
}

static inline long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Once FD's non-blocking connect is writable: whether it connected, and
 * the whole request sent (it fits a fresh socket's buffer). */
static inline int send_close_request(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err)
		return SEND_CONNECT_FAILED;
	if (send(fd, close_request, sizeof(close_request) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(close_request) - 1)
		return SEND_FAILED;
	return SEND_OK;
}

/* Reads what has come on FD, keeping the status line in A.  1: the server
 * closed after an HTTP 200; 0: it closed after anything else, or the read
 * failed; -1: more to come. */
static inline int read_answer(int fd, struct answer *a)
{
	char buf[4096];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		size_t take = sizeof(a->head) - 1 - a->got;

		if (take > (size_t)n)
			take = (size_t)n;
		memcpy(a->head + a->got, buf, take);
		a->got += take;
	}
	if (n == 0)
		return strncmp(a->head, "HTTP/1.1 200", 12) == 0 ||
		       strncmp(a->head, "HTTP/1.0 200", 12) == 0;
	return errno == EAGAIN ? -1 : 0;
}

#endif
