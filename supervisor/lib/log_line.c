#include "log_line.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "output_prefix.h"

/* Longer lines are cut here (with their newline kept). */
#define LOG_LINE_MAX 1024

static void log_write(const char *fmt, va_list ap)
{
	static const char head[] = "cluster-run: ";
	struct output_sink *s = output_sink_stdio(STDERR_FILENO);
	char line[LOG_LINE_MAX];
	size_t len = sizeof(head) - 1;
	int n;

	memcpy(line, head, len);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	if (n < 0)
		n = 0;
	len += (size_t)n < sizeof(line) - len - 1 ? (size_t)n
						  : sizeof(line) - len - 2;
	line[len++] = '\n';
	output_sink_write(s, line, len);
	output_sink_flush(s);
}

void log_vline(log_line_fn fn, void *arg, const char *fmt, va_list ap)
{
	char line[512];

	if (!fn) {
		log_write(fmt, ap);
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	fn(arg, line);
}

void log_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(fmt, ap);
	va_end(ap);
}

void log_sinks_attach(struct event_base *base)
{
	output_sink_attach(output_sink_stdio(STDOUT_FILENO), base);
	output_sink_attach(output_sink_stdio(STDERR_FILENO), base);
}

void log_sinks_detach(void)
{
	output_sink_detach(output_sink_stdio(STDOUT_FILENO));
	output_sink_detach(output_sink_stdio(STDERR_FILENO));
}
