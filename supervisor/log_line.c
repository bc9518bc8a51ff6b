#include "log_line.h"

#include <stdio.h>

void log_vline(log_line_fn fn, void *arg, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (fn)
		fn(arg, line);
	else
		fprintf(stderr, "cluster-run: %s\n", line);
}
