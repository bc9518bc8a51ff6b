/* seccomp_support.c - see seccomp_support.h. */
#include "seccomp_support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- skips ---- */

void ss_skip(const char *fmt, ...)
{
	const struct criterion_test *test = criterion_current_test;
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	printf("%s::%s skipped: %s\n", test ? test->category : "?",
	       test ? test->name : "?", reason);
	fflush(stdout);
	criterion_skip_test("%s", reason);
}

/* Whether a process may install a filter with a notification listener:
 * fx_notifier_wrap does, then execs /bin/true (exit 0), or says why not
 * on stderr (exit 2). */
static bool have_user_notification(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		setenv("CLUSTER_RUN_REAL", "/bin/true", 1);
		execl(hx_fixture("fx_notifier_wrap"), "fx_notifier_wrap",
		      (char *)NULL);
		_exit(127);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	       WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void ss_skip_without_user_notification(void)
{
	if (!have_user_notification())
		ss_skip("this kernel refuses a seccomp filter with a "
			"notification listener (fx_notifier_wrap said why on "
			"stderr)");
}

void ss_skip_unless_built(const char *fixture, const char *missing)
{
	if (access(hx_fixture(fixture), X_OK) != 0)
		ss_skip("%s not built (%s)", fixture, missing);
}

/* ---- cluster-run's side ---- */

const char *ss_port_text(int port)
{
	static char text[4][16];
	static int next;
	char *t = text[next++ % 4];

	snprintf(t, sizeof(text[0]), "%d", port);
	return t;
}

struct hx_cluster *ss_wait_listening(struct hx_cluster *c, size_t workers,
				     const char *policy)
{
	hx_assert(c, hx_wait_count(c, HX_LISTENING, workers, HX_START_MS),
		  "want %zu \"listening\" lines within %d ms", workers,
		  HX_START_MS);
	for (size_t i = 0; policy && i < c->n_events; i++)
		if (c->events[i].kind == HX_LISTENING)
			hx_assert(c, strstr(c->events[i].what, policy),
				  "want a listener %s: %s", policy,
				  c->events[i].what);
	return c;
}

void ss_assert_mode_said(struct hx_cluster *c, const char *why)
{
	const char *texts[] = { why, "its workers run in the seccomp mode",
				NULL };

	hx_assert(c, st_wait_err_line(c, texts, HX_START_MS) != NULL,
		  "no line \"... %s ... its workers run in the seccomp mode\"",
		  why);
}

void ss_assert_kernel_rr(struct hx_cluster *c)
{
	const char *rr[] = { "the kernel deals connections round robin",
			     NULL };
	const char *hash[] = { "no round robin by the kernel", NULL };
	const char *said;
	char line[256];

	hx_pump(c, 0);
	if ((said = st_wait_err_line(c, hash, 0)) != NULL) {
		snprintf(line, sizeof(line), "%s", said); /* c's, freed next */
		st_stop(c);
		ss_skip("no eBPF here: the kernel hashes (%s)", line);
	}
	hx_assert(c, st_wait_err_line(c, rr, 0) != NULL,
		  "no line \"... the kernel deals connections round robin\"");
}

/* ---- busybox httpd ---- */

void ss_skip_unless_busybox(void)
{
	if (access("/bin/busybox", X_OK) != 0)
		ss_skip("/bin/busybox missing (busybox-static)");
}

static char www[64];

const char *ss_make_www(void)
{
	char path[128];
	FILE *f;

	snprintf(www, sizeof(www), "/tmp/cr-seccomp-www.XXXXXX");
	cr_assert(mkdtemp(www) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/cgi-bin", www);
	cr_assert(mkdir(path, 0755) == 0, "mkdir: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/cgi-bin/who", www);
	f = fopen(path, "w");
	cr_assert(f != NULL, "%s: %s", path, strerror(errno));
	/* field 4 of /proc/PID/stat is the parent's pid */
	fputs("#!/bin/sh\n"
	      "read -r _ _ _ httpd _ < /proc/$PPID/stat\n"
	      "printf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' "
	      "\"$CLUSTER_WORKER_ID\" \"$httpd\"\n", f);
	fclose(f);
	chmod(path, 0755);
	return www;
}

void ss_remove_www(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/cgi-bin/who", www);
	unlink(path);
	snprintf(path, sizeof(path), "%s/cgi-bin", www);
	rmdir(path);
	rmdir(www);
}

struct hx_answer ss_http_get(struct hx_cluster *c, int port,
			     const char *path)
{
	struct hx_target target = { .proto = HX_TCP, .host = "127.0.0.1",
				    .port = port };
	char buf[1024], request[128];
	struct hx_answer ans = { 0 };
	const char *body;
	int err;

	snprintf(request, sizeof(request), "GET %s HTTP/1.0\r\n\r\n", path);
	err = hx_exchange(&target, request, buf, sizeof(buf), HX_QUERY_MS);
	hx_pump(c, 0);
	hx_assert(c, err == 0, "GET %s: %s", path, strerror(-err));
	body = strstr(buf, "\r\n\r\n");
	hx_assert(c, strncmp(buf, "HTTP/1.", 7) == 0 && strstr(buf, " 200 ") &&
		  body && hx_parse_answer(body + 4, &ans),
		  "GET %s answered: %s", path, buf);
	return ans;
}

/* ---- wrk ---- */

void ss_skip_unless_wrk(void)
{
	if (system("command -v wrk > /dev/null") != 0)
		ss_skip("wrk missing (Debian's wrk)");
}

pid_t ss_wrk_start(int port, int seconds, int *out_fd)
{
	char url[64], duration[16];
	int fds[2];
	pid_t pid;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	snprintf(duration, sizeof(duration), "%ds", seconds);
	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execlp("wrk", "wrk", "-t2", "-c8", "-d", duration, "--timeout",
		       "2s", url, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*out_fd = fds[0];
	return pid;
}

/* What wrk printed, until it exits (within timeout_ms); its status, -1 if
 * it had to be killed. */
static int wrk_report(pid_t pid, int fd, char *out, size_t size,
		      int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	bool eof = false;
	size_t got = 0;
	int status = -1;

	while (!eof && got < size - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(deadline - hx_now_ms()), rc;
		ssize_t n;

		if (left <= 0)
			break;
		rc = poll(&p, 1, left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc != 1)
			break;
		n = read(fd, out + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		eof = n <= 0;
		if (n > 0)
			got += (size_t)n;
	}
	out[got] = '\0';
	close(fd);
	if (!eof)
		kill(pid, SIGKILL); /* ours, past its deadline */
	/* at EOF it has closed its stdout: it is exiting */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return eof ? status : -1;
}

long ss_wrk_finish(struct hx_cluster *c, pid_t pid, int fd, int timeout_ms,
		   const char *across)
{
	char report[4096];
	int status = wrk_report(pid, fd, report, sizeof(report), timeout_ms);
	const char *line = strstr(report, " requests in ");
	long requests = 0;

	hx_assert(c, status == 0, "wrk: status %d: %s", status, report);
	/* "  1234 requests in 4.00s, ...": back to its line's start */
	while (line && line > report && line[-1] != '\n')
		line--;
	hx_assert(c, line && sscanf(line, " %ld requests in", &requests) == 1 &&
		  requests > 0, "no requests counted by wrk: %s", report);
	hx_assert(c, !strstr(report, "Socket errors") &&
		  !strstr(report, "Non-2xx"), "requests failed across %s: %s",
		  across, report);
	return requests;
}

/* ---- fixtures alone ---- */

void ss_probe_alone(const char *fixture, char *out, size_t size)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	cr_assert(pipe2(fds, O_CLOEXEC) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execl(hx_fixture(fixture), fixture, "probe", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		ssize_t n;

		cr_assert(poll(&p, 1, HX_QUERY_MS) == 1, "%s probe said "
			  "nothing within %d ms", fixture, HX_QUERY_MS);
		n = read(fds[0], out + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fds[0]);
	cr_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "%s probe failed: %s", fixture,
		  out);
}
