/*
 * log_line.h - one diagnostic line, to the embedder's callback or to
 * cluster-run's stderr through its non-blocking sink (output_prefix.h):
 * while the loop runs (the sink attached) a stuck stderr never holds it;
 * lines are dropped and counted instead, and a note says how many.
 */
#ifndef LOG_LINE_H
#define LOG_LINE_H

#include <stdarg.h>

struct event_base;

typedef void (*log_line_fn)(void *arg, const char *line);

/* Formats the line; without a callback writes "cluster-run: LINE\n". */
void log_vline(log_line_fn fn, void *arg, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* "cluster-run: LINE\n" on stderr (through the sink). */
void log_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* While base runs, stdout's and stderr's sinks never wait (attach), and
 * after it what they queued goes out, within their budget (detach). */
void log_sinks_attach(struct event_base *base);
void log_sinks_detach(void);

#endif
