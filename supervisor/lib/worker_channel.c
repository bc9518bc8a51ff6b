/*
 * worker_channel.c - reading a worker's requests (Node's internal messages:
 * online, queryServer, listening, close) and answering on the reply socket
 * each request brought.  The only layer that replies: the handle table
 * returns what a request comes to (struct handle_result), this sends it
 * and then tells the worker layer (worker_mark_listening), whose events
 * cluster.c delivers later, from its queue.
 *
 * Everything read here is untrusted input, and the supervisor never blocks
 * on a worker: the channel is only read (MSG_DONTWAIT, CHANNEL_BURST
 * messages per wakeup, so a flood cannot starve the others), and every
 * answer goes out with MSG_DONTWAIT on the reply socket the request brought
 * (rr connections, likewise, on socketpairs the supervisor makes itself);
 * the sockets workers hand over are closed with worker_fd_close().
 *
 * The policy for a misbehaving worker:
 *   - A protocol violation, a message no process running the real shim can
 *     send (a truncated, oversized, short or empty message; another protocol
 *     version; an unknown type; a length or an fd count that does not match
 *     the type; a REPLY or NEWCONN, which only the supervisor sends; a query
 *     with an address the shim never forwards; LISTEN or CLOSE naming a
 *     handle that was never issued; unknown flag bits): one log line, then
 *     the worker is cut off (its channel closed, no more connections routed
 *     to it) and killed with SIGKILL, its process group with it.  The
 *     fds the message brought are closed.  Like any worker that dies
 *     unexpectedly it is replaced after the restart delay, with backoff.
 *   - A message whose fds the kernel could not all hand over because the
 *     supervisor itself is out of fds (MSG_CTRUNC while EMFILE/ENFILE):
 *     the supervisor's shortage, not the worker's fault.  The request is
 *     answered EMFILE on its reply socket where that came through (else the
 *     kernel closed the reply socket and the worker's call fails), one line
 *     per shortage, and the worker serves on.
 *   - An odd request that a real shim can send from a forked process of the
 *     worker (a child listen()ing on a handle its parent closed, or on one
 *     it already listens on; a CLOSE of a handle it no longer holds) or one
 *     past the supervisor's resource limit (CHANNEL_MAX_HANDLES handles per
 *     worker): answered with an error, as before; the first of them is
 *     logged, once per worker.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "listen_policy.h"
#include "proto_codec.h"

#define CHANNEL_BURST 32 /* messages per wakeup, so one worker can't starve */
#define CHANNEL_MAX_HANDLES 1024 /* handles one worker may hold at once */

/* A received message, aligned for any of the message structs. */
union channel_msg {
	struct cluster_msg_header hdr;
	struct cluster_msg_hello hello;
	struct cluster_msg_query_server query;
	struct cluster_msg_listen listen;
	struct cluster_msg_close close;
	struct cluster_msg_unlink_path unlink;
	struct cluster_msg_exec exec;
	char bytes[CLUSTER_MSG_MAX_SIZE];
};

void worker_fd_close(int fd)
{
	struct linger lg;
	socklen_t len = sizeof(lg);

	if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 &&
	    lg.l_onoff && lg.l_linger > 0) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
			lg.l_onoff = 0;
			lg.l_linger = 0;
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
	}
	close(fd);
}

static int reply_send(int reply_fd, int error, const struct handle *h,
		      enum cluster_handle_kind kind, const int *fds,
		      int nfds)
{
	struct cluster_msg_reply reply;
	int rc;

	cluster_msg_init(&reply, CLUSTER_MSG_REPLY);
	reply.error = error;
	reply.kind = kind;
	reply.nfds = (uint32_t)nfds;
	if (h) {
		if (h->rr)
			reply.flags |= CLUSTER_REPLY_SUPERVISOR_ACCEPTS;
		reply.handle_id = h->id;
		reply.bound.len = h->addrlen;
		memcpy(&reply.bound.ss, &h->addr, h->addrlen);
	}
	/* Never blocks: a worker that does not read its reply socket (or
	 * sent one that is full, or no socket at all) just loses the answer. */
	rc = cluster_msg_send(reply_fd, &reply, sizeof(reply), fds, nfds,
			      MSG_DONTWAIT);
	worker_fd_close(reply_fd);
	return rc;
}

static void close_fds(const int *fds, int nfds)
{
	int i;

	for (i = 0; i < nfds; i++)
		worker_fd_close(fds[i]);
}

/* ---- the policy ---- */

static const char *type_name(unsigned type)
{
	static const char *const names[CLUSTER_MSG_TYPE_MAX] = {
		[CLUSTER_MSG_HELLO] = "HELLO",
		[CLUSTER_MSG_QUERY_SERVER] = "QUERY_SERVER",
		[CLUSTER_MSG_LISTEN] = "LISTEN",
		[CLUSTER_MSG_CLOSE] = "CLOSE",
		[CLUSTER_MSG_UNLINK_PATH] = "UNLINK_PATH",
		[CLUSTER_MSG_REPLY] = "REPLY",
		[CLUSTER_MSG_NEWCONN] = "NEWCONN",
		[CLUSTER_MSG_EXEC] = "EXEC",
	};

	return type > 0 && type < CLUSTER_MSG_TYPE_MAX ? names[type] : "?";
}

/* A protocol violation: one line, then the worker is cut off and killed. */
static void worker_cut_off(struct cluster_worker *w, const char *why)
{
	cluster_logf(w->cluster, "worker %u (pid %d) broke the channel "
		     "protocol (%s); killing it", w->id, (int)w->pid, why);
	w->cluster->protocol_violations++;
	worker_channel_lost(w);
	if (w->pid > 0) {
		kill(-w->pid, SIGKILL);
		kill(w->pid, SIGKILL);
	}
}

/* An odd request a real shim may send: logged once per worker. */
static void worker_note_odd(struct cluster_worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void worker_note_odd(struct cluster_worker *w, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (w->noted_odd_request)
		return;
	w->noted_odd_request = true;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	cluster_logf(w->cluster, "worker %u (pid %d) %s (the first odd request "
		     "of this worker; later ones are not logged)", w->id,
		     (int)w->pid, what);
}

/* Why the framing is wrong: what cluster_msg_validate() refused. */
static void describe_framing(const union channel_msg *m, size_t len, int nfds,
			     int rc, char *why, size_t cap)
{
	size_t want;

	if (len < sizeof(m->hdr)) {
		snprintf(why, cap, "a message of %zu bytes, shorter than a "
			 "header", len);
		return;
	}
	if (rc == -EPROTO) {
		snprintf(why, cap, "protocol version %u, not %u",
			 (unsigned)m->hdr.version,
			 (unsigned)CLUSTER_PROTO_VERSION);
		return;
	}
	want = cluster_msg_size(m->hdr.type);
	if (want == 0)
		snprintf(why, cap, "unknown message type %u",
			 (unsigned)m->hdr.type);
	else if (rc == -EBADMSG)
		snprintf(why, cap, "%s of %zu bytes, header says %u, want %zu",
			 type_name(m->hdr.type), len, m->hdr.length, want);
	else
		snprintf(why, cap, "%s with %d fds attached",
			 type_name(m->hdr.type), nfds);
}

/* What bind() in the shim forwards (clusterable_address there). */
static bool query_address_ok(const struct cluster_msg_query_server *q)
{
	size_t min;

	switch (q->domain) {
	case AF_INET:
		min = sizeof(struct sockaddr_in);
		break;
	case AF_INET6:
		min = sizeof(struct sockaddr_in6);
		break;
	case AF_UNIX:
		min = offsetof(struct sockaddr_un, sun_path) + 1;
		break;
	default:
		return false;
	}
	return q->addr.len >= min && q->addr.len <= sizeof(q->addr.ss) &&
	       q->addr.ss.ss_family == (sa_family_t)q->domain;
}

static bool handle_was_issued(const struct cluster_worker *w, uint32_t id)
{
	return id != 0 && id <= w->cluster->next_handle_id;
}

/*
 * Whether m is something no process running the real shim can send; if
 * so, why.  Past this point the message has its type's size and fd count.
 */
static bool message_violates(const struct cluster_worker *w,
			     const union channel_msg *m, size_t len, int nfds,
			     char *why, size_t cap)
{
	int rc = cluster_msg_validate(m, len, nfds);

	if (rc != 0) {
		describe_framing(m, len, nfds, rc, why, cap);
		return true;
	}
	switch (m->hdr.type) {
	case CLUSTER_MSG_QUERY_SERVER:
		if ((m->query.type != SOCK_STREAM &&
		     m->query.type != SOCK_DGRAM &&
		     m->query.type != SOCK_SEQPACKET) ||
		    m->query.flags != 0 || !query_address_ok(&m->query)) {
			snprintf(why, cap, "QUERY_SERVER for domain %d, type "
				 "%d, address length %u, flags %#x",
				 m->query.domain, m->query.type,
				 m->query.addr.len, m->query.flags);
			return true;
		}
		return false;
	case CLUSTER_MSG_LISTEN:
		if (!handle_was_issued(w, m->listen.handle_id)) {
			snprintf(why, cap, "LISTEN for handle %u, which was "
				 "never issued", m->listen.handle_id);
			return true;
		}
		if (m->listen.flags & ~(uint32_t)CLUSTER_LISTEN_NONBLOCK_CONNS) {
			snprintf(why, cap, "LISTEN with flags %#x",
				 m->listen.flags);
			return true;
		}
		return false;
	case CLUSTER_MSG_CLOSE:
		if (!handle_was_issued(w, m->close.handle_id)) {
			snprintf(why, cap, "CLOSE of handle %u, which was "
				 "never issued", m->close.handle_id);
			return true;
		}
		return false;
	case CLUSTER_MSG_UNLINK_PATH:
		if (!memchr(m->unlink.path, '\0', sizeof(m->unlink.path))) {
			snprintf(why, cap, "UNLINK_PATH without a terminated "
				 "path");
			return true;
		}
		return false;
	case CLUSTER_MSG_EXEC:
		if (m->exec.reason == 0 ||
		    m->exec.reason >= CLUSTER_EXEC_REASON_MAX ||
		    !memchr(m->exec.path, '\0', sizeof(m->exec.path))) {
			snprintf(why, cap, "EXEC for reason %u, path %s",
				 m->exec.reason,
				 memchr(m->exec.path, '\0',
					sizeof(m->exec.path)) ?
				 "terminated" : "not terminated");
			return true;
		}
		return false;
	case CLUSTER_MSG_REPLY:
	case CLUSTER_MSG_NEWCONN:
		snprintf(why, cap, "%s, which only the supervisor sends",
			 type_name(m->hdr.type));
		return true;
	default:
		return false;
	}
}

/* ---- requests ---- */

static struct membership *membership_of(const struct cluster_worker *w,
					uint32_t handle_id)
{
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->handle->id == handle_id)
			return m;
	return NULL;
}

static unsigned memberships_held(const struct cluster_worker *w)
{
	const struct membership *m;
	unsigned n = 0;

	for (m = w->memberships; m; m = m->next_in_worker)
		n++;
	return n;
}

/* The handle table's answer, sent; then the worker layer hears what it
 * means (its LISTENING event comes from the cluster's queue). */
static void answer_with(struct cluster_worker *w, int reply_fd,
			const struct handle_result *r)
{
	reply_send(reply_fd, r->error, r->h, r->kind, r->fds, r->nfds);
	if (r->listening)
		worker_mark_listening(w, r->h);
}

static void answer_query_server(struct cluster_worker *w,
				const struct cluster_msg_query_server *q,
				int reply_fd, int sock_fd)
{
	struct handle_result r;

	if (memberships_held(w) >= CHANNEL_MAX_HANDLES) {
		worker_note_odd(w, "holds %d handles and asked for one more; "
				"answered ENOBUFS", CHANNEL_MAX_HANDLES);
		worker_fd_close(sock_fd);
		reply_send(reply_fd, ENOBUFS, NULL, CLUSTER_HANDLE_PENDING,
			   NULL, 0);
		return;
	}
	r = handle_query_server(w, q, sock_fd);
	if (r.bind_failed)
		worker_report_bind_error(w, q, r.error);
	answer_with(w, reply_fd, &r);
}

/* handle_listen() returns EBADF and EINVAL for these; a forked child of
 * the worker can send them (its parent closed the handle, or listens on
 * it already), so they are noted, not punished. */
static void answer_listen(struct cluster_worker *w,
			  const struct cluster_msg_listen *msg, int reply_fd)
{
	const struct membership *m = membership_of(w, msg->handle_id);
	struct handle_result r;

	if (!m)
		worker_note_odd(w, "sent LISTEN for handle %u, which it does "
				"not hold; answered EBADF", msg->handle_id);
	else if (m->listening)
		worker_note_odd(w, "sent LISTEN for handle %u, on which it "
				"listens already; answered EINVAL",
				msg->handle_id);
	r = handle_listen(w, msg);
	answer_with(w, reply_fd, &r);
}

/* With a reply socket, answered once the handle is let go: a close() of
 * a worker's last listener returns after the listening socket is closed,
 * as without cluster-run (a connect() just after is refused). */
static void answer_close(struct cluster_worker *w,
			 const struct cluster_msg_close *msg, int reply_fd)
{
	if (!membership_of(w, msg->handle_id))
		worker_note_odd(w, "sent CLOSE of handle %u, which it does not "
				"hold; ignored", msg->handle_id);
	handle_close_by_worker(w, msg->handle_id);
	if (reply_fd >= 0)
		reply_send(reply_fd, 0, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
}

/* The supervisor unlinks with its own rights, not the worker's: with --uid
 * only the paths the operator declared (--listen unix:PATH), as for bind. */
static bool unlink_permitted(const struct cluster_worker *w, const char *path)
{
	const struct cluster_settings *s = &w->cluster->settings;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(path);

	if (!s->set_uid)
		return true;
	if (n >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, n + 1);
	return listen_addr_allowed(s->allowed_listen, s->nallowed_listen,
				   (const struct sockaddr *)&sun,
				   (socklen_t)(offsetof(struct sockaddr_un,
							sun_path) + n + 1));
}

/* A live listener's path is left alone (and the worker told it is gone);
 * anything else that is a socket is removed, as the worker asked.  Only
 * sockets, and with --uid only declared paths (unlink_permitted). */
static void answer_unlink_path(struct cluster_worker *w,
			       const struct cluster_msg_unlink_path *msg,
			       int reply_fd)
{
	struct stat st;
	int err = 0;

	if (!unlink_permitted(w, msg->path)) {
		worker_note_odd(w, "asked to remove %s, which is not among the "
				"--listen addresses; refused (EACCES)",
				msg->path);
		err = EACCES;
	} else if (handle_unlink_live_path(w, msg->path, &err)) {
		/* err as handle_table.c decided */
	} else if (lstat(msg->path, &st) < 0)
		err = errno;
	else if (!S_ISSOCK(st.st_mode))
		err = EPERM;
	else if (unlink(msg->path) < 0)
		err = errno;
	reply_send(reply_fd, err, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
}

/* fds[] has been checked against the message type by the validator. */
static void dispatch(struct cluster_worker *w, const union channel_msg *m,
		     int *fds, int nfds)
{
	switch (m->hdr.type) {
	case CLUSTER_MSG_HELLO:
		worker_mark_online(w);
		return;
	case CLUSTER_MSG_QUERY_SERVER:
		answer_query_server(w, &m->query, fds[0], fds[1]);
		return;
	case CLUSTER_MSG_LISTEN:
		answer_listen(w, &m->listen, fds[0]);
		return;
	case CLUSTER_MSG_CLOSE:
		answer_close(w, &m->close, nfds > 0 ? fds[0] : -1);
		return;
	case CLUSTER_MSG_UNLINK_PATH:
		answer_unlink_path(w, &m->unlink, fds[0]);
		return;
	case CLUSTER_MSG_EXEC:
		worker_exec_notice(w, &m->exec, fds[0]);
		return;
	}
}

int worker_channel_handle(struct cluster_worker *w, const void *buf,
			  size_t len, int *fds, int nfds)
{
	union channel_msg m;
	char why[256];

	if (nfds < 0)
		nfds = 0;
	if (len > sizeof(m) || nfds > CLUSTER_MSG_RECV_FDS) {
		snprintf(why, sizeof(why), "a message of %zu bytes with %d "
			 "fds, larger than any message", len, nfds);
		close_fds(fds, nfds);
		worker_cut_off(w, why);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	memcpy(&m, buf, len);
	if (message_violates(w, &m, len, nfds, why, sizeof(why))) {
		close_fds(fds, nfds);
		worker_cut_off(w, why);
		return -1;
	}
	dispatch(w, &m, fds, nfds);
	return 0;
}

/* ---- the supervisor out of fds ---- */

/* After MSG_CTRUNC: whether the supervisor has no fd to spare (the kernel
 * then drops what it cannot install), rather than a worker sending more
 * fds than any message carries. */
static bool supervisor_out_of_fds(int fd)
{
	int probe = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (probe >= 0) {
		close(probe);
		return false;
	}
	return errno == EMFILE || errno == ENFILE;
}

/* A request of the right size whose first fd is its reply socket. */
static bool carries_reply_socket(const union channel_msg *m, size_t len)
{
	if (len < sizeof(m->hdr) || cluster_msg_size(m->hdr.type) != len)
		return false;
	return m->hdr.type == CLUSTER_MSG_QUERY_SERVER ||
	       m->hdr.type == CLUSTER_MSG_LISTEN ||
	       m->hdr.type == CLUSTER_MSG_UNLINK_PATH ||
	       m->hdr.type == CLUSTER_MSG_EXEC;
}

static void answer_fd_shortage(struct cluster_worker *w, int *fds, int nfds)
{
	struct cluster *c = w->cluster;

	if (!c->said_fd_shortage) {
		c->said_fd_shortage = true;
		cluster_logf(c, "out of file descriptors: a request from worker "
			     "%u (pid %d) lost the fds it carried; its call "
			     "fails (EMFILE, or ECONNRESET where its reply "
			     "socket was lost too), the worker is not at "
			     "fault (raise "
			     "RLIMIT_NOFILE or run fewer workers; said once "
			     "until fds come through again)", w->id,
			     (int)w->pid);
	}
	if (nfds > 0) {
		reply_send(fds[0], EMFILE, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
		close_fds(fds + 1, nfds - 1);
	}
}

/* recvmsg() read 0 bytes: the end of the channel, or an empty message? */
static bool channel_hung_up(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&pfd, 1, 0) < 0 ||
	       (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

static void channel_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_worker *w = arg;
	union channel_msg msg;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, truncated, i;
	ssize_t n;

	for (i = 0; i < CHANNEL_BURST; i++) {
		/* MSG_TRUNC: n is the whole length of an oversized one */
		n = cluster_msg_recv(fd, &msg, sizeof(msg), fds, &nfds,
				     MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC,
				     &truncated);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0 || (n == 0 && nfds == 0 && channel_hung_up(fd))) {
			/* no shim speaks on a seccomp worker's channel: a
			 * server that closes its fds (a daemon's
			 * closefrom(3)) has not disconnected */
			if (w->seccomp) {
				bool connected = w->connected;

				worker_channel_stop(w);
				w->connected = connected;
			} else {
				worker_channel_lost(w);
			}
			return;
		}
		if (truncated && (size_t)n <= sizeof(msg) &&
		    carries_reply_socket(&msg, (size_t)n) &&
		    supervisor_out_of_fds(fd)) {
			answer_fd_shortage(w, fds, nfds);
			continue;
		}
		if (truncated && (size_t)n <= sizeof(msg)) {
			/* MSG_CTRUNC: more fds than the kernel would give us;
			 * the ones past our buffer are closed already */
			close_fds(fds, nfds);
			worker_cut_off(w, "a message with more fds attached "
				       "than any message carries");
			return;
		}
		if (nfds > 0)
			w->cluster->said_fd_shortage = false;
		if (worker_channel_handle(w, &msg, (size_t)n, fds, nfds) < 0)
			return;
	}
}

int worker_channel_start(struct cluster_worker *w)
{
	w->channel_ev = event_new(w->cluster->base, w->channel_fd,
				  EV_READ | EV_PERSIST, channel_on_readable, w);
	if (!w->channel_ev || event_add(w->channel_ev, NULL) < 0)
		return -1;
	w->connected = true;
	return 0;
}

void worker_channel_stop(struct cluster_worker *w)
{
	if (w->channel_ev) {
		event_free(w->channel_ev);
		w->channel_ev = NULL;
	}
	if (w->channel_fd >= 0) {
		close(w->channel_fd);
		w->channel_fd = -1;
	}
	w->connected = false;
}
