/*
 * ioctl(FIONBIO): how nginx makes its listeners non-blocking.  On a listener
 * waiting for listen() it is the same wish as F_SETFL O_NONBLOCK (see
 * nonblock.c); everything else passes through.
 */
#include <stdarg.h>
#include <sys/ioctl.h>

#include "real.h"
#include "shim.h"

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (request == FIONBIO && arg && shim_active() &&
	    shim_pending_set_nonblock(fd, *(const int *)arg != 0))
		return 0;
	return real_ioctl(fd, request, arg);
}
