/*
 * unlink() of a unix socket path: servers remove a stale socket file before
 * bind().  When the path belongs to a live cluster listener (bound by the
 * supervisor for an earlier worker), removing it would cut every worker off.
 * The supervisor, which binds those paths, decides and unlinks in one step
 * (a check here followed by a real unlink() could remove a path another
 * worker's bind() created in between).  A live path is reported removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

/* 0 or an errno when the supervisor handled it; -1 when it could not. */
static int unlink_via_supervisor(const char *path)
{
	struct cluster_msg_unlink_path msg;
	struct cluster_msg_reply reply;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, saved = errno;
	char cwd[sizeof(msg.path)];

	cluster_msg_init(&msg, CLUSTER_MSG_UNLINK_PATH);
	if (path[0] == '/') {
		if ((size_t)snprintf(msg.path, sizeof(msg.path), "%s", path) >=
		    sizeof(msg.path))
			return -1; /* no listener has it */
	} else if (!getcwd(cwd, sizeof(cwd)) ||
		   (size_t)snprintf(msg.path, sizeof(msg.path), "%s/%s", cwd,
				    path) >= sizeof(msg.path)) {
		/* relative to our cwd alone: the supervisor's is another,
		 * and it keeps such listeners under their relative name */
		return -1;
	}
	if (shim_channel_request(&msg, -1, &reply, fds, &nfds) < 0) {
		errno = saved;
		return -1;
	}
	for (i = 0; i < nfds; i++)
		real_close(fds[i]);
	errno = saved;
	return reply.error;
}

/* The socket case, or -2 when the path is no socket (the caller goes on). */
static int unlink_socket_path(const char *path)
{
	struct stat st;
	int err;

	if (lstat(path, &st) < 0) {
		/* Nothing there: say so without a real unlink(), which could
		 * race with a bind() that creates it right now. */
		return errno == ENOENT ? (errno = ENOENT, -1) : -2;
	}
	if (!S_ISSOCK(st.st_mode))
		return -2;
	shim_handle_path_unlinked(path); /* a listener left to heirs goes */
	err = unlink_via_supervisor(path);
	if (err < 0)
		return -2;
	if (err > 0) {
		errno = err;
		return -1;
	}
	return 0;
}

int unlink(const char *path)
{
	int rc;

	if (shim_active() && (rc = unlink_socket_path(path)) != -2)
		return rc;
	return real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	int rc;

	if (shim_active() && flags == 0 &&
	    (dirfd == AT_FDCWD || path[0] == '/') &&
	    (rc = unlink_socket_path(path)) != -2)
		return rc;
	return real_unlinkat(dirfd, path, flags);
}
