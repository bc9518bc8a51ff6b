/* sd_notify.c - see sd_notify.h. */
#include "sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockaddr_text.h"

/* ---- readiness ---- */

/* $NOTIFY_SOCKET as an address; its length, or 0 when unset or unusable
 * (an "@name" is the abstract namespace; other schemes are not ours). */
static socklen_t notify_address(struct sockaddr_un *sun)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path ? strlen(path) : 0;

	if (len < 2 || len >= sizeof(sun->sun_path) ||
	    (path[0] != '/' && path[0] != '@'))
		return 0;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	if (path[0] == '@')
		sun->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

bool systemd_notify_enabled(void)
{
	struct sockaddr_un sun;

	return notify_address(&sun) > 0;
}

int systemd_notify(const char *state)
{
	struct sockaddr_un sun;
	socklen_t len = notify_address(&sun);
	ssize_t n;
	int fd, err;

	if (len == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* MSG_DONTWAIT: a service manager that does not read must not stop
	 * the loop; systemd reads its notify socket at once. */
	n = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, len);
	err = errno;
	close(fd);
	errno = err;
	return n < 0 ? -1 : 0;
}

int systemd_notifyf(const char *fmt, ...)
{
	char state[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	return systemd_notify(state);
}

/* ---- STATUS= ---- */

/* Coarse on purpose: the text changes (and is sent again) once a minute
 * at most while nothing else happens. */
static void format_age(long long ms, char *buf, size_t cap)
{
	long long min = ms / 60000;

	if (min < 1)
		snprintf(buf, cap, "just now");
	else if (min < 120)
		snprintf(buf, cap, "%lldm ago", min);
	else if (min < 48 * 60)
		snprintf(buf, cap, "%lldh ago", min / 60);
	else
		snprintf(buf, cap, "%lldd ago", min / (24 * 60));
}

void systemd_status_text(const struct systemd_status *st, char *buf,
			 size_t cap)
{
	char age[32];
	int n;

	n = snprintf(buf, cap, "%u/%u worker%s listening", st->listening,
		     st->wanted, st->wanted == 1 ? "" : "s");
	format_age(st->reload_age_ms, age, sizeof(age));
	if (n >= 0 && (size_t)n < cap && st->queued >= 0)
		n += snprintf(buf + n, cap - (size_t)n, "; %ld queued",
			      st->queued);
	if (n >= 0 && (size_t)n < cap && st->reload != SYSTEMD_RELOAD_NONE)
		n += snprintf(buf + n, cap - (size_t)n, "; %s%s%s",
			      st->reload == SYSTEMD_RELOAD_RUNNING
				      ? "reloading"
			      : st->reload == SYSTEMD_RELOAD_DONE
				      ? "reload done "
				      : "reload stopped ",
			      st->reload == SYSTEMD_RELOAD_RUNNING ? "" : age,
			      st->reload == SYSTEMD_RELOAD_STOPPED
				      ? " (the old workers serve)" : "");
	if (n >= 0 && (size_t)n < cap && st->restarts > 0)
		snprintf(buf + n, cap - (size_t)n, "; %u restart%s",
			 st->restarts, st->restarts == 1 ? "" : "s");
}

int systemd_notify_status(const char *head, const struct systemd_status *st)
{
	static char last[256];
	char text[256];

	if (!systemd_notify_enabled())
		return 0;
	systemd_status_text(st, text, sizeof(text));
	if (!*head && strcmp(text, last) == 0)
		return 0;
	memcpy(last, text, sizeof(last));
	return systemd_notifyf("%sSTATUS=%s", head, text);
}
