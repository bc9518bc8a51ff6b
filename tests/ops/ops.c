/* ops.c - see ops.h. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define OPS_MAX_ARGS 64

static char dir[64];

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - hx_now_ms();

	return left < 0 ? 0 : (int)left;
}

const char *ops_dir(void)
{
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/cluster-run-ops-XXXXXX");
		cr_assert(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	}
	return dir;
}

const char *ops_path(const char *name)
{
	static char bufs[4][128];
	static unsigned next;
	char *buf = bufs[next++ % 4];

	snprintf(buf, sizeof(bufs[0]), "%s/%s", ops_dir(), name);
	return buf;
}

void ops_fini(void)
{
	DIR *d;
	struct dirent *e;

	hx_cleanup();
	if (!dir[0])
		return;
	d = opendir(dir);
	if (d) {
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
	dir[0] = '\0';
}

/* ---- child processes ---- */

int ops_exit_code(const struct ops_run *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

/* Reads what fd has; false at EOF. */
static bool sink_drain(struct sink *s)
{
	for (;;) {
		ssize_t n;

		if (s->len + 4096 > s->cap) {
			s->cap = s->cap ? 2 * s->cap : 8192;
			s->buf = realloc(s->buf, s->cap);
			cr_assert(s->buf != NULL, "out of memory");
		}
		n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return true;        /* EAGAIN */
		if (n == 0) {
			close(s->fd);
			s->fd = -1;
			return false;
		}
		s->len += (size_t)n;
	}
}

static void open_pipe(int fds[2])
{
	cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

/*
 * Forks; the child wires stdin/stdout/stderr and runs fn(arg) or execs
 * argv; the parent collects the output until EOF and the exit, within
 * OPS_RUN_MS.
 */
static void run_child(const char *const *argv, int (*fn)(void *), void *arg,
		      const char *stdin_text, struct ops_run *r)
{
	int in[2], out[2], err[2], pidfd;
	struct sink sinks[2];
	int64_t deadline = hx_now_ms() + OPS_RUN_MS;
	bool exited = false;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	open_pipe(in);
	open_pipe(out);
	open_pipe(err);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		closefrom(STDERR_FILENO + 1);
		signal(SIGPIPE, SIG_DFL);
		if (fn) {
			int code = fn(arg);

			fflush(stdout);
			_exit(code);
		}
		execvp(argv[0], (char *const *)argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (stdin_text) {
		size_t len = strlen(stdin_text);

		/* Fits in the pipe: no wait on the child to read it. */
		cr_assert(len < 60000, "stdin text too long");
		cr_assert(write(in[1], stdin_text, len) == (ssize_t)len,
			  "write to the child's stdin: %s", strerror(errno));
	}
	close(in[1]);
	pidfd = (int)pidfd_open(pid, 0);
	cr_assert(pidfd >= 0, "pidfd_open: %s", strerror(errno));
	sinks[0] = (struct sink){ .fd = out[0] };
	sinks[1] = (struct sink){ .fd = err[0] };
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	while (!exited || sinks[0].fd >= 0 || sinks[1].fd >= 0) {
		struct pollfd pfd[3];
		nfds_t n = 0;

		for (int i = 0; i < 2; i++)
			if (sinks[i].fd >= 0)
				pfd[n++] = (struct pollfd){ .fd = sinks[i].fd,
							    .events = POLLIN };
		if (!exited)
			pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		int ready = poll(pfd, n, ms_left(deadline));

		if (ready < 0) {
			cr_assert(errno == EINTR, "poll: %s", strerror(errno));
			continue;
		}
		if (ready == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			cr_assert_fail("%s did not end within %d ms",
				       argv ? argv[0] : "the child", OPS_RUN_MS);
		}
		for (nfds_t i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == pidfd)
				exited = true;
			else
				sink_drain(pfd[i].fd == sinks[0].fd ? &sinks[0]
								    : &sinks[1]);
		}
	}
	close(pidfd);
	cr_assert(waitpid(pid, &r->status, 0) == pid, "waitpid: %s",
		  strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (!sinks[i].buf)
			sinks[i].buf = calloc(1, 1);
		cr_assert(sinks[i].buf != NULL, "out of memory");
		sinks[i].buf[sinks[i].len] = '\0';
	}
	r->out = sinks[0].buf;
	r->err = sinks[1].buf;
}

void ops_run(const char *const *argv, const char *stdin_text,
	     struct ops_run *r)
{
	run_child(argv, NULL, NULL, stdin_text, r);
}

void ops_run_fn(int (*fn)(void *), void *arg, struct ops_run *r)
{
	run_child(NULL, fn, arg, NULL, r);
}

void ops_run_free(struct ops_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void ops_ctl(struct hx_cluster *c, const char *sock, const char *const *args,
	     struct ops_run *r)
{
	const char *argv[OPS_MAX_ARGS + 1];
	const char *bin = getenv("CLUSTER_RUN_BIN");
	size_t n = 0;

	cr_assert(bin != NULL, "CLUSTER_RUN_BIN is not set (run through meson test)");
	argv[n++] = bin;
	argv[n++] = "ctl";
	argv[n++] = "--control";
	argv[n++] = sock;
	for (size_t i = 0; args[i] && n < OPS_MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ops_run(argv, NULL, r);
	if (c)
		hx_pump(c, 0);
	cr_log_info("ctl%s%s%s%s: exit %d\n%s%s", args[0] ? " " : "",
		    args[0] ? args[0] : "", args[0] && args[1] ? " " : "",
		    args[0] && args[1] ? args[1] : "", ops_exit_code(r), r->out,
		    r->err);
}

size_t ops_status(struct hx_cluster *c, const char *sock,
		  struct ops_row *rows, size_t max)
{
	struct ops_run r;
	size_t n = 0;
	char *save = NULL, *line;

	ops_ctl(c, sock, (const char *[]){ "status", NULL }, &r);
	hx_assert(c, ops_exit_code(&r) == 0 && r.err[0] == '\0',
		  "ctl status: exit %d, stderr \"%s\"", ops_exit_code(&r), r.err);
	line = strtok_r(r.out, "\n", &save);
	hx_assert(c, line && strncmp(line, "id ", 3) == 0,
		  "ctl status: no header line in \"%s\"", r.out);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		struct ops_row row = { 0 };
		int pid;

		if (sscanf(line, "%u %d %31s", &row.id, &pid, row.state) != 3)
			continue;   /* the summary line */
		row.pid = pid;
		row.replacement = strstr(line, "new (reload)") != NULL;
		if (n < max)
			rows[n] = row;
		n++;
	}
	ops_run_free(&r);
	return n;
}

/* ---- starting cluster-run ---- */

struct hx_cluster *ops_start_args(const char *sock, const char *const *args)
{
	const char *argv[OPS_MAX_ARGS + 1] = { "--control", sock };
	size_t n = 2;

	for (size_t i = 0; args[i] && n < OPS_MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return hx_start(0, argv);
}

void ops_start(struct ops_cluster *oc, int workers, const char *const *opts)
{
	static char nbuf[16], port[16];
	const char *args[OPS_MAX_ARGS + 1];
	size_t n = 0;

	memset(oc, 0, sizeof(*oc));
	snprintf(oc->sock, sizeof(oc->sock), "%s", ops_path("ctl.sock"));
	oc->port = hx_free_port(SOCK_STREAM);
	oc->target = (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
					 .port = oc->port };
	snprintf(nbuf, sizeof(nbuf), "%d", workers);
	snprintf(port, sizeof(port), "%d", oc->port);
	args[n++] = "-n";
	args[n++] = nbuf;
	for (size_t i = 0; opts && opts[i] && n < OPS_MAX_ARGS - 6; i++)
		args[n++] = opts[i];
	args[n++] = "--";
	args[n++] = hx_fixture("fx_blocking_accept");
	args[n++] = "--port";
	args[n++] = port;
	args[n] = NULL;
	oc->c = ops_start_args(oc->sock, args);
	hx_assert(oc->c, hx_wait_count(oc->c, HX_LISTENING, (size_t)workers,
				       HX_START_MS),
		  "want %d \"listening\" lines within %d ms", workers,
		  HX_START_MS);
}

/* ---- output ---- */

size_t ops_count_lines(const struct hx_cluster *c, const char *text,
		       size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < c->err.n_lines; i++)
		n += strstr(c->err.lines[i], text) != NULL;
	return n;
}

long ops_wait_line(struct hx_cluster *c, const char *text, size_t from,
		   int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	size_t i = from;

	for (;;) {
		for (; i < c->err.n_lines; i++)
			if (strstr(c->err.lines[i], text))
				return (long)i;
		if (c->err.fd < 0 || ms_left(deadline) == 0)
			return -1;
		hx_pump(c, ms_left(deadline));
	}
}

void ops_query_from(struct hx_cluster *c, const struct hx_target *t,
		    const pid_t *pids, size_t n, const char *when)
{
	struct hx_answer ans;
	int err = hx_query(t, HX_QUERY_MS, &ans);
	bool known = false;

	hx_pump(c, 0);
	hx_assert(c, err == 0, "%s: request failed: %s", when, strerror(-err));
	for (size_t i = 0; i < n; i++)
		known |= ans.pid == pids[i];
	hx_assert(c, known, "%s: answer \"%d %d\" from a pid not expected",
		  when, ans.id, (int)ans.pid);
}

pid_t ops_wait_forked(struct hx_cluster *c, int id, pid_t not_pid,
		      size_t from)
{
	const struct hx_event *ev =
		hx_wait_event(c, HX_FORKED, id, not_pid, from, HX_START_MS);

	hx_assert(c, ev != NULL, "no new \"forked\" line for worker %d "
		  "(other than pid %d) within %d ms", id, (int)not_pid,
		  HX_START_MS);
	return ev->pid;
}
