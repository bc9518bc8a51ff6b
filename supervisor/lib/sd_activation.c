/* sd_activation.c - see sd_activation.h. */
#include "sd_activation.h"

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

/* ---- socket activation ---- */

static void logf_line(log_line_fn log, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_line(log_line_fn log, void *arg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(log, arg, fmt, ap);
	va_end(ap);
}

static bool parse_count(const char *text, unsigned long max,
			unsigned long *out)
{
	char *end;

	if (!text || *text < '0' || *text > '9')
		return false;
	errno = 0;
	*out = strtoul(text, &end, 10);
	return !errno && !*end && *out <= max;
}

/* The i-th name of LISTEN_FDNAMES ("a:b:c"), or "" */
static void fd_name(unsigned i, char *buf, size_t cap)
{
	const char *names = getenv("LISTEN_FDNAMES"), *end;

	buf[0] = '\0';
	for (; names && i > 0; i--)
		names = strchr(names, ':') ? strchr(names, ':') + 1 : NULL;
	if (!names)
		return;
	end = strchrnul(names, ':');
	snprintf(buf, cap, "%.*s", (int)(end - names), names);
}

static const char *type_name(int type)
{
	return type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram"
	       : type == SOCK_SEQPACKET ? "seqpacket" : "other";
}

unsigned systemd_listen_fds(int *fds, unsigned max, log_line_fn log,
			    void *log_arg)
{
	unsigned long pid, n, i;
	unsigned kept = 0;

	if (!getenv("LISTEN_FDS"))
		return 0;
	if (!parse_count(getenv("LISTEN_PID"), 0xffffffffUL, &pid) ||
	    (pid_t)pid != getpid()) {
		logf_line(log, log_arg, "LISTEN_FDS is set but LISTEN_PID (%s) "
			  "is not cluster-run's pid %d: the sockets are not "
			  "ours, none adopted",
			  getenv("LISTEN_PID") ? getenv("LISTEN_PID") : "unset",
			  (int)getpid());
		return 0;
	}
	if (!parse_count(getenv("LISTEN_FDS"), SYSTEMD_LISTEN_FDS_MAX, &n)) {
		logf_line(log, log_arg, "LISTEN_FDS=%s: not a count from 0 to "
			  "%d, no socket adopted", getenv("LISTEN_FDS"),
			  SYSTEMD_LISTEN_FDS_MAX);
		return 0;
	}
	for (i = 0; i < n; i++) {
		int fd = SYSTEMD_LISTEN_FDS_START + (int)i, type = 0;
		socklen_t tlen = sizeof(type), alen;
		struct sockaddr_storage ss;
		char name[64], text[SOCKADDR_TEXT_MAX];
		struct stat st;

		fd_name((unsigned)i, name, sizeof(name));
		alen = sizeof(ss);
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &alen) < 0) {
			logf_line(log, log_arg, "socket activation: fd %d%s%s "
				  "is not a socket; left alone", fd,
				  *name ? " " : "", name);
			continue;
		}
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (kept == max) {
			logf_line(log, log_arg, "socket activation: more than "
				  "%u sockets; fd %d left alone", max, fd);
			continue;
		}
		fds[kept++] = fd;
		sockaddr_text((struct sockaddr *)&ss, alen, text, sizeof(text));
		logf_line(log, log_arg, "socket activation: fd %d%s%s%s is %s "
			  "(%s); a worker that binds it gets it", fd,
			  *name ? " (" : "", name, *name ? ")" : "", text,
			  type_name(type));
	}
	return kept;
}

static bool same_unix(const struct sockaddr_un *a, socklen_t alen,
		      const struct sockaddr_un *b, socklen_t blen)
{
	size_t off = offsetof(struct sockaddr_un, sun_path);
	size_t la = alen > off ? alen - off : 0, lb = blen > off ? blen - off : 0;

	if (la > sizeof(a->sun_path))
		la = sizeof(a->sun_path);
	if (lb > sizeof(b->sun_path))
		lb = sizeof(b->sun_path);
	if (la == 0 || lb == 0)
		return false; /* unnamed */
	if (a->sun_path[0] == '\0' || b->sun_path[0] == '\0') /* abstract */
		return la == lb && memcmp(a->sun_path, b->sun_path, la) == 0;
	la = strnlen(a->sun_path, la);
	lb = strnlen(b->sun_path, lb);
	return la == lb && memcmp(a->sun_path, b->sun_path, la) == 0;
}

static bool same_address(const struct sockaddr *a, socklen_t alen,
			 const struct sockaddr *b, socklen_t blen)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (alen < sizeof(sa_family_t) || blen < sizeof(sa_family_t) ||
	    a->sa_family != b->sa_family)
		return false;
	switch (a->sa_family) {
	case AF_INET:
		return alen >= sizeof(*a4) && blen >= sizeof(*b4) &&
		       a4->sin_port != 0 && a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		return alen >= sizeof(*a6) && blen >= sizeof(*b6) &&
		       a6->sin6_port != 0 && a6->sin6_port == b6->sin6_port &&
		       a6->sin6_scope_id == b6->sin6_scope_id &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr,
			      sizeof(a6->sin6_addr)) == 0;
	case AF_UNIX:
		return same_unix((const void *)a, alen, (const void *)b, blen);
	}
	return false;
}

int systemd_listen_match(const int *fds, unsigned n, int type,
			 const struct sockaddr *addr, socklen_t len)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss), olen = sizeof(int);
		int t = 0;

		if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &t, &olen) < 0 ||
		    t != type)
			continue;
		if (type != SOCK_DGRAM && getpeername(fds[i],
			(struct sockaddr *)&ss, &sslen) == 0)
			continue; /* a connection (Accept=yes), no listener */
		sslen = sizeof(ss);
		if (getsockname(fds[i], (struct sockaddr *)&ss, &sslen) == 0 &&
		    same_address((struct sockaddr *)&ss, sslen, addr, len))
			return fds[i];
	}
	return -1;
}

int systemd_listen_near_miss(const int *fds, unsigned n,
			     const struct sockaddr *addr, socklen_t len,
			     char *buf, size_t cap)
{
	unsigned port = sockaddr_port(addr, len), i;

	for (i = 0; port && i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);

		if (getsockname(fds[i], (struct sockaddr *)&ss, &sslen) == 0 &&
		    sockaddr_port((struct sockaddr *)&ss, sslen) == port) {
			sockaddr_text((struct sockaddr *)&ss, sslen, buf, cap);
			return fds[i];
		}
	}
	return -1;
}
