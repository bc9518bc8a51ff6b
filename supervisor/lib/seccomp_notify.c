/*
 * seccomp_notify.c - the supervisor's side of the seccomp mode: a worker
 * the shim cannot reach (a static or Go binary) runs under a filter that
 * stops each bind() and listen() and notifies the supervisor
 * (seccomp_filter.c); this answers them on the loop, as the shim's
 * QUERY_SERVER and LISTEN would be answered (the handle table decides):
 *
 *   bind(fd, TCP address with a port): the worker's own socket is taken
 *     with pidfd_getfd() (so every option the server set on it holds) and
 *     goes to handle_query_server(), which sets SO_REUSEPORT and binds it
 *     as the worker slot's socket.  When the slot has a socket already (a
 *     restarted or reloaded worker of that id), that one is put in the
 *     worker's fd instead (SECCOMP_IOCTL_NOTIF_ADDFD, SETFD, like dup2),
 *     with the O_NONBLOCK and close-on-exec the worker gave its own: the
 *     connections queued in it are served, as in the shim's reuseport.
 *     The bind returns 0 (or the errno the handle table gave).
 *   listen(fd) of such a socket: handle_listen(), and the LISTENING event.
 *   setsid(): noted for seccomp_daemon.c (the worker may be daemonizing),
 *     and it continues in the kernel.
 *   Anything else (port 0, UDP, unix sockets, a socket not bound here)
 *     continues in the kernel as asked (SECCOMP_USER_NOTIF_FLAG_CONTINUE),
 *     which is safe here: the filter only stops calls that the worker
 *     could make on its own anyway.
 *
 * Never blocking: the listener fd is read when poll() says a notification
 * waits (NOTIF_RECV would wait otherwise; one whose caller died in the
 * meantime makes it fail with ENOENT, not wait), BURST per wakeup.  The
 * address is read with process_vm_readv() and checked with NOTIF_ID_VALID
 * after, so that a caller that died (and a pid reused) is never answered
 * with another's memory.  A bind the kernel restarts after a signal (before
 * we received it) comes again: a socket bound here already gets 0 again.
 *
 * An i386 call (int $0x80: a 32-bit program) is answered the same way once
 * decoded (i386_as_native): its arguments are 32-bit words, and a
 * socketcall(SYS_BIND or SYS_LISTEN, args) has them in the caller's
 * memory, read like the address and checked with NOTIF_ID_VALID after.
 *
 * Costs a few system calls once per bind and listen; nothing per connection.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "seccomp_filter.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* 6.9: a pidfd for a thread that is no leader */
#endif

#define BURST 32

/* A socket bound here: its inode, the handle it is a slot of, and the
 * worker's fd number for it (as it bound). */
struct seccomp_binding {
	unsigned long ino;
	uint32_t handle_id;
	int fd;
	bool listened;
};

struct seccomp_notify {
	struct cluster_worker *w;
	int fd;
	struct event *ev;
	struct seccomp_binding *bindings;
	size_t nbindings, cap;
};

/* ---- the caller's fds and memory ---- */

/* A copy of fd number `fd` of thread `tid`, or -1. */
static int take_fd(pid_t tid, int fd)
{
	int pidfd = pidfd_open(tid, PIDFD_THREAD), copy;

	if (pidfd < 0 && errno == EINVAL) /* a kernel before 6.9 */
		pidfd = pidfd_open(tid, 0);
	if (pidfd < 0)
		return -1;
	copy = pidfd_getfd(pidfd, fd, 0);
	close(pidfd);
	if (copy >= 0)
		fcntl(copy, F_SETFD, FD_CLOEXEC);
	return copy;
}

static unsigned long inode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Whether the caller's fd is close-on-exec (its fdinfo "flags:"). */
static bool remote_cloexec(pid_t tid, int fd)
{
	char path[64], text[256], *flags;
	unsigned long v;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)tid, fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	n = read(f, text, sizeof(text) - 1);
	close(f);
	if (n <= 0)
		return false;
	text[n] = '\0';
	flags = strstr(text, "flags:");
	if (!flags || sscanf(flags + 6, "%lo", &v) != 1)
		return false;
	return (v & O_CLOEXEC) != 0;
}

/* The caller's sockaddr argument, as far as it is one we share. */
static bool read_address(const struct seccomp_notif *req,
			 struct cluster_msg_query_server *q)
{
	socklen_t len = (socklen_t)req->data.args[2];
	struct iovec local = { &q->addr.ss, len };
	struct iovec remote = { (void *)(uintptr_t)req->data.args[1], len };

	if (len < sizeof(sa_family_t) || len > sizeof(q->addr.ss) ||
	    process_vm_readv(req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return false;
	q->addr.len = len;
	q->domain = q->addr.ss.ss_family;
	if (q->domain == AF_INET && len >= sizeof(struct sockaddr_in))
		return ((struct sockaddr_in *)&q->addr.ss)->sin_port != 0;
	if (q->domain == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return ((struct sockaddr_in6 *)&q->addr.ss)->sin6_port != 0;
	return false; /* port 0, unix, anything else: the kernel's */
}

/* A TCP socket of q's family, not bound yet. */
static bool shareable_socket(int sock, struct cluster_msg_query_server *q)
{
	int type = 0, domain = 0, protocol = 0;
	socklen_t len = sizeof(int);
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0 ||
	    type != SOCK_STREAM || domain != q->domain ||
	    protocol != IPPROTO_TCP)
		return false;
	if (getsockname(sock, (struct sockaddr *)&ss, &sslen) < 0)
		return false;
	if ((ss.ss_family == AF_INET &&
	     ((struct sockaddr_in *)&ss)->sin_port != 0) ||
	    (ss.ss_family == AF_INET6 &&
	     ((struct sockaddr_in6 *)&ss)->sin6_port != 0))
		return false; /* bound already: EINVAL is the kernel's */
	q->type = type;
	q->protocol = protocol;
	return true;
}

/* ---- answers ---- */

static void respond(struct seccomp_notify *sn, uint64_t id, int error,
		    bool cont)
{
	struct seccomp_notif_resp resp = {
		.id = id,
		.error = error ? -error : 0,
		.flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
	};

	/* ENOENT: the caller is gone (killed); nothing to answer */
	(void)ioctl(sn->fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

static bool still_valid(struct seccomp_notify *sn, uint64_t id)
{
	return ioctl(sn->fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static struct seccomp_binding *binding_of(struct seccomp_notify *sn,
					  unsigned long ino)
{
	size_t i;

	for (i = 0; ino && i < sn->nbindings; i++)
		if (sn->bindings[i].ino == ino)
			return &sn->bindings[i];
	return NULL;
}

static int binding_add(struct seccomp_notify *sn, unsigned long ino,
		       uint32_t handle_id, int fd)
{
	if (sn->nbindings == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 4;
		struct seccomp_binding *b = realloc(sn->bindings,
						    cap * sizeof(*b));

		if (!b)
			return ENOMEM;
		sn->bindings = b;
		sn->cap = cap;
	}
	sn->bindings[sn->nbindings++] = (struct seccomp_binding){
		.ino = ino, .handle_id = handle_id, .fd = fd,
	};
	return 0;
}

/* The socket the worker is to hold for h: its slot's (reuseport) or the
 * one every worker shares (systemd's socket). */
static int handle_socket(const struct handle *h, unsigned slot)
{
	if (h->reuseport)
		return slot < h->nslots ? h->slot_fds[slot] : -1;
	return h->rr ? -1 : h->fd;
}

/* Puts target in the caller's fd number, as the worker had its own. */
static int install_socket(struct seccomp_notify *sn,
			  const struct seccomp_notif *req, int target,
			  int status_flags)
{
	struct seccomp_notif_addfd addfd = {
		.id = req->id,
		.flags = SECCOMP_ADDFD_FLAG_SETFD,
		.srcfd = (uint32_t)target,
		.newfd = (uint32_t)req->data.args[0],
		.newfd_flags = remote_cloexec(req->pid, (int)req->data.args[0]) ?
			O_CLOEXEC : 0,
	};
	int fl = fcntl(target, F_GETFL);

	if (fl >= 0)
		fcntl(target, F_SETFL, (fl & ~O_NONBLOCK) |
		      (status_flags & O_NONBLOCK));
	return ioctl(sn->fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0 ? errno : 0;
}

static void on_bind(struct seccomp_notify *sn, const struct seccomp_notif *req)
{
	struct cluster_worker *w = sn->w;
	struct cluster_msg_query_server q;
	struct handle_result r;
	unsigned long ino;
	int sock, fl, target, err = 0;

	memset(&q, 0, sizeof(q));
	if (!read_address(req, &q) || !still_valid(sn, req->id)) {
		respond(sn, req->id, 0, true);
		return;
	}
	sock = take_fd(req->pid, (int)req->data.args[0]);
	if (sock < 0) {
		respond(sn, req->id, 0, true); /* EBADF, ENOTSOCK: the kernel's */
		return;
	}
	ino = inode_of(sock);
	if (binding_of(sn, ino)) { /* a restarted bind: done already */
		close(sock);
		respond(sn, req->id, 0, false);
		return;
	}
	if (!shareable_socket(sock, &q)) {
		close(sock);
		respond(sn, req->id, 0, true);
		return;
	}
	fl = fcntl(sock, F_GETFL);
	r = handle_query_server(w, &q, sock); /* sock: used or closed */
	if (r.bind_failed)
		worker_report_bind_error(w, &q, r.error);
	if (r.error) {
		respond(sn, req->id, r.error, false);
		return;
	}
	target = handle_socket(r.h, w->id);
	if (target < 0)
		err = EOPNOTSUPP;
	else if (inode_of(target) != ino)
		err = install_socket(sn, req, target, fl);
	if (!err)
		err = binding_add(sn, inode_of(target), r.h->id,
				  (int)req->data.args[0]);
	if (err)
		handle_close_by_worker(w, r.h->id);
	respond(sn, req->id, err, false);
}

static void on_listen(struct seccomp_notify *sn,
		      const struct seccomp_notif *req)
{
	struct cluster_msg_listen msg = { .backlog = (int)req->data.args[1] };
	struct seccomp_binding *b;
	struct handle_result r;
	int sock = take_fd(req->pid, (int)req->data.args[0]);

	b = sock < 0 ? NULL : binding_of(sn, inode_of(sock));
	if (sock >= 0)
		close(sock);
	if (!b || !still_valid(sn, req->id)) {
		respond(sn, req->id, 0, true); /* not ours: the kernel's */
		return;
	}
	if (b->listened) { /* again (a restarted call, a new backlog) */
		respond(sn, req->id, 0, true);
		return;
	}
	msg.handle_id = b->handle_id;
	r = handle_listen(sn->w, &msg);
	if (!r.error) {
		b->listened = true;
		worker_mark_listening(sn->w, r.h);
	}
	respond(sn, req->id, r.error, false);
}

/* ---- the i386 ABI (x86_64: int $0x80) ---- */

#if defined(__x86_64__)
/* socketcall(call, args)'s n argument words, read from the caller's
 * memory at args (a 32-bit pointer) into words, zero-extended. */
static bool read_socketcall_args(struct seccomp_notify *sn,
				 const struct seccomp_notif *req, __u64 *words,
				 size_t n)
{
	uint32_t w[3];
	struct iovec local = { w, n * sizeof(w[0]) };
	struct iovec remote = { (void *)(uintptr_t)(uint32_t)req->data.args[1],
				n * sizeof(w[0]) };
	size_t i;

	if (n > 3 || process_vm_readv(req->pid, &local, 1, &remote, 1, 0) !=
			     (ssize_t)(n * sizeof(w[0])) ||
	    !still_valid(sn, req->id)) /* its memory, not a pid reuser's */
		return false;
	for (i = 0; i < n; i++)
		words[i] = w[i];
	return true;
}

/* An i386 bind(), listen(), setsid() or socketcall() of bind or listen
 * (the filter notifies no other i386 call) as the native call it stands
 * for, in *native: the
 * same id and caller, the native number, the 32-bit arguments
 * zero-extended.  False when it is none of them or its arguments cannot
 * be read: then the kernel's (it fails the way it would anyway). */
static bool i386_as_native(struct seccomp_notify *sn,
			   const struct seccomp_notif *req,
			   struct seccomp_notif *native)
{
	size_t i;

	*native = *req;
	for (i = 0; i < 6; i++)
		native->data.args[i] = (uint32_t)req->data.args[i];
	switch (req->data.nr) {
	case I386_BIND:
		native->data.nr = __NR_bind;
		return true;
	case I386_LISTEN:
		native->data.nr = __NR_listen;
		return true;
	case I386_SETSID:
		native->data.nr = __NR_setsid;
		return true;
	case I386_SOCKETCALL:
		if ((uint32_t)req->data.args[0] == I386_SYS_BIND) {
			native->data.nr = __NR_bind; /* fd, addr, len */
			return read_socketcall_args(sn, req, native->data.args,
						    3);
		}
		if ((uint32_t)req->data.args[0] == I386_SYS_LISTEN) {
			native->data.nr = __NR_listen; /* fd, backlog */
			return read_socketcall_args(sn, req, native->data.args,
						    2);
		}
		return false;
	default:
		return false;
	}
}
#endif

static void dispatch(struct seccomp_notify *sn, const struct seccomp_notif *req)
{
#if defined(__x86_64__)
	struct seccomp_notif native;

	if (req->data.arch == AUDIT_ARCH_I386) {
		if (!i386_as_native(sn, req, &native)) {
			respond(sn, req->id, 0, true);
			return;
		}
		req = &native;
	}
#endif
	if (req->data.nr == __NR_bind)
		on_bind(sn, req);
	else if (req->data.nr == __NR_listen)
		on_listen(sn, req);
	else if (req->data.nr == __NR_setsid) {
		seccomp_daemon_setsid(sn->w, (pid_t)req->pid);
		respond(sn, req->id, 0, true);
	} else
		respond(sn, req->id, 0, true);
}

/* ---- the listener fd on the loop ---- */

static void notify_close(struct seccomp_notify *sn)
{
	if (sn->ev) {
		event_free(sn->ev);
		sn->ev = NULL;
	}
	if (sn->fd >= 0) {
		close(sn->fd);
		sn->fd = -1;
	}
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct seccomp_notify *sn = arg;
	struct pollfd pfd = { .fd = (int)fd, .events = POLLIN };
	struct seccomp_notif req;
	int i;

	for (i = 0; i < BURST; i++) {
		if (poll(&pfd, 1, 0) <= 0)
			return;
		if (!(pfd.revents & POLLIN)) {
			if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
				notify_close(sn); /* every caller is gone */
				seccomp_daemon_listener_gone(sn->w);
			}
			return;
		}
		memset(&req, 0, sizeof(req));
		if (ioctl((int)fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == ENOENT || errno == EINTR)
				continue; /* its caller died meanwhile */
			return;
		}
		dispatch(sn, &req);
	}
}

int seccomp_notify_start(struct cluster_worker *w, int listener)
{
	struct seccomp_notify *sn = calloc(1, sizeof(*sn));

	if (!sn) {
		close(listener);
		return -1;
	}
	sn->w = w;
	sn->fd = listener;
	sn->ev = event_new(w->cluster->base, listener, EV_READ | EV_PERSIST,
			   on_readable, sn);
	if (!sn->ev || event_add(sn->ev, NULL) < 0) {
		notify_close(sn);
		free(sn);
		return -1;
	}
	seccomp_notify_stop(w); /* one listener per worker: the latest */
	w->seccomp = sn;
	return 0;
}

int seccomp_notify_fd(const struct cluster_worker *w)
{
	return w->seccomp ? w->seccomp->fd : -1;
}

void seccomp_notify_drain(struct cluster_worker *w)
{
	if (w->seccomp && w->seccomp->fd >= 0)
		on_readable(w->seccomp->fd, EV_READ, w->seccomp);
}

void seccomp_notify_stop(struct cluster_worker *w)
{
	struct seccomp_notify *sn = w->seccomp;

	if (!sn)
		return;
	notify_close(sn);
	free(sn->bindings);
	free(sn);
	w->seccomp = NULL;
}

int seccomp_listener_fd(const struct cluster_worker *w, uint32_t handle_id)
{
	const struct seccomp_notify *sn = w->seccomp;
	size_t i;

	for (i = 0; sn && i < sn->nbindings; i++)
		if (sn->bindings[i].handle_id == handle_id &&
		    sn->bindings[i].listened)
			return sn->bindings[i].fd;
	return -1;
}
