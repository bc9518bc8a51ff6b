/* sandbox.c - see fuzz.h: the link-time wrappers that keep fuzzing safe. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __real_unlink(const char *path);
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_unlink(const char *path);
int __wrap_kill(pid_t pid, int sig);

static unsigned long kills;

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

void fuzz_sandbox_init(void)
{
	if (mkdir(FUZZ_SANDBOX_DIR, 0700) < 0 && errno != EEXIST)
		fuzz_fail("mkdir %s: %s", FUZZ_SANDBOX_DIR, strerror(errno));
}

unsigned long fuzz_kills(void)
{
	return kills;
}

void fuzz_fds_take(struct fuzz_fds *s)
{
	int fd;

	memset(s, 0, sizeof(*s));
	for (fd = 0; fd < FUZZ_FD_SCAN; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			s->open[fd / 64] |= 1ull << (fd % 64);
}

void fuzz_fds_check(const struct fuzz_fds *s, const char *what)
{
	struct fuzz_fds now;
	int fd;

	fuzz_fds_take(&now);
	for (fd = 0; fd < FUZZ_FD_SCAN; fd++)
		if ((now.open[fd / 64] & ~s->open[fd / 64]) & (1ull << (fd % 64)))
			fuzz_fail("fd %d leaked by %s", fd, what);
}

static bool path_in_sandbox(const char *path, size_t max)
{
	size_t plen = strlen(FUZZ_SANDBOX_DIR);
	size_t n = strnlen(path, max);

	return n > plen + 1 && strncmp(path, FUZZ_SANDBOX_DIR "/", plen + 1) == 0 &&
	       !memmem(path, n, "..", 2);
}

int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
	bool ok = true;

	if (sa && len >= sizeof(sa_family_t)) {
		switch (sa->sa_family) {
		case AF_INET:
			ok = len < sizeof(*sin) ||
			     (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
			break;
		case AF_INET6:
			ok = len < sizeof(*sin6) ||
			     IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
			break;
		case AF_UNIX:
			ok = len <= offsetof(struct sockaddr_un, sun_path) ||
			     sun->sun_path[0] == '\0' ||
			     path_in_sandbox(sun->sun_path,
					     len - offsetof(struct sockaddr_un,
							    sun_path));
			break;
		}
	}
	if (!ok) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	return __real_bind(fd, sa, len);
}

int __wrap_unlink(const char *path)
{
	if (!path_in_sandbox(path, 4096)) {
		errno = EACCES;
		return -1;
	}
	return __real_unlink(path);
}

int __wrap_kill(pid_t pid, int sig)
{
	(void)pid;
	(void)sig;
	kills++;
	return 0;
}
