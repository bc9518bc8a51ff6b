/* status_format.c - see status_format.h. */
#include "status_format.h"

#include <stdio.h>

void status_format_uptime(long long ms, char *buf, size_t cap)
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

void status_format_bytes(unsigned long long bytes, char *buf, size_t cap)
{
	static const char unit[] = "KMGT";
	double v = (double)bytes / 1024;
	int u = 0;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, v < 100 && u > 0 ? "%.1f%c" : "%.0f%c", v, unit[u]);
}
