/* control.c - the control socket's default path and what the server and the
 * ctl client share; see control_server.c and ctl_client.c. */
#include "control.h"
#include "control_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTROL_FILE_NAME "cluster-run.sock"

int control_default_path(char *out, size_t cap, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	const char *dir;
	int n;

	if (xdg && xdg[0] == '/')
		dir = xdg;
	else if (geteuid() == 0)
		dir = "/run";
	else {
		snprintf(err, errlen, "XDG_RUNTIME_DIR is not set (and /run is "
			 "for root); pass --control PATH");
		return -1;
	}
	n = snprintf(out, cap, "%s%s" CONTROL_FILE_NAME, dir,
		     dir[strlen(dir) - 1] == '/' ? "" : "/");
	if (n < 0 || (size_t)n >= cap) {
		snprintf(err, errlen, "XDG_RUNTIME_DIR is too long for a socket "
			 "path; pass --control PATH");
		return -1;
	}
	return 0;
}

int control_sockaddr(const char *path, struct sockaddr_un *sun,
		     socklen_t *len, char *err, size_t errlen)
{
	size_t n = strlen(path);

	if (n == 0) {
		snprintf(err, errlen, "the control socket path is empty");
		return -1;
	}
	if (n >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "control socket path too long (%zu bytes, "
			 "at most %zu): %s", n, sizeof(sun->sun_path) - 1, path);
		return -1;
	}
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

long control_parse_count(const char *text)
{
	char *end;
	long v;

	if (!text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < 1 || v > CONTROL_MAX_WORKERS)
		return -1;
	return v;
}
