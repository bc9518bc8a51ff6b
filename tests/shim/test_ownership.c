/*
 * test_ownership.c - the ownership model (shim/shim.h), case by case, in
 * rr, none and reuseport:
 *   - prefork: a pre-fork master closes its listener after forking two
 *     children; they serve every request (the worker's handle stays
 *     theirs);
 *   - vfork: a server that vforks once after start, with close_range() in
 *     the child (CPython's subprocess), serves every request after it;
 *   - session: per-session port-0 listeners opened once a worker serves are
 *     its own: with three sessions open at once (so that several workers
 *     hold one), each data connection reaches the process that opened the
 *     listener (the worker named in the first answer), never another.
 */
#include "shim_tests.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 3
#define REQUESTS 60

TestSuite(ownership, .fini = hx_cleanup, .timeout = 90);

static void prefork_case(const char *sched)
{
	st_serve_case(sched, WORKERS, "fx_prefork", "2", REQUESTS, true, 5);
}

static void vfork_case(const char *sched)
{
	st_serve_case(sched, WORKERS, "fx_vfork", NULL, REQUESTS, false, 5);
}

struct session {
	int pasv, id, pid;
};

/* Opens a session: "PORT ID PID" from the worker. */
static struct session session_open(struct hx_cluster *c, int port, int i)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct session s = { 0 };
	struct pollfd pfd;
	char buf[128];
	ssize_t n = 0, r;
	int fd;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	hx_assert(c, connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		  "session %d: connect", i);
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (n < (ssize_t)sizeof(buf) - 1 && poll(&pfd, 1, HX_QUERY_MS) == 1 &&
	       (r = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += r;
	close(fd);
	buf[n] = '\0';
	hx_assert(c, sscanf(buf, "%d %d %d", &s.pasv, &s.id, &s.pid) == 3 &&
		  s.id >= 1 && s.id <= WORKERS, "session %d answered \"%s\"",
		  i, buf);
	return s;
}

/* Its data connection must reach the process that opened it. */
static void session_data(struct hx_cluster *c, const struct session *s,
			 int i)
{
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = s->pasv };
	struct hx_answer ans;
	int err = hx_query(&t, HX_QUERY_MS, &ans);

	hx_assert(c, err == 0, "session %d: data port %d: %s", i, s->pasv,
		  strerror(-err));
	hx_assert(c, ans.id == s->id && ans.pid == s->pid, "session %d: its "
		  "data port %d, opened by worker %d (pid %d), was answered "
		  "by worker %d (pid %d)", i, s->pasv, s->id, s->pid, ans.id,
		  (int)ans.pid);
}

static void session_case(const char *sched)
{
	static char port[16];
	const char *args[] = { port, NULL };
	int by_id[WORKERS + 1] = { 0 };
	struct hx_cluster *c;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	c = st_start(sched, WORKERS, "fx_session", args, WORKERS, WORKERS);
	for (int i = 0; i < REQUESTS / 2; i += WORKERS) {
		struct session open[WORKERS];

		for (int k = 0; k < WORKERS; k++) {
			open[k] = session_open(c, p, i + k);
			by_id[open[k].id]++;
		}
		/* in the reverse order: a listener merged across workers
		 * and dealt round robin would show */
		for (int k = WORKERS - 1; k >= 0; k--)
			session_data(c, &open[k], i + k);
	}
	cr_log_info("%s session: workers 1, 2, 3 had %d, %d, %d sessions",
		    sched, by_id[1], by_id[2], by_id[3]);
	/* a data listener is the worker's own: none shows up as a cluster
	 * listener */
	hx_assert(c, hx_count(c, HX_LISTENING) == WORKERS,
		  "%zu \"listening\" lines, want %d: a session listener "
		  "went to cluster-run", hx_count(c, HX_LISTENING), WORKERS);
	st_assert_steady(c, WORKERS);
	st_stop(c);
}

#define CASES(what)                                                     \
	Test(ownership, what##_rr) { what##_case("rr"); }                \
	Test(ownership, what##_none) { what##_case("none"); }            \
	Test(ownership, what##_reuseport) { what##_case("reuseport"); }

CASES(prefork)
CASES(vfork)
CASES(session)
