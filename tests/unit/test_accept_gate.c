/*
 * test_accept_gate.c - the accept gate of the control socket and /metrics
 * on a real listening socket and a real libevent loop: never more clients
 * than its bound (the rest stay in the backlog until one goes), and out of
 * fds (RLIMIT_NOFILE lowered) one line and a retry, not a spin, then the
 * waiting client accepted once fds are back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "accept_gate.h"

#define WAIT_MS 5000

struct seen {
	int fds[16];
	int n;
	int lines;
	char line[160];
};

static struct seen seen;

static void on_client(void *arg, int fd)
{
	struct seen *s = arg;

	cr_assert(s->n < 16);
	s->fds[s->n++] = fd;
}

static void on_log(const char *line)
{
	seen.lines++;
	snprintf(seen.line, sizeof(seen.line), "%s", line);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening unix socket (abstract name: nothing to clean up). */
static int listener(struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
		 "accept-gate-test-%d", (int)getpid());
	cr_assert(fd >= 0);
	cr_assert(bind(fd, (struct sockaddr *)sun, sizeof(*sun)) == 0);
	cr_assert(listen(fd, 16) == 0);
	return fd;
}

static int client(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert(connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0,
		  "connect: %s", strerror(errno));
	return fd;
}

/* Runs the loop until *n reaches want or ms pass. */
static void run_until(struct event_base *base, const int *n, int want, int ms)
{
	long long deadline = now_ms() + ms;

	while (*n < want && now_ms() < deadline) {
		struct timeval tv = { 0, 10000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

Test(accept_gate, at_most_max_clients_the_rest_wait)
{
	struct event_base *base = event_base_new();
	struct accept_gate g = { .on_client = on_client, .log = on_log,
				 .arg = &seen };
	struct sockaddr_un sun;
	int lfd = listener(&sun), c[3];

	cr_assert(accept_gate_start(&g, base, lfd, 2) == 0);
	for (int i = 0; i < 3; i++)
		c[i] = client(&sun);
	run_until(base, &seen.n, 2, WAIT_MS);
	/* The third is readable on the listener, but nobody watches it. */
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cr_expect_eq(seen.n, 2, "%d clients accepted with a bound of 2",
		     seen.n);
	cr_expect(!g.accepting, "still watching the listener when full");
	close(seen.fds[0]);
	accept_gate_client_gone(&g);
	run_until(base, &seen.n, 3, WAIT_MS);
	cr_expect_eq(seen.n, 3, "the waiting client was not accepted after "
		     "one went");
	cr_expect_eq(seen.lines, 0);
	accept_gate_stop(&g);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	for (int i = 1; i < seen.n; i++)
		close(seen.fds[i]);
	close(lfd);
	event_base_free(base);
}

Test(accept_gate, out_of_fds_one_line_then_accepted)
{
	struct event_base *base = event_base_new();
	struct accept_gate g = { .on_client = on_client, .log = on_log,
				 .arg = &seen };
	struct sockaddr_un sun;
	int lfd = listener(&sun), c, spare;
	struct rlimit old, low;

	cr_assert(accept_gate_start(&g, base, lfd, 4) == 0);
	c = client(&sun);
	/* No fd left for accept(): the limit just above what is open. */
	spare = dup(0);
	cr_assert(spare >= 0 && getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = (rlim_t)spare + 1;
	cr_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
	run_until(base, &seen.lines, 1, WAIT_MS);
	cr_expect_eq(seen.n, 0);
	cr_expect_eq(seen.lines, 1, "%d lines", seen.lines);
	cr_expect(strstr(seen.line, "cannot accept a client: Too many open "
			 "files; trying again in 1000 ms") != NULL, "line: %s",
		  seen.line);
	cr_assert(setrlimit(RLIMIT_NOFILE, &old) == 0);
	run_until(base, &seen.n, 1, WAIT_MS);
	cr_expect_eq(seen.n, 1, "not accepted once fds were back");
	cr_expect_eq(seen.lines, 1, "the retry spun: %d lines", seen.lines);
	accept_gate_stop(&g);
	close(c);
	close(spare);
	if (seen.n)
		close(seen.fds[0]);
	close(lfd);
	event_base_free(base);
}
