/*
 * close(): a listener's last fd in the worker's main process tells the
 * supervisor to stop sending it connections.  The shim's own fds (the
 * channel, the copies of real listeners kept for faux handles) cannot be
 * closed by the server: daemonizing servers close every fd they find, and
 * close() of them reports success and leaves them open.
 */
#include <unistd.h>

#include "real.h"
#include "shim.h"

int close(int fd)
{
	if (shim_active() && (!shim_fd_closing(fd) || fd == shim_channel_fd))
		return 0;
	return real_close(fd);
}
