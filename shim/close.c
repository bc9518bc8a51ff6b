/*
 * close(): a listener's last fd in the worker's main process tells the
 * supervisor to stop sending it connections.  The shim's own fds (the
 * channel, the copies of real listeners kept for faux handles) cannot be
 * closed by the server: daemonizing servers close every fd they find, and
 * close() of them reports success and leaves them open.  The supervisor
 * hears of a closed listener only once the fd is closed here: told
 * earlier, it could let go of the handle while this process still held the
 * socket, and another worker's bind of the address would fail.
 */
#include <errno.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

int close(int fd)
{
	unsigned slot;
	int taken, rc, saved;

	if (!shim_active())
		return real_close(fd);
	taken = shim_fd_take(fd, &slot);
	/* a vfork child closes its own copy of the channel for real */
	if (taken < 0 || (fd == shim_channel_fd && shim_owns_memory()))
		return 0;
	rc = real_close(fd);
	if (!taken)
		shim_accept_forget(fd); /* one load unless stop-accepting ran */
	if (taken) {
		saved = errno;
		shim_handle_unref(slot);
		errno = saved;
	}
	return rc;
}
