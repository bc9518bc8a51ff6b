/*
 * close_range()/closefrom(): servers that daemonize close every fd they
 * have, and glibc's closefrom() does it with the close_range system call,
 * which close() never sees.  The shim's own fds (the channel, shadow
 * listeners) are left out of the range: the ranges between them are closed
 * (or marked close-on-exec with CLOSE_RANGE_CLOEXEC), and the listeners in
 * the range forget their handles as close() makes them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static int range_call(unsigned first, unsigned last, int flags)
{
	return (int)real_syscall6(SYS_close_range, first, last, flags, 0, 0,
				  0);
}

int close_range(unsigned first, unsigned last, int flags)
{
	int high = shim_fd_high();
	unsigned lo = first, top, fd;

	/* A vfork child (CPython's subprocess closes every fd in it) closes
	 * its own fds, the shim's too, and touches nothing of its parent's
	 * (rule 5, shim.h). */
	if (!shim_active() || first > last || high < 0 ||
	    (unsigned)high < first || !shim_owns_memory())
		return range_call(first, last, flags);
	top = (unsigned)high < last ? (unsigned)high : last;
	for (fd = first; fd <= top; fd++) {
		if (!shim_fd_internal((int)fd, NULL))
			continue;
		if (fd > lo && range_call(lo, fd - 1, flags) < 0)
			return -1;
		lo = fd + 1;
	}
	/* lo > last when the range ends on one of the shim's fds */
	if (lo <= last && range_call(lo, last, flags) < 0)
		return -1;
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		for (fd = first; fd <= top; fd++)
			shim_fd_detach((int)fd);
	return 0;
}

/* Without close_range(2): every open fd >= lowfd, through close(), which
 * keeps the shim's own.  No allocation (this may run after fork()). */
static void close_each_open(int lowfd)
{
	char buf[4096];
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool closed_any = true;

	if (dir < 0)
		return;
	while (closed_any) {
		ssize_t n;

		closed_any = false;
		lseek(dir, 0, SEEK_SET);
		while ((n = getdents64(dir, buf, sizeof(buf))) > 0) {
			for (ssize_t off = 0; off < n;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				int fd = atoi(d->d_name);

				off += d->d_reclen;
				if (d->d_name[0] < '0' || d->d_name[0] > '9' ||
				    fd < lowfd || fd == dir)
					continue;
				if (fd == shim_channel_fd ||
				    shim_fd_internal(fd, NULL))
					continue;
				close(fd);
				closed_any = true;
			}
		}
	}
	real_close(dir);
}

void closefrom(int lowfd)
{
	int saved = errno;

	if (lowfd < 0)
		lowfd = 0;
	if (close_range((unsigned)lowfd, ~0U, 0) < 0 && errno == ENOSYS)
		close_each_open(lowfd);
	errno = saved;
}
