/*
 * ctl_client.c - `cluster-run ctl [--control PATH] status [--json] | top |
 * reload [--wait] | scale N | stop [--wait]`: one request to the control
 * socket, its answer on stdout, or one "cluster-run: ..." line on stderr and
 * exit 1 (failure) or 2 (usage); `top` is ctl_top.c.
 */
#include "control.h"
#include "control_internal.h"
#include "ctl_top.h"
#include "monotonic.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The whole exchange (connect, request, answer) takes at most this. */
#define CTL_TIMEOUT_MS 10000
/* The longest answer we take (a status of 4096 workers is ~400 KiB). */
#define CTL_MAX_ANSWER (4u << 20)

#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

static const char ctl_usage[] =
	"Usage: cluster-run ctl [--control PATH] COMMAND\n"
	"Talk to a running cluster-run through its control socket.\n"
	"\n"
	"Commands:\n"
	"  status [--json]  every worker: id, pid, state, uptime, restarts,\n"
	"                   connections handed (rr), cpu and mem of its process\n"
	"                   tree, listeners; every slot that waits to be\n"
	"                   restarted (when, its last exit status); how the last\n"
	"                   reload ended (done or failed, why, when); each\n"
	"                   listener's accept queue and backlog, what rr holds\n"
	"  top              the same, live: redrawn each second, with connections\n"
	"                   per second; q or Ctrl-C ends it\n"
	"  reload [--wait]  rolling reload, as SIGHUP; with --wait, answers once\n"
	"                   it is done (exit 0) or has failed (exit 1, and why)\n"
	"  scale N          run N workers from now on (1 to 4096)\n"
	"  stop [--wait]    stop every worker and exit, as SIGTERM; with --wait,\n"
	"                   answers once every worker is gone, with cluster-run's\n"
	"                   exit code (exit 1 when that is not 0)\n"
	"\n"
	"  --control PATH   the socket (default: $XDG_RUNTIME_DIR/cluster-run.sock,\n"
	"                   /run/cluster-run.sock as root)\n"
	"  --wait           no time limit for the answer (otherwise 10 s)\n"
	"\n"
	"Exit status: 0 done, 1 failed (no cluster-run there, an error, a failed\n"
	"reload, a stop with a non-zero exit code), 2 usage.\n";

#define USAGE_LINE \
	"cluster-run ctl [--control PATH] status [--json] | top | reload [--wait] " \
	"| scale N | stop [--wait]"

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "cluster-run: ctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; usage: " USAGE_LINE "\n");
	return CTL_EXIT_USAGE;
}

/* For poll(); a deadline of 0 is none (-1). */
static int ms_left(long long deadline)
{
	long long left = deadline - monotonic_ms();

	if (deadline == 0)
		return -1;
	return left < 0 ? 0 : (int)left;
}

struct ctl_args {
	const char *path;
	const char *cmd;
	const char *arg;
	bool json;
	bool wait;
	bool help;
};

/* 0, or the exit code of a usage error (already reported). */
static int parse_args(int argc, char **argv, struct ctl_args *a)
{
	const char *pos[3] = { NULL, NULL, NULL };
	int i, npos = 0;
	bool options = true;

	memset(a, 0, sizeof(*a));
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (options && strcmp(s, "--") == 0) {
			options = false;
		} else if (options && strcmp(s, "--control") == 0) {
			if (i + 1 >= argc)
				return usage_error("option '%s' needs a value", s);
			a->path = argv[++i];
		} else if (options && strncmp(s, "--control=", 10) == 0) {
			a->path = s + 10;
		} else if (options && strcmp(s, "--json") == 0) {
			a->json = true;
		} else if (options && strcmp(s, "--wait") == 0) {
			a->wait = true;
		} else if (options && (strcmp(s, "-h") == 0 ||
				       strcmp(s, "--help") == 0)) {
			a->help = true;
		} else if (options && s[0] == '-' && s[1] != '\0' &&
			   !(s[1] >= '0' && s[1] <= '9')) {
			return usage_error("unknown option '%s'", s);
		} else if (npos < 3) {
			pos[npos++] = s;
		} else {
			return usage_error("too many arguments ('%s')", s);
		}
	}
	if (a->help)
		return 0;
	a->cmd = pos[0];
	a->arg = pos[1];
	if (!a->cmd)
		return usage_error("no command given%s", "");
	if (strcmp(a->cmd, "scale") == 0) {
		if (!a->arg)
			return usage_error("scale needs a worker count%s", "");
		if (control_parse_count(a->arg) < 0) {
			fprintf(stderr, "cluster-run: ctl: invalid worker count "
				"'%s': give a whole number from 1 to %d\n",
				a->arg, CONTROL_MAX_WORKERS);
			return CTL_EXIT_USAGE;
		}
		if (pos[2])
			return usage_error("too many arguments ('%s')", pos[2]);
	} else if (strcmp(a->cmd, "status") == 0 ||
		   strcmp(a->cmd, "top") == 0 ||
		   strcmp(a->cmd, "reload") == 0 ||
		   strcmp(a->cmd, "stop") == 0) {
		if (a->arg)
			return usage_error("unexpected argument '%s'", a->arg);
	} else {
		return usage_error("unknown command '%s'", a->cmd);
	}
	if (a->json && strcmp(a->cmd, "status") != 0)
		return usage_error("--json goes with status only%s", "");
	if (a->wait && strcmp(a->cmd, "reload") != 0 &&
	    strcmp(a->cmd, "stop") != 0)
		return usage_error("--wait goes with reload and stop only%s", "");
	return 0;
}

/* connect() says ECONNREFUSED for a file that is no socket at all (as for
 * a socket nobody listens on any more): lstat tells the two apart. */
static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 || S_ISSOCK(st.st_mode);
}

/* A connected socket, or -1 with the failure reported. */
static int ctl_connect(const char *path, long long deadline)
{
	struct sockaddr_un sun;
	socklen_t len;
	char err[256];
	int left = ms_left(deadline);
	struct timeval tv = { left / 1000, (left % 1000) * 1000 };
	int fd;

	if (control_sockaddr(path, &sun, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "cluster-run: %s\n", err);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "cluster-run: socket: %s\n", strerror(errno));
		return -1;
	}
	/* A full backlog makes connect() wait: bounded by SO_SNDTIMEO. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, len) == 0)
		return fd;
	if (errno == ENOENT)
		fprintf(stderr, "cluster-run: no control socket at %s: is "
			"cluster-run running? (pass --control PATH)\n", path);
	else if (errno == ECONNREFUSED && !is_socket(path))
		fprintf(stderr, "cluster-run: %s is not a socket: pass --control "
			"with the control socket a cluster-run announced\n",
			path);
	else if (errno == ECONNREFUSED)
		fprintf(stderr, "cluster-run: nothing answers at %s: the "
			"cluster-run that made it is gone\n", path);
	else if (errno == EAGAIN || errno == EINPROGRESS)
		fprintf(stderr, "cluster-run: the cluster-run at %s did not "
			"take the connection within %d ms\n", path,
			CTL_TIMEOUT_MS);
	else
		fprintf(stderr, "cluster-run: cannot connect to %s: %s\n", path,
			strerror(errno));
	close(fd);
	return -1;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until EOF; the answer (NUL-terminated, malloc'd) or NULL with the
 * failure reported. */
static char *read_answer(int fd, const char *path, long long deadline)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf) {
		fprintf(stderr, "cluster-run: out of memory\n");
		return NULL;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r = poll(&pfd, 1, ms_left(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			fprintf(stderr, "cluster-run: no answer from %s within "
				"%d ms (ctl --wait waits for as long as it "
				"takes)\n", path, CTL_TIMEOUT_MS);
			break;
		}
		if (len + 1 == cap) {
			char *more = cap < CTL_MAX_ANSWER ? realloc(buf, 2 * cap)
							  : NULL;

			if (!more) {
				fprintf(stderr, "cluster-run: the answer from "
					"%s is too long\n", path);
				break;
			}
			buf = more;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		/* The server closes as soon as it has answered: a reset after
		 * the answer (it had unread bytes of ours) ends it too. */
		if (n == 0 || (n < 0 && errno == ECONNRESET && len > 0)) {
			buf[len] = '\0';
			return buf;
		}
		if (n < 0) {
			fprintf(stderr, "cluster-run: reading from %s: %s\n",
				path, strerror(errno));
			break;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

/* Prints the answer where it belongs; the exit code. */
static int show_answer(const char *answer, const char *path)
{
	size_t elen = strlen(CONTROL_ERROR_PREFIX);
	size_t ulen = strlen(CONTROL_USAGE_PREFIX);

	if (answer[0] == '\0') {
		fprintf(stderr, "cluster-run: %s closed without an answer\n",
			path);
		return CTL_EXIT_FAIL;
	}
	if (strncmp(answer, CONTROL_ERROR_PREFIX, elen) == 0) {
		fprintf(stderr, "cluster-run: %s", answer + elen);
		return CTL_EXIT_FAIL;
	}
	if (strncmp(answer, CONTROL_USAGE_PREFIX, ulen) == 0) {
		fprintf(stderr, "cluster-run: %s", answer + ulen);
		return CTL_EXIT_USAGE;
	}
	fputs(answer, stdout);
	return fflush(stdout) == 0 ? 0 : CTL_EXIT_FAIL;
}

int ctl_main(int argc, char **argv)
{
	struct ctl_args a;
	char path[PATH_MAX], err[512], request[64];
	char *answer;
	int rc;

	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	if (a.help) {
		fputs(ctl_usage, stdout);
		return 0;
	}
	if (a.path)
		snprintf(path, sizeof(path), "%s", a.path);
	else if (control_default_path(path, sizeof(path), err, sizeof(err)) < 0) {
		fprintf(stderr, "cluster-run: %s\n", err);
		return CTL_EXIT_FAIL;
	}
	if (strcmp(a.cmd, "top") == 0)
		return ctl_top(path);
	if (strcmp(a.cmd, "scale") == 0)
		snprintf(request, sizeof(request), "scale %ld\n",
			 control_parse_count(a.arg));
	else
		snprintf(request, sizeof(request), "%s%s%s\n", a.cmd,
			 a.json ? " --json" : "", a.wait ? " --wait" : "");
	answer = ctl_exchange(path, request, a.wait);
	if (!answer)
		return CTL_EXIT_FAIL;
	rc = show_answer(answer, path);
	free(answer);
	return rc;
}

char *ctl_exchange(const char *path, const char *request, bool wait)
{
	long long deadline = monotonic_ms() + CTL_TIMEOUT_MS;
	char *answer;
	int fd = ctl_connect(path, deadline);

	if (fd < 0)
		return NULL;
	if (send_all(fd, request, strlen(request)) < 0) {
		fprintf(stderr, "cluster-run: sending to %s: %s\n", path,
			strerror(errno));
		close(fd);
		return NULL;
	}
	/* With --wait, the answer comes when the reload or stop has ended:
	 * as long as that takes. */
	answer = read_answer(fd, path, wait ? 0 : deadline);
	close(fd);
	return answer;
}
