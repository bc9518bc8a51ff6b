/* ops.c - see ops.h. */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
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
 * timeout_ms.
 */
static void run_child(const char *const *argv, int (*fn)(void *), void *arg,
		      const char *stdin_text, int timeout_ms, struct ops_run *r)
{
	int in[2], out[2], err[2], pidfd;
	struct sink sinks[2];
	int64_t deadline = hx_now_ms() + timeout_ms;
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
				       argv ? argv[0] : "the child", timeout_ms);
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
	run_child(argv, NULL, NULL, stdin_text, OPS_RUN_MS, r);
}

void ops_run_within(const char *const *argv, int timeout_ms,
		    struct ops_run *r)
{
	run_child(argv, NULL, NULL, NULL, timeout_ms, r);
}

void ops_run_fn(int (*fn)(void *), void *arg, struct ops_run *r)
{
	run_child(NULL, fn, arg, NULL, OPS_RUN_MS, r);
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

/* One worker row of the table into row; false for any other line. */
static bool parse_row(const char *line, struct ops_row *row)
{
	char pid[16], skip[5][32];
	int off = 0;

	memset(row, 0, sizeof(*row));
	/* id pid state uptime restarts handed cpu mem listeners [note] */
	if (line[strspn(line, "0123456789")] != ' ' ||
	    sscanf(line, "%u %15s %31s %31s %u %31s %31s %31s %31s %n",
		   &row->id, pid, row->state, skip[0], &row->restarts,
		   skip[1], skip[2], skip[3], skip[4], &off) < 9)
		return false;   /* the header, the summary, the listeners */
	row->pid = strcmp(pid, "-") == 0 ? 0 : atoi(pid);
	if (off > 0)
		snprintf(row->note, sizeof(row->note), "%s", line + off);
	row->replacement = strstr(row->note, "new (reload)") != NULL;
	return true;
}

size_t ops_status_reload(struct hx_cluster *c, const char *sock,
			 struct ops_row *rows, size_t max, char *last_reload)
{
	struct ops_run r;
	size_t n = 0;
	char *save = NULL, *line;

	ops_ctl(c, sock, (const char *[]){ "status", NULL }, &r);
	hx_assert(c, ops_exit_code(&r) == 0 && r.err[0] == '\0',
		  "ctl status: exit %d, stderr \"%s\"", ops_exit_code(&r), r.err);
	if (last_reload)
		last_reload[0] = '\0';
	line = strtok_r(r.out, "\n", &save);
	hx_assert(c, line && strncmp(line, "id ", 3) == 0,
		  "ctl status: no header line in \"%s\"", r.out);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		struct ops_row row;

		if (last_reload && strncmp(line, "last reload: ", 13) == 0)
			snprintf(last_reload, 256, "%s", line);
		if (!parse_row(line, &row))
			continue;
		if (n < max)
			rows[n] = row;
		n++;
	}
	ops_run_free(&r);
	return n;
}

size_t ops_status(struct hx_cluster *c, const char *sock,
		  struct ops_row *rows, size_t max)
{
	return ops_status_reload(c, sock, rows, max, NULL);
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

const char *ops_prepare(struct ops_cluster *oc)
{
	static char port[16];

	memset(oc, 0, sizeof(*oc));
	snprintf(oc->sock, sizeof(oc->sock), "%s", ops_path("ctl.sock"));
	oc->port = hx_free_port(SOCK_STREAM);
	oc->target = (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
					 .port = oc->port };
	snprintf(port, sizeof(port), "%d", oc->port);
	return port;
}

void ops_start(struct ops_cluster *oc, int workers, const char *const *opts)
{
	ops_start_fixture(oc, workers, opts, "fx_blocking_accept");
}

void ops_start_fixture(struct ops_cluster *oc, int workers,
		       const char *const *opts, const char *fixture)
{
	static char nbuf[16];
	const char *args[OPS_MAX_ARGS + 1];
	const char *port = ops_prepare(oc);
	size_t n = 0;

	snprintf(nbuf, sizeof(nbuf), "%d", workers);
	args[n++] = "-n";
	args[n++] = nbuf;
	for (size_t i = 0; opts && opts[i] && n < OPS_MAX_ARGS - 6; i++)
		args[n++] = opts[i];
	args[n++] = "--";
	args[n++] = hx_fixture(fixture);
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

/* ---- cluster-run on a terminal ---- */

struct tty_session {
	int master, slave;
	int report, out, cmd;   /* pipes to and from the test */
	pid_t child;
	int sigchld;            /* signalfd */
	bool foreground;        /* the child takes the terminal first */
};

/* A pty that becomes this (new) session's controlling terminal, with
 * TOSTOP on and output processing off. */
static void tty_open(struct tty_session *t)
{
	struct termios tio;
	const char *name;

	if (setsid() < 0 || (t->master = posix_openpt(O_RDWR | O_NOCTTY)) < 0 ||
	    grantpt(t->master) < 0 || unlockpt(t->master) < 0 ||
	    !(name = ptsname(t->master)) ||
	    (t->slave = open(name, O_RDWR)) < 0 ||
	    ioctl(t->slave, TIOCSCTTY, 0) < 0 || tcgetattr(t->slave, &tio) < 0)
		_exit(120);
	tio.c_lflag |= TOSTOP;
	tio.c_oflag &= ~(tcflag_t)OPOST;
	if (tcsetattr(t->slave, TCSANOW, &tio) < 0)
		_exit(121);
}

static void tty_exec(struct tty_session *t, const char *const *argv,
		     const sigset_t *chld)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setpgid(0, 0);
	/* As a shell starts a foreground job: the child's own tcsetpgrp(),
	 * with SIGTTOU still ignored, before it runs anything. */
	if (t->foreground && tcsetpgrp(t->slave, getpid()) < 0)
		_exit(126);
	sigprocmask(SIG_UNBLOCK, chld, NULL);
	signal(SIGTTOU, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	for (int fd = 0; fd < 3; fd++)
		dup2(t->slave, fd);
	closefrom(3);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* waitpid() news of the child, reported; false once it is gone. */
static bool tty_reap(struct tty_session *t)
{
	struct signalfd_siginfo si;
	int st;
	pid_t r;

	while (read(t->sigchld, &si, sizeof(si)) > 0)
		;
	while ((r = waitpid(t->child, &st, WNOHANG | WUNTRACED |
			    WCONTINUED)) == t->child) {
		if (WIFSTOPPED(st))
			dprintf(t->report, "stopped %d\n", WSTOPSIG(st));
		else if (WIFCONTINUED(st))
			dprintf(t->report, "continued\n");
		else {
			dprintf(t->report, "exited 0x%x\n", (unsigned)st);
			return false;
		}
	}
	return r == 0;
}

/* Copies the terminal's output to the test, and runs what the test asks
 * for, until the test closes cmd. */
static void tty_serve(struct tty_session *t)
{
	bool alive = true;
	char buf[4096];

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = t->master, .events = POLLIN },
			{ .fd = t->cmd, .events = POLLIN },
			{ .fd = alive ? t->sigchld : -1, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pfd, 3, -1) < 0)
			continue;
		if (pfd[0].revents) {
			n = read(t->master, buf, sizeof(buf));
			if (n > 0 && write(t->out, buf, (size_t)n) != n)
				_exit(122);
		}
		if (pfd[2].revents)
			alive = tty_reap(t);
		if (pfd[1].revents) {
			n = read(t->cmd, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (buf[0] == 'h') {
				/* "hangup": the terminal goes away, and
				 * the shell passes SIGHUP on to its job */
				close(t->master);
				t->master = -1;
				kill(t->child, SIGHUP);
			} else if (tcsetpgrp(t->slave, t->child) < 0 ||
				   kill(-t->child, SIGCONT) < 0) {
				/* "fg": a shell's tcsetpgrp() and SIGCONT */
				_exit(123);
			}
		}
	}
	if (alive)
		kill(t->child, SIGKILL);
	_exit(0);
}

/* The session leader; never returns. */
static void tty_leader(const char *const *argv, int report, int out, int cmd,
		       bool foreground)
{
	struct tty_session t = { .report = report, .out = out, .cmd = cmd,
				 .foreground = foreground };
	sigset_t chld;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* In the background once the child is in front: tcsetpgrp() from
	 * there raises SIGTTOU, which must not stop us. */
	signal(SIGTTOU, SIG_IGN);
	/* The session leader hears the hangup too. */
	signal(SIGHUP, SIG_IGN);
	tty_open(&t);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	t.sigchld = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (t.sigchld < 0)
		_exit(124);
	t.child = fork();
	if (t.child < 0)
		_exit(125);
	if (t.child == 0)
		tty_exec(&t, argv, &chld);
	setpgid(t.child, t.child);
	dprintf(report, "pid %d\n", (int)t.child);
	tty_serve(&t);
}

static void tty_start(struct ops_tty *t, const char *const *args,
		      bool foreground)
{
	const char *argv[OPS_MAX_ARGS + 1];
	const char *bin = getenv("CLUSTER_RUN_BIN");
	int report[2], out[2], cmd[2];
	size_t n = 0;

	cr_assert(bin != NULL, "CLUSTER_RUN_BIN is not set (run through meson test)");
	argv[n++] = bin;
	for (size_t i = 0; args[i] && n < OPS_MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	memset(t, 0, sizeof(*t));
	open_pipe(report);
	open_pipe(out);
	open_pipe(cmd);
	t->leader = fork();
	cr_assert(t->leader >= 0, "fork: %s", strerror(errno));
	if (t->leader == 0) {
		close(report[0]);
		close(out[0]);
		close(cmd[1]);
		tty_leader(argv, report[1], out[1], cmd[0], foreground);
	}
	close(report[1]);
	close(out[1]);
	close(cmd[0]);
	t->report = report[0];
	t->cmd = cmd[1];
	t->c = calloc(1, sizeof(*t->c));
	cr_assert(t->c != NULL, "out of memory");
	t->c->err.fd = out[0];
	t->c->out.fd = -1;
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	cr_assert(sscanf(ops_tty_report(t, "pid ", OPS_RUN_MS), "pid %d",
			 &t->pid) == 1, "bad report line \"%s\"", t->line);
}

void ops_tty_start(struct ops_tty *t, const char *const *args)
{
	tty_start(t, args, false);
}

void ops_tty_start_foreground(struct ops_tty *t, const char *const *args)
{
	tty_start(t, args, true);
}

/* One line from fd within the deadline into buf; false at the deadline
 * or EOF. */
static bool read_line(int fd, char *buf, size_t cap, int64_t deadline)
{
	size_t len = 0;

	while (len + 1 < cap) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char ch;
		ssize_t n;

		if (poll(&pfd, 1, ms_left(deadline)) <= 0)
			return false;
		n = read(fd, &ch, 1);
		if (n <= 0)
			return false;
		if (ch == '\n')
			break;
		buf[len++] = ch;
	}
	buf[len] = '\0';
	return true;
}

const char *ops_tty_report(struct ops_tty *t, const char *prefix,
			   int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	for (;;) {
		hx_assert(t->c, read_line(t->report, t->line, sizeof(t->line),
					  deadline),
			  "no \"%s...\" report from the terminal within %d ms "
			  "(last: \"%s\")", prefix, timeout_ms, t->line);
		hx_pump(t->c, 0);
		if (strncmp(t->line, prefix, strlen(prefix)) == 0)
			return t->line;
	}
}

void ops_tty_fg(struct ops_tty *t)
{
	cr_assert(write(t->cmd, "fg\n", 3) == 3, "write: %s", strerror(errno));
}

void ops_tty_hangup(struct ops_tty *t)
{
	cr_assert(write(t->cmd, "hangup\n", 7) == 7, "write: %s",
		  strerror(errno));
}

void ops_tty_free(struct ops_tty *t)
{
	int status;

	close(t->cmd);
	close(t->report);
	if (t->leader > 0) {
		/* It ends at once (SIGKILLs cluster-run if need be). */
		int pidfd = (int)pidfd_open(t->leader, 0);
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

		cr_assert(pidfd >= 0 && poll(&pfd, 1, OPS_RUN_MS) == 1,
			  "the terminal's session leader did not end");
		close(pidfd);
		waitpid(t->leader, &status, 0);
		t->leader = 0;
	}
	hx_free(t->c);
	t->c = NULL;
}

/* ---- status --json, evaluated ---- */

char *ops_status_eval(struct ops_cluster *oc, const char *expr)
{
	char prog[1024];
	struct ops_run r, py;
	char *out;

	ops_ctl(oc->c, oc->sock, (const char *[]){ "status", "--json", NULL },
		&r);
	hx_assert(oc->c, ops_exit_code(&r) == 0, "ctl status --json: exit %d "
		  "(%s)", ops_exit_code(&r), r.err);
	snprintf(prog, sizeof(prog), "import json, sys\n"
		 "d = json.load(sys.stdin)\n"
		 "W = d['workers']\n"
		 "L = d['listeners']\n"
		 "print(%s)\n", expr);
	ops_run((const char *[]){ "python3", "-c", prog, NULL }, r.out, &py);
	hx_assert(oc->c, ops_exit_code(&py) == 0, "python3 on the JSON: %s\n"
		  "%s", py.err, r.out);
	out = strdup(py.out);
	ops_run_free(&r);
	ops_run_free(&py);
	return out;
}

bool ops_wait_status(struct ops_cluster *oc, const char *cond,
		     int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	for (;;) {
		char *v = ops_status_eval(oc, cond);
		bool ok = strncmp(v, "True", 4) == 0;

		free(v);
		if (ok)
			return true;
		if (hx_now_ms() >= deadline)
			return false;
		hx_pump(oc->c, 100);
	}
}

long ops_status_long(struct ops_cluster *oc, const char *expr)
{
	char *v = ops_status_eval(oc, expr);
	long n = strtol(v, NULL, 10);

	free(v);
	return n;
}

bool ops_migrate_req_on(void)
{
	char v = 0;
	int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY);

	if (fd >= 0) {
		if (read(fd, &v, 1) != 1)
			v = 0;
		close(fd);
	}
	return v == '1';
}
