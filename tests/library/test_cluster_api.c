/*
 * The cluster library used directly, in this process, with the
 * fx_blocking_accept fixture as the worker: events, disconnect and kill
 * (Node's Worker API), round-robin credit with a stopped worker, and
 * connections queued on a worker that dies going to another, and the
 * figures of ctl status (process tree, accept queue, what rr holds).
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

#define WAIT_MS 10000
#define MAX_CONNS 64

struct ctx {
	struct event_base *base;
	struct cluster *c;
	int listening, exits, online, disconnects, forks;
	bool last_exit_after_disconnect;
	int last_exit_signal, last_exit_error, last_exit_code;
	pid_t last_exit_pid;
	char argv_port[16];
	char *argv[8];
	int log_lines;          /* diagnostics containing log_match */
	const char *log_match;
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
	case CLUSTER_EV_FORK:
		x->forks++;
		cr_expect_gt(worker_pid(ev->worker), 0);
		break;
	case CLUSTER_EV_EXIT:
		x->exits++;
		x->last_exit_error = ev->error;
		x->last_exit_code = ev->exit_code;
		x->last_exit_pid = worker_pid(ev->worker);
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

/* The cluster around x->argv (filled in by the caller); log: where its
 * diagnostics go (NULL: stderr). */
static struct ctx *ctx_start(struct ctx *x, enum cluster_sched sched,
			     unsigned window,
			     void (*log)(void *arg, const char *line))
{
	struct cluster_settings s = { 0 };
	int t;

	s.argv = x->argv;
	s.sched = sched;
	s.shim_path = getenv("CLUSTER_SHIM_PATH");
	s.kill_timeout_ms = 5000;
	s.rr_window = window;
	s.log = log;
	s.log_arg = x;
	x->base = event_base_new();
	x->c = cluster_new(x->base, &s);
	cr_assert_not_null(x->c);
	for (t = 0; t < CLUSTER_EV_COUNT; t++)
		cluster_on(x->c, (enum cluster_event_type)t, on_event, x);
	return x;
}

static const char *fixture_path(const char *name)
{
	static char fixture[512];

	snprintf(fixture, sizeof(fixture), "%s/%s", getenv("FIXTURES_DIR"),
		 name);
	return fixture;
}

static struct ctx *ctx_new_fixture(enum cluster_sched sched, unsigned window,
				   const char *name)
{
	struct ctx *x = calloc(1, sizeof(*x));

	snprintf(x->argv_port, sizeof(x->argv_port), "%u", free_port());
	x->argv[0] = (char *)fixture_path(name);
	x->argv[1] = "--port";
	x->argv[2] = x->argv_port;
	return ctx_start(x, sched, window, NULL);
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

static struct cluster_listener_stats listener_now(struct ctx *x);

/* Runs the loop until the listener's figures are as wanted (a field of
 * -1: any), or the deadline passes; its figures then. */
static struct cluster_listener_stats
pump_until_listener(struct ctx *x, long accepted, long held, long queued)
{
	long long deadline = now_ms() + WAIT_MS;
	struct cluster_listener_stats st;

	for (;;) {
		struct timeval tv = { 0, 20000 };

		event_base_loopexit(x->base, &tv);
		event_base_dispatch(x->base);
		st = listener_now(x);
		if (((accepted < 0 || (long)st.accepted == accepted) &&
		     (held < 0 || (long)st.held == held) &&
		     (queued < 0 || st.queued == queued)) ||
		    now_ms() >= deadline)
			return st;
	}
}

Test(cluster_api, disconnect_lets_held_connections_finish)
{
	struct ctx *x = ctx_new_fixture(CLUSTER_SCHED_RR, 0, "fx_slow_answer");
	struct cluster_worker *w[2];
	struct cluster_listener_stats st;
	int fds[4], i, got;
	bool answered[4] = { false };

	for (i = 0; i < 2; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 2));
	for (i = 0; i < 4; i++)
		fds[i] = connect_client(x->argv_port);
	/* hand them out until each worker has one in hand (accept()ed,
	 * waiting for its request) and one queued behind it */
	st = pump_until_listener(x, 4, 2, -1);
	cr_assert(st.accepted == 4 && st.held == 2, "accepted %lu held %u: "
		  "want each worker with one in hand", st.accepted, st.held);
	got = collect(x, fds, 4, answered, 50);
	cr_assert_eq(got, 0, "answered before the request was sent");
	/* worker 1 is disconnected with a request in hand: it must finish
	 * that one (it dies at once on SIGTERM), and its queued one goes to
	 * worker 2 */
	cr_assert_eq(worker_disconnect(w[0]), 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(write(fds[i], "r", 1), 1);
	got = collect(x, fds, 4, answered, WAIT_MS);
	cr_expect_eq(got, 4, "%d of 4 answered: a held connection was cut", got);
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect(x->last_exit_after_disconnect);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	ctx_free(x);
}

static void count_log(void *arg, const char *line);

/* A worker that never handles the shim's stop-accepting signal (it blocks
 * every real-time signal) still holds the shared listener after its
 * disconnect, and may take one more connection: the drain does not count
 * what it holds until it has let go, says so after a second, and counts
 * it then.  The connection it took after the disconnect is answered, not
 * cut by a graceful signal sent as if it had stopped accepting. */
Test(cluster_api, drain_waits_for_the_worker_to_stop_accepting)
{
	struct ctx *x = calloc(1, sizeof(*x));
	struct cluster_worker *w[2];
	bool answered[2] = { false };
	int fds[2], i, got;
	pid_t leaving;

	snprintf(x->argv_port, sizeof(x->argv_port), "%u", free_port());
	x->argv[0] = (char *)fixture_path("fx_slow_answer");
	x->argv[1] = "--port";
	x->argv[2] = x->argv_port;
	x->argv[3] = "--block-rt";
	x->log_match = "still holds its listener";
	ctx_start(x, CLUSTER_SCHED_NONE, 0, count_log);
	for (i = 0; i < 2; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 2));
	leaving = worker_pid(w[0]);
	cr_assert_eq(worker_disconnect(w[0]), 0);
	/* both wait in accept() on the one socket: one connection each */
	for (i = 0; i < 2; i++)
		fds[i] = connect_client(x->argv_port);
	cr_assert(pump_until(x, &x->log_lines, 1), "no line saying worker 1 "
		  "still holds its listener");
	cr_assert_eq(x->exits, 0, "worker 1 was signalled while it still "
		     "accepted");
	for (i = 0; i < 2; i++)
		cr_assert_eq(write(fds[i], "r", 1), 1);
	got = collect(x, fds, 2, answered, WAIT_MS);
	cr_expect_eq(got, 2, "%d of 2 answered: a connection taken after the "
		     "disconnect was cut", got);
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect(x->last_exit_after_disconnect);
	cr_expect_eq(x->last_exit_pid, leaving);
	for (i = 0; i < 2; i++)
		close(fds[i]);
	ctx_free(x);
}

/* Runs the loop until both workers have been sampled twice. */
static bool pump_until_sampled(struct ctx *x, struct cluster_worker **w,
			       int n)
{
	long long deadline = now_ms() + WAIT_MS;

	for (;;) {
		struct timeval tv = { 0, 20000 };
		struct worker_resources r;
		int i, done = 0;

		for (i = 0; i < n; i++) {
			worker_resources(w[i], &r);
			done += r.samples >= 2;
		}
		if (done == n)
			return true;
		if (now_ms() >= deadline)
			return false;
		event_base_loopexit(x->base, &tv);
		event_base_dispatch(x->base);
	}
}

/* The listener's figures, asserting there is exactly one listener. */
static struct cluster_listener_stats listener_now(struct ctx *x)
{
	struct cluster_listener_stats st[2];

	cr_assert_eq(cluster_listener_stats(x->c, st, 2), 1);
	return st[0];
}

Test(cluster_api, resources_and_listener_stats)
{
	struct ctx *x = ctx_new(4);
	struct cluster_worker *w[2];
	struct cluster_listener_stats st;
	struct worker_resources r;
	char address[64];
	int fds[12], i, got;
	bool answered[12] = { false };

	for (i = 0; i < 2; i++)
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
	cr_assert(pump_until(x, &x->listening, 2));
	cr_assert(pump_until_sampled(x, w, 2), "not sampled twice in %d ms",
		  WAIT_MS);
	for (i = 0; i < 2; i++) {
		worker_resources(w[i], &r);
		cr_expect(r.processes == 1 && r.rss_bytes > 0 &&
			  r.cpu_percent >= 0 && r.cpu_seconds >= 0,
			  "worker %d: %u processes, %llu bytes, %.1f%%, %.2f s",
			  i + 1, r.processes, r.rss_bytes, r.cpu_percent,
			  r.cpu_seconds);
	}
	st = listener_now(x);
	snprintf(address, sizeof(address), "127.0.0.1:%s", x->argv_port);
	cr_expect_str_eq(st.address, address);
	cr_expect(st.rr && st.stream && strcmp(st.policy, "rr") == 0);
	cr_expect(st.queued == 0 && st.backlog == 128 && st.accepted == 0 &&
		  st.held == 0, "idle: queued %ld backlog %ld accepted %lu "
		  "held %u", st.queued, st.backlog, st.accepted, st.held);

	/* Both workers stopped: each gets its window, the rest queue. */
	stop_worker(worker_pid(w[0]));
	stop_worker(worker_pid(w[1]));
	for (i = 0; i < 12; i++)
		fds[i] = connect_client(x->argv_port);
	st = pump_until_listener(x, -1, 8, 4);
	cr_expect(st.held == 8 && st.queued == 4 && st.accepted == 8,
		  "2 stopped workers with a window of 4, 12 clients: held %u "
		  "queued %ld accepted %lu", st.held, st.queued, st.accepted);
	for (i = 0; i < 2; i++)
		kill(worker_pid(w[i]), SIGCONT);
	got = collect(x, fds, 12, answered, WAIT_MS);
	cr_expect_eq(got, 12, "after SIGCONT only %d of 12 answered", got);
	st = listener_now(x);
	cr_expect(st.held == 0 && st.queued == 0 && st.accepted == 12,
		  "served: held %u queued %ld accepted %lu", st.held,
		  st.queued, st.accepted);
	cr_expect_eq(cluster_protocol_violations(x->c), 0);
	for (i = 0; i < 12; i++)
		close(fds[i]);
	ctx_free(x);
}

/* The loop never waits for an exec: a command that cannot be executed is
 * still a worker, whose EXIT says why (the errno of the failed exec). */
Test(cluster_api, exec_failure_is_the_exit_event)
{
	struct ctx *x = ctx_new_fixture(CLUSTER_SCHED_RR, 0,
					"no-such-fixture");
	struct cluster_worker *w = cluster_fork(x->c, 1);

	cr_assert_not_null(w, "cluster_fork: %s", strerror(errno));
	cr_assert_gt(worker_pid(w), 0);
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect_eq(x->last_exit_error, ENOENT, "EXIT error %d, want ENOENT",
		     x->last_exit_error);
	cr_expect_eq(x->last_exit_code, 127);
	cr_expect_eq(x->online, 0);
	ctx_free(x);
}

/* At most 16 workers are between fork and exec: later ones wait (pid 0,
 * no FORK event yet) and start as earlier ones exec; one cancelled while
 * it waits ends without a process. */
#define QUEUED_TEST 24
Test(cluster_api, starts_beyond_the_bound_wait_their_turn)
{
	struct ctx *x = ctx_new(0);
	struct cluster_worker *w[QUEUED_TEST];
	int i, queued = 0;

	for (i = 0; i < QUEUED_TEST; i++) {
		w[i] = cluster_fork(x->c, (unsigned)i + 1);
		cr_assert_not_null(w[i]);
		queued += worker_pid(w[i]) == 0;
	}
	cr_expect_eq(queued, QUEUED_TEST - 16, "%d of %d queued, want %d",
		     queued, QUEUED_TEST, QUEUED_TEST - 16);
	/* the last one is cancelled while it waits */
	cr_assert_eq(worker_pid(w[QUEUED_TEST - 1]), 0);
	cr_assert_eq(worker_kill(w[QUEUED_TEST - 1], SIGKILL), 0);
	cr_assert(pump_until(x, &x->exits, 1));
	cr_expect_eq(x->last_exit_pid, 0);
	cr_expect(x->last_exit_after_disconnect);
	cr_assert(pump_until(x, &x->listening, QUEUED_TEST - 1),
		  "%d of %d listening", x->listening, QUEUED_TEST - 1);
	cr_expect_eq(x->forks, QUEUED_TEST - 1);
	cr_expect_eq(cluster_worker_count(x->c), QUEUED_TEST - 1);
	ctx_free(x);
}

static void count_log(void *arg, const char *line)
{
	struct ctx *x = arg;

	fprintf(stderr, "cluster: %s\n", line);
	if (x->log_match && strstr(line, x->log_match))
		x->log_lines++;
}

/* Opens fds until EMFILE; returns how many (kept in fds[]). */
static int exhaust_fds(int *fds, int max)
{
	int n = 0;

	while (n < max && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		n++;
	return n;
}

/* When the supervisor (this process) is out of fds, a worker's bind
 * arrives with its fds cut (MSG_CTRUNC): the supervisor's shortage, not
 * a protocol violation; the worker is not killed. */
Test(cluster_api, out_of_fds_is_not_the_workers_fault)
{
	static const char script[] =
		"read x < \"$0\"; exec \"$1\" --port \"$2\"";
	struct rlimit rl = { 256, 256 };
	struct ctx *x = calloc(1, sizeof(*x));
	char fifo[64];
	int go, held[256], nheld, i;

	cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	snprintf(fifo, sizeof(fifo), "/tmp/cluster-api-go.%d", (int)getpid());
	unlink(fifo);
	cr_assert(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	snprintf(x->argv_port, sizeof(x->argv_port), "%u", free_port());
	x->argv[0] = "/bin/sh";
	x->argv[1] = "-c";
	x->argv[2] = (char *)script;
	x->argv[3] = fifo;
	x->argv[4] = (char *)fixture_path("fx_blocking_accept");
	x->argv[5] = x->argv_port;
	x->log_match = "out of file descriptors";
	ctx_start(x, CLUSTER_SCHED_RR, 0, count_log);
	cr_assert_not_null(cluster_fork(x->c, 1));
	cr_assert(pump_until(x, &x->online, 1));
	go = open(fifo, O_RDWR | O_CLOEXEC);
	cr_assert(go >= 0, "open %s: %s", fifo, strerror(errno));

	/* no fd left: the worker's bind (2 fds) gets none through */
	nheld = exhaust_fds(held, 256);
	i = (int)write(go, "go\n", 3);
	pump_until(x, &x->exits, 1);
	for (int k = 0; k < nheld; k++)
		close(held[k]);
	close(go);
	unlink(fifo);
	cr_assert_eq(i, 3);
	cr_assert_eq(x->exits, 1, "the worker did not end (its bind failed?)");
	cr_expect_neq(x->last_exit_signal, SIGKILL, "the worker was killed as "
		      "a protocol violator");
	cr_expect_eq(x->log_lines, 1, "want one \"out of file descriptors\" "
		     "line, got %d", x->log_lines);
	ctx_free(x);
}

/* Events are delivered from the loop once the call or callback that caused
 * them has returned (Node's process.nextTick): never inside cluster_fork(),
 * worker_kill() or worker_disconnect(), nor inside the library's own
 * handling of a listen or an exit, so a subscriber may call the API. */
static bool in_api;
static int in_api_events;

static void on_any(struct cluster *c, const struct cluster_event *ev,
		   void *arg)
{
	struct ctx *x = arg;

	in_api_events += in_api;
	/* calls back into the library from a subscriber are safe */
	if (ev->type == CLUSTER_EV_LISTENING && worker_id(ev->worker) == 2)
		worker_kill(ev->worker, SIGKILL);
	if (ev->type == CLUSTER_EV_EXIT && worker_id(ev->worker) == 2 &&
	    x->exits == 1)
		cluster_fork(c, 3);
}

Test(cluster_api, events_come_after_the_call_that_caused_them)
{
	struct ctx *x = ctx_new(0);
	struct cluster_worker *w1;
	int t;

	for (t = 0; t < CLUSTER_EV_COUNT; t++)
		cluster_on(x->c, (enum cluster_event_type)t, on_any, x);
	in_api = true;
	w1 = cluster_fork(x->c, 1);
	cr_assert_not_null(cluster_fork(x->c, 2));
	in_api = false;
	cr_expect_eq(x->forks, 0, "a FORK was delivered inside cluster_fork()");
	/* worker 2 is killed from its LISTENING; its EXIT forks worker 3 */
	cr_assert(pump_until(x, &x->exits, 1));
	cr_assert(pump_until(x, &x->listening, 3));
	cr_expect_eq(x->forks, 3);
	in_api = true;
	cr_assert_eq(worker_disconnect(w1), 0);
	in_api = false;
	cr_assert(pump_until(x, &x->exits, 2));
	cr_expect_eq(in_api_events, 0, "%d events delivered inside an API call",
		     in_api_events);
	cr_expect_eq(cluster_worker_count(x->c), 1);
	ctx_free(x);
}
