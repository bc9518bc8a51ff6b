/*
 * close(): a listener's last fd in the worker's main process tells the
 * supervisor to stop sending it connections.  The channel itself cannot be
 * closed by the server (daemonizing servers close every fd they find).
 */
#include <unistd.h>

#include "real.h"
#include "shim.h"

int close(int fd)
{
	if (shim_active()) {
		if (fd == shim_channel_fd)
			return 0;
		shim_fd_detach(fd);
	}
	return real_close(fd);
}
