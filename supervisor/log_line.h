/* log_line.h - one diagnostic line, to the embedder's callback or stderr. */
#ifndef LOG_LINE_H
#define LOG_LINE_H

#include <stdarg.h>

typedef void (*log_line_fn)(void *arg, const char *line);

/* Formats the line; without a callback prints "cluster-run: LINE\n". */
void log_vline(log_line_fn fn, void *arg, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
