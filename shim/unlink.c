/*
 * unlink() of a unix socket path: servers remove a stale socket file before
 * bind().  When the path belongs to a live cluster listener (bound by the
 * supervisor for an earlier worker), removing it would cut every worker off,
 * so the shim reports success and leaves it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static bool is_live_handle_path(const char *path)
{
	struct cluster_msg_is_handle_path msg;
	struct cluster_msg_reply reply;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, saved = errno;
	struct stat st;
	char cwd[sizeof(msg.path)];
	bool live;

	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		goto no;
	cluster_msg_init(&msg, CLUSTER_MSG_IS_HANDLE_PATH);
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		snprintf(msg.path, sizeof(msg.path), "%s", path);
	else if ((size_t)snprintf(msg.path, sizeof(msg.path), "%s/%s", cwd,
				  path) >= sizeof(msg.path))
		snprintf(msg.path, sizeof(msg.path), "%s", path);
	if (shim_channel_request(&msg, -1, &reply, fds, &nfds) < 0)
		goto no;
	for (i = 0; i < nfds; i++)
		real_close(fds[i]);
	live = reply.error == 0;
	errno = saved;
	return live;
no:
	errno = saved;
	return false;
}

int unlink(const char *path)
{
	if (shim_active() && is_live_handle_path(path))
		return 0;
	return real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	if (shim_active() && flags == 0 &&
	    (dirfd == AT_FDCWD || path[0] == '/') && is_live_handle_path(path))
		return 0;
	return real_unlinkat(dirfd, path, flags);
}
