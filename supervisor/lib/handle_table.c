/*
 * handle_table.c - the supervisor's listeners, keyed as Node keys them
 * (address:type:index), and the memberships of workers in them.
 *
 * A handle lives while any worker holds it.  A worker that dies does not
 * let go of its listeners: they stay open (clients wait in the backlog) for
 * the replacement.  A handle goes away when its last worker closes it, or
 * with the cluster, or once it is an orphan nobody will take again (below).
 *
 * Orphans.  When the last worker holding a listener is gone, the handle
 * waits for that worker's successor (same id), which normally takes it
 * again.  It is freed (its socket closed; a unix path stays on disk, as
 * the kernel leaves it after the last close) when:
 *   - that worker left on purpose (disconnect, kill: a scale-down, a stop,
 *     a reload) and no live worker of its id is starting in its place; or
 *   - a live worker of its id, not leaving, holds as many listeners as
 *     the last holder had, none of them this one: it is serving and has
 *     not taken it (a reload onto another port, a unix path per pid).
 * A crash keeps the handle until the restarted worker is that far, so the
 * socket stays open while workers restart, even when none is alive.
 *
 * The rule (Node's handles are the same): handles are leaves that return
 * results.  handle_query_server() and handle_listen() change only the
 * table (handles, memberships, orphans) and return what the worker is to
 * be answered (struct handle_result); only the channel layer
 * (worker_channel.c) replies, then tells the worker layer, and only
 * cluster.c emits events, from its deferred queue.  So nothing here runs
 * a subscriber, or re-enters the channel or the SIGCHLD loop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "listen_policy.h"
#include "sd_activation.h"

static struct handle *handle_find_key(struct cluster *c, const char *key)
{
	struct handle *h;

	for (h = c->handles; h; h = h->next)
		if (strcmp(h->key, key) == 0)
			return h;
	return NULL;
}

struct handle *handle_find_id(struct cluster *c, uint32_t id)
{
	struct handle *h;

	for (h = c->handles; h; h = h->next)
		if (h->id == id)
			return h;
	return NULL;
}

static struct membership *membership_find(struct cluster_worker *w,
					  const struct handle *h)
{
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->handle == h)
			return m;
	return NULL;
}

const char *handle_policy_name(const struct handle *h)
{
	if (h->type == SOCK_DGRAM ||
	    (cluster_sched(h->cluster) == CLUSTER_SCHED_REUSEPORT && !h->reuseport))
		return "shared";
	return cluster_sched_name(cluster_sched(h->cluster));
}

static void handle_free(struct handle *h)
{
	struct cluster *c = h->cluster;

	rr_handle_free(h->rr);
	reuseport_free(h);
	/* its unix path stays, as the kernel leaves it (see
	 * handle_unlink_live_path) */
	if (h->fd >= 0) /* -1: a reuseport slot's, released (reuseport_handle.c) */
		worker_fd_close(h->fd); /* the worker's socket, or systemd's */
	if (h->prev)
		h->prev->next = h->next;
	else
		c->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	free(h);
}

static void handle_free_abandoned(struct cluster *c,
				  const struct cluster_worker *gone);

/* Datagrams are always shared, whatever the policy (as in Node); unix
 * sockets have no SO_REUSEPORT, so under reuseport they are shared too. */
static bool uses_reuseport(struct cluster *c, int domain, int type)
{
	return cluster_sched(c) == CLUSTER_SCHED_REUSEPORT &&
	       type != SOCK_DGRAM && domain != AF_UNIX;
}

/* A new handle around the socket the first worker sent, now bound. */
static struct handle *handle_new(struct cluster *c, const char *base,
				 const char *key,
				 const struct cluster_msg_query_server *q,
				 int fd)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->cluster = c;
	h->id = ++c->next_handle_id;
	snprintf(h->base, sizeof(h->base), "%s", base);
	snprintf(h->key, sizeof(h->key), "%s", key);
	h->domain = q->domain;
	h->type = q->type;
	h->protocol = q->protocol;
	h->fd = fd;
	h->addrlen = sizeof(h->addr);
	if (getsockname(fd, (struct sockaddr *)&h->addr, &h->addrlen) < 0 ||
	    h->domain == AF_UNIX) {
		/* unix: keep the path as asked (getsockname may shorten it) */
		h->addrlen = q->addr.len;
		memcpy(&h->addr, &q->addr.ss, q->addr.len);
	}
	sockaddr_text((struct sockaddr *)&h->addr, h->addrlen, h->text,
		      sizeof(h->text));
	if (h->type == SOCK_DGRAM)
		snprintf(h->text + strlen(h->text),
			 sizeof(h->text) - strlen(h->text), "/udp");
	h->reuseport = uses_reuseport(c, q->domain, q->type);
	/* Workers serve from a real socket except in rr, where we accept. */
	h->shared = h->type == SOCK_DGRAM ||
		    cluster_sched(c) != CLUSTER_SCHED_RR;
	if (!h->shared && !(h->rr = rr_handle_new(h))) {
		free(h);
		return NULL;
	}
	h->next = c->handles;
	if (c->handles)
		c->handles->prev = h;
	c->handles = h;
	return h;
}

static struct membership *membership_add(struct cluster_worker *w,
					 struct handle *h)
{
	struct membership *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	h->orphan = false;
	m->handle = h;
	m->worker = w;
	m->retired_slot_fd = -1;
	m->next_in_worker = w->memberships;
	w->memberships = m;
	m->next_in_handle = h->members;
	h->members = m;
	return m;
}

static void membership_unlink(struct membership *m)
{
	struct membership **pp;

	for (pp = &m->worker->memberships; *pp; pp = &(*pp)->next_in_worker)
		if (*pp == m) {
			*pp = m->next_in_worker;
			break;
		}
	for (pp = &m->handle->members; *pp; pp = &(*pp)->next_in_handle)
		if (*pp == m) {
			*pp = m->next_in_handle;
			break;
		}
	if (m->worker->indexes)
		handle_index_release(m->worker->indexes, m->handle->base);
}

/* The worker bound a relative unix path itself (only it, in its cwd, can
 * bind the name as given, which the kernel tells its peers): the query
 * names it absolute when that fits, else as bound.  0: take the socket as
 * it is; EADDRINUSE: a relative path the worker found in use and no
 * listener of ours has; EINVAL: bound to something else; -1: bind it here
 * as usual. */
static int bound_by_worker(int fd, const struct cluster_msg_query_server *q)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&q->addr.ss;
	struct sockaddr_un got;
	socklen_t len = sizeof(got);
	size_t plen, glen;

	if (q->domain != AF_UNIX ||
	    q->addr.len <= offsetof(struct sockaddr_un, sun_path) ||
	    sun->sun_path[0] == '\0')
		return -1;
	plen = strnlen(sun->sun_path,
		       q->addr.len - offsetof(struct sockaddr_un, sun_path));
	if (getsockname(fd, (struct sockaddr *)&got, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path))
		return sun->sun_path[0] == '/' ? -1 : EADDRINUSE;
	glen = strnlen(got.sun_path, len - offsetof(struct sockaddr_un, sun_path));
	if (glen == plen && memcmp(got.sun_path, sun->sun_path, plen) == 0)
		return 0;
	/* absolute in the query: cwd + "/" + the name as bound */
	if (got.sun_path[0] != '/' && plen > glen &&
	    sun->sun_path[plen - glen - 1] == '/' &&
	    memcmp(sun->sun_path + plen - glen, got.sun_path, glen) == 0)
		return 0;
	return EINVAL;
}

static int bind_errno(struct cluster *c, int fd,
		      const struct cluster_msg_query_server *q)
{
	int err;

	if (q->addr.len > sizeof(q->addr.ss) ||
	    q->addr.ss.ss_family != (sa_family_t)q->domain)
		return EINVAL;
	if ((err = bound_by_worker(fd, q)) >= 0)
		return err;
	if (uses_reuseport(c, q->domain, q->type) &&
	    (err = reuseport_prepare(fd)) != 0)
		return err;
	if (bind(fd, (const struct sockaddr *)&q->addr.ss, q->addr.len) < 0)
		return errno;
	return 0;
}

/* Socket activation: a copy of the socket systemd passed that is bound to
 * exactly the address asked for (the original stays, for the handle made
 * after this one is gone), or -1. */
static int adopted_copy(struct cluster *c,
			const struct cluster_msg_query_server *q)
{
	int fd;

	if (c->settings.n_listen_fds == 0 || q->addr.len > sizeof(q->addr.ss))
		return -1;
	fd = systemd_listen_match(c->settings.listen_fds,
				  c->settings.n_listen_fds, q->type,
				  (const struct sockaddr *)&q->addr.ss,
				  q->addr.len);
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* A handle around systemd's socket instead of the worker's own (whose
 * options are lost: the .socket unit's hold).  Every worker slot shares it,
 * whatever the policy; its unix path is systemd's, never unlinked. */
static struct handle *handle_adopt(struct cluster_worker *w, const char *base,
				   const char *key,
				   const struct cluster_msg_query_server *q,
				   int sock_fd, int fd, int *err)
{
	int listening = 0;
	socklen_t len = sizeof(listening);
	struct handle *h;

	worker_fd_close(sock_fd);
	h = handle_new(w->cluster, base, key, q, fd);
	if (!h) {
		close(fd);
		handle_index_release(w->indexes, base);
		*err = ENOMEM;
		return NULL;
	}
	h->adopted = true;
	h->reuseport = false;
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	h->preset_backlog = listening != 0;
	return h;
}

/* The privilege boundary: workers running as another user (--uid) get
 * only the listeners the operator declared (--listen). */
static bool listen_permitted(struct cluster_worker *w,
			     const struct cluster_msg_query_server *q)
{
	const struct cluster_settings *s = &w->cluster->settings;
	char text[SOCKADDR_TEXT_MAX];

	if (!s->set_uid ||
	    listen_addr_allowed(s->allowed_listen, s->nallowed_listen,
				(const struct sockaddr *)&q->addr.ss, q->addr.len))
		return true;
	cluster_logf(w->cluster, "worker %u (pid %d) asked for %s, which is not "
		     "among the --listen addresses; refused (EACCES)", w->id,
		     (int)w->pid,
		     sockaddr_text((const struct sockaddr *)&q->addr.ss,
				   q->addr.len, text, sizeof(text)));
	return false;
}

/* Whether two addresses of one family would clash in the kernel's eyes:
 * the same port, and the same host or a wildcard on either side. */
static bool same_port_and_host(const struct sockaddr *a,
			       const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       (x->sin_addr.s_addr == y->sin_addr.s_addr ||
			x->sin_addr.s_addr == htonl(INADDR_ANY) ||
			y->sin_addr.s_addr == htonl(INADDR_ANY));
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) ||
			IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
			IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
	}
	return false;
}

/* A worker's bind of a fixed address that one of its own listeners has
 * (a second bind of it, or of the port a port-0 bind got): the kernel
 * refuses it (EADDRINUSE) unless the server set SO_REUSEPORT itself.  The
 * reuseport policy sets it on every socket, which would let it through:
 * it must not.  (Another worker's listener of that address is the one to
 * join, and is no member of this worker's.) */
static bool reuseport_conflict(struct cluster_worker *w,
			       const struct cluster_msg_query_server *q,
			       int sock_fd)
{
	const struct sockaddr *sa = (const struct sockaddr *)&q->addr.ss;
	const struct membership *m;
	int own = 0;
	socklen_t len = sizeof(own);

	if (!uses_reuseport(w->cluster, q->domain, q->type) ||
	    q->addr.len > sizeof(q->addr.ss) ||
	    sockaddr_port(sa, q->addr.len) == 0)
		return false;
	if (getsockopt(sock_fd, SOL_SOCKET, SO_REUSEPORT, &own, &len) == 0 &&
	    own != 0)
		return false;
	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->handle->reuseport && m->handle->type == q->type &&
		    same_port_and_host((const struct sockaddr *)&m->handle->addr,
				       sa))
			return true;
	return false;
}

/* Finds or creates the handle; on error returns NULL with *err set. */
static struct handle *handle_obtain(struct cluster_worker *w,
				    const struct cluster_msg_query_server *q,
				    int sock_fd, int *err)
{
	char base[HANDLE_KEY_MAX], key[HANDLE_KEY_MAX];
	struct handle *h;
	int index, fd;

	if (!listen_permitted(w, q)) {
		*err = EACCES;
		worker_fd_close(sock_fd);
		return NULL;
	}
	if (!w->indexes && !(w->indexes = calloc(1, sizeof(*w->indexes)))) {
		*err = ENOMEM;
		worker_fd_close(sock_fd);
		return NULL;
	}
	handle_key_base((const struct sockaddr *)&q->addr.ss, q->addr.len,
			q->type, base, sizeof(base));
	index = handle_index_acquire(w->indexes, base);
	if (index < 0) {
		*err = ENOBUFS;
		worker_fd_close(sock_fd);
		return NULL;
	}
	if (reuseport_conflict(w, q, sock_fd)) {
		*err = EADDRINUSE;
		worker_fd_close(sock_fd);
		handle_index_release(w->indexes, base);
		return NULL;
	}
	handle_key_with_index(base, (unsigned)index, key, sizeof(key));
	h = handle_find_key(w->cluster, key);
	if (h) {
		if (!h->reuseport) {
			worker_fd_close(sock_fd);
			return h;
		}
		*err = reuseport_join(h, w, sock_fd);
		if (*err)
			handle_index_release(w->indexes, base);
		return *err ? NULL : h;
	}
	if (index == 0 && (fd = adopted_copy(w->cluster, q)) >= 0)
		return handle_adopt(w, base, key, q, sock_fd, fd, err);
	*err = bind_errno(w->cluster, sock_fd, q);
	if (*err == 0 && !(h = handle_new(w->cluster, base, key, q, sock_fd)))
		*err = ENOMEM;
	if (h && h->reuseport && (*err = reuseport_adopt(h, w->id, sock_fd))) {
		handle_free(h);
		handle_index_release(w->indexes, base);
		return NULL;
	}
	if (!h) {
		worker_fd_close(sock_fd);
		handle_index_release(w->indexes, base);
	}
	return h;
}

static struct handle_result handle_failed(int err)
{
	return (struct handle_result){ .error = err };
}

/* The worker serves on m's handle from this reply on: its share listens,
 * and an orphan that waited for it to be this far may go. */
static struct handle_result handle_serving(struct membership *m,
					   enum cluster_handle_kind kind,
					   const int *fds, int nfds)
{
	struct handle_result r = {
		.h = m->handle, .kind = kind, .nfds = nfds, .listening = true,
	};

	memcpy(r.fds, fds, sizeof(int) * (size_t)nfds);
	m->listening = true;
	handle_free_abandoned(m->handle->cluster, NULL);
	return r;
}

/* The errors of bind() itself, which the cluster reports (an event). */
static bool is_bind_error(int err)
{
	return err == EADDRINUSE || err == EACCES || err == EADDRNOTAVAIL;
}

struct handle_result handle_query_server(struct cluster_worker *w,
					 const struct cluster_msg_query_server *q,
					 int sock_fd)
{
	struct membership *m;
	struct handle *h;
	int err = 0, fds[2];

	h = handle_obtain(w, q, sock_fd, &err);
	if (!h)
		return (struct handle_result){
			.error = err, .bind_failed = is_bind_error(err),
		};
	if (!(m = membership_add(w, h))) {
		handle_index_release(w->indexes, h->base);
		return handle_failed(ENOMEM);
	}
	if (h->type != SOCK_DGRAM) /* the fd to serve from comes at listen() */
		return (struct handle_result){ .h = h };
	return handle_serving(m, CLUSTER_HANDLE_SHARED, fds,
			      shared_handle_fds(h, fds));
}

static int handle_start_listening(struct handle *h, int backlog)
{
	if (h->listening && backlog <= h->backlog)
		return 0;
	/* systemd's socket listens already, with the .socket unit's Backlog=:
	 * a server's smaller backlog must not shrink it. */
	if (!h->preset_backlog && listen(h->fd, backlog) < 0)
		return errno;
	h->backlog = backlog;
	if (!h->listening) {
		h->listening = true;
		if (h->rr)
			rr_handle_start(h->rr);
	}
	return 0;
}

struct handle_result handle_listen(struct cluster_worker *w,
				  const struct cluster_msg_listen *msg)
{
	struct handle *h = handle_find_id(w->cluster, msg->handle_id);
	struct membership *m = h ? membership_find(w, h) : NULL;
	int err, fds[2];

	if (!m || h->type == SOCK_DGRAM)
		return handle_failed(m ? EOPNOTSUPP : EBADF);
	if (m->listening) /* installed already: nothing to send */
		return handle_failed(EINVAL);
	if (h->reuseport)
		err = reuseport_listen(h, w->id, msg->backlog, &fds[0]);
	else
		err = handle_start_listening(h, msg->backlog);
	if (err)
		return handle_failed(err);
	if (h->reuseport)
		return handle_serving(m, CLUSTER_HANDLE_SHARED, fds, 1);
	if (!h->rr)
		return handle_serving(m, CLUSTER_HANDLE_SHARED, fds,
				      shared_handle_fds(h, fds));
	m->rr = rr_handle_add(h->rr, w,
			      msg->flags & CLUSTER_LISTEN_NONBLOCK_CONNS, fds);
	if (!m->rr)
		return handle_failed(ENOMEM);
	return handle_serving(m, CLUSTER_HANDLE_FAUX, fds, 2);
}

static void membership_drop(struct membership *m, bool free_if_unused)
{
	struct handle *h = m->handle;

	if (m->rr)
		rr_member_free(h->rr, m->rr);
	reuseport_member_free(m);
	membership_unlink(m);
	free(m);
	if (free_if_unused && !h->members)
		handle_free(h);
}

void handle_close_by_worker(struct cluster_worker *w, uint32_t handle_id)
{
	struct handle *h = handle_find_id(w->cluster, handle_id);
	struct membership *m = h ? membership_find(w, h) : NULL;

	if (m)
		membership_drop(m, true);
}

static void add_inode(int fd, unsigned long *out, size_t *n, size_t max)
{
	struct stat st;

	if (fd >= 0 && *n < max && fstat(fd, &st) == 0)
		out[(*n)++] = (unsigned long)st.st_ino;
}

size_t handle_inodes(struct cluster *c, unsigned long *out, size_t max)
{
	struct handle *h;
	size_t n = 0;
	unsigned i;

	for (h = c->handles; h; h = h->next) {
		const struct membership *m;

		add_inode(h->fd, out, &n, max);
		for (i = 0; i < h->nslots; i++)
			if (h->slot_fds[i] != h->fd)
				add_inode(h->slot_fds[i], out, &n, max);
		for (m = h->members; m; m = m->next_in_handle)
			if (m->retired_slot_fd != h->fd)
				add_inode(m->retired_slot_fd, out, &n, max);
	}
	return n;
}

/*
 * The kernel never removes a socket's path; unlink() removes it at once.
 * So does this when nobody else is cut off: the asking worker is the
 * listener's only user, or nobody uses it and the worker is stopping (its
 * shim let go of the listener at stop-accepting, and its server cleans
 * up).  While other workers serve on it the path stays (each server
 * believes it is the only one and removes it at its exit: the last one
 * does), and a worker with no share in it that is not stopping (one
 * restarting, removing what it takes for a stale socket before its bind()
 * joins the listener) removes nothing.  Either way unlink() succeeds.
 * systemd's paths stay.
 */
bool handle_unlink_live_path(struct cluster_worker *w, const char *path,
			     int *err)
{
	struct handle *h;

	for (h = w->cluster->handles; h; h = h->next) {
		const struct sockaddr_un *sun =
			(const struct sockaddr_un *)&h->addr;
		const struct membership *m;
		bool alone;

		if (h->domain != AF_UNIX || h->path_removed ||
		    strncmp(sun->sun_path, path, sizeof(sun->sun_path)) != 0)
			continue;
		m = membership_find(w, h);
		alone = m ? h->members == m && !m->next_in_handle
			  : !h->members && w->state == WORKER_DISCONNECTING;
		*err = 0;
		if (alone && !h->adopted) {
			h->path_removed = true;
			if (unlink(path) < 0)
				*err = errno;
		}
		return true;
	}
	return false;
}

unsigned worker_listener_count(const struct cluster_worker *w)
{
	const struct membership *m;
	unsigned n = 0;

	for (m = w->memberships; m; m = m->next_in_worker)
		n += m->listening;
	return n;
}

unsigned handle_worker_accepting_inodes(const struct cluster_worker *w,
					unsigned long *inodes, unsigned max)
{
	const struct membership *m;
	size_t n = 0;

	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->listening && !m->rr && m->handle->type == SOCK_STREAM)
			add_inode(m->handle->reuseport ? reuseport_member_fd(m)
						       : m->handle->fd,
				  inodes, &n, max);
	return (unsigned)n;
}

unsigned handle_worker_tcp_ports(const struct cluster_worker *w, bool rr_only,
				 unsigned *ports, unsigned max)
{
	const struct membership *m;
	unsigned n = 0;

	for (m = w->memberships; m && n < max; m = m->next_in_worker)
		if (m->listening && (m->rr || !rr_only) &&
		    m->handle->domain != AF_UNIX && m->handle->type == SOCK_STREAM)
			ports[n++] = sockaddr_port((struct sockaddr *)&m->handle->addr,
						   m->handle->addrlen);
	return n;
}

void handle_worker_stop_routing(struct cluster_worker *w)
{
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker)
		if (m->rr)
			rr_member_stop(m->handle->rr, m->rr);
}

void handle_close_rr_doors(struct cluster *c)
{
	struct handle *h;

	for (h = c->handles; h; h = h->next)
		if (h->rr)
			rr_handle_close_door(h->rr);
}

void handle_worker_release_slots(struct cluster_worker *w)
{
	struct membership *m;

	for (m = w->memberships; m; m = m->next_in_worker)
		reuseport_release_slot(m);
}

/* ---- orphans ---- */

/* The live worker of id, not leaving, that is not `gone`; NULL if none. */
static const struct cluster_worker *successor_of(const struct cluster *c,
						 unsigned id,
						 const struct cluster_worker *gone)
{
	const struct cluster_worker *w;

	for (w = c->workers; w; w = w->next)
		if (w != gone && w->id == id && w->state < WORKER_DISCONNECTING)
			return w;
	return NULL;
}

/* Why nobody will take the orphan h again, or NULL while one may. */
static const char *orphan_abandoned(const struct handle *h,
				    const struct cluster_worker *gone)
{
	const struct cluster_worker *s = successor_of(h->cluster, h->orphan_id,
						      gone);

	if (!s) /* after a crash, the restart may take it */
		return h->orphan_left ? "and none will take it" : NULL;
	return worker_listener_count(s) >= h->orphan_need
		       ? "and its successor serves without it" : NULL;
}

/* Frees the orphans nobody will take again; gone: a worker being reaped
 * (still listed), or NULL. */
static void handle_free_abandoned(struct cluster *c,
				  const struct cluster_worker *gone)
{
	struct handle *h, *next;

	for (h = c->handles; h; h = next) {
		const char *why;

		next = h->next;
		if (!h->orphan || h->members || !(why = orphan_abandoned(h, gone)))
			continue;
		if (!c->disconnecting) /* at a stop, every one goes */
			cluster_logf(c, "%s: closed: worker %u held it last, %s",
				     h->text, h->orphan_id, why);
		handle_free(h);
	}
}

static void handle_note_orphan(struct handle *h, const struct cluster_worker *w,
			       unsigned need)
{
	h->orphan = true;
	h->orphan_id = w->id;
	h->orphan_need = need;
	h->orphan_left = w->exited_after_disconnect;
}

void handle_worker_gone(struct cluster_worker *w)
{
	unsigned need = worker_listener_count(w);

	/* Listeners stay for the replacement (clients wait in the backlog,
	 * datagrams in the queue).  A stream socket bound and never listened
	 * on holds nobody, and once no worker holds it nothing would ever
	 * free it: a worker that floods queries and dies must leave no
	 * sockets behind. */
	while (w->memberships) {
		struct handle *h = w->memberships->handle;
		bool unused = !h->listening && h->type != SOCK_DGRAM;

		membership_drop(w->memberships, unused);
		if (!unused && !h->members)
			handle_note_orphan(h, w, need);
	}
	free(w->indexes);
	w->indexes = NULL;
	handle_free_abandoned(w->cluster, w);
}

void handle_free_all(struct cluster *c)
{
	while (c->handles) {
		struct handle *h = c->handles;

		while (h->members) {
			struct membership *m = h->members;

			if (m->rr)
				rr_member_free(h->rr, m->rr);
			membership_unlink(m);
			free(m);
		}
		handle_free(h);
	}
}
