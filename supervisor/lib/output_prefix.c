/*
 * output_prefix.c - see output_prefix.h.
 *
 * Why a stuck reader loses lines instead of stalling cluster-run: the
 * supervisor is one event loop that also accepts and deals connections
 * (rr), answers workers' binds and the control socket.  Blocking on its own
 * stdout (a `| less` nobody scrolls, a full pipe to a logger that hung)
 * would stop all of that.  And O_NONBLOCK cannot simply be set on fds 1 and
 * 2: it would be set on a file description shared with the shell, the
 * terminal or whoever else writes there, and epoll refuses regular files.
 * So each write is a bounded retry:
 *   - the lines of one read of a worker's pipe are written together
 *     (OUTPUT_SINK_BUFFER), not with a system call or two each;
 *   - they go out in chunks of at most PIPE_BUF bytes, each after poll()
 *     says POLLOUT; a pipe that is not full takes PIPE_BUF bytes without
 *     blocking, and a tty or socket with room takes them at once;
 *   - the first stall waits at most budget_ms (OUTPUT_SINK_BUDGET_MS) in
 *     all; the lines still not out are dropped and counted, and
 *     the sink is marked stuck: later lines are written only if the fd is
 *     writable right now (poll with no wait), so a stuck reader costs the
 *     loop budget_ms once per stall, not per line;
 *   - the first line that goes out again is preceded by one note,
 *     "cluster-run: N lines of worker output dropped: ...", and a line
 *     that was cut short is ended with a newline first, so the lines that
 *     do come out are never merged.
 * The workers never block on their pipes either: the supervisor keeps
 * reading them while it drops.
 *
 * While the event loop runs, the sink is attached (output_sink_attach) and
 * does better than a budget: it never waits at all.  What the fd takes now
 * (poll() with no wait, then PIPE_BUF bytes at a time, as above) goes; the
 * rest stays queued in the buffer, and an EV_WRITE event on the fd writes
 * it when there is room.  A line that finds the queue full is dropped, and
 * so is every line after it until the queue has drained (so nothing comes
 * out of order), and the note that says how many goes first after that.
 * cluster-run's own lines (log_line.c) go through the same sink as its
 * workers' on stderr: lines of both stay whole and in order.  A regular
 * file or /dev/null cannot be watched by epoll; it always takes what is
 * written, and the next flush retries anything left.
 */
#include "output_prefix.h"
#include "monotonic.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_MAX 32
/* Ends each piece of a line longer than max_line but its last, so that a
 * reader sees the line was cut (and where it goes on) rather than taking
 * the pieces for lines of their own. */
#define CUT_NOTE " [cluster-run: line cut, continues]"
#define CUT_NOTE_LEN (sizeof(CUT_NOTE) - 1)
#define FIRST_CAP 256
#define READ_CHUNK (64 * 1024)
/* What output_pipe_free() reads at most from a pipe other processes may
 * still be writing to (a worker's children). */
#define DRAIN_MAX (1024 * 1024)

/* ---- the pure core ---- */

int line_prefixer_init(struct line_prefixer *lp, const char *prefix,
		       size_t max_line)
{
	size_t plen = strlen(prefix);

	memset(lp, 0, sizeof(*lp));
	if (max_line == 0 || plen > PREFIX_MAX) {
		errno = EINVAL;
		return -1;
	}
	lp->cap = plen + FIRST_CAP;
	lp->buf = malloc(lp->cap);
	if (!lp->buf)
		return -1;
	memcpy(lp->buf, prefix, plen);
	lp->prefix_len = lp->len = plen;
	lp->max_line = max_line;
	return 0;
}

size_t line_prefixer_pending(const struct line_prefixer *lp)
{
	return lp->len - lp->prefix_len;
}

/* Room for `more` bytes of text, the cut note and a newline; false when memory ran out
 * (the caller then sends what it has as a piece). */
static bool reserve(struct line_prefixer *lp, size_t more)
{
	size_t need = lp->len + more + CUT_NOTE_LEN + 1, cap = lp->cap;
	char *buf;

	if (need <= cap)
		return true;
	while (cap < need)
		cap *= 2;
	if (cap > lp->prefix_len + lp->max_line + CUT_NOTE_LEN + 1)
		cap = lp->prefix_len + lp->max_line + CUT_NOTE_LEN + 1;
	if (cap < need || !(buf = realloc(lp->buf, cap)))
		return false;
	lp->buf = buf;
	lp->cap = cap;
	return true;
}

/* Sends the prefix and the text held, ended with a '\n' (reserve() kept
 * room for it). */
static void emit_line(struct line_prefixer *lp, line_emit_fn emit, void *arg)
{
	lp->buf[lp->len++] = '\n';
	emit(arg, lp->buf, lp->len);
	lp->len = lp->prefix_len;
}

void line_prefixer_feed(struct line_prefixer *lp, const char *data, size_t n,
			line_emit_fn emit, void *arg)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t text = nl ? (size_t)(nl - data) : n;
		size_t room = lp->max_line - line_prefixer_pending(lp);
		bool piece = text > room; /* a very long line: out goes a piece */

		if (piece)
			text = room;
		if (!reserve(lp, text)) { /* out of memory: a piece of what fits */
			text = lp->cap - lp->len - 1;
			text = text > CUT_NOTE_LEN ? text - CUT_NOTE_LEN : text;
			piece = true;
		}
		memcpy(lp->buf + lp->len, data, text);
		lp->len += text;
		data += text;
		n -= text;
		if (piece) {
			if (lp->cap - lp->len > CUT_NOTE_LEN) { /* reserve()d */
				memcpy(lp->buf + lp->len, CUT_NOTE, CUT_NOTE_LEN);
				lp->len += CUT_NOTE_LEN;
			}
			emit_line(lp, emit, arg);
		} else if (nl) {
			data++;
			n--;
			emit_line(lp, emit, arg);
		}
	}
}

void line_prefixer_finish(struct line_prefixer *lp, line_emit_fn emit,
			  void *arg)
{
	if (line_prefixer_pending(lp) > 0)
		emit_line(lp, emit, arg);
}

void line_prefixer_free(struct line_prefixer *lp)
{
	free(lp->buf);
	lp->buf = NULL;
	lp->cap = lp->len = lp->prefix_len = 0;
}

/* ---- cluster-run's stdout and stderr ---- */

void output_sink_init(struct output_sink *s, int fd, int budget_ms)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->budget_ms = budget_ms;
}

void output_sink_set_buffer(struct output_sink *s, char *buf, size_t cap)
{
	s->buf = buf;
	s->cap = cap;
	s->len = 0;
}

struct output_sink *output_sink_stdio(int fd)
{
	static struct output_sink sinks[2];
	static char bufs[2][OUTPUT_SINK_BUFFER];
	static bool ready[2];
	int i = fd == STDERR_FILENO;

	if (!ready[i]) {
		output_sink_init(&sinks[i], i ? STDERR_FILENO : STDOUT_FILENO,
				 OUTPUT_SINK_BUDGET_MS);
		output_sink_set_buffer(&sinks[i], bufs[i], sizeof(bufs[i]));
		ready[i] = true;
	}
	return &sinks[i];
}

/* Writes data within wait_ms; *done: how much went out.  0 when all. */
static int sink_put(struct output_sink *s, const char *data, size_t len,
		    int wait_ms, size_t *done)
{
	long long deadline = monotonic_ms() + wait_ms;
	size_t off = 0;

	while (off < len) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
		long long left = deadline - monotonic_ms();
		size_t chunk = len - off < PIPE_BUF ? len - off : PIPE_BUF;
		ssize_t n;
		int r;

		r = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || !(pfd.revents & POLLOUT))
			break; /* no room in time, or no reader (POLLERR) */
		n = write(s->fd, data + off, chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN) &&
		    deadline > monotonic_ms())
			continue;
		if (n <= 0)
			break; /* EPIPE, EBADF, EAGAIN past the deadline */
		off += (size_t)n;
	}
	*done = off;
	return off == len ? 0 : -1;
}

/* The lines in lost[0..len) did not go out (cut: the first of them went
 * out in part). */
static int sink_drop(struct output_sink *s, const char *lost, size_t len,
		     bool cut)
{
	unsigned long n = 0;
	const char *p = lost, *end = lost + len;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	if (cut)
		s->mid_line = true;
	s->stuck = true;
	s->dropped += n;
	s->dropped_total += n;
	return -1;
}

/* Writes whole lines now: after a cut line its end, after lost lines the
 * note that says how many. */
static int sink_emit(struct output_sink *s, const char *data, size_t len)
{
	int wait_ms = s->stuck ? 0 : s->budget_ms;
	size_t done = 0;
	char note[200];
	int n;

	if (s->mid_line) {
		if (sink_put(s, "\n", 1, wait_ms, &done) < 0)
			return sink_drop(s, data, len, false);
		s->mid_line = false;
	}
	if (s->dropped) {
		n = snprintf(note, sizeof(note), "cluster-run: %lu line%s of "
			     "worker output dropped: nothing read cluster-run's "
			     "%s for %d ms\n", s->dropped,
			     s->dropped == 1 ? "" : "s",
			     s->fd == STDERR_FILENO ? "stderr" : "stdout",
			     s->budget_ms);
		if (sink_put(s, note, (size_t)n, wait_ms, &done) < 0)
			return sink_drop(s, data, len, done > 0);
		s->dropped = 0;
	}
	if (sink_put(s, data, len, wait_ms, &done) < 0)
		return sink_drop(s, data + done, len - done, done > 0);
	s->stuck = false;
	return 0;
}

/* ---- attached: never waiting ---- */

/* What the fd takes now from the front of the queue, without waiting.
 * false when it will take nothing (no reader, a bad fd): then nothing
 * watches it, or the loop would spin on its error. */
static bool sink_try(struct output_sink *s)
{
	size_t off = 0;
	bool open = true;

	while (off < s->len) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
		size_t chunk = s->len - off < PIPE_BUF ? s->len - off : PIPE_BUF;
		ssize_t n;

		if (poll(&pfd, 1, 0) <= 0)
			break; /* full now (or EINTR: the next flush retries) */
		if (pfd.revents & (POLLERR | POLLNVAL)) {
			open = false;
			break;
		}
		if (!(pfd.revents & POLLOUT))
			break;
		n = write(s->fd, s->buf + off, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			open = false;
			break;
		}
		off += (size_t)n;
	}
	memmove(s->buf, s->buf + off, s->len - off);
	s->len -= off;
	return open;
}

/* The note for lines an attached sink dropped, queued (the queue is
 * empty). */
static void sink_queue_note(struct output_sink *s)
{
	int n = snprintf(s->buf, s->cap, "cluster-run: %lu line%s of output "
			 "dropped: cluster-run's %s was full (nothing read it "
			 "fast enough)\n", s->dropped, s->dropped == 1 ? "" : "s",
			 s->fd == STDERR_FILENO ? "stderr" : "stdout");

	s->len = n > 0 && (size_t)n < s->cap ? (size_t)n : 0;
	s->dropped = 0;
}

/* Writes what goes now; the rest waits for the fd to be writable. */
static int sink_push(struct output_sink *s)
{
	bool open = sink_try(s);

	if (open && s->len == 0 && s->dropped) {
		sink_queue_note(s);
		open = sink_try(s);
	}
	if (open && s->len > 0 && s->ev)
		event_add(s->ev, NULL);
	return s->dropped ? -1 : 0;
}

static void sink_on_writable(evutil_socket_t fd, short what, void *arg)
{
	sink_push(arg);
}

static int sink_queue(struct output_sink *s, const char *line, size_t len)
{
	if (!s->dropped && len > s->cap - s->len)
		sink_try(s); /* room, perhaps */
	if (s->dropped || len > s->cap - s->len)
		return sink_drop(s, line, len, false);
	memcpy(s->buf + s->len, line, len);
	s->len += len;
	return 0;
}

int output_sink_attach(struct output_sink *s, struct event_base *base)
{
	if (s->cap == 0)
		return -1;
	if (!s->ev)
		s->ev = event_new(base, s->fd, EV_WRITE, sink_on_writable, s);
	s->attached = true;
	return 0;
}

void output_sink_detach(struct output_sink *s)
{
	size_t done = 0;

	if (!s->attached)
		return;
	if (s->ev)
		event_free(s->ev);
	s->ev = NULL;
	s->attached = false;
	s->stuck = false;
	if (s->len > 0 && sink_put(s, s->buf, s->len, s->budget_ms, &done) < 0)
		sink_drop(s, s->buf + done, s->len - done, done > 0);
	s->len = 0;
	if (s->dropped && !s->stuck) { /* the last of the queue went out */
		sink_queue_note(s);
		sink_put(s, s->buf, s->len, s->budget_ms, &done);
		s->len = 0;
	}
}

/* ---- either way ---- */

int output_sink_write(struct output_sink *s, const char *line, size_t len)
{
	int rc = 0;

	if (s->attached)
		return sink_queue(s, line, len);
	if (s->cap == 0)
		return sink_emit(s, line, len);
	if (len > s->cap - s->len)
		rc = output_sink_flush(s);
	if (len > s->cap)
		return sink_emit(s, line, len) < 0 ? -1 : rc;
	memcpy(s->buf + s->len, line, len);
	s->len += len;
	return rc;
}

int output_sink_flush(struct output_sink *s)
{
	size_t len = s->len;

	if (s->attached)
		return sink_push(s);
	if (len == 0)
		return 0;
	s->len = 0;
	return sink_emit(s, s->buf, len);
}

/* ---- a worker's pipe ---- */

struct output_pipe {
	int fd;                 /* -1 after EOF */
	struct event *ev;
	struct line_prefixer lp;
	struct output_sink *sink;
};

static void pipe_emit(void *arg, const char *line, size_t len)
{
	struct output_pipe *op = arg;

	output_sink_write(op->sink, line, len);
}

static void pipe_eof(struct output_pipe *op)
{
	line_prefixer_finish(&op->lp, pipe_emit, op);
	event_del(op->ev);
	close(op->fd);
	op->fd = -1;
}

/* One read; what it got, 0 at EOF (the pipe is then closed), -1 when
 * nothing is there now. */
static ssize_t pipe_read(struct output_pipe *op)
{
	static char buf[READ_CHUNK];
	ssize_t n;

	if (op->fd < 0)
		return 0;
	do
		n = read(op->fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		line_prefixer_feed(&op->lp, buf, (size_t)n, pipe_emit, op);
		return n;
	}
	if (n < 0 && errno == EAGAIN)
		return -1;
	pipe_eof(op); /* EOF: the worker and its children are gone */
	return 0;
}

/* One read per wakeup: a chatty worker does not starve the loop.  Its
 * lines go out in one write (PIPE_BUF bytes at a time), not one each. */
static void pipe_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct output_pipe *op = arg;

	pipe_read(op);
	output_sink_flush(op->sink);
}

struct output_pipe *output_pipe_new(struct event_base *base, int fd,
				    unsigned id, struct output_sink *sink)
{
	struct output_pipe *op = calloc(1, sizeof(*op));
	char prefix[PREFIX_MAX];
	int err;

	snprintf(prefix, sizeof(prefix), "[%u] ", id);
	if (!op)
		goto fail;
	op->fd = fd;
	op->sink = sink;
	if (line_prefixer_init(&op->lp, prefix, OUTPUT_PREFIX_MAX_LINE) < 0)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	op->ev = event_new(base, fd, EV_READ | EV_PERSIST, pipe_on_read, op);
	if (!op->ev || event_add(op->ev, NULL) < 0)
		goto fail;
	return op;
fail:
	err = errno ? errno : ENOMEM;
	if (op) {
		if (op->ev)
			event_free(op->ev);
		line_prefixer_free(&op->lp);
		free(op);
	}
	close(fd);
	errno = err;
	return NULL;
}

void output_pipe_free(struct output_pipe *op)
{
	size_t total = 0;
	ssize_t n;

	if (!op)
		return;
	while (total < DRAIN_MAX && (n = pipe_read(op)) > 0)
		total += (size_t)n;
	if (op->fd >= 0) { /* still open (children of the worker): let go */
		line_prefixer_finish(&op->lp, pipe_emit, op);
		close(op->fd);
	}
	output_sink_flush(op->sink);
	event_free(op->ev);
	line_prefixer_free(&op->lp);
	free(op);
}
