/*
 * handle_table.c - the supervisor's listeners, keyed as Node keys them
 * (address:type:index), and the memberships of workers in them.
 *
 * A handle lives while any worker holds it.  A worker that dies does not
 * let go of its listeners: they stay open (clients wait in the backlog) for
 * the replacement.  A handle goes away when its last worker closes it, or
 * with the cluster.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "listen_policy.h"
#include "sd_notify.h"

static struct handle *handle_find_key(struct cluster *c, const char *key)
{
	struct handle *h;

	for (h = c->handles; h; h = h->next)
		if (strcmp(h->key, key) == 0)
			return h;
	return NULL;
}

static struct handle *handle_find_id(struct cluster *c, uint32_t id)
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

static void handle_unlink_path(struct handle *h)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&h->addr;

	if (h->owns_path && h->domain == AF_UNIX && sun->sun_path[0] != '\0')
		unlink(sun->sun_path);
}

static void handle_free(struct handle *h)
{
	struct cluster *c = h->cluster;

	rr_handle_free(h->rr);
	reuseport_free(h);
	handle_unlink_path(h);
	worker_fd_close(h->fd); /* the worker's socket, or systemd's */
	if (h->prev)
		h->prev->next = h->next;
	else
		c->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	free(h);
}

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
	h->owns_path = h->domain == AF_UNIX;
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
	m->handle = h;
	m->worker = w;
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

static int bind_errno(struct cluster *c, int fd,
		      const struct cluster_msg_query_server *q)
{
	int err;

	if (q->addr.len > sizeof(q->addr.ss) ||
	    q->addr.ss.ss_family != (sa_family_t)q->domain)
		return EINVAL;
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
	h->owns_path = false;
	h->reuseport = false;
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
	h->preset_backlog = listening != 0;
	return h;
}

static void emit_bind_error(struct cluster_worker *w,
			    const struct cluster_msg_query_server *q, int err)
{
	char text[SOCKADDR_TEXT_MAX], passed[SOCKADDR_TEXT_MAX];
	struct cluster_event ev = {
		.type = CLUSTER_EV_BIND_ERROR,
		.worker = w,
		.address = sockaddr_text((const struct sockaddr *)&q->addr.ss,
					 q->addr.len, text, sizeof(text)),
		.error = err,
	};
	const struct cluster_settings *s = &w->cluster->settings;

	/* The likely cause: systemd holds the port on another address. */
	if (err == EADDRINUSE &&
	    systemd_listen_near_miss(s->listen_fds, s->n_listen_fds,
				     (const struct sockaddr *)&q->addr.ss,
				     q->addr.len, passed, sizeof(passed)) >= 0)
		cluster_logf(w->cluster, "socket activation: the server binds "
			     "%s but systemd passed %s; only the very address "
			     "is adopted: make the .socket unit's Listen%s= %s",
			     text, passed,
			     q->type == SOCK_DGRAM ? "Datagram" : "Stream", text);
	cluster_emit(w->cluster, &ev);
}

/* Finds or creates the handle; on error returns NULL with *err set. */
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
	handle_key_with_index(base, (unsigned)index, key, sizeof(key));
	h = handle_find_key(w->cluster, key);
	if (h) {
		if (!h->reuseport) {
			worker_fd_close(sock_fd);
			return h;
		}
		*err = reuseport_join(h, w->id, sock_fd);
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

void handle_query_server(struct cluster_worker *w,
			 const struct cluster_msg_query_server *q, int sock_fd,
			 int reply_fd)
{
	struct membership *m;
	struct handle *h;
	int err = 0, fds[2];

	h = handle_obtain(w, q, sock_fd, &err);
	if (!h) {
		if (err == EADDRINUSE || err == EACCES || err == EADDRNOTAVAIL)
			emit_bind_error(w, q, err);
		reply_send(reply_fd, err, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
		return;
	}
	if (!(m = membership_add(w, h))) {
		handle_index_release(w->indexes, h->base);
		reply_send(reply_fd, ENOMEM, NULL, CLUSTER_HANDLE_PENDING, NULL, 0);
		return;
	}
	if (h->type != SOCK_DGRAM) { /* the fd to serve from comes at listen() */
		reply_send(reply_fd, 0, h, CLUSTER_HANDLE_PENDING, NULL, 0);
		return;
	}
	reply_send(reply_fd, 0, h, CLUSTER_HANDLE_SHARED, fds,
		   shared_handle_fds(h, fds));
	m->listening = true;
	worker_mark_listening(w, h);
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

void handle_listen(struct cluster_worker *w,
		   const struct cluster_msg_listen *msg, int reply_fd)
{
	struct handle *h = handle_find_id(w->cluster, msg->handle_id);
	struct membership *m = h ? membership_find(w, h) : NULL;
	int err, fds[2], nfds;

	if (!m || h->type == SOCK_DGRAM) {
		reply_send(reply_fd, m ? EOPNOTSUPP : EBADF, NULL, 0, NULL, 0);
		return;
	}
	if (m->listening) { /* installed already: nothing to send */
		reply_send(reply_fd, EINVAL, NULL, 0, NULL, 0);
		return;
	}
	if (h->reuseport)
		err = reuseport_listen(h, w->id, msg->backlog, &fds[0]);
	else
		err = handle_start_listening(h, msg->backlog);
	if (err) {
		reply_send(reply_fd, err, NULL, 0, NULL, 0);
		return;
	}
	if (h->reuseport) {
		reply_send(reply_fd, 0, h, CLUSTER_HANDLE_SHARED, fds, 1);
	} else if (h->rr) {
		m->rr = rr_handle_add(h->rr, w,
				      msg->flags & CLUSTER_LISTEN_NONBLOCK_CONNS,
				      fds);
		if (!m->rr) {
			reply_send(reply_fd, ENOMEM, NULL, 0, NULL, 0);
			return;
		}
		reply_send(reply_fd, 0, h, CLUSTER_HANDLE_FAUX, fds, 2);
	} else {
		nfds = shared_handle_fds(h, fds);
		reply_send(reply_fd, 0, h, CLUSTER_HANDLE_SHARED, fds, nfds);
	}
	m->listening = true;
	worker_mark_listening(w, h);
}

static void membership_drop(struct membership *m, bool free_if_unused)
{
	struct handle *h = m->handle;

	if (m->rr)
		rr_member_free(h->rr, m->rr);
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
		add_inode(h->fd, out, &n, max);
		for (i = 0; i < h->nslots; i++)
			if (h->slot_fds[i] != h->fd)
				add_inode(h->slot_fds[i], out, &n, max);
	}
	return n;
}

bool handle_path_is_live(struct cluster *c, const char *path)
{
	struct handle *h;

	for (h = c->handles; h; h = h->next) {
		const struct sockaddr_un *sun =
			(const struct sockaddr_un *)&h->addr;

		if (h->domain == AF_UNIX &&
		    strncmp(sun->sun_path, path, sizeof(sun->sun_path)) == 0)
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

void handle_worker_gone(struct cluster_worker *w)
{
	/* Listeners stay for the replacement (clients wait in the backlog,
	 * datagrams in the queue).  A stream socket bound and never listened
	 * on holds nobody, and once no worker holds it nothing would ever
	 * free it: a worker that floods queries and dies must leave no
	 * sockets behind. */
	while (w->memberships) {
		const struct handle *h = w->memberships->handle;

		membership_drop(w->memberships,
				!h->listening && h->type != SOCK_DGRAM);
	}
	free(w->indexes);
	w->indexes = NULL;
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
