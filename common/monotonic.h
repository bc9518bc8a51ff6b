/* monotonic.h - the one clock the supervisor's timers and deadlines read. */
#ifndef MONOTONIC_H
#define MONOTONIC_H

#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: for deadlines, ages and paces, never
 * moved by a change of the wall clock. */
static inline long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
