/*
 * latency_probe.c - the latency of new connections over time, open loop.
 *
 *   latency_probe --port P --rate R --duration S [--t0-ns T]
 *
 * Starts a new connection to 127.0.0.1:P every 1/R s for S seconds, on a
 * schedule that does not wait for earlier answers (open loop: a server
 * that stalls for 150 ms delays every connection due in those 150 ms, and
 * each of them counts, rather than the probe politely waiting, which would
 * hide the stall).  Each sends "GET / HTTP/1.1" with "Connection: close"
 * and reads until the server closes.  Latency runs from the moment the
 * connection was due to the end of the answer.  Prints one line per
 * connection on stdout:
 *
 *   <due, ms since T> <latency, us> <1: HTTP 200, 0: error or 5 s timeout>
 *
 * T is a CLOCK_MONOTONIC time in ns (the caller's: when it started the
 * server; default: the probe's start).  At most MAX_INFLIGHT connections at
 * once; one due beyond that is counted as an error.  Non-blocking sockets,
 * one epoll loop, one thread.
 *
 * Build: cc -O2 -o latency_probe latency_probe.c
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

#define MAX_INFLIGHT 4096
#define TIMEOUT_NS (5LL * 1000000000)

struct conn {
	int fd;           /* -1: free */
	long long due_ns;
	int sent;
	struct answer answer;
};

static struct conn conns[MAX_INFLIGHT];
static int inflight;
static long long t0_ns;

static void record(long long due_ns, long long end_ns, int ok)
{
	printf("%.3f %.1f %d\n", (double)(due_ns - t0_ns) / 1e6,
	       (double)(end_ns - due_ns) / 1e3, ok);
}

static void finish(int ep, struct conn *c, int ok)
{
	record(c->due_ns, now_ns(), ok);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	inflight--;
}

static void start(int ep, const struct sockaddr_in *sa, long long due_ns)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	struct conn *c = NULL;
	int i, fd;

	for (i = 0; i < MAX_INFLIGHT && !c; i++)
		if (conns[i].fd < 0)
			c = &conns[i];
	fd = c ? socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
	if (fd < 0) {
		record(due_ns, now_ns(), 0);
		return;
	}
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		record(due_ns, now_ns(), 0);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->due_ns = due_ns;
	ev.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	inflight++;
}

static void on_event(int ep, struct conn *c, unsigned events)
{
	int done;

	if (!c->sent) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		if (send_close_request(c->fd) != SEND_OK) {
			finish(ep, c, 0);
			return;
		}
		c->sent = 1;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	done = read_answer(c->fd, &c->answer);
	if (done >= 0)
		finish(ep, c, done);
	(void)events;
}

static void expire(int ep, long long now)
{
	int i;

	for (i = 0; i < MAX_INFLIGHT; i++)
		if (conns[i].fd >= 0 && now - conns[i].due_ns > TIMEOUT_NS)
			finish(ep, &conns[i], 0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct epoll_event evs[256];
	double rate = 500, duration = 10;
	long long next, end, step, now;
	int port = 0, ep, i, n;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rate"))
			rate = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration"))
			duration = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--t0-ns"))
			t0_ns = atoll(argv[i + 1]);
		else
			break;
	}
	if (i != argc || port <= 0 || rate <= 0 || duration <= 0) {
		fprintf(stderr, "usage: latency_probe --port P --rate R "
			"--duration S [--t0-ns T]\n");
		return 2;
	}
	sa = loopback_port(port);
	for (i = 0; i < MAX_INFLIGHT; i++)
		conns[i].fd = -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("epoll_create1");
		return 1;
	}
	now = now_ns();
	if (!t0_ns)
		t0_ns = now;
	step = (long long)(1e9 / rate);
	next = now;
	end = now + (long long)(duration * 1e9);
	for (;;) {
		int wait_ms;

		now = now_ns();
		while (next <= now && next < end) {
			start(ep, &sa, next);
			next += step;
		}
		expire(ep, now);
		if (next >= end && inflight == 0)
			break;
		wait_ms = next < end ? (int)((next - now + 999999) / 1000000) : 10;
		n = epoll_wait(ep, evs, 256, wait_ms);
		for (i = 0; i < n; i++)
			on_event(ep, evs[i].data.ptr, evs[i].events);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
