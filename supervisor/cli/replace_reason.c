/* replace_reason.c - see replace_reason.h. */
#include "replace_reason.h"

const char *replace_reason_name(enum replace_reason why)
{
	static const char *const names[REPLACE_REASON_COUNT] = {
		[REPLACE_NONE] = "none",       [REPLACE_CRASH] = "crash",
		[REPLACE_HANG] = "hang",       [REPLACE_MEMORY] = "memory",
		[REPLACE_CONNS] = "conns",     [REPLACE_LIFETIME] = "lifetime",
		[REPLACE_HEALTH] = "health",   [REPLACE_RELOAD] = "reload",
	};

	return (unsigned)why < REPLACE_REASON_COUNT ? names[why] : "?";
}
