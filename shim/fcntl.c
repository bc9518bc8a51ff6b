/*
 * fcntl()/fcntl64(): F_DUPFD and F_DUPFD_CLOEXEC make copies of listeners as
 * dup() does.  O_NONBLOCK on a listener waiting for listen() is the server's
 * wish, kept for the fd it will get (see shim_pending_set_nonblock).  On a
 * faux handle O_NONBLOCK applies to this worker's faux fd only, which is what
 * the server expects.  Everything else passes through.
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
	int rc;

	if (cmd == F_SETFL && shim_active() &&
	    shim_pending_set_nonblock(fd, (long)arg & O_NONBLOCK))
		return 0;
	rc = real_fcntl(fd, cmd, arg);
	if (rc >= 0 && cmd == F_GETFL && shim_active())
		return shim_pending_getfl(fd, rc);

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
