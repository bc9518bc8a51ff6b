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
#include "accept_gate.h"
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

/* What a client asked with --wait waits for. */
enum control_wait {
	WAIT_NONE,
	WAIT_RELOAD,        /* the reload's end (its queued passes too) */
	WAIT_STOP,          /* every worker gone */
};

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	struct control_client *next, **pprev;
	pid_t pid;
	uid_t uid;
	bool allowed;       /* SO_PEERCRED: our uid or root */
	bool answered;
	bool stop_after;    /* pool_stop() once the answer is out */
	enum control_wait wait; /* --wait: answered when that has ended */
};

struct control {
	struct event_base *base;
	struct pool *pool;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	dev_t dev;          /* of the socket file we made, to remove only it */
	ino_t ino;
	struct accept_gate gate;
	struct control_client *clients;
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

static void do_status(struct control_client *cl, bool json)
{
	if (control_status(cl->ctl->pool, bufferevent_get_output(cl->bev),
			   json) < 0) {
		answer(cl, CONTROL_ERROR_PREFIX "out of memory\n");
		return;
	}
	cl->answered = true;
	bufferevent_disable(cl->bev, EV_READ);
}

/* --wait: no time limit on this client now (the wait takes what it
 * takes); it is answered when what it waits for ends. */
static void start_waiting(struct control_client *cl, enum control_wait what)
{
	cl->wait = what;
	bufferevent_set_timeouts(cl->bev, NULL, NULL);
}

/* The answer that ends a wait; the write is timed again. */
static void finish_waiting(struct control_client *cl)
{
	struct timeval tv = { CONTROL_CLIENT_TIMEOUT_MS / 1000,
			      (CONTROL_CLIENT_TIMEOUT_MS % 1000) * 1000 };

	cl->wait = WAIT_NONE;
	bufferevent_set_timeouts(cl->bev, NULL, &tv);
}

static void answer_reload_outcome(struct control_client *cl, bool ok,
				  const char *why)
{
	if (ok)
		answer(cl, "reload done: every worker replaced\n");
	else
		answer(cl, CONTROL_ERROR_PREFIX "reload failed: %s\n", why);
}

/* pool_on_reload_done(): every client waiting for the reload hears how
 * it ended. */
static void on_reload_done(void *arg, bool ok, const char *why)
{
	struct control *ctl = arg;
	struct control_client *cl;

	for (cl = ctl->clients; cl; cl = cl->next)
		if (cl->wait == WAIT_RELOAD) {
			finish_waiting(cl);
			answer_reload_outcome(cl, ok, why);
		}
}

static void do_reload(struct control_client *cl, bool wait)
{
	struct pool *p = cl->ctl->pool;
	struct pool_reload_outcome last;
	int rc;

	control_log("reload asked by pid %d%s", (int)cl->pid,
		    wait ? ", waiting for its end" : "");
	/* Before pool_reload(): a reload that cannot even start ends in it. */
	if (wait)
		start_waiting(cl, WAIT_RELOAD);
	rc = pool_reload(p);
	if (rc < 0 && errno != EALREADY) {
		finish_waiting(cl);
		answer(cl, CONTROL_ERROR_PREFIX "no reload: cluster-run is "
		       "stopping\n");
	} else if (wait) {
		return;     /* on_reload_done() answers (maybe did already) */
	} else if (rc < 0) {
		answer(cl, "reload already running; one more pass queued\n");
	} else if (pool_reloading(p)) {
		answer(cl, "reload started\n");
	} else {
		pool_last_reload(p, &last);    /* it ended at once */
		answer_reload_outcome(cl, last.ok, last.why);
	}
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

static void do_stop(struct control_client *cl, bool wait)
{
	bool already = pool_stopping(cl->ctl->pool);

	if (!already)
		control_log("stop asked by pid %d%s", (int)cl->pid,
			    wait ? ", waiting for its end" : "");
	if (wait) {
		/* control_free() answers, once every worker is gone. */
		start_waiting(cl, WAIT_STOP);
		pool_stop(cl->ctl->pool, 0);
	} else if (already) {
		answer(cl, "already stopping\n");
	} else {
		answer(cl, "stopping every worker\n");
		cl->stop_after = true;
	}
}

/* The answer of a client waiting for the stop, as cluster-run exits. */
static void answer_stop_outcome(struct control_client *cl)
{
	int code = pool_exit_code(cl->ctl->pool);

	finish_waiting(cl);
	if (code == 0)
		answer(cl, "stopped: every worker is gone; cluster-run exits "
		       "with code 0\n");
	else
		answer(cl, CONTROL_ERROR_PREFIX "stopped: every worker is "
		       "gone; cluster-run exits with code %d\n", code);
}

#define COMMANDS "commands: status [--json], reload [--wait], scale N, " \
	"stop [--wait]"

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
	} else if (strcmp(cmd, "reload") == 0 && !extra &&
		   (!arg || strcmp(arg, "--wait") == 0)) {
		do_reload(cl, arg != NULL);
	} else if (strcmp(cmd, "scale") == 0 && arg && !extra) {
		do_scale(cl, arg);
	} else if (strcmp(cmd, "stop") == 0 && !extra &&
		   (!arg || strcmp(arg, "--wait") == 0)) {
		do_stop(cl, arg != NULL);
	} else {
		/* Quote at most a line's worth of what came. */
		answer(cl, CONTROL_USAGE_PREFIX "unknown request '%.64s%s'; "
		       COMMANDS "\n", cmd, arg ? " ..." : "");
	}
}

/* ---- clients ---- */

static void client_free(struct control_client *cl, bool closing)
{
	struct control *ctl = cl->ctl;
	bool stop = cl->stop_after;

	*cl->pprev = cl->next;
	if (cl->next)
		cl->next->pprev = cl->pprev;
	bufferevent_free(cl->bev);
	free(cl);
	if (closing)
		return;
	if (stop)
		pool_stop(ctl->pool, 0);
	accept_gate_client_gone(&ctl->gate);
}

static void client_on_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	if (cl->answered || cl->wait) {
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
	/* A client may shut its side down and wait for the answer. */
	if ((what & BEV_EVENT_EOF) && cl->wait) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	client_free(cl, false);
}

/* accept_gate's on_client: the gate counted it already. */
static void client_new(void *arg, int fd)
{
	struct control *ctl = arg;
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
		accept_gate_client_gone(&ctl->gate);
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
	bufferevent_setcb(cl->bev, client_on_read, client_on_write,
			  client_on_event, cl);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	/* Never more than a request and its newline in memory. */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, CONTROL_MAX_REQUEST + 2);
	bufferevent_enable(cl->bev, EV_READ);
}

static void control_gate_log(const char *line)
{
	control_log("%s", line);
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
		errno = EEXIST;
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
		errno = EADDRINUSE;
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
	int lock, rc, e;

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
	e = errno;
	if (rc == 0) {
		rc = listen_on(ctl, &sun, len, err, errlen);
		e = 0;
	}
	if (lock >= 0)
		close(lock);   /* and with it the flock */
	if (rc < 0)
		goto fail;
	ctl->gate.on_client = client_new;
	ctl->gate.log = control_gate_log;
	ctl->gate.arg = ctl;
	if (accept_gate_start(&ctl->gate, base, ctl->fd,
			      CONTROL_MAX_CLIENTS) < 0) {
		snprintf(err, errlen, "cannot watch %s: out of memory", path);
		goto fail;
	}
	pool_on_reload_done(p, on_reload_done, ctl);
	return ctl;
fail:
	if (ctl->fd >= 0) {
		remove_socket_file(ctl);
		close(ctl->fd);
	}
	free(ctl);
	errno = e;
	return NULL;
}

/* What the client's output holds, in one non-blocking send (here, at the
 * end, evbuffer_write() on a bufferevent's output sent nothing: strace). */
static void send_now(struct control_client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *data = len ? evbuffer_pullup(out, -1) : NULL;

	if (data)
		(void)!send(bufferevent_getfd(cl->bev), data, len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	pool_on_reload_done(ctl->pool, NULL, NULL);
	while (ctl->clients) {
		struct control_client *cl = ctl->clients;

		if (cl->wait == WAIT_STOP)
			answer_stop_outcome(cl);
		/* Best effort: an answer still queued ("stopping every
		 * worker", "stopped: ...") goes out if the socket takes it
		 * now. */
		if (cl->answered)
			send_now(cl);
		client_free(cl, true);
	}
	accept_gate_stop(&ctl->gate);
	remove_socket_file(ctl);
	close(ctl->fd);
	free(ctl);
}
