/*
 * metrics_http.c - the smallest HTTP/1.x server that Prometheus needs, in
 * the supervisor's libevent loop.
 *
 * Each client is a bufferevent on a non-blocking socket: it sends one
 * request (GET or HEAD, at most METRICS_MAX_REQUEST bytes of request line
 * and headers), the answer is rendered into its output buffer at once and
 * written as the socket takes it (EV_WRITE, never a blocking write), and the
 * connection is closed ("Connection: close").  A client that sends nothing,
 * or does not read its answer, is closed after METRICS_CLIENT_TIMEOUT_MS.
 * At most METRICS_MAX_CLIENTS are served at once: then accepting pauses and
 * the rest wait in the kernel's backlog, so no number of clients costs the
 * loop more than that many buffers, nor holds up the workers' supervision.
 * libevent's evhttp (2.1) has no bound on its connections: hence this.
 */
#include "metrics_http.h"
#include "accept_gate.h"
#include "listen_policy.h"
#include "log_line.h"
#include "metrics_text.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 64

struct metrics_client {
	struct metrics_server *m;
	struct bufferevent *bev;
	struct metrics_client *next, **pprev;
	size_t request_bytes;   /* of the request read so far */
	bool have_line;         /* the request line came */
	bool head;              /* HEAD: headers only */
	char path[64];          /* the target, cut to fit (routing only) */
	int status;             /* set once the line is parsed: 200, 4xx */
	bool answered;
};

struct metrics_server {
	struct event_base *base;
	struct pool *pool;
	int fd;
	struct accept_gate gate;
	struct metrics_client *clients;
};

static void metrics_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "cluster-run: metrics: ..." on stderr. */
static void metrics_log(const char *fmt, ...)
{
	char line[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_printf("metrics: %s", line); /* never waits for stderr */
}

/* ---- answers ---- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	default: return "Internal Server Error";
	}
}

/* Status line, headers and (not for HEAD) body; then we only write. */
static void answer(struct metrics_client *cl, int status)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	struct evbuffer *body = evbuffer_new();
	const char *type = "text/plain; charset=utf-8";

	if (body && status == 200) {
		if (metrics_render(body, cl->m->pool) == 0)
			type = METRICS_CONTENT_TYPE;
		else
			status = 500;
	}
	if (body && status != 200) {
		evbuffer_drain(body, evbuffer_get_length(body));
		evbuffer_add_printf(body, "%d %s%s\n", status, reason(status),
				    status == 404 ? ": the metrics are at "
				    "/metrics" : "");
	}
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
			    status, reason(status), type,
			    body ? evbuffer_get_length(body) : 0,
			    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (body && !cl->head)
		evbuffer_add_buffer(out, body);
	if (body)
		evbuffer_free(body);
	cl->answered = true;
}

/* "GET /metrics HTTP/1.1": what to answer, kept until the headers end. */
static void parse_request_line(struct metrics_client *cl, const char *line)
{
	char method[16], target[256], version[16];
	size_t plen;

	cl->have_line = true;
	if (sscanf(line, "%15s %255s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/') {
		cl->status = 400;
		return;
	}
	cl->head = strcmp(method, "HEAD") == 0;
	if (!cl->head && strcmp(method, "GET") != 0) {
		cl->status = 405;
		return;
	}
	plen = strcspn(target, "?");
	cl->status = plen == 8 && strncmp(target, "/metrics", 8) == 0 ? 200
									: 404;
}

/* ---- clients ---- */

static void client_free(struct metrics_client *cl, bool closing)
{
	struct metrics_server *m = cl->m;

	*cl->pprev = cl->next;
	if (cl->next)
		cl->next->pprev = cl->pprev;
	bufferevent_free(cl->bev);
	free(cl);
	if (!closing)
		accept_gate_client_gone(&m->gate);
}

static void client_on_read(struct bufferevent *bev, void *arg)
{
	struct metrics_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line;

	while (!cl->answered &&
	       (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		cl->request_bytes += len + 2;
		if (cl->request_bytes > METRICS_MAX_REQUEST)
			answer(cl, 431);
		else if (!cl->have_line)
			parse_request_line(cl, line);
		else if (len == 0) /* the end of the headers */
			answer(cl, cl->status);
		free(line);
	}
	if (!cl->answered &&
	    cl->request_bytes + evbuffer_get_length(in) > METRICS_MAX_REQUEST)
		answer(cl, 431);
	/* What comes after the request is read and dropped: the answer is
	 * all there is. */
	if (cl->answered)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void client_on_write(struct bufferevent *bev, void *arg)
{
	struct metrics_client *cl = arg;

	if (cl->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(cl, false);
}

/* EOF, an error or a timeout: done with it, unless it only shut its
 * side down after its request ("printf 'GET ...' | socat") and its answer
 * is still going out. */
static void client_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct metrics_client *cl = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_TIMEOUT) &&
	    cl->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	client_free(cl, false);
}

/* accept_gate's on_client: the gate counted it already. */
static void client_new(void *arg, int fd)
{
	struct metrics_server *m = arg;
	struct timeval tv = { METRICS_CLIENT_TIMEOUT_MS / 1000,
			      (METRICS_CLIENT_TIMEOUT_MS % 1000) * 1000 };
	struct metrics_client *cl = calloc(1, sizeof(*cl));

	if (!cl || !(cl->bev = bufferevent_socket_new(m->base, fd,
						      BEV_OPT_CLOSE_ON_FREE))) {
		metrics_log("cannot serve a client: out of memory");
		free(cl);
		close(fd);
		accept_gate_client_gone(&m->gate);
		return;
	}
	cl->m = m;
	cl->next = m->clients;
	if (cl->next)
		cl->next->pprev = &cl->next;
	cl->pprev = &m->clients;
	m->clients = cl;
	bufferevent_setcb(cl->bev, client_on_read, client_on_write,
			  client_on_event, cl);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	bufferevent_setwatermark(cl->bev, EV_READ, 0, METRICS_MAX_REQUEST + 2);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

static void server_gate_log(const char *line)
{
	metrics_log("%s", line);
}

/* ---- the listener ---- */

static int server_listen(struct metrics_server *m,
			 const struct listen_addr *addr, char *err,
			 size_t errlen)
{
	int one = 1;

	m->fd = socket(addr->ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
	    listen(m->fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

struct metrics_server *metrics_server_new(struct event_base *base,
					  struct pool *p,
					  const struct listen_addr *addr,
					  char *err, size_t errlen)
{
	struct metrics_server *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->base = base;
	m->pool = p;
	m->fd = -1;
	if (server_listen(m, addr, err, errlen) < 0)
		goto fail;
	m->gate.on_client = client_new;
	m->gate.log = server_gate_log;
	m->gate.arg = m;
	if (accept_gate_start(&m->gate, base, m->fd, METRICS_MAX_CLIENTS) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return m;
fail:
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return NULL;
}

void metrics_server_free(struct metrics_server *m)
{
	if (!m)
		return;
	while (m->clients)
		client_free(m->clients, true);
	accept_gate_stop(&m->gate);
	close(m->fd);
	free(m);
}
