/*
 * fx_chatty: fx_blocking_accept that first writes lines on stdout and
 * stderr, for `cluster-run --prefix`.  N is $CLUSTER_WORKER_ID:
 *   stdout: "out 1 of worker N", "out 2 of worker N" (one write),
 *           "out 3 of worker N" (in two writes), a 3000-byte line
 *           "long ...xxx of worker N", then "out partial of worker N"
 *           without a newline (it comes out when the worker exits);
 *   stderr: "err 1 of worker N", then "err partial of worker N" without
 *           a newline.
 * Every write is a write(2): no stdio buffer holds a line back.
 */
#include "fixture_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void say(int fd, const char *fmt, const char *id)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), fmt, id, id);

	if (n < 0 || (size_t)n >= sizeof(buf) || write(fd, buf, (size_t)n) != n)
		fx_die("write");
}

static void say_long(const char *id)
{
	char buf[3100];
	size_t n = 0;

	n += (size_t)snprintf(buf, sizeof(buf), "long ");
	memset(buf + n, 'x', 3000);
	n += 3000;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " of worker %s\n", id);
	if (write(STDOUT_FILENO, buf, n) != (ssize_t)n)
		fx_die("write");
}

int main(int argc, char **argv)
{
	const char *id = getenv("CLUSTER_WORKER_ID");
	struct fx_opts opts;
	int lfd;

	if (!id)
		id = "0";
	fx_parse_args(argc, argv, &opts);
	fx_exit_on_sigterm();
	say(STDOUT_FILENO, "out 1 of worker %s\nout 2 of worker %s\n", id);
	say(STDERR_FILENO, "err 1 of worker %s\n%.0s", id);
	say(STDOUT_FILENO, "out 3 %.0s", id);
	say(STDOUT_FILENO, "of worker %s\n%.0s", id);
	say_long(id);
	say(STDOUT_FILENO, "out partial of worker %s%.0s", id);
	say(STDERR_FILENO, "err partial of worker %s%.0s", id);
	lfd = fx_tcp_listener(opts.host, opts.port, 0);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd = accept(lfd, (struct sockaddr *)&peer, &len);

		if (fd >= 0)
			fx_answer(fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			fx_die("accept");
	}
}
