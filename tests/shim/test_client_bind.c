/*
 * test_client_bind.c - a socket bound to a source address before connect()
 * keeps working as a client (fx_client_bind): it connects from the address
 * it bound, the data arrives, and its close() reaches the peer (EOF within
 * a deadline; a copy of the socket left in the supervisor would hold the
 * connection open).  Port 0 (every worker's first port-0 bind is one
 * handle), IP_BIND_ADDRESS_NO_PORT, a fixed source port per worker, and the
 * worker whose own socket the supervisor bound connecting while the other
 * worker still holds the handle.  In rr and none; the workers serve after.
 */
#include "shim_tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 2
#define REQUESTS 20
#define CLIENT_MS 3000

TestSuite(client_bind, .fini = hx_cleanup, .timeout = 60);

/* The test's own listener on 127.0.0.1, the port the workers connect to. */
static int peer_listener(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		  listen(fd, 16) == 0 &&
		  getsockname(fd, (struct sockaddr *)&sin, &len) == 0,
		  "peer listener: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - hx_now_ms();

	return left < 0 ? 0 : (int)left;
}

/*
 * One worker's client connection: accepted, read to EOF within CLIENT_MS,
 * "<id> <port>\n" from the port it came from.  Returns the id.
 */
static int expect_client(struct hx_cluster *c, int lfd, int want_src)
{
	int64_t deadline = hx_now_ms() + CLIENT_MS;
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	char buf[128];
	size_t got = 0;
	int fd, id = 0, port = 0;

	hx_pump(c, 0);
	hx_assert(c, poll(&pfd, 1, ms_left(deadline)) == 1,
		  "no client connection from a worker within %d ms", CLIENT_MS);
	fd = accept4(lfd, (struct sockaddr *)&from, &len, SOCK_CLOEXEC);
	hx_assert(c, fd >= 0, "accept: %s", strerror(errno));
	for (;;) {
		struct pollfd r = { .fd = fd, .events = POLLIN };
		ssize_t n;

		hx_assert(c, poll(&r, 1, ms_left(deadline)) == 1,
			  "the worker's client connection (from port %d) did "
			  "not end within %d ms of its start: its close() did "
			  "not reach the peer (read so far: \"%.*s\")",
			  ntohs(from.sin_port), CLIENT_MS, (int)got, buf);
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		hx_assert(c, n >= 0, "read: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		hx_assert(c, got < sizeof(buf) - 1, "too much from a client");
	}
	close(fd);
	buf[got] = '\0';
	hx_assert(c, sscanf(buf, "%d %d", &id, &port) == 2 &&
		  id >= 1 && id <= WORKERS, "client sent \"%s\"", buf);
	hx_assert(c, port == ntohs(from.sin_port) &&
		  from.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
		  "worker %d says it connected from port %d; it came from %d",
		  id, port, ntohs(from.sin_port));
	if (want_src)
		hx_assert(c, port == want_src + id - 1,
			  "worker %d connected from port %d, it bound %d", id,
			  port, want_src + id - 1);
	return id;
}

static void serve_and_stop(struct hx_cluster *c, int port)
{
	struct hx_tally tally;

	hx_assert(c, hx_wait_count(c, HX_LISTENING, WORKERS, HX_START_MS),
		  "want %d \"listening\" lines", WORKERS);
	st_load(c, port, REQUESTS, WORKERS, false, &tally);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

/* zero, noport, fixed: each worker's client at start-up. */
static void startup_case(const char *sched, const char *mode, bool fixed)
{
	static char port[16], peer[16], src1[16], src2[16];
	const char *args[] = { port, peer, mode, src1, src2, NULL };
	struct hx_cluster *c;
	int p = hx_free_port(SOCK_STREAM), peer_port, src = 0, seen = 0;
	int lfd = peer_listener(&peer_port);

	snprintf(port, sizeof(port), "%d", p);
	snprintf(peer, sizeof(peer), "%d", peer_port);
	if (fixed) {
		/* two free neighbours, one per worker */
		for (int tries = 0; tries < 20 && !src; tries++) {
			int a = hx_free_port(SOCK_STREAM), fd;
			struct sockaddr_in sin = { .sin_family = AF_INET,
						   .sin_port = htons((uint16_t)(a + 1)) };

			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			fd = socket(AF_INET, SOCK_STREAM, 0);
			if (a < 65535 && fd >= 0 &&
			    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
				src = a;
			close(fd);
		}
		cr_assert(src != 0, "no two free neighbouring ports");
	}
	snprintf(src1, sizeof(src1), "%d", src);
	snprintf(src2, sizeof(src2), "%d", src + 1);
	c = hx_start_fixture(HX_CAPTURE_STDOUT, WORKERS, sched,
			     "fx_client_bind", args);
	for (int i = 0; i < WORKERS; i++)
		seen |= 1 << expect_client(c, lfd, src);
	hx_assert(c, seen == 6, "want a client connection from each worker");
	close(lfd);
	serve_and_stop(c, p);
}

/* held: the worker whose own socket the supervisor bound connects first,
 * while the other worker is still a member of the port-0 handle. */
static void held_case(const char *sched)
{
	static char port[16], peer[16];
	const char *args[] = { port, peer, "held", NULL };
	struct hx_cluster *c;
	int p = hx_free_port(SOCK_STREAM), peer_port, first = 0, joined = 0;
	int lfd = peer_listener(&peer_port);

	snprintf(port, sizeof(port), "%d", p);
	snprintf(peer, sizeof(peer), "%d", peer_port);
	c = hx_start_fixture(HX_CAPTURE_STDOUT, WORKERS, sched,
			     "fx_client_bind", args);
	hx_assert(c, hx_wait_stdout_lines(c, WORKERS, HX_START_MS),
		  "want %d \"bound\" lines", WORKERS);
	for (size_t i = 0; i < WORKERS; i++) {
		int id = 0;
		char how[16] = "";

		hx_assert(c, sscanf(c->out.lines[i], "bound %d %15s", &id,
				    how) == 2, "line \"%s\"", c->out.lines[i]);
		if (strcmp(how, "first") == 0)
			first = id;
		else
			joined = id;
	}
	hx_assert(c, first && joined, "want one worker whose socket the "
		  "supervisor bound and one that joined its handle");
	kill(hx_worker_pid(c, first), SIGUSR1);
	hx_assert(c, expect_client(c, lfd, 0) == first, "not worker %d", first);
	kill(hx_worker_pid(c, joined), SIGUSR1);
	hx_assert(c, expect_client(c, lfd, 0) == joined, "not worker %d",
		  joined);
	close(lfd);
	serve_and_stop(c, p);
}

Test(client_bind, bind_port0_connect_rr) { startup_case("rr", "zero", false); }
Test(client_bind, bind_port0_connect_none) { startup_case("none", "zero", false); }
Test(client_bind, bind_no_port_connect_rr) { startup_case("rr", "noport", false); }
Test(client_bind, bind_no_port_connect_none) { startup_case("none", "noport", false); }
Test(client_bind, bind_fixed_port_connect_rr) { startup_case("rr", "fixed", true); }
Test(client_bind, bind_fixed_port_connect_none) { startup_case("none", "fixed", true); }
Test(client_bind, first_binder_connects_while_shared_rr) { held_case("rr"); }
Test(client_bind, first_binder_connects_while_shared_none) { held_case("none"); }
