/*
 * control_server.c - the control socket of a running cluster-run.
 *
 * A unix SOCK_STREAM socket, created mode 0600 (umask around bind(): the
 * supervisor is single-threaded), in the supervisor's libevent loop.  Each
 * client is a bufferevent on a non-blocking fd with a timeout: it sends one
 * request line (at most CONTROL_MAX_REQUEST bytes), gets its answer, and is
 * closed, so a slow or silent client never holds the loop up.  Peers are
 * checked with SO_PEERCRED: the supervisor's own uid or root; any other is
 * refused with an error answer and one log line.
 */
#include "control.h"
#include "control_internal.h"
#include "log_line.h"
#include "pool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Waiting for another cluster-run checking the same directory. */
#define LOCK_TRIES 100
#define LOCK_PAUSE_NS (10 * 1000 * 1000)
/* After accept() failed for want of fds or memory. */
#define ACCEPT_RETRY_MS 1000

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	struct control_client *next, **pprev;
	pid_t pid;
	uid_t uid;
	bool allowed;       /* SO_PEERCRED: our uid or root */
	bool answered;
	bool stop_after;    /* pool_stop() once the answer is out */
};

struct control {
	struct event_base *base;
	struct pool *pool;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	dev_t dev;          /* of the socket file we made, to remove only it */
	ino_t ino;
	struct event *accept_ev;
	struct event *retry_ev;
	bool accepting;     /* accept_ev is added */
	struct control_client *clients;
	unsigned nclients;
};

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void control_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(NULL, NULL, fmt, ap);
	va_end(ap);
}

/* "cluster-run: control: ..." on stderr, as the pool's lines go. */
static void control_log(const char *fmt, ...)
{
	char line[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_line("control: %s", line);
}

/* ---- answers ---- */

static void answer(struct control_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Queues the whole answer; the client is closed once it is written. */
static void answer(struct control_client *cl, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	cl->answered = true;
	bufferevent_disable(cl->bev, EV_READ);
}

static void format_uptime(long long ms, char *buf, size_t cap)
{
	long long s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		snprintf(buf, cap, "%llds", s);
	else if (s < 3600)
		snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, cap, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

/* A JSON string of text (state names are plain, but be safe). */
static void add_json_string(struct evbuffer *out, const char *text)
{
	const unsigned char *c;

	evbuffer_add(out, "\"", 1);
	for (c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			evbuffer_add_printf(out, "\\%c", *c);
		else if (*c < 0x20)
			evbuffer_add_printf(out, "\\u%04x", *c);
		else
			evbuffer_add(out, c, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* A worker forked whose shim has not checked in yet is "none" to the
 * cluster library; to an operator it is starting. */
static const char *state_name(const struct pool_worker_info *w)
{
	return strcmp(w->state, "none") == 0 ? "starting" : w->state;
}

static void add_status_json(struct control *ctl, struct evbuffer *out,
			    const struct pool_worker_info *w, unsigned n)
{
	unsigned i;

	evbuffer_add_printf(out, "{\n  \"pid\": %d,\n  \"size\": %u,\n"
			    "  \"reloading\": %s,\n  \"stopping\": %s,\n"
			    "  \"workers\": [",
			    (int)getpid(), pool_size(ctl->pool),
			    pool_reloading(ctl->pool) ? "true" : "false",
			    pool_stopping(ctl->pool) ? "true" : "false");
	for (i = 0; i < n; i++) {
		evbuffer_add_printf(out, "%s\n    {\"id\": %u, \"pid\": %d, "
				    "\"state\": ", i ? "," : "", w[i].id,
				    (int)w[i].pid);
		add_json_string(out, state_name(&w[i]));
		evbuffer_add_printf(out, ", \"uptime_ms\": %lld, \"restarts\": "
				    "%u, \"handed\": %lu, \"listeners\": %u, "
				    "\"replacement\": %s, \"retiring\": %s}",
				    w[i].uptime_ms > 0 ? w[i].uptime_ms : 0,
				    w[i].restarts, w[i].handed, w[i].listeners,
				    w[i].replacement ? "true" : "false",
				    w[i].retiring ? "true" : "false");
	}
	evbuffer_add_printf(out, "%s]\n}\n", n ? "\n  " : "");
}

#define ROW_FORMAT "%-5s %-8s %-14s %-8s %-9s %-9s %-10s %s"

/* One row of the table, without trailing blanks. */
static void add_row(struct evbuffer *out, const char *const col[8])
{
	char row[256];
	size_t n;

	snprintf(row, sizeof(row), ROW_FORMAT, col[0], col[1], col[2], col[3],
		 col[4], col[5], col[6], col[7]);
	n = strlen(row);
	while (n > 0 && row[n - 1] == ' ')
		n--;
	evbuffer_add(out, row, n);
	evbuffer_add(out, "\n", 1);
}

static void add_status_table(struct control *ctl, struct evbuffer *out,
			     const struct pool_worker_info *w, unsigned n)
{
	static const char *const head[8] = { "id", "pid", "state", "uptime",
					     "restarts", "handed", "listeners",
					     "" };
	unsigned i, size = pool_size(ctl->pool);

	add_row(out, head);
	for (i = 0; i < n; i++) {
		char id[16], pid[16], up[32], restarts[16], handed[24], ls[16];
		const char *col[8] = { id, pid, state_name(&w[i]), up, restarts,
				       handed, ls,
				       w[i].replacement ? "new (reload)"
				       : w[i].retiring ? "old (reload)" : "" };

		snprintf(id, sizeof(id), "%u", w[i].id);
		snprintf(pid, sizeof(pid), "%d", (int)w[i].pid);
		format_uptime(w[i].uptime_ms, up, sizeof(up));
		snprintf(restarts, sizeof(restarts), "%u", w[i].restarts);
		snprintf(handed, sizeof(handed), "%lu", w[i].handed);
		snprintf(ls, sizeof(ls), "%u", w[i].listeners);
		add_row(out, col);
	}
	evbuffer_add_printf(out, "%u worker%s wanted%s%s\n", size,
			    size == 1 ? "" : "s",
			    pool_reloading(ctl->pool) ? "; reload running" : "",
			    pool_stopping(ctl->pool) ? "; stopping" : "");
}

static void do_status(struct control_client *cl, bool json)
{
	struct control *ctl = cl->ctl;
	unsigned n = pool_snapshot(ctl->pool, NULL, 0);
	struct pool_worker_info *w = calloc(n ? n : 1, sizeof(*w));

	if (!w) {
		answer(cl, CONTROL_ERROR_PREFIX "out of memory\n");
		return;
	}
	n = pool_snapshot(ctl->pool, w, n);
	if (json)
		add_status_json(ctl, bufferevent_get_output(cl->bev), w, n);
	else
		add_status_table(ctl, bufferevent_get_output(cl->bev), w, n);
	free(w);
	cl->answered = true;
	bufferevent_disable(cl->bev, EV_READ);
}

static void do_reload(struct control_client *cl)
{
	control_log("reload asked by pid %d", (int)cl->pid);
	if (pool_reload(cl->ctl->pool) == 0)
		answer(cl, "reload started\n");
	else if (errno == EALREADY)
		answer(cl, "reload already running; one more pass queued\n");
	else
		answer(cl, CONTROL_ERROR_PREFIX "no reload: cluster-run is "
		       "stopping\n");
}

static void do_scale(struct control_client *cl, const char *arg)
{
	struct pool *p = cl->ctl->pool;
	long n = control_parse_count(arg);
	unsigned before = pool_size(p);

	if (n < 0) {
		answer(cl, CONTROL_USAGE_PREFIX "invalid worker count '%s': "
		       "give a whole number from 1 to %d\n", arg,
		       CONTROL_MAX_WORKERS);
		return;
	}
	control_log("scale to %ld asked by pid %d", n, (int)cl->pid);
	if (pool_scale(p, (unsigned)n) == 0)
		answer(cl, "scale: %u -> %ld workers\n", before, n);
	else if (errno == ESHUTDOWN)
		answer(cl, CONTROL_ERROR_PREFIX "no scaling: cluster-run is "
		       "stopping\n");
	else
		answer(cl, CONTROL_ERROR_PREFIX "cannot scale to %ld workers: "
		       "%s\n", n, strerror(errno));
}

static void do_stop(struct control_client *cl)
{
	if (pool_stopping(cl->ctl->pool)) {
		answer(cl, "already stopping\n");
		return;
	}
	control_log("stop asked by pid %d", (int)cl->pid);
	answer(cl, "stopping every worker\n");
	cl->stop_after = true;
}

#define COMMANDS "commands: status [--json], reload, scale N, stop"

/* One request line, without its '\n'. */
static void handle_request(struct control_client *cl, char *line)
{
	char *save = NULL, *cmd, *arg, *extra;
	size_t len = strlen(line);

	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	if (!cl->allowed) {
		answer(cl, CONTROL_ERROR_PREFIX "permission denied: uid %u may "
		       "not control this cluster-run (only uid %u and root "
		       "may)\n", (unsigned)cl->uid, (unsigned)geteuid());
		return;
	}
	cmd = strtok_r(line, " \t", &save);
	arg = cmd ? strtok_r(NULL, " \t", &save) : NULL;
	extra = arg ? strtok_r(NULL, " \t", &save) : NULL;
	if (!cmd) {
		answer(cl, CONTROL_USAGE_PREFIX "empty request; " COMMANDS "\n");
	} else if (strcmp(cmd, "status") == 0 && !extra &&
		   (!arg || strcmp(arg, "--json") == 0 ||
		    strcmp(arg, "json") == 0)) {
		do_status(cl, arg != NULL);
	} else if (strcmp(cmd, "reload") == 0 && !arg) {
		do_reload(cl);
	} else if (strcmp(cmd, "scale") == 0 && arg && !extra) {
		do_scale(cl, arg);
	} else if (strcmp(cmd, "stop") == 0 && !arg) {
		do_stop(cl);
	} else {
		/* Quote at most a line's worth of what came. */
		answer(cl, CONTROL_USAGE_PREFIX "unknown request '%.64s%s'; "
		       COMMANDS "\n", cmd, arg ? " ..." : "");
	}
}

/* ---- clients ---- */

static void control_resume_accept(struct control *ctl)
{
	if (!ctl->accepting && ctl->nclients < CONTROL_MAX_CLIENTS &&
	    !evtimer_pending(ctl->retry_ev, NULL)) {
		event_add(ctl->accept_ev, NULL);
		ctl->accepting = true;
	}
}

static void client_free(struct control_client *cl, bool closing)
{
	struct control *ctl = cl->ctl;
	bool stop = cl->stop_after;

	*cl->pprev = cl->next;
	if (cl->next)
		cl->next->pprev = cl->pprev;
	bufferevent_free(cl->bev);
	free(cl);
	ctl->nclients--;
	if (closing)
		return;
	if (stop)
		pool_stop(ctl->pool, 0);
	control_resume_accept(ctl);
}

static void client_on_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	if (cl->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > CONTROL_MAX_REQUEST)
			answer(cl, CONTROL_USAGE_PREFIX "request too long (at "
			       "most %d bytes and a newline)\n",
			       CONTROL_MAX_REQUEST);
		return;
	}
	if (len > CONTROL_MAX_REQUEST)
		answer(cl, CONTROL_USAGE_PREFIX "request too long (at most %d "
		       "bytes and a newline)\n", CONTROL_MAX_REQUEST);
	else
		handle_request(cl, line);
	free(line);
}

/* The answer is out: done with this client. */
static void client_on_write(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;

	if (cl->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(cl, false);
}

static void client_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);

	/* EOF after a last line without '\n' ("printf status | socat"). */
	if ((what & BEV_EVENT_EOF) && !cl->answered && len > 0 &&
	    len <= CONTROL_MAX_REQUEST) {
		char line[CONTROL_MAX_REQUEST + 1];

		evbuffer_remove(in, line, len);
		line[len] = '\0';
		handle_request(cl, line);
		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			return;   /* client_on_write() ends it */
	}
	client_free(cl, false);
}

static void client_new(struct control *ctl, int fd)
{
	struct timeval tv = { CONTROL_CLIENT_TIMEOUT_MS / 1000,
			      (CONTROL_CLIENT_TIMEOUT_MS % 1000) * 1000 };
	struct control_client *cl = calloc(1, sizeof(*cl));
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!cl || !(cl->bev = bufferevent_socket_new(ctl->base, fd,
						      BEV_OPT_CLOSE_ON_FREE))) {
		control_log("cannot serve a client: out of memory");
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		cl->pid = cred.pid;
		cl->uid = cred.uid;
		cl->allowed = cred.uid == geteuid() || cred.uid == 0;
		if (!cl->allowed)
			control_log("refused a client with uid %u (pid %d): only "
				    "uid %u and root may control this cluster-run",
				    (unsigned)cred.uid, (int)cred.pid,
				    (unsigned)geteuid());
	} else {
		cl->uid = (uid_t)-1;
		control_log("refused a client: SO_PEERCRED: %s", strerror(errno));
	}
	cl->next = ctl->clients;
	if (cl->next)
		cl->next->pprev = &cl->next;
	cl->pprev = &ctl->clients;
	ctl->clients = cl;
	ctl->nclients++;
	bufferevent_setcb(cl->bev, client_on_read, client_on_write,
			  client_on_event, cl);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	/* Never more than a request and its newline in memory. */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, CONTROL_MAX_REQUEST + 2);
	bufferevent_enable(cl->bev, EV_READ);
}

static void control_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct control *ctl = arg;
	struct timeval retry = { ACCEPT_RETRY_MS / 1000,
				 (ACCEPT_RETRY_MS % 1000) * 1000 };

	while (ctl->nclients < CONTROL_MAX_CLIENTS) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			client_new(ctl, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		/* EMFILE, ENFILE, ENOBUFS, ENOMEM: the clients wait in the
		 * backlog; try again in a while rather than spin. */
		control_log("cannot accept a client: %s; trying again in %d ms",
			    strerror(errno), ACCEPT_RETRY_MS);
		event_del(ctl->accept_ev);
		ctl->accepting = false;
		evtimer_add(ctl->retry_ev, &retry);
		return;
	}
	/* As many clients as we serve at once: the rest wait in the backlog
	 * until one goes (client_free). */
	event_del(ctl->accept_ev);
	ctl->accepting = false;
}

static void control_on_retry(evutil_socket_t fd, short what, void *arg)
{
	control_resume_accept(arg);
}

/* ---- the socket file ---- */

/*
 * Holds an flock on path's directory while we check and bind, so that two
 * cluster-runs started at once on one stale socket do not both remove it
 * and bind (the first one's socket would be unlinked by the second).  -1
 * when no lock could be had (we go on without it).
 */
static int lock_directory(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	struct timespec pause = { 0, LOCK_PAUSE_NS };
	int fd, i;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (i = 0; i < LOCK_TRIES; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		nanosleep(&pause, NULL);
	}
	close(fd);
	return -1;
}

/* Something at path: refuse if it is live or not a socket, remove it if
 * it is a stale socket.  0 when path is free now. */
static int clear_path(const char *path, const struct sockaddr_un *sun,
		      socklen_t len, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot use %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; not "
			 "removing it: pass --control PATH", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, len);
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS) {
		snprintf(err, errlen, "control socket %s is in use by another "
			 "cluster-run; pass --control PATH", path);
		return -1;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, errlen, "cannot use control socket %s: %s; pass "
			 "--control PATH", path, strerror(e));
		return -1;
	}
	/* Stale: left by a cluster-run that is gone. */
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the stale socket %s: %s",
			 path, strerror(errno));
		return -1;
	}
	return 0;
}

static int listen_on(struct control *ctl, const struct sockaddr_un *sun,
		     socklen_t len, char *err, size_t errlen)
{
	struct stat st;
	mode_t old;
	int rc, e;

	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* 0600 from the moment the file exists: no window for others. */
	old = umask(0177);
	rc = bind(ctl->fd, (const struct sockaddr *)sun, len);
	e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create %s: %s", ctl->path,
			 strerror(e));
		return -1;
	}
	if (stat(ctl->path, &st) == 0) {
		ctl->dev = st.st_dev;
		ctl->ino = st.st_ino;
	}
	if (listen(ctl->fd, 16) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", ctl->path,
			 strerror(errno));
		unlink(ctl->path);
		return -1;
	}
	return 0;
}

/* Removes the socket file if it is still the one we made. */
static void remove_socket_file(struct control *ctl)
{
	struct stat st;

	if (ctl->ino && lstat(ctl->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
}

struct control *control_new(struct event_base *base, struct pool *p,
			    const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	socklen_t len;
	struct control *ctl;
	int lock, rc;

	if (control_sockaddr(path, &sun, &len, err, errlen) < 0)
		return NULL;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->base = base;
	ctl->pool = p;
	ctl->fd = -1;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	lock = lock_directory(path);
	rc = clear_path(path, &sun, len, err, errlen);
	if (rc == 0)
		rc = listen_on(ctl, &sun, len, err, errlen);
	if (lock >= 0)
		close(lock);   /* and with it the flock */
	if (rc < 0)
		goto fail;
	ctl->accept_ev = event_new(base, ctl->fd, EV_READ | EV_PERSIST,
				   control_on_accept, ctl);
	ctl->retry_ev = evtimer_new(base, control_on_retry, ctl);
	if (!ctl->accept_ev || !ctl->retry_ev ||
	    event_add(ctl->accept_ev, NULL) < 0) {
		snprintf(err, errlen, "cannot watch %s: out of memory", path);
		goto fail;
	}
	ctl->accepting = true;
	return ctl;
fail:
	if (ctl->fd >= 0) {
		remove_socket_file(ctl);
		close(ctl->fd);
	}
	if (ctl->accept_ev)
		event_free(ctl->accept_ev);
	if (ctl->retry_ev)
		event_free(ctl->retry_ev);
	free(ctl);
	return NULL;
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	while (ctl->clients) {
		struct control_client *cl = ctl->clients;

		/* Best effort: an answer still queued ("stopping every
		 * worker") goes out if the socket takes it now. */
		if (cl->answered)
			evbuffer_write(bufferevent_get_output(cl->bev),
				       bufferevent_getfd(cl->bev));
		client_free(cl, true);
	}
	event_free(ctl->accept_ev);
	event_free(ctl->retry_ev);
	remove_socket_file(ctl);
	close(ctl->fd);
	free(ctl);
}
