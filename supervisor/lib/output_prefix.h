/*
 * output_prefix.h - `cluster-run --prefix`: every line a worker writes on
 * its stdout or stderr comes out on cluster-run's own stdout or stderr as
 * "[ID] line", whole: lines of two workers are never split or merged.
 *
 * Three layers:
 *   line_prefixer  the pure core: bytes in, complete prefixed lines out
 *                  (unit-tested in tests/unit/test_output_prefix.c);
 *   output_sink    cluster-run's stdout or stderr, written without ever
 *                  holding the event loop for long (see output_sink_write);
 *   output_pipe    one worker's stdout or stderr pipe, read by the event
 *                  loop without blocking and fed through a line_prefixer
 *                  into a sink.
 */
#ifndef OUTPUT_PREFIX_H
#define OUTPUT_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

struct event;
struct event_base;

/* A line longer than this (without its newline) goes out in pieces of
 * this size, each prefixed and ended with a newline; each piece but the
 * last ends with " [cluster-run: line cut, continues]" before it. */
#define OUTPUT_PREFIX_MAX_LINE (64 * 1024)

/* How long one write to a stuck stdout/stderr may hold the loop. */
#define OUTPUT_SINK_BUDGET_MS 200
/* Lines of one read of a worker's pipe go out together, up to this; and
 * what an attached sink keeps queued for a reader that is behind (room for
 * a whole line of OUTPUT_PREFIX_MAX_LINE and more). */
#define OUTPUT_SINK_BUFFER (128 * 1024)

/* ---- the pure core ---- */

/* Gets one whole line: the prefix, the text, and '\n'. */
typedef void (*line_emit_fn)(void *arg, const char *line, size_t len);

struct line_prefixer {
	char *buf;          /* the prefix, then the unfinished line */
	size_t cap;
	size_t prefix_len;
	size_t len;         /* bytes in buf, prefix included */
	size_t max_line;
};

/* prefix ("[3] "); max_line >= 1 (OUTPUT_PREFIX_MAX_LINE).  0, or -1
 * (ENOMEM, EINVAL). */
int line_prefixer_init(struct line_prefixer *lp, const char *prefix,
		       size_t max_line);
/* Each complete line of data (with what came before) goes to emit; the
 * rest waits for its newline, or for max_line bytes. */
void line_prefixer_feed(struct line_prefixer *lp, const char *data, size_t n,
			line_emit_fn emit, void *arg);
/* At EOF: an unfinished line goes to emit with a '\n' added. */
void line_prefixer_finish(struct line_prefixer *lp, line_emit_fn emit,
			  void *arg);
/* Bytes of an unfinished line waiting for its newline. */
size_t line_prefixer_pending(const struct line_prefixer *lp);
void line_prefixer_free(struct line_prefixer *lp);

/* ---- cluster-run's stdout and stderr ---- */

struct output_sink {
	int fd;
	int budget_ms;
	bool stuck;             /* a write timed out: no more waiting */
	bool mid_line;          /* a line was cut short: end it first */
	unsigned long dropped;  /* lines lost since the last note */
	unsigned long dropped_total;
	char *buf;              /* lines waiting for output_sink_flush() */
	size_t len, cap;        /* cap 0: written at once */
	struct event *ev;       /* attached: writes the queue when writable */
	bool attached;
};

/* Unbuffered until output_sink_set_buffer(). */
void output_sink_init(struct output_sink *s, int fd, int budget_ms);
void output_sink_set_buffer(struct output_sink *s, char *buf, size_t cap);
/*
 * Writes one line (ending in '\n'), or queues it in the buffer (which
 * goes out when full).  0, or -1 when lines were dropped (and counted).
 * See output_prefix.c for why a stuck reader loses lines rather than
 * stalling the supervisor.
 */
int output_sink_write(struct output_sink *s, const char *line, size_t len);
/* Writes the lines queued; 0, or -1 as output_sink_write(). */
int output_sink_flush(struct output_sink *s);
/*
 * From now on (while base runs) the sink never waits at all: what the fd
 * does not take at once stays queued in the buffer (which must be set) and
 * goes out when the loop sees the fd writable; a line that finds the queue
 * full, and every line after it until the queue has drained, is dropped
 * and counted, and the first line out after that is a note saying how
 * many.  For cluster-run's own lines and its workers' (--prefix) while
 * the loop serves.  0, or -1 without a buffer.
 */
int output_sink_attach(struct output_sink *s, struct event_base *base);
/* Back to the budget (the loop is over): the queue goes out, waiting
 * budget_ms at most.  Attached or not, fine. */
void output_sink_detach(struct output_sink *s);
/* The process's own stdout (fd 1) or stderr (fd 2), budget
 * OUTPUT_SINK_BUDGET_MS, buffer OUTPUT_SINK_BUFFER: shared by every
 * worker; flushed after each read of a worker's pipe. */
struct output_sink *output_sink_stdio(int fd);

/* ---- a worker's pipe ---- */

struct output_pipe;

/* Reads fd (the read end of a worker's pipe; made non-blocking, owned from
 * now on) on base, prefixing lines with "[id] " into sink.  NULL with errno
 * set; fd is closed then too. */
struct output_pipe *output_pipe_new(struct event_base *base, int fd,
				    unsigned id, struct output_sink *sink);
/* Reads what is left in the pipe (without waiting), flushes an unfinished
 * line, closes the pipe and frees.  NULL is fine. */
void output_pipe_free(struct output_pipe *op);

#endif
