/*
 * The cluster library used directly, in this process, with the
 * fx_blocking_accept fixture as the worker: events, disconnect and kill
 * (Node's Worker API), round-robin credit with a stopped worker, and
 * connections queued on a worker that dies going to another.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

#define WAIT_MS 10000
#define MAX_CONNS 64

struct ctx {
	struct event_base *base;
	struct cluster *c;
	int listening, exits, online, disconnects;
	bool last_exit_after_disconnect;
	int last_exit_signal;
	char argv_port[16];
	char *argv[4];
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_event(struct cluster *c, const struct cluster_event *ev,
		     void *arg)
{
	struct ctx *x = arg;

	switch (ev->type) {
	case CLUSTER_EV_LISTENING:
		x->listening++;
		break;
	case CLUSTER_EV_ONLINE:
		x->online++;
		break;
	case CLUSTER_EV_DISCONNECT:
		x->disconnects++;
		break;
	case CLUSTER_EV_EXIT:
		x->exits++;
		x->last_exit_after_disconnect =
			worker_exited_after_disconnect(ev->worker);
		x->last_exit_signal = ev->term_signal;
		cr_expect(worker_is_dead(ev->worker));
		break;
	default:
		break;
	}
}

static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static struct ctx *ctx_new_fixture(enum cluster_sched sched, unsigned window,
				   const char *name)
{
	static char fixture[512];
	struct ctx *x = calloc(1, sizeof(*x));
	struct cluster_settings s = { 0 };
	int t;

	snprintf(fixture, sizeof(fixture), "%s/%s", getenv("FIXTURES_DIR"),
		 name);
	snprintf(x->argv_port, sizeof(x->argv_port), "%u", free_port());
	x->argv[0] = fixture;
	x->argv[1] = "--port";
	x->argv[2] = x->argv_port;
	s.argv = x->argv;
	s.sched = sched;
	s.shim_path = getenv("CLUSTER_SHIM_PATH");
	s.kill_timeout_ms = 5000;
	s.rr_window = window;
	x->base = event_base_new();
	x->c = cluster_new(x->base, &s);
	cr_assert_not_null(x->c);
	for (t = 0; t < CLUSTER_EV_COUNT; t++)
		cluster_on(x->c, (enum cluster_event_type)t, on_event, x);
	return x;
}

static struct ctx *ctx_new_sched(enum cluster_sched sched, unsigned window)
{
	return ctx_new_fixture(sched, window, "fx_blocking_accept");
}

static struct ctx *ctx_new(unsigned window)
{
	return ctx_new_sched(CLUSTER_SCHED_RR, window);
}

static void ctx_free(struct ctx *x)
{
	cluster_free(x->c);
	event_base_free(x->base);
	free(x);
}

/* Runs the loop until *counter reaches want or the deadline passes. */
static bool pump_until(struct ctx *x, const int *counter, int want)
{
	long long deadline = now_ms() + WAIT_MS;

	while (*counter < want && now_ms() < deadline) {
		struct timeval tv = { 0, 20000 };

		event_base_loopexit(x->base, &tv);
		event_base_dispatch(x->base);
	}
	return *counter >= want;
}

/* SIGSTOP lands asynchronously: until the worker has really stopped it may
 * still take a connection.  We forked it (the library runs in this
 * process), so its stop is an event we can wait for. */
static void stop_worker(pid_t pid)
{
	int status;

	cr_assert_eq(kill(pid, SIGSTOP), 0);
	cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
	cr_assert(WIFSTOPPED(status));
}

static int connect_client(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(port)) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	return fd;
}

/* Pumps the loop for up to ms, collecting answers; returns how many of the
 * clients have answered ("<id> <pid>\n") so far.  answered[] is kept. */
static int collect(struct ctx *x, int *fds, int n, bool *answered, int ms)
{
	long long deadline = now_ms() + ms;
	int got = 0, i;

	for (i = 0; i < n; i++)
		got += answered[i];
	while (got < n && now_ms() < deadline) {
		struct timeval tv = { 0, 5000 };
		struct pollfd p[MAX_CONNS];

		event_base_loopexit(x->base, &tv);
		event_base_dispatch(x->base);
		for (i = 0; i < n; i++) {
			p[i].fd = answered[i] ? -1 : fds[i];
			p[i].events = POLLIN;
		}
		if (poll(p, (nfds_t)n, 0) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			char buf[64];

			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			cr_assert_gt(read(fds[i], buf, sizeof(buf)), 0,
				     "connection %d closed unanswered", i);
			answered[i] = true;
			got++;
		}
	}
	return got;
}

Test(cluster_api, events_disconnect_and_kill)
{
	struct ctx *x = ctx_new(0);
	struct cluster_worker *w1 = cluster_fork(x->c, 1);
	struct cluster_worker *w2 = cluster_fork(x->c, 2);
	bool answered[1] = { false };
	int fd;

	cr_assert(w1 && w2);
	cr_expect_eq(worker_id(w2), 2);
	cr_expect_gt(worker_pid(w1), 0);
	cr_assert(pump_until(x, &x->listening, 2), "workers did not listen");
	cr_expect_eq(x->online, 2);
	cr_expect_eq(worker_state(w1), WORKER_LISTENING);
	cr_expect(worker_is_connected(w1));
	cr_expect_not(worker_is_dead(w1));

	fd = connect_client(x->argv_port);
	cr_expect_eq(collect(x, &fd, 1, answered, WAIT_MS), 1);
	close(fd);

	/* graceful: stop routing, signal, exit; exitedAfterDisconnect */
	cr_assert_eq(worker_disconnect(w1), 0);
	cr_expect_not(worker_is_connected(w1));
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect(x->last_exit_after_disconnect);
	cr_expect_eq(cluster_worker_count(x->c), 1);

	/* the other worker still serves the same port */
	answered[0] = false;
	fd = connect_client(x->argv_port);
	cr_expect_eq(collect(x, &fd, 1, answered, WAIT_MS), 1);
	close(fd);

	cr_assert_eq(worker_kill(w2, SIGKILL), 0);
	cr_assert(pump_until(x, &x->exits, 2));
	cr_expect_eq(x->last_exit_signal, SIGKILL);
	cr_expect_eq(cluster_worker_count(x->c), 0);
	ctx_free(x);
}

Test(cluster_api, stopped_worker_holds_at_most_its_window)
{
	const unsigned window = 4;
	struct ctx *x = ctx_new(window);
	struct cluster_worker *w[3];
	int fds[40], i, got;
	bool answered[40] = { false };

	for (i = 0; i < 3; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 3));
	stop_worker(worker_pid(w[1]));
	for (i = 0; i < 40; i++)
		fds[i] = connect_client(x->argv_port);
	got = collect(x, fds, 40, answered, 3000);
	/* only the stopped worker's window waits; the others take the rest */
	cr_expect_geq(got, 40 - (int)window, "%d of 40 answered", got);
	cr_expect_lt(got, 40, "the stopped worker was handed nothing?");
	kill(worker_pid(w[1]), SIGCONT);
	got = collect(x, fds, 40, answered, WAIT_MS);
	cr_expect_eq(got, 40, "after SIGCONT only %d of 40 answered", got);
	for (i = 0; i < 40; i++)
		close(fds[i]);
	ctx_free(x);
}

Test(cluster_api, connections_queued_on_a_dead_worker_go_elsewhere)
{
	const unsigned window = 4;
	struct ctx *x = ctx_new(window);
	struct cluster_worker *w[2];
	int fds[20], i, got;
	bool answered[20] = { false };

	for (i = 0; i < 2; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 2));
	/* stopped: it cannot take anything off its faux handle */
	stop_worker(worker_pid(w[0]));
	for (i = 0; i < 20; i++)
		fds[i] = connect_client(x->argv_port);
	got = collect(x, fds, 20, answered, 3000);
	cr_expect_eq(got, 20 - (int)window, "%d of 20 answered", got);
	/* it dies with `window` connections queued: none is lost */
	kill(worker_pid(w[0]), SIGKILL);
	got = collect(x, fds, 20, answered, WAIT_MS);
	cr_expect_eq(got, 20, "only %d of 20 answered after the kill", got);
	for (i = 0; i < 20; i++)
		close(fds[i]);
	ctx_free(x);
}

Test(cluster_api, reuseport_slot_socket_outlives_its_worker)
{
	struct ctx *x = ctx_new_sched(CLUSTER_SCHED_REUSEPORT, 0);
	struct cluster_worker *w[3];
	int fds[30], i, got, exits;
	bool answered[30] = { false };

	for (i = 0; i < 3; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 3));
	/* worker 2 cannot accept: what the kernel hashes to its socket waits */
	stop_worker(worker_pid(w[1]));
	for (i = 0; i < 30; i++)
		fds[i] = connect_client(x->argv_port);
	got = collect(x, fds, 30, answered, 2000);
	cr_expect_lt(got, 30, "nothing was hashed to the stopped worker?");
	/* it dies; its replacement takes the same slot and finds them there */
	exits = x->exits;
	kill(worker_pid(w[1]), SIGKILL);
	cr_assert(pump_until(x, &x->exits, exits + 1));
	w[1] = cluster_fork(x->c, 2);
	cr_assert_not_null(w[1]);
	cr_assert(pump_until(x, &x->listening, 4));
	got = collect(x, fds, 30, answered, WAIT_MS);
	cr_expect_eq(got, 30, "%d of 30 answered: queued connections lost", got);
	for (i = 0; i < 30; i++)
		close(fds[i]);
	ctx_free(x);
}

Test(cluster_api, disconnect_lets_held_connections_finish)
{
	struct ctx *x = ctx_new_fixture(CLUSTER_SCHED_RR, 0, "fx_slow_answer");
	struct cluster_worker *w[2];
	int fds[4], i, got;
	bool answered[4] = { false };

	for (i = 0; i < 2; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 2));
	for (i = 0; i < 4; i++)
		fds[i] = connect_client(x->argv_port);
	/* hand them out: each worker is busy with one, one queued behind */
	got = collect(x, fds, 4, answered, 50);
	cr_assert_eq(got, 0, "answered before the work could be done");
	/* worker 1 is disconnected with a request in hand: it must finish
	 * that one (it dies at once on SIGTERM), and its queued one goes to
	 * worker 2 */
	cr_assert_eq(worker_disconnect(w[0]), 0);
	got = collect(x, fds, 4, answered, WAIT_MS);
	cr_expect_eq(got, 4, "%d of 4 answered: a held connection was cut", got);
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect(x->last_exit_after_disconnect);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	ctx_free(x);
}
