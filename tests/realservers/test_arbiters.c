/*
 * test_arbiters.c - pre-fork arbiters from Debian's packages under
 * `cluster-run -n 2`: gunicorn (-w 1, a tiny WSGI app; on 127.0.0.1 and on
 * a unix socket, which it removes at exit) and unicorn (one worker, a
 * config.ru), in rr, none and reuseport.  Every request is answered by a
 * child of one of the cluster's workers (the app says its pid and its
 * parent's), and SIGTERM to cluster-run stops everything well within a
 * second or so: cluster-run exits 0 in under STOP_MS, no process left, and
 * no unix path.  (In none and reuseport the arbiter used to find the
 * abstract stand-in socket of stop-accepting at getsockname(), unlink()
 * it, raise, and sit out the whole --kill-timeout: 30 s.  On a unix
 * socket, the second arbiter's unlink() found the path gone.)  The time
 * each stop took is printed.
 *
 * A server that is not installed skips its test, saying so.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 2
#define REQUESTS 10
#define STOP_MS 3000 /* generous: measured 0.2-0.8 s on 2 loaded cores */

static char tmpdir[64];

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void arbiters_fini(void)
{
	hx_cleanup();
	if (tmpdir[0])
		nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

TestSuite(arbiters, .fini = arbiters_fini, .timeout = 120);

static const char app_py[] =
	"import os\n"
	"def app(environ, start_response):\n"
	"    body = ('%d %d\\n' % (os.getpid(), os.getppid())).encode()\n"
	"    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
	"                              ('Content-Length', str(len(body)))])\n"
	"    return [body]\n";

static const char config_ru[] =
	"run lambda { |env| [200, { 'Content-Type' => 'text/plain' },\n"
	"                    [\"#{Process.pid} #{Process.ppid}\\n\"]] }\n";

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	cr_assert(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s: %s",
		  path, strerror(errno));
}

static void need(const char *program, const char *package)
{
	char path[64];

	snprintf(path, sizeof(path), "/usr/bin/%s", program);
	if (access(path, X_OK) != 0)
		cr_skip_test("%s is not installed (Debian package %s; "
			     "scripts/setup installs it)", path, package);
}

/* Where the server listens: 127.0.0.1:port, or a unix path. */
struct where {
	int port;
	const char *path;
};

/* One GET /; the answer's body "<pid> <ppid>", or false. */
static bool get_pids(const struct where *at, long *pid, long *ppid)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)at->port) };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	int64_t deadline = hx_now_ms() + HX_QUERY_MS;
	char buf[4096];
	size_t got = 0;
	const char *body;
	int fd = socket(at->path ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
			0);
	bool ok = false, connected;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (at->path) {
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", at->path);
		connected = fd >= 0 &&
			    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	} else {
		connected = fd >= 0 &&
			    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	}
	if (!connected ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		goto out;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - hx_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			goto out;
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			goto out;
	}
	buf[got] = '\0';
	body = strstr(buf, "\r\n\r\n");
	ok = strncmp(buf, "HTTP/1.", 7) == 0 && strstr(buf, " 200 ") &&
	     body && sscanf(body + 4, "%ld %ld", pid, ppid) == 2;
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool child_of_a_worker(const struct hx_cluster *c, long ppid)
{
	for (int id = 1; id <= WORKERS; id++)
		if (hx_is_worker_pid(c, id, (pid_t)ppid))
			return true;
	return false;
}

static void arbiter_case(const char *name, const char *sched,
			 const struct where *at, const char *const *server_args)
{
	const char *args[32] = { "-n", "2", "--sched", sched,
				 "--kill-timeout", "30", "--" };
	size_t n = 7;
	struct hx_cluster *c;
	int64_t t0;
	int status, i;
	long pid, ppid;

	while (*server_args && n < 31)
		args[n++] = *server_args++;
	args[n] = NULL;
	c = hx_start(0, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, WORKERS, HX_START_MS),
		  "%s %s: want %d \"listening\" lines", name, sched, WORKERS);
	for (i = 0; i < REQUESTS; i++) {
		hx_assert(c, get_pids(at, &pid, &ppid),
			  "%s %s: request %d got no answer", name, sched, i);
		hx_assert(c, child_of_a_worker(c, ppid),
			  "%s %s: answered by pid %ld, child of %ld, which is "
			  "no worker", name, sched, pid, ppid);
	}
	t0 = hx_now_ms();
	status = hx_stop(c, SIGTERM, HX_EXIT_MS);
	hx_assert(c, status != -1, "%s %s: cluster-run still runs %d ms after "
		  "SIGTERM", name, sched, HX_EXIT_MS);
	fprintf(stderr, "%s %s: SIGTERM to exit in %lld ms\n", name, sched,
		(long long)(hx_now_ms() - t0));
	hx_assert(c, hx_now_ms() - t0 < STOP_MS,
		  "%s %s: SIGTERM to exit took %lld ms, want under %d", name,
		  sched, (long long)(hx_now_ms() - t0), STOP_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s %s: wait status 0x%x, want exit 0", name, sched, status);
	hx_assert_workers_gone(c);
	/* the server removes its unix path at exit, as without cluster-run */
	hx_assert(c, !at->path || access(at->path, F_OK) != 0,
		  "%s %s: %s is still there after the stop", name, sched,
		  at->path);
	hx_free(c);
}

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cluster-arbiters-XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

/* On 127.0.0.1, or on a unix socket in the test's directory. */
static void gunicorn_in(const char *sched, bool on_unix)
{
	static char bind[96], path[80];
	const char *args[] = { "/usr/bin/gunicorn", "-w", "1", "--chdir",
			       tmpdir, "-b", bind, "app:app", NULL };
	struct where at = { .port = hx_free_port(SOCK_STREAM) };

	need("gunicorn", "gunicorn");
	make_tmpdir();
	write_file("app.py", app_py);
	if (on_unix) {
		snprintf(path, sizeof(path), "%s/gunicorn.sock", tmpdir);
		snprintf(bind, sizeof(bind), "unix:%s", path);
		at.path = path;
	} else {
		snprintf(bind, sizeof(bind), "127.0.0.1:%d", at.port);
	}
	arbiter_case(on_unix ? "gunicorn-unix" : "gunicorn", sched, &at, args);
}

static void unicorn_in(const char *sched)
{
	static char listen[32], ru[96];
	const char *args[] = { "/usr/bin/unicorn", "-E", "none", "-l", listen,
			       ru, NULL };
	struct where at = { .port = hx_free_port(SOCK_STREAM) };

	need("unicorn", "unicorn");
	make_tmpdir();
	write_file("config.ru", config_ru);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", at.port);
	snprintf(ru, sizeof(ru), "%s/config.ru", tmpdir);
	arbiter_case("unicorn", sched, &at, args);
}

Test(arbiters, gunicorn_rr) { gunicorn_in("rr", false); }
Test(arbiters, gunicorn_none) { gunicorn_in("none", false); }
Test(arbiters, gunicorn_reuseport) { gunicorn_in("reuseport", false); }
Test(arbiters, gunicorn_unix_rr) { gunicorn_in("rr", true); }
Test(arbiters, gunicorn_unix_none) { gunicorn_in("none", true); }
Test(arbiters, gunicorn_unix_reuseport) { gunicorn_in("reuseport", true); }
Test(arbiters, unicorn_rr) { unicorn_in("rr"); }
Test(arbiters, unicorn_none) { unicorn_in("none"); }
Test(arbiters, unicorn_reuseport) { unicorn_in("reuseport"); }
