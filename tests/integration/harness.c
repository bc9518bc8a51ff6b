/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The pause of hx_wait_exit()'s deadline loop while output pipes are shut. */
#define HX_REAP_POLL_MS 10
#define HX_MAX_CLUSTERS 8
#define HX_MAX_ARGS 64

/*
 * Marks the environment of each cluster-run (and so of its workers) so that
 * a cleanup kills no process but ours, even after cluster-run is gone.
 */
#define HX_TOKEN_VAR "CLUSTER_RUN_TEST_TOKEN"
#define HX_RUNTIME_VAR "XDG_RUNTIME_DIR="
#define HX_RUNTIME_VAR_LEN (sizeof(HX_RUNTIME_VAR) - 1)

/* Clusters started and not yet freed, for hx_cleanup(). */
static struct hx_cluster *live[HX_MAX_CLUSTERS];
static unsigned started;

int64_t hx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

bool hx_wait_asleep(pid_t pid, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	int in_a_row = 0;

	while (in_a_row < 5) {
		in_a_row = proc_state(pid) == 'S' ? in_a_row + 1 : 0;
		if (hx_now_ms() >= deadline)
			return false;
		poll(NULL, 0, 10); /* a look every 10 ms: a measurement */
	}
	return true;
}

bool hx_wait_stopped(pid_t pid, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	while (proc_state(pid) != 'T') {
		if (hx_now_ms() >= deadline)
			return false;
		poll(NULL, 0, 5); /* a look every 5 ms */
	}
	return true;
}

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - hx_now_ms();

	return left < 0 ? 0 : (int)left;
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	cr_assert(p != NULL, "out of memory");
	return p;
}

/* ---- ports and paths ---- */

static socklen_t make_addr(const char *host, int port,
			   struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return sizeof(*sin);
	}
	cr_assert(inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1,
		  "bad address literal %s", host);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	return sizeof(*sin6);
}

/* A socket bound on host:port (IPV6_V6ONLY for IPv6), or -1. */
static int bind_on(const char *host, int port, int socktype)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(host, port, &ss);
	int one = 1;
	int fd = socket(ss.ss_family, socktype | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	cr_assert(getsockname(fd, (struct sockaddr *)&sin, &len) == 0,
		  "getsockname: %s", strerror(errno));
	return ntohs(sin.sin_port);
}

bool hx_have_ipv6(void)
{
	int fd = bind_on("::1", 0, SOCK_STREAM);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The lowest port the kernel picks for a connect() or a bind() to port 0
 * (net.ipv4.ip_local_port_range), 0 if unknown. */
static int ephemeral_low(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	int low = 0, high = 0;

	if (f) {
		if (fscanf(f, "%d %d", &low, &high) != 2)
			low = 0;
		fclose(f);
	}
	return low;
}

/* A candidate below the ephemeral range, where no client's source port
 * lands (a client connected from port P keeps a later bind of P from
 * succeeding: under load, with many tests' clients, a port that was free
 * when picked was taken by the time a worker bound it); 0 to let the
 * kernel pick, where there is no such range. */
static int candidate_port(void)
{
	static uint32_t seed;
	int low = ephemeral_low();

	if (low <= 2048)
		return 0;
	if (seed == 0)
		seed = (uint32_t)getpid() * 2654435761u ^ (uint32_t)hx_now_ms();
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return low / 2 + (int)(seed % (uint32_t)(low - low / 2));
}

int hx_free_port(int socktype)
{
	bool v6 = hx_have_ipv6();

	for (int attempt = 0; attempt < 50; attempt++) {
		/* (the last tries let the kernel pick) */
		int want = attempt < 40 ? candidate_port() : 0;
		int fd4 = bind_on("127.0.0.1", want, socktype);
		int port, fd6 = -1;

		if (fd4 < 0 && want != 0)
			continue; /* in use: another candidate */
		cr_assert(fd4 >= 0, "bind 127.0.0.1:0: %s", strerror(errno));
		port = local_port(fd4);
		if (v6)
			fd6 = bind_on("::1", port, socktype);
		close(fd4);
		if (fd6 >= 0)
			close(fd6);
		if (!v6 || fd6 >= 0)
			return port;
	}
	cr_assert_fail("no port free on both 127.0.0.1 and ::1");
	return -1;
}

const char *hx_fixture(const char *name)
{
	static char bufs[4][4096];
	static unsigned next;
	const char *dir = getenv("FIXTURES_DIR");
	char *buf = bufs[next++ % 4];

	cr_assert(dir != NULL, "FIXTURES_DIR is not set (run through meson test)");
	snprintf(buf, sizeof(bufs[0]), "%s/%s", dir, name);
	return buf;
}

/* ---- starting cluster-run ---- */

static void track(struct hx_cluster *c)
{
	for (int i = 0; i < HX_MAX_CLUSTERS; i++) {
		if (!live[i]) {
			live[i] = c;
			return;
		}
	}
	cr_assert_fail("more than %d clusters in one test", HX_MAX_CLUSTERS);
}

static void untrack(struct hx_cluster *c)
{
	for (int i = 0; i < HX_MAX_CLUSTERS; i++)
		if (live[i] == c)
			live[i] = NULL;
}

/* In the child: wire the pipes and exec cluster-run.  Never returns. */
static void exec_cluster_run(const char *bin, const char *const *args,
			     struct hx_cluster *c, int err_w, int out_w)
{
	const char *argv[HX_MAX_ARGS + 2] = { bin };
	sigset_t none;
	int devnull = open("/dev/null", O_RDWR);
	size_t n = 0;

	/* Die with the test process, whatever kills it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	putenv(c->token);
	if (c->runtime_env[0])
		putenv(c->runtime_env);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	dup2(devnull, STDIN_FILENO);
	dup2(out_w >= 0 ? out_w : devnull, STDOUT_FILENO);
	dup2(err_w, STDERR_FILENO);
	closefrom(STDERR_FILENO + 1);   /* nothing of Criterion's leaks on */
	while (args[n] && n < HX_MAX_ARGS) {
		argv[n + 1] = args[n];
		n++;
	}
	argv[n + 1] = NULL;
	execv(bin, (char *const *)argv);
	dprintf(STDERR_FILENO, "harness: exec %s: %s\n", bin, strerror(errno));
	_exit(127);
}

static void open_pipe(int fds[2])
{
	cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

struct hx_cluster *hx_start(unsigned flags, const char *const *args)
{
	const char *bin = getenv("CLUSTER_RUN_BIN");
	struct hx_cluster *c = calloc(1, sizeof(*c));
	int errp[2], outp[2] = { -1, -1 };

	cr_assert(bin != NULL, "CLUSTER_RUN_BIN is not set (run through meson test)");
	cr_assert(c != NULL, "out of memory");
	snprintf(c->token, sizeof(c->token), HX_TOKEN_VAR "=%d.%u",
		 (int)getpid(), ++started);
	if (!(flags & HX_SHARED_RUNTIME_DIR)) {
		snprintf(c->runtime_env, sizeof(c->runtime_env),
			 HX_RUNTIME_VAR "/tmp/cluster-run-hx-XXXXXX");
		cr_assert(mkdtemp(c->runtime_env + HX_RUNTIME_VAR_LEN) != NULL,
			  "mkdtemp: %s", strerror(errno));
	}
	open_pipe(errp);
	if (flags & HX_CAPTURE_STDOUT)
		open_pipe(outp);
	c->pid = fork();
	cr_assert(c->pid >= 0, "fork: %s", strerror(errno));
	if (c->pid == 0)
		exec_cluster_run(bin, args, c, errp[1], outp[1]);
	close(errp[1]);
	if (outp[1] >= 0)
		close(outp[1]);
	c->err.fd = errp[0];
	c->out.fd = outp[0];
	track(c);
	return c;
}

struct hx_cluster *hx_start_fixture(unsigned flags, int workers,
				    const char *sched, const char *fixture,
				    const char *const *fx_args)
{
	const char *args[HX_MAX_ARGS + 1];
	char nbuf[16];
	size_t n = 0;

	snprintf(nbuf, sizeof(nbuf), "%d", workers);
	args[n++] = "-n";
	args[n++] = nbuf;
	args[n++] = "--sched";
	args[n++] = sched;
	args[n++] = "--";
	args[n++] = hx_fixture(fixture);
	for (size_t i = 0; fx_args && fx_args[i] && n < HX_MAX_ARGS; i++)
		args[n++] = fx_args[i];
	args[n] = NULL;
	return hx_start(flags, args);
}

/* ---- reading output ---- */

static void parse_event(struct hx_cluster *c, const char *line)
{
	struct hx_event ev = { 0 };
	int pid = 0, off = 0;
	const char *rest;

	if (sscanf(line, "cluster-run: worker %d (pid %d) %n", &ev.id, &pid,
		   &off) < 2 || off == 0)
		return;
	ev.pid = pid;
	rest = line + off;
	if (strcmp(rest, "forked") == 0)
		ev.kind = HX_FORKED;
	else if (strcmp(rest, "online") == 0)
		ev.kind = HX_ONLINE;
	else if (strcmp(rest, "disconnect") == 0)
		ev.kind = HX_DISCONNECT;
	else if (strncmp(rest, "listening on ", 13) == 0) {
		ev.kind = HX_LISTENING;
		snprintf(ev.what, sizeof(ev.what), "%s", rest + 13);
	} else if (sscanf(rest, "exited with code %d", &ev.code) == 1)
		ev.kind = HX_EXITED;
	else if (sscanf(rest, "killed by signal %d", &ev.code) == 1)
		ev.kind = HX_KILLED;
	else
		return;
	if (c->n_events == c->cap_events) {
		c->cap_events = c->cap_events ? 2 * c->cap_events : 32;
		c->events = xrealloc(c->events,
				     c->cap_events * sizeof(*c->events));
	}
	c->events[c->n_events++] = ev;
}

/* Keeps a line of s; a line of stderr may be an event. */
static void add_line(struct hx_cluster *c, struct hx_stream *s,
		     const char *line, size_t len)
{
	char *copy = strndup(line, len);

	cr_assert(copy != NULL, "out of memory");
	if (s->n_lines == s->cap_lines) {
		s->cap_lines = s->cap_lines ? 2 * s->cap_lines : 32;
		s->lines = xrealloc(s->lines, s->cap_lines * sizeof(*s->lines));
	}
	s->lines[s->n_lines++] = copy;
	if (s == &c->err)
		parse_event(c, copy);
}

/* Splits s->part into complete lines; true if any was added. */
static bool take_lines(struct hx_cluster *c, struct hx_stream *s)
{
	size_t start = 0;
	bool added = false;

	for (size_t i = 0; i < s->part_len; i++) {
		if (s->part[i] != '\n')
			continue;
		add_line(c, s, s->part + start, i - start);
		start = i + 1;
		added = true;
	}
	if (start == 0 && s->part_len == sizeof(s->part)) {
		add_line(c, s, s->part, s->part_len);   /* an overlong line */
		start = s->part_len;
	}
	memmove(s->part, s->part + start, s->part_len - start);
	s->part_len -= start;
	return added;
}

/* Reads what is there now; true if a line was completed. */
static bool drain(struct hx_cluster *c, struct hx_stream *s)
{
	bool added = false;

	while (s->fd >= 0) {
		ssize_t n = read(s->fd, s->part + s->part_len,
				 sizeof(s->part) - s->part_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;          /* EAGAIN: nothing more for now */
		if (n == 0) {
			if (s->part_len)  /* a last line without '\n' */
				add_line(c, s, s->part, s->part_len);
			s->part_len = 0;
			close(s->fd);
			s->fd = -1;
			return true;
		}
		s->part_len += (size_t)n;
		added |= take_lines(c, s);
	}
	return added;
}

bool hx_pump(struct hx_cluster *c, int timeout_ms)
{
	struct hx_stream *streams[2] = { &c->err, &c->out };
	struct pollfd pfd[2];
	nfds_t n = 0;
	bool added = false;

	for (int i = 0; i < 2; i++) {
		if (streams[i]->fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = streams[i]->fd,
						    .events = POLLIN };
	}
	if (poll(pfd, n, timeout_ms) <= 0)
		return false;
	for (int i = 0; i < 2; i++)
		added |= drain(c, streams[i]);
	return added;
}

size_t hx_count(const struct hx_cluster *c, enum hx_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_events; i++)
		n += c->events[i].kind == kind;
	return n;
}

/* Whether both pipes are shut: no more output can come. */
static bool output_done(const struct hx_cluster *c)
{
	return c->err.fd < 0 && c->out.fd < 0;
}

/* Pumps output until done(c, arg) holds; false at the deadline or EOF. */
static bool wait_until(struct hx_cluster *c,
		       bool (*done)(const struct hx_cluster *, const void *),
		       const void *arg, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	while (!done(c, arg)) {
		if (output_done(c) || ms_left(deadline) == 0)
			return false;
		hx_pump(c, ms_left(deadline));
	}
	return true;
}

struct count_query {
	enum hx_kind kind;
	size_t n;
};

static bool count_reached(const struct hx_cluster *c, const void *arg)
{
	const struct count_query *q = arg;

	return hx_count(c, q->kind) >= q->n;
}

bool hx_wait_count(struct hx_cluster *c, enum hx_kind kind, size_t n,
		   int timeout_ms)
{
	struct count_query q = { kind, n };

	return wait_until(c, count_reached, &q, timeout_ms);
}

struct event_query {
	enum hx_kind kind;
	int id;
	pid_t not_pid;
	size_t from;
};

static bool event_seen(const struct hx_cluster *c, const void *arg)
{
	const struct event_query *q = arg;

	return hx_find_event(c, q->kind, q->id, q->not_pid, q->from) != NULL;
}

const struct hx_event *hx_find_event(const struct hx_cluster *c,
				     enum hx_kind kind, int id, pid_t not_pid,
				     size_t from)
{
	for (size_t i = from; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i];

		if (ev->kind == kind && (id == 0 || ev->id == id) &&
		    (not_pid == 0 || ev->pid != not_pid))
			return ev;
	}
	return NULL;
}

const struct hx_event *hx_wait_event(struct hx_cluster *c, enum hx_kind kind,
				     int id, pid_t not_pid, size_t from,
				     int timeout_ms)
{
	struct event_query q = { kind, id, not_pid, from };

	wait_until(c, event_seen, &q, timeout_ms);
	return hx_find_event(c, kind, id, not_pid, from);
}

static bool stdout_lines(const struct hx_cluster *c, const void *arg)
{
	return c->out.n_lines >= *(const size_t *)arg;
}

bool hx_wait_stdout_lines(struct hx_cluster *c, size_t n, int timeout_ms)
{
	return wait_until(c, stdout_lines, &n, timeout_ms);
}

pid_t hx_worker_pid(const struct hx_cluster *c, int id)
{
	pid_t pid = 0;

	for (size_t i = 0; i < c->n_events; i++)
		if (c->events[i].kind == HX_FORKED && c->events[i].id == id)
			pid = c->events[i].pid;
	return pid;
}

bool hx_is_worker_pid(const struct hx_cluster *c, int id, pid_t pid)
{
	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i];

		if (ev->kind == HX_FORKED && ev->id == id && ev->pid == pid)
			return true;
	}
	return false;
}

static void append_lines(char **text, size_t *len, const char *title,
			 const struct hx_stream *s)
{
	size_t need = strlen(title) + 2 + s->part_len + 2;

	for (size_t i = 0; i < s->n_lines; i++)
		need += strlen(s->lines[i]) + 1;
	*text = xrealloc(*text, *len + need + 1);
	*len += (size_t)sprintf(*text + *len, "%s\n", title);
	for (size_t i = 0; i < s->n_lines; i++)
		*len += (size_t)sprintf(*text + *len, "%s\n", s->lines[i]);
	if (s->part_len)
		*len += (size_t)sprintf(*text + *len, "%.*s\n",
					(int)s->part_len, s->part);
}

const char *hx_output(struct hx_cluster *c)
{
	size_t len = 0;

	free(c->text);
	c->text = NULL;
	append_lines(&c->text, &len, "[stderr]", &c->err);
	if (c->out.n_lines || c->out.part_len)
		append_lines(&c->text, &len, "[stdout]", &c->out);
	return c->text;
}

/* ---- stopping ---- */

int hx_wait_exit(struct hx_cluster *c, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;

	/* Deadline loop: reap, else wait for output or a short poll pause. */
	while (c->pid > 0) {
		pid_t r = waitpid(c->pid, &c->status, WNOHANG);

		if (r < 0 && errno != EINTR)
			c->status = -1;     /* not our child: nothing to report */
		if (r == c->pid || (r < 0 && errno != EINTR)) {
			c->pid = 0;
			break;
		}
		if (ms_left(deadline) == 0)
			return -1;
		if (output_done(c))
			poll(NULL, 0, HX_REAP_POLL_MS);
		else
			hx_pump(c, HX_REAP_POLL_MS);
	}
	/* Lines cluster-run wrote before it exited are in the pipes now;
	 * workers it left behind may hold them open, so no wait for EOF. */
	drain(c, &c->err);
	drain(c, &c->out);
	return c->status;
}

int hx_stop(struct hx_cluster *c, int sig, int timeout_ms)
{
	if (c->pid > 0)
		kill(c->pid, sig);
	return hx_wait_exit(c, timeout_ms);
}

void hx_assert_workers_gone(struct hx_cluster *c)
{
	for (size_t i = 0; i < c->n_events; i++) {
		const struct hx_event *ev = &c->events[i];
		bool gone;

		if (ev->kind != HX_FORKED)
			continue;
		gone = kill(ev->pid, 0) < 0 && errno == ESRCH;
		hx_assert(c, gone, "worker %d (pid %d) still exists after "
			  "cluster-run exited", ev->id, (int)ev->pid);
	}
}

/* Whether pid's environment holds token (so it descends from our run). */
static bool carries_token(pid_t pid, const char *token)
{
	char path[64], buf[1 << 15];
	size_t len, tlen = strlen(token);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	for (size_t i = 0; i + tlen <= len && !found; i += strlen(buf + i) + 1)
		found = memcmp(buf + i, token, tlen) == 0 && buf[i + tlen] == 0;
	return found;
}

/* SIGKILLs cluster-run and every worker of it still running. */
static void kill_cluster(struct hx_cluster *c)
{
	for (size_t i = 0; i < c->n_events; i++)
		if (c->events[i].kind == HX_FORKED &&
		    carries_token(c->events[i].pid, c->token)) {
			pid_t pid = c->events[i].pid;

			/* each worker leads a process group of its own: what
			 * it forked goes with it (a piped logger has no
			 * parent-death signal) */
			if (getpgid(pid) == pid)
				kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		hx_wait_exit(c, HX_EXIT_MS);
	}
}

/* The cluster-run's own runtime directory, and what a cluster-run killed
 * with SIGKILL left in it (its control socket). */
static void remove_runtime_dir(struct hx_cluster *c)
{
	char sock[sizeof(c->runtime_env) + 32];
	const char *dir = c->runtime_env + HX_RUNTIME_VAR_LEN;

	if (!c->runtime_env[0])
		return;
	snprintf(sock, sizeof(sock), "%s/cluster-run.sock", dir);
	unlink(sock);
	rmdir(dir);
}

void hx_free(struct hx_cluster *c)
{
	if (!c)
		return;
	kill_cluster(c);
	untrack(c);
	remove_runtime_dir(c);
	for (int i = 0; i < 2; i++) {
		struct hx_stream *s = i ? &c->out : &c->err;

		if (s->fd >= 0)
			close(s->fd);
		for (size_t j = 0; j < s->n_lines; j++)
			free(s->lines[j]);
		free(s->lines);
	}
	free(c->events);
	free(c->text);
	free(c);
}

void hx_cleanup(void)
{
	for (int i = 0; i < HX_MAX_CLUSTERS; i++)
		if (live[i])
			hx_free(live[i]);
}

/* ---- clients ---- */

bool hx_parse_answer(const char *text, struct hx_answer *ans)
{
	char *end;
	long id, pid;

	if (*text < '0' || *text > '9')
		return false;
	id = strtol(text, &end, 10);
	if (*end != ' ' || end[1] < '0' || end[1] > '9')
		return false;
	pid = strtol(end + 1, &end, 10);
	if (strcmp(end, "\n") != 0 || id > HX_MAX_WORKERS || pid <= 0)
		return false;
	ans->id = (int)id;
	ans->pid = (pid_t)pid;
	return true;
}

static socklen_t target_addr(const struct hx_target *t,
			     struct sockaddr_storage *ss)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;

	if (t->proto != HX_UNIX)
		return make_addr(t->host, t->port, ss);
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	cr_assert(strlen(t->path) < sizeof(sun->sun_path), "path too long");
	strcpy(sun->sun_path, t->path);
	return sizeof(*sun);
}

/* Waits until fd is readable; 0, or -ETIMEDOUT. */
static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, ms_left(deadline));
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -ETIMEDOUT;
}

/* Reads until EOF into buf (NUL-terminated); 0, or -errno. */
static int read_answer(int fd, char *buf, size_t size, int64_t deadline)
{
	size_t len = 0;

	for (;;) {
		ssize_t n;
		int err = wait_readable(fd, deadline);

		if (err)
			return err;
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		len += (size_t)n;
		buf[len] = '\0';
		if (n == 0 || len == size - 1)
			return 0;
	}
}

/* A blocking connect() bounded by SO_SNDTIMEO, from source (an address
 * literal, port 0) unless NULL; 0, or -errno. */
static int connect_bounded(int fd, const struct sockaddr *sa, socklen_t len,
			   const char *source, int64_t deadline)
{
	int left = ms_left(deadline);
	struct timeval tv = { .tv_sec = left / 1000,
			      .tv_usec = (left % 1000) * 1000 };

	if (source) {
		struct sockaddr_storage from;
		socklen_t flen = make_addr(source, 0, &from);

		if (bind(fd, (struct sockaddr *)&from, flen) < 0)
			return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno == EINPROGRESS || errno == EAGAIN)
		return -ETIMEDOUT;
	return -errno;
}

static int query_stream(const struct sockaddr *sa, socklen_t len,
			const char *source, int64_t deadline,
			struct hx_answer *ans)
{
	char buf[128];
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	err = connect_bounded(fd, sa, len, source, deadline);
	if (!err)
		err = read_answer(fd, buf, sizeof(buf), deadline);
	close(fd);
	if (!err && !hx_parse_answer(buf, ans))
		err = -EPROTO;
	return err;
}

int hx_connect(const struct hx_target *t, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t len = target_addr(t, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	err = connect_bounded(fd, (struct sockaddr *)&ss, len, t->source,
			      hx_now_ms() + timeout_ms);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int hx_send_all(int fd, const char *text)
{
	size_t sent = 0, want = strlen(text);

	while (sent < want) {
		ssize_t n = send(fd, text + sent, want - sent, MSG_NOSIGNAL);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			sent += (size_t)n;
	}
	return 0;
}

int hx_read_all(int fd, char *buf, size_t size, int timeout_ms)
{
	buf[0] = '\0';
	return read_answer(fd, buf, size, hx_now_ms() + timeout_ms);
}

int hx_exchange(const struct hx_target *t, const char *request, char *buf,
		size_t size, int timeout_ms)
{
	int64_t deadline = hx_now_ms() + timeout_ms;
	int fd = hx_connect(t, timeout_ms), err;

	buf[0] = '\0';
	if (fd < 0)
		return fd;
	err = hx_send_all(fd, request);
	if (!err)
		err = read_answer(fd, buf, size, deadline);
	close(fd);
	return err;
}

/* One datagram, one answer; a lost one is sent again, within deadline. */
static int query_datagram(const struct sockaddr *sa, socklen_t len,
			  int64_t deadline, struct hx_answer *ans)
{
	char buf[128];
	int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int err = -ETIMEDOUT;

	if (fd < 0)
		return -errno;
	if (connect(fd, sa, len) < 0)
		err = -errno;
	while (err == -ETIMEDOUT && ms_left(deadline) > 0) {
		int64_t try_deadline = hx_now_ms() + 1000;
		ssize_t n;

		if (try_deadline > deadline)
			try_deadline = deadline;
		if (send(fd, "?", 1, 0) < 0) {
			err = -errno;
			break;
		}
		if (wait_readable(fd, try_deadline))
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0) {
			err = -errno;
			break;
		}
		buf[n] = '\0';
		err = hx_parse_answer(buf, ans) ? 0 : -EPROTO;
	}
	close(fd);
	return err;
}

int hx_query(const struct hx_target *t, int timeout_ms, struct hx_answer *ans)
{
	struct sockaddr_storage ss;
	socklen_t len = target_addr(t, &ss);
	int64_t deadline = hx_now_ms() + timeout_ms;

	if (t->proto == HX_UDP)
		return query_datagram((struct sockaddr *)&ss, len, deadline, ans);
	return query_stream((struct sockaddr *)&ss, len, t->source, deadline,
			    ans);
}

static const char *target_name(const struct hx_target *t)
{
	static char buf[160];

	if (t->proto == HX_UNIX)
		snprintf(buf, sizeof(buf), "unix:%s", t->path);
	else
		snprintf(buf, sizeof(buf), "%s port %d/%s", t->host, t->port,
			 t->proto == HX_UDP ? "udp" : "tcp");
	return buf;
}

void hx_run_load(struct hx_cluster *c, const struct hx_load *load,
		 struct hx_tally *tally)
{
	memset(tally, 0, sizeof(*tally));
	for (int i = 0; i < load->requests; i++) {
		const struct hx_target *t = &load->targets[i % load->n_targets];
		struct hx_answer ans;
		int err = hx_query(t, HX_QUERY_MS, &ans);

		hx_pump(c, 0);  /* keep the stderr pipe from filling */
		hx_assert(c, err == 0, "request %d to %s failed: %s", i,
			  target_name(t), strerror(-err));
		hx_assert(c, ans.id >= 1 && ans.id <= load->workers,
			  "request %d to %s: worker id %d not in 1..%d", i,
			  target_name(t), ans.id, load->workers);
		hx_assert(c, load->any_pid || hx_is_worker_pid(c, ans.id, ans.pid),
			  "request %d to %s: pid %d is not worker %d's", i,
			  target_name(t), (int)ans.pid, ans.id);
		tally->served[ans.id]++;
		tally->total++;
	}
}
