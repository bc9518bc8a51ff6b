/*
 * test_conn_census.c - the connection census (NETLINK_SOCK_DIAG): real
 * sockets on 127.0.0.1 and ::1, a real event loop.  What the kernel sends
 * is only the connections on the ports asked for (never listeners, never
 * TIME_WAIT rows), over IPv4 and IPv6, and a process's share of them is
 * found by its socket inodes.  The census is taken by a thread of its
 * own; the answer comes on the loop.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn_census.h"

/* ---- sockets ---- */

static int listener(int family, unsigned port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((unsigned short)port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((unsigned short)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	cr_assert(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind: %s",
		  strerror(errno));
	cr_assert(listen(fd, 512) == 0);
	return fd;
}

static unsigned port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	cr_assert(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
	return ntohs(ss.ss_family == AF_INET6
			     ? ((struct sockaddr_in6 *)&ss)->sin6_port
			     : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A connected pair: *client (its local port is an ephemeral one) and the
 * accepted end (local port = the listener's). */
static int connect_accept(int lfd, int *client)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, c;

	cr_assert(getsockname(lfd, (struct sockaddr *)&ss, &len) == 0);
	c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(c >= 0);
	cr_assert(connect(c, (struct sockaddr *)&ss, len) == 0, "connect: %s",
		  strerror(errno));
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(fd >= 0, "accept: %s", strerror(errno));
	*client = c;
	return fd;
}

static unsigned long inode_of(int fd)
{
	struct stat st;

	cr_assert(fstat(fd, &st) == 0);
	return (unsigned long)st.st_ino;
}

/* ---- one census, run to its end on a real loop ---- */

struct result {
	struct event_base *base;
	struct conn_table t; /* a copy */
	int error;
	int calls;
};

static void on_done(void *arg, const struct conn_table *t, int error)
{
	struct result *r = arg;

	r->calls++;
	r->error = error;
	r->t = *t;
	r->t.inodes = NULL;
	if (t->n > 0) {
		r->t.inodes = malloc(t->n * sizeof(*t->inodes));
		cr_assert(r->t.inodes != NULL);
		memcpy(r->t.inodes, t->inodes, t->n * sizeof(*t->inodes));
	}
	r->t.cap = t->n;
	r->t.pids = NULL;
	r->t.counts = NULL;
	r->t.listening = NULL;
	if (t->npids > 0) {
		r->t.pids = malloc(t->npids * sizeof(*t->pids));
		r->t.counts = malloc(t->npids * sizeof(*t->counts));
		r->t.listening = malloc(t->npids * sizeof(*t->listening));
		cr_assert(r->t.pids && r->t.counts && r->t.listening);
		memcpy(r->t.pids, t->pids, t->npids * sizeof(*t->pids));
		memcpy(r->t.counts, t->counts, t->npids * sizeof(*t->counts));
		memcpy(r->t.listening, t->listening,
		       t->npids * sizeof(*t->listening));
	}
	event_base_loopbreak(r->base);
}

static struct result census_of(const unsigned *ports, unsigned n,
			       unsigned families, const pid_t *pids,
			       size_t npids, unsigned long watch);

static struct result census(const unsigned *ports, unsigned n)
{
	return census_of(ports, n, CONN_CENSUS_ALL, NULL, 0, 0);
}

static struct result census_in(const unsigned *ports, unsigned n,
			       unsigned families)
{
	return census_of(ports, n, families, NULL, 0, 0);
}

/* (The counts are copied too: r.t is the test's.)  watch: a listener's
 * inode to look for among the pids' fds, or 0. */
static struct result census_of(const unsigned *ports, unsigned n,
			       unsigned families, const pid_t *pids,
			       size_t npids, unsigned long watch)
{
	struct result r = { .base = event_base_new() };
	struct timeval deadline = { 5, 0 };
	struct conn_census *cc;

	cr_assert(r.base != NULL);
	cc = conn_census_new(r.base, on_done, &r);
	cr_assert(cc != NULL, "conn_census_new: %s", strerror(errno));
	if (watch)
		conn_census_watch_listener(cc, watch);
	cr_assert(conn_census_request(cc, ports, n, families, pids, npids) == 0, "request: %s",
		  strerror(errno));
	event_base_loopexit(r.base, &deadline);
	event_base_dispatch(r.base);
	cr_assert_eq(r.calls, 1, "no answer within 5 s");
	cr_assert_eq(r.error, 0, "census failed: %s", strerror(r.error));
	conn_census_free(cc);
	event_base_free(r.base);
	return r;
}

static bool table_has(const struct conn_table *t, unsigned long ino)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->inodes[i] == ino)
			return true;
	return false;
}

/* ---- tests ---- */

Test(conn_census, connections_on_the_port_over_ipv4_and_ipv6)
{
	int l4 = listener(AF_INET, 0);
	unsigned port = port_of(l4);
	int l6 = listener(AF_INET6, port);
	int srv[5], cli[5], i;
	struct result r;

	for (i = 0; i < 5; i++)
		srv[i] = connect_accept(i < 3 ? l4 : l6, &cli[i]);
	r = census(&port, 1);
	/* the accepted ends only: not the listeners, not the clients (their
	 * local port is another) */
	cr_assert_eq(r.t.n, 5, "kernel sent %zu connections, want 5", r.t.n);
	cr_assert_eq(r.t.rows, 5);
	for (i = 0; i < 5; i++) {
		cr_assert(table_has(&r.t, inode_of(srv[i])), "connection %d missing", i);
		cr_assert(!table_has(&r.t, inode_of(cli[i])));
	}
	cr_assert(!table_has(&r.t, inode_of(l4)) && !table_has(&r.t, inode_of(l6)));
	cr_assert_eq(conn_table_count(&r.t, getpid()), 5);
	conn_table_free(&r.t);
	for (i = 0; i < 5; i++) {
		close(srv[i]);
		close(cli[i]);
	}
	close(l4);
	close(l6);
}

/* The server end closes first: its side of each connection is TIME_WAIT
 * on the listener's port.  The kernel sends none of those rows. */
Test(conn_census, time_wait_rows_are_filtered_in_the_kernel)
{
	int l = listener(AF_INET, 0);
	unsigned port = port_of(l);
	int keep_srv, keep_cli, i;
	struct result r;
	char buf[1];

	for (i = 0; i < 300; i++) {
		int c, s = connect_accept(l, &c);

		close(s); /* server first: TIME_WAIT is on our port */
		cr_assert(read(c, buf, 1) == 0);
		close(c);
	}
	keep_srv = connect_accept(l, &keep_cli);
	r = census(&port, 1);
	cr_assert_eq(r.t.rows, 1, "the kernel sent %zu rows for 1 open "
		     "connection beside 300 in TIME_WAIT", r.t.rows);
	cr_assert(table_has(&r.t, inode_of(keep_srv)));
	conn_table_free(&r.t);
	close(keep_srv);
	close(keep_cli);
	close(l);
}

/* Only the families asked for (those of the drained listeners). */
Test(conn_census, only_the_families_asked_for)
{
	int l4 = listener(AF_INET, 0);
	unsigned port = port_of(l4);
	int l6 = listener(AF_INET6, port);
	int s4, c4, s6, c6;
	struct result r;

	s4 = connect_accept(l4, &c4);
	s6 = connect_accept(l6, &c6);
	r = census_in(&port, 1, CONN_CENSUS_IPV4);
	cr_assert(table_has(&r.t, inode_of(s4)) && !table_has(&r.t, inode_of(s6)));
	conn_table_free(&r.t);
	r = census_in(&port, 1, CONN_CENSUS_IPV6);
	cr_assert(!table_has(&r.t, inode_of(s4)) && table_has(&r.t, inode_of(s6)));
	conn_table_free(&r.t);
	close(s4);
	close(c4);
	close(s6);
	close(c6);
	close(l4);
	close(l6);
}

/* The filter holds any of up to 64 ports, and only those. */
Test(conn_census, port_filter_first_last_and_other)
{
	int la = listener(AF_INET, 0), lb = listener(AF_INET6, 0);
	unsigned pa = port_of(la), pb = port_of(lb);
	unsigned ports[CONN_CENSUS_PORTS_MAX];
	int sa, ca, sb, cb;
	struct result r;
	unsigned i;

	sa = connect_accept(la, &ca);
	sb = connect_accept(lb, &cb);
	for (i = 0; i < CONN_CENSUS_PORTS_MAX; i++)
		ports[i] = 1; /* tcpmux: nothing of ours there */
	ports[0] = pa;
	ports[CONN_CENSUS_PORTS_MAX - 1] = pb;
	r = census(ports, CONN_CENSUS_PORTS_MAX);
	cr_assert(table_has(&r.t, inode_of(sa)) && table_has(&r.t, inode_of(sb)));
	conn_table_free(&r.t);

	r = census(&pb, 1);
	cr_assert(!table_has(&r.t, inode_of(sa)), "a port not asked for came back");
	cr_assert(table_has(&r.t, inode_of(sb)));
	conn_table_free(&r.t);
	close(sa);
	close(ca);
	close(sb);
	close(cb);
	close(la);
	close(lb);
}

/* Another process's share, by the inodes among its fds. */
Test(conn_census, counts_what_another_process_holds)
{
	int l = listener(AF_INET, 0);
	unsigned port = port_of(l);
	int s1, c1, s2, c2, ready[2];
	struct result r;
	pid_t pid;
	char b;

	s1 = connect_accept(l, &c1);
	s2 = connect_accept(l, &c2);
	cr_assert(pipe(ready) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) { /* keeps s2 only, until killed */
		close(s1);
		close(ready[0]);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	cr_assert(read(ready[0], &b, 1) == 1);
	close(s2);
	{
		pid_t pids[2] = { pid, getpid() };
		int count = -5;

		r = census_of(&port, 1, CONN_CENSUS_ALL, pids, 2, 0);
		/* counted by the census's thread, and read again now */
		cr_assert(conn_table_lookup(&r.t, pid, &count) && count == 1,
			  "the census counted %d for the child, want 1", count);
		cr_assert(conn_table_lookup(&r.t, getpid(), &count) && count == 1);
		cr_assert(!conn_table_lookup(&r.t, 1, &count), "asked only about two");
	}
	cr_assert_eq(conn_table_count(&r.t, pid), 1);
	cr_assert_eq(conn_table_count(&r.t, getpid()), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(conn_table_count(&r.t, pid), -1, "a gone process's fds read");
	conn_table_free(&r.t);
	close(ready[0]);
	close(s1);
	close(c1);
	close(c2);
	close(l);
}

/* A listener a worker was told to let go of: the census says whether the
 * process still holds it (the drain counts a worker's connections only
 * once it does not), as the process's fds say, not as we think. */
Test(conn_census, tells_whether_a_process_still_holds_a_watched_listener)
{
	int l = listener(AF_INET, 0), go[2], said[2];
	unsigned long ino = inode_of(l);
	unsigned port = port_of(l);
	struct result r;
	pid_t pid;
	char b;

	cr_assert(pipe(go) == 0 && pipe(said) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) { /* holds l until told, then says it closed it */
		close(go[1]);
		close(said[0]);
		if (write(said[1], "h", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(1);
		close(l);
		if (write(said[1], "c", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(go[0]);
	close(said[1]);
	close(l);
	cr_assert(read(said[0], &b, 1) == 1 && b == 'h');
	r = census_of(&port, 1, CONN_CENSUS_ALL, &pid, 1, ino);
	cr_assert(conn_table_holds_listener(&r.t, pid),
		  "the child holds the watched listener: not seen");
	cr_assert(!conn_table_holds_listener(&r.t, getpid()), "not asked");
	conn_table_free(&r.t);
	r = census_of(&port, 1, CONN_CENSUS_ALL, &pid, 1, 0);
	cr_assert(!conn_table_holds_listener(&r.t, pid), "not watched");
	conn_table_free(&r.t);

	cr_assert(write(go[1], "x", 1) == 1);
	cr_assert(read(said[0], &b, 1) == 1 && b == 'c');
	r = census_of(&port, 1, CONN_CENSUS_ALL, &pid, 1, ino);
	cr_assert(!conn_table_holds_listener(&r.t, pid),
		  "the child closed the listener: still seen");
	conn_table_free(&r.t);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(go[1]);
	close(said[0]);
}

Test(conn_census, one_at_a_time_and_bad_arguments)
{
	struct event_base *base = event_base_new();
	struct result r = { .base = base };
	struct conn_census *cc = conn_census_new(base, on_done, &r);
	unsigned ports[CONN_CENSUS_PORTS_MAX + 1] = { 1 };

	cr_assert(cc != NULL);
	cr_assert(conn_census_request(cc, ports, 0, CONN_CENSUS_ALL, NULL, 0) < 0 && errno == EINVAL);
	cr_assert(conn_census_request(cc, ports, CONN_CENSUS_PORTS_MAX + 1,
					 CONN_CENSUS_ALL, NULL, 0) < 0 &&
		  errno == EINVAL);
	cr_assert(conn_census_request(cc, ports, 1, 0, NULL, 0) < 0 && errno == EINVAL);
	cr_assert(conn_census_request(cc, ports, 1, CONN_CENSUS_ALL, NULL, 0) == 0);
	cr_assert(conn_census_busy(cc));
	cr_assert(conn_census_request(cc, ports, 1, CONN_CENSUS_ALL, NULL, 0) < 0 &&
		  errno == EBUSY);
	conn_census_free(cc); /* in flight: dropped, never called */
	cr_assert_eq(r.calls, 0);
	event_base_free(base);
}

Test(conn_census, a_listener_the_cluster_does_not_know)
{
	int l4 = listener(AF_INET, 0), l6 = listener(AF_INET6, 0);
	unsigned long known[2] = { inode_of(l4), inode_of(l6) };
	char addr[160], want[64];

	snprintf(want, sizeof(want), "127.0.0.1:%u", port_of(l4));
	cr_assert_eq(conn_census_foreign_listener(getpid(), known + 1, 1, addr,
						  sizeof(addr)), 1);
	cr_assert_str_eq(addr, want);
	snprintf(want, sizeof(want), "[::1]:%u", port_of(l6));
	cr_assert_eq(conn_census_foreign_listener(getpid(), known, 1, addr,
						  sizeof(addr)), 1);
	cr_assert_str_eq(addr, want);
	cr_assert_eq(conn_census_foreign_listener(getpid(), known, 2, addr,
						  sizeof(addr)), 0);
	close(l4);
	close(l6);
}
