/*
 * fcntl()/fcntl64(): F_DUPFD and F_DUPFD_CLOEXEC make copies of listeners as
 * dup() does.  Everything else passes through; on a faux handle O_NONBLOCK
 * applies to this worker's faux fd only, which is what the server expects.
 *
 * Built without _FILE_OFFSET_BITS=64, under which <fcntl.h> renames fcntl to
 * fcntl64 and the two definitions below would collide.
 */
#undef _FILE_OFFSET_BITS
#include <fcntl.h>
#include <stdarg.h>

#include "real.h"
#include "shim.h"

static int shim_fcntl(int fd, int cmd, void *arg)
{
	int rc = real_fcntl(fd, cmd, arg);

	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) &&
	    shim_active())
		shim_fd_copy(fd, rc);
	return rc;
}

/* Every fcntl argument is an int or a pointer; glibc reads them as void *. */
int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(fd, cmd, arg);
}
