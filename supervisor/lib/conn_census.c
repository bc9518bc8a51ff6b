/*
 * conn_census.c - see conn_census.h.
 *
 * Why NETLINK_SOCK_DIAG and not /proc/net/tcp{,6}: the text tables list
 * every TCP socket of the machine, TIME_WAIT rows included, formatted by
 * the kernel and parsed by us line by line.  After a benchmark that is
 * 20-50k rows, 150-450 ms with the event loop held (measured), and every
 * rr connection waited for it.  inet_diag filters in the kernel: a state mask
 * (TIME_WAIT, LISTEN and SYN_RECV sockets, which have no inode a worker
 * could hold, are skipped by one bit test each, never formatted nor sent)
 * and a bytecode filter on the local port, so what comes back is exactly
 * the rows we match, 88 bytes each.
 *
 * What a dump costs is not only its rows: for any state but LISTEN the
 * kernel walks every bucket of its established hash (and each socket in
 * it, TIME_WAIT ones included, a bit test each); the hash is sized by RAM
 * (262,144 buckets on a 23 GiB machine: 2.3 ms per family measured, 9 ms
 * with 70k TIME_WAIT rows), and a dump with few rows is one recv() that
 * does the whole walk.  So two ways of reading, by cost:
 *   - connections on a drained port (conn_census_request): a thread of its
 *     own takes the census (a blocking netlink socket with a 5 s receive
 *     timeout, each family asked for only when a drained listener has it)
 *     and tells the loop through an eventfd; the loop never waits for the
 *     walk, nor for however many rows the port has (every worker's, the
 *     new ones of a reload too).  One census at a time.
 *   - listeners (conn_census_foreign_listener, for the diagnostic of a
 *     worker that never asked for one, at most three times per such
 *     worker): a LISTEN-only dump walks only the listening hash and holds
 *     one row per listening TCP socket on the machine (0.08 ms measured):
 *     read at once from a non-blocking socket.  The kernel answers a dump request and each
 *     recv() of it before the system call returns, so a recv() that would
 *     block means trouble, and we give up rather than wait.
 * A worker's connections are still matched by socket inode: the inodes
 * among its fds (readlink of /proc/PID/fd/N: one per fd, so a worker with
 * 10,000 connections costs 10,000 of them, which the census thread does
 * too, for the processes it is asked about) against the inodes of the
 * dump.
 */
#include "conn_census.h"

#include <errno.h>
#include <event2/event.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sockaddr_text.h"

#define TCPF(state) (1u << (state))
/* States of a connection a process can still hold (it has an inode). */
#define CONNECTION_STATES                                                  \
	(TCPF(TCP_ESTABLISHED) | TCPF(TCP_FIN_WAIT1) | TCPF(TCP_FIN_WAIT2) | \
	 TCPF(TCP_CLOSE_WAIT) | TCPF(TCP_LAST_ACK) | TCPF(TCP_CLOSING))
/* A kernel dump batch is at most 32 KiB; a larger buffer never truncates. */
#define DIAG_RECV_MAX (64 * 1024)
/* The census thread gives up on a kernel that does not answer. */
#define CENSUS_RECV_TIMEOUT_S 5
/* Per port: S_GE port, S_LE port (each an op and its operand), JMP. */
#define BC_OPS_PER_PORT 5
#define BC_BLOCK (BC_OPS_PER_PORT * sizeof(struct inet_diag_bc_op))

struct inode_set {
	unsigned long *v;
	size_t n, cap;
};

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* (An empty set has no array: qsort and bsearch must not see NULL.) */
static bool inode_set_has(const struct inode_set *s, unsigned long ino)
{
	return s->n > 0 &&
	       bsearch(&ino, s->v, s->n, sizeof(*s->v), cmp_ulong) != NULL;
}

static void inode_set_add(struct inode_set *s, unsigned long ino)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		unsigned long *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ino;
}

static void inode_set_sort(struct inode_set *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_ulong);
}

/* The inodes of every socket among the process's fds. */
static int socket_inodes(pid_t pid, struct inode_set *s)
{
	char dir[64], path[320], link[64];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		unsigned long ino;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			inode_set_add(s, ino);
	}
	closedir(d);
	inode_set_sort(s);
	return 0;
}

void conn_table_free(struct conn_table *t)
{
	free(t->inodes);
	free(t->pids);
	free(t->counts);
	free(t->listening);
	memset(t, 0, sizeof(*t));
}

bool conn_table_lookup(const struct conn_table *t, pid_t pid, int *count)
{
	size_t i;

	for (i = 0; i < t->npids; i++)
		if (t->pids[i] == pid) {
			*count = t->counts[i];
			return true;
		}
	return false;
}

bool conn_table_holds_listener(const struct conn_table *t, pid_t pid)
{
	size_t i;

	for (i = 0; t->listening && i < t->npids; i++)
		if (t->pids[i] == pid)
			return t->listening[i];
	return false;
}

int conn_table_count(const struct conn_table *t, pid_t pid)
{
	struct inode_set mine = { 0 };
	size_t i;
	int n = 0;

	if (t->n == 0)
		return 0;
	if (socket_inodes(pid, &mine) < 0) {
		free(mine.v);
		return -1;
	}
	for (i = 0; i < mine.n; i++) /* t->n > 0: checked above */
		n += bsearch(&mine.v[i], t->inodes, t->n, sizeof(*t->inodes),
			     cmp_ulong) != NULL;
	free(mine.v);
	return n;
}

/* Whether one of pid's fds is a socket of set (false when they cannot be
 * read: a process gone holds nothing). */
static bool holds_any(pid_t pid, const struct inode_set *set)
{
	struct inode_set mine = { 0 };
	bool found = false;
	size_t i;

	if (set->n > 0 && socket_inodes(pid, &mine) == 0)
		for (i = 0; i < mine.n && !found; i++)
			found = inode_set_has(set, mine.v[i]);
	free(mine.v);
	return found;
}

/* ---- the netlink side ---- */

struct diag_request {
	struct nlmsghdr nlh;
	struct inet_diag_req_v2 req;
	struct rtattr bc_attr;
	struct inet_diag_bc_op bc[CONN_CENSUS_PORTS_MAX * BC_OPS_PER_PORT];
};

/*
 * "local port is one of ports[]" as inet_diag bytecode.  An op that holds
 * jumps `yes` bytes, else `no`; ending exactly at the end accepts, 4 bytes
 * past it rejects; the kernel's audit follows the `yes` chain, so every
 * `no` must land on it.  Per port: S_GE p (no: next port), S_LE p (no: next
 * port), JMP to the end (accept); the last port has no JMP and its "next
 * port" is the reject.  Length in bytes.
 */
static size_t port_filter(const unsigned *ports, unsigned n,
			  struct inet_diag_bc_op *bc)
{
	size_t len = n * BC_BLOCK - sizeof(*bc); /* the last has no JMP */
	unsigned i;

	for (i = 0; i < n; i++) {
		struct inet_diag_bc_op *op = bc + i * BC_OPS_PER_PORT;
		size_t at = i * BC_BLOCK;
		unsigned short port = (unsigned short)ports[i];

		op[0] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_GE, 8, BC_BLOCK };
		op[1] = (struct inet_diag_bc_op){ 0, 0, port };
		op[2] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_LE, 8,
						  BC_BLOCK - 8 };
		op[3] = (struct inet_diag_bc_op){ 0, 0, port };
		if (i + 1 < n)
			op[4] = (struct inet_diag_bc_op){
				INET_DIAG_BC_JMP, 4,
				(unsigned short)(len - (at + 16)) };
	}
	return len;
}

static int diag_socket(int nonblock)
{
	return socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | nonblock,
		      NETLINK_SOCK_DIAG);
}

/* Asks for a dump of the TCP sockets of one family in states, filtered by
 * bc[0..bclen) when bclen > 0.  0, or -1 with errno. */
static int diag_send(int fd, unsigned seq, int family, unsigned states,
		     const struct inet_diag_bc_op *bc, size_t bclen)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct diag_request r;
	size_t len = offsetof(struct diag_request, bc_attr);

	memset(&r, 0, sizeof(r));
	r.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	r.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.nlh.nlmsg_seq = seq;
	r.req.sdiag_family = (unsigned char)family;
	r.req.sdiag_protocol = IPPROTO_TCP;
	r.req.idiag_states = states;
	if (bclen > 0) {
		r.bc_attr.rta_type = INET_DIAG_REQ_BYTECODE;
		r.bc_attr.rta_len = (unsigned short)RTA_LENGTH(bclen);
		memcpy(r.bc, bc, bclen);
		len = offsetof(struct diag_request, bc) + bclen;
	}
	r.nlh.nlmsg_len = (unsigned)len;
	if (sendto(fd, &r, len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) != (ssize_t)len)
		return -1;
	return 0;
}

typedef void (*diag_visit_fn)(void *arg, const struct inet_diag_msg *row);

/* Where one recv() of a dump goes: a kernel batch, aligned for headers. */
union diag_buf {
	struct nlmsghdr h;
	char b[DIAG_RECV_MAX];
};

/*
 * One recv() of the answer to seq into rx, each row to visit: 1 when the
 * dump is complete, 0 when more is to come, -1 with errno (EAGAIN: nothing
 * there now, or the receive timeout; else what the kernel answered).
 */
static int diag_read(int fd, unsigned seq, union diag_buf *rx,
		     diag_visit_fn visit, void *arg)
{
	const struct nlmsghdr *h = &rx->h;
	ssize_t got;
	int len;

	do
		got = recv(fd, rx->b, sizeof(rx->b), MSG_TRUNC);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -1;
	if (got > (ssize_t)sizeof(rx->b)) {
		errno = EMSGSIZE;
		return -1;
	}
	for (len = (int)got; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		const int *code = NLMSG_DATA(h);

		if (h->nlmsg_seq != seq)
			continue; /* an answer to a request we gave up on */
		if (h->nlmsg_type == NLMSG_DONE) {
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *code < 0) {
				errno = -*code;
				return -1;
			}
			return 1;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			errno = *code < 0 ? -*code : EPROTO;
			return -1;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
			visit(arg, NLMSG_DATA(h));
	}
	return 0;
}

/* A whole dump of one family: 0, or -1 with errno.  On a non-blocking
 * socket it gives up at the first recv() that would wait. */
static int diag_dump(int fd, unsigned seq, int family, unsigned states,
		     const struct inet_diag_bc_op *bc, size_t bclen,
		     union diag_buf *rx, diag_visit_fn visit, void *arg)
{
	int r = 0;

	if (diag_send(fd, seq, family, states, bc, bclen) < 0)
		return -1;
	while (r == 0)
		r = diag_read(fd, seq, rx, visit, arg);
	if (r < 0 && family == AF_INET6 &&
	    (errno == ENOENT || errno == EAFNOSUPPORT))
		return 0; /* a kernel without IPv6 has no IPv6 sockets */
	return r < 0 ? -1 : 0;
}

/* ---- a census of connections, taken by a thread ---- */

/* What the thread and the census share: freed by the last of them. */
struct census_job {
	int refs;               /* atomic: the census and the thread */
	int efd;                /* eventfd: the thread is done */
	int finished;           /* atomic: results below are complete */
	unsigned families;
	struct inet_diag_bc_op bc[CONN_CENSUS_PORTS_MAX * BC_OPS_PER_PORT];
	size_t bclen;
	struct inode_set found;
	size_t rows;
	int error;
	pid_t *pids;            /* the processes to count for */
	int *counts;
	bool *listening;        /* ... whether each holds one of: */
	struct inode_set listeners;
	size_t npids;
	union diag_buf rx;
};

struct conn_census {
	struct event_base *base;
	conn_census_done_fn done;
	void *arg;
	struct census_job *job; /* in flight, or NULL */
	struct event *ev;       /* on job->efd */
	struct inode_set listeners; /* for the next request */
};

static void job_unref(struct census_job *j)
{
	if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	close(j->efd);
	free(j->found.v);
	free(j->pids);
	free(j->counts);
	free(j->listening);
	free(j->listeners.v);
	free(j);
}

static void job_add_row(void *arg, const struct inet_diag_msg *row)
{
	struct census_job *j = arg;

	j->rows++;
	if (row->idiag_inode != 0)
		inode_set_add(&j->found, row->idiag_inode);
}

/* The census, both families if asked for: 0 or an errno. */
static int job_take(struct census_job *j)
{
	static const int family[2] = { AF_INET, AF_INET6 };
	struct timeval limit = { CENSUS_RECV_TIMEOUT_S, 0 };
	int fd = diag_socket(0), i, err = 0;

	if (fd < 0)
		return errno;
	/* Before the dump: a process that holds none of the listeners then
	 * can accept nothing the dump and the count below miss. */
	for (size_t k = 0; k < j->npids && j->listeners.n > 0; k++)
		j->listening[k] = holds_any(j->pids[k], &j->listeners);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
	for (i = 0; i < 2 && !err; i++)
		if ((j->families & (1u << i)) &&
		    diag_dump(fd, (unsigned)i + 1, family[i], CONNECTION_STATES,
			      j->bc, j->bclen, &j->rx, job_add_row, j) < 0)
			err = errno == EAGAIN ? ETIMEDOUT : errno ? errno : EPROTO;
	close(fd);
	inode_set_sort(&j->found);
	if (!err) {
		struct conn_table t = { .inodes = j->found.v, .n = j->found.n };
		size_t k;

		for (k = 0; k < j->npids; k++)
			j->counts[k] = conn_table_count(&t, j->pids[k]);
	}
	return err;
}

static void *job_run(void *arg)
{
	struct census_job *j = arg;
	uint64_t one = 1;

	j->error = job_take(j);
	__atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
	if (write(j->efd, &one, sizeof(one)) < 0)
		j->error = j->error ? j->error : errno; /* (cannot fail: eventfd) */
	job_unref(j);
	return NULL;
}

/* The thread is done: the callback, last (it may free cc). */
static void census_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct conn_census *cc = arg;
	struct census_job *j = cc->job;
	struct conn_table t = { 0 };
	uint64_t n;
	int error;

	if (!__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE)) {
		event_add(cc->ev, NULL); /* (a wakeup before the write) */
		return;
	}
	if (read(j->efd, &n, sizeof(n)) < 0)
		n = 0;
	error = j->error;
	if (!error) {
		t.inodes = j->found.v;
		t.n = j->found.n;
		t.cap = j->found.cap;
		t.rows = j->rows;
		t.pids = j->pids;
		t.counts = j->counts;
		t.listening = j->listening;
		t.npids = j->npids;
		memset(&j->found, 0, sizeof(j->found));
		j->pids = NULL;
		j->counts = NULL;
		j->listening = NULL;
	}
	event_free(cc->ev);
	cc->ev = NULL;
	cc->job = NULL;
	job_unref(j);
	cc->done(cc->arg, &t, error);
	conn_table_free(&t);
}

/* A thread with every signal blocked (they are the loop's), detached. */
static int job_start(struct census_job *j)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t tid;
	int err;

	if (pthread_attr_init(&attr) != 0)
		return ENOMEM;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&tid, &attr, job_run, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

struct conn_census *conn_census_new(struct event_base *base,
				    conn_census_done_fn done, void *arg)
{
	struct conn_census *cc = calloc(1, sizeof(*cc));

	if (!cc)
		return NULL;
	cc->base = base;
	cc->done = done;
	cc->arg = arg;
	return cc;
}

int conn_census_request(struct conn_census *cc, const unsigned *ports,
			unsigned nports, unsigned families, const pid_t *pids,
			size_t npids)
{
	struct census_job *j;
	int err;

	if (cc->job) {
		errno = EBUSY;
		return -1;
	}
	if (nports == 0 || nports > CONN_CENSUS_PORTS_MAX ||
	    (families & CONN_CENSUS_ALL) == 0) {
		errno = EINVAL;
		return -1;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->refs = 2;
	j->families = families;
	j->bclen = port_filter(ports, nports, j->bc);
	j->npids = npids;
	j->pids = calloc(npids + 1, sizeof(*j->pids));
	j->counts = calloc(npids + 1, sizeof(*j->counts));
	j->listening = calloc(npids + 1, sizeof(*j->listening));
	if (j->pids && npids > 0)
		memcpy(j->pids, pids, npids * sizeof(*pids));
	j->listeners = cc->listeners; /* the job's now */
	memset(&cc->listeners, 0, sizeof(cc->listeners));
	j->efd = j->pids && j->counts && j->listening
			 ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
	cc->ev = j->efd < 0 ? NULL
			    : event_new(cc->base, j->efd, EV_READ, census_on_done, cc);
	err = !cc->ev || event_add(cc->ev, NULL) < 0 ? (errno ? errno : ENOMEM)
						      : job_start(j);
	if (err) {
		if (cc->ev)
			event_free(cc->ev);
		cc->ev = NULL;
		if (j->efd >= 0)
			close(j->efd);
		free(j->pids);
		free(j->counts);
		free(j->listening);
		free(j->listeners.v);
		free(j);
		errno = err;
		return -1;
	}
	cc->job = j;
	return 0;
}

bool conn_census_busy(const struct conn_census *cc)
{
	return cc->job != NULL;
}

void conn_census_watch_listener(struct conn_census *cc, unsigned long ino)
{
	if (ino != 0 && !inode_set_has(&cc->listeners, ino)) {
		inode_set_add(&cc->listeners, ino);
		inode_set_sort(&cc->listeners);
	}
}

void conn_census_free(struct conn_census *cc)
{
	if (!cc)
		return;
	if (cc->ev)
		event_free(cc->ev);
	if (cc->job)
		job_unref(cc->job); /* the thread frees it when it is done */
	free(cc->listeners.v);
	free(cc);
}

/* ---- listeners ---- */

struct foreign_search {
	const struct inode_set *mine;
	const unsigned long *known;
	size_t nknown;
	char *out;
	size_t cap;
	bool found;
};

static void row_address_text(const struct inet_diag_msg *row, char *out,
			     size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&ss, 0, sizeof(ss));
	if (row->idiag_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = row->id.idiag_sport;
		memcpy(&sin->sin_addr, row->id.idiag_src, 4);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = row->id.idiag_sport;
		memcpy(&sin6->sin6_addr, row->id.idiag_src, 16);
		len = sizeof(*sin6);
	}
	sockaddr_text((struct sockaddr *)&ss, len, out, cap);
}

static void foreign_visit(void *arg, const struct inet_diag_msg *row)
{
	struct foreign_search *fs = arg;
	size_t i;

	if (fs->found || row->idiag_inode == 0 ||
	    !inode_set_has(fs->mine, row->idiag_inode))
		return;
	for (i = 0; i < fs->nknown; i++)
		if (fs->known[i] == row->idiag_inode)
			return;
	row_address_text(row, fs->out, fs->cap);
	fs->found = true;
}

/* The listeners of one family, read now (see the top of the file). */
static int listener_dump(int family, struct foreign_search *fs)
{
	union diag_buf *rx = malloc(sizeof(*rx));
	int fd = diag_socket(SOCK_NONBLOCK), r = -1, err;

	if (fd >= 0 && rx)
		r = diag_dump(fd, 1, family, TCPF(TCP_LISTEN), NULL, 0, rx,
			      foreign_visit, fs);
	err = errno;
	if (fd >= 0)
		close(fd);
	free(rx);
	errno = err;
	return r;
}

int conn_census_foreign_listener(pid_t pid, const unsigned long *known,
				 size_t nknown, char *out, size_t cap)
{
	struct inode_set mine = { 0 };
	struct foreign_search fs = { &mine, known, nknown, out, cap, false };
	int r = 0;

	if (socket_inodes(pid, &mine) < 0) {
		free(mine.v);
		return -1;
	}
	if (mine.n > 0 && listener_dump(AF_INET, &fs) < 0)
		r = -1;
	if (mine.n > 0 && !fs.found && listener_dump(AF_INET6, &fs) < 0)
		r = -1;
	free(mine.v);
	return fs.found ? 1 : r;
}
