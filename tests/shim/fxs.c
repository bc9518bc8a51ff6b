/* fxs.c - see fxs.h. */
#include "fxs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

void fxs_fail(const char *file, int line, const char *what)
{
	int err = errno;

	printf("FAIL %s:%d: %s (%s)\n", file, line, what, strerror(err));
	fflush(stdout);
	fprintf(stderr, "fixture: FAIL %s:%d: %s (%s)\n", file, line, what,
		strerror(err));
	exit(1);
}

int fxs_arg_int(int argc, char **argv, int i)
{
	char *end;
	long v;

	if (i >= argc) {
		fprintf(stderr, "%s: missing argument %d\n", argv[0], i);
		exit(2);
	}
	v = strtol(argv[i], &end, 10);
	if (*argv[i] == '\0' || *end != '\0' || v < 0 || v > 65535) {
		fprintf(stderr, "%s: bad number %s\n", argv[0], argv[i]);
		exit(2);
	}
	return (int)v;
}

void fxs_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int fxs_worker_id(void)
{
	const char *id = getenv("CLUSTER_WORKER_ID");

	return id ? atoi(id) : 0;
}

int fxs_bound(int type, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, type, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	return fd;
}

bool fxs_raw_nonblock(int fd)
{
	long fl = syscall(SYS_fcntl, fd, F_GETFL);

	FXS_CHECK(fl >= 0);
	return fl & O_NONBLOCK;
}

/* Says that this worker holds a connection, then waits for its client's
 * request (a byte, or its hang-up). */
static void hold_request(int fd)
{
	char c;

	fxs_say("%d holds a connection", fxs_worker_id());
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static bool serve_one(int fd, bool hold)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int c;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return false;
		c = accept(fd, NULL, NULL);
		if (c >= 0) {
			if (hold)
				hold_request(c);
			fx_answer(c);
			return true;
		}
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return false;
	}
}

bool fxs_serve_one(int fd)
{
	return serve_one(fd, false);
}

bool fxs_serve_one_held(int fd)
{
	return serve_one(fd, true);
}
