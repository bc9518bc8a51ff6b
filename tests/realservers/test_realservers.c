/*
 * test_realservers.c - the servers people actually have, from Debian's
 * packages, each under `cluster-run -n 3` in both scheduling policies:
 * nginx, lighttpd, python3's http.server (its own handler, and a pid handler
 * under ThreadingHTTPServer and socketserver.ForkingTCPServer), node,
 * memcached (TCP with threads, and UDP) and redis-server (127.0.0.1 and ::1
 * at once); in reuseport as well, which the issue did not ask for.  And the
 * servers whose processes do more than bind at start-up (the ownership
 * model, shim/shim.h): vsftpd (a session process per client, PASV data
 * listeners from a small range of ports, reused), dropbear (a child per
 * connection that closes the inherited listener; its banner is the check),
 * tftpd-hpa (a child per transfer that binds its own socket: cluster-run's
 * fd count stays flat over 200 transfers) and a python server that runs
 * subprocess.run() after it listens.
 *
 * Every test starts the real server on a free loopback port with a config of
 * its own in a fresh directory, makes REQUESTS sequential requests and checks
 * every answer (it names a pid, and that pid is a worker of this cluster, or
 * a fork-per-connection child's parent is), in rr at least WORKERS distinct
 * pids answer over TCP, then SIGTERM stops everything: cluster-run exits 0
 * and no process of the run is left.
 *
 * A server that is not installed fails its test (CI installs them all
 * through .ci/run; locally: scripts/setup); vsftpd, dropbear and tftpd-hpa,
 * which came later, are skipped with the reason printed.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3
#define REQUESTS 100
#define MAX_REQUESTS 200
#define GONE_MS 3000          /* processes SIGKILLed at stop disappear */
#define SETTLE_MS 2000        /* workers fall asleep after the last answer */
#define MAX_ARGS 32

static char tmpdir[64];       /* this test's configs and files */

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void realservers_fini(void)
{
	hx_cleanup();
	if (tmpdir[0])
		nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(realservers, .fini = realservers_fini, .timeout = 120);

/* ---- set-up ---- */

static const char *make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cluster-realserver-XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
	return tmpdir;
}

/* tmpdir/name, in a small rotating static buffer. */
static const char *tmp_path(const char *name)
{
	static char bufs[8][256];
	static unsigned next;
	char *buf = bufs[next++ % 8];

	snprintf(buf, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return buf;
}

static void write_file(const char *path, const char *fmt, ...)
{
	va_list ap;
	FILE *f = fopen(path, "w");

	cr_assert(f != NULL, "fopen %s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	cr_assert(fclose(f) == 0, "write %s: %s", path, strerror(errno));
}

/* Debian's binary first (the servers come from its packages), then $PATH;
 * NULL if there is none. */
static const char *lookup_program(const char *name)
{
	static char found[4][512];
	static unsigned next;
	char *buf = found[next++ % 4];
	const char *path = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "/usr/sbin:/usr/bin:/sbin:/bin:%s",
		 path ? path : "");
	for (char *save, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(found[0]), "%s/%s", d, name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

static const char *find_program(const char *name, const char *package)
{
	const char *path = lookup_program(name);

	if (!path)
		cr_assert_fail("%s is not installed: apt-get install %s (.ci/run "
			       "and scripts/setup install it)", name, package);
	return path;
}

/* find_program(), or the test is skipped, saying why. */
static const char *need_program(const char *name, const char *package)
{
	const char *path = lookup_program(name);

	if (!path) {
		cr_log_warn("%s is not installed (apt-get install %s): "
			    "skipped", name, package);
		cr_skip_test("%s is not installed", name);
	}
	return path;
}

static const char *port_text(int port)
{
	static char bufs[4][16];
	static unsigned next;
	char *buf = bufs[next++ % 4];

	snprintf(buf, sizeof(bufs[0]), "%d", port);
	return buf;
}

/* ---- a client that knows nothing of the protocol ---- */

static int ms_left(int64_t deadline)
{
	int64_t left = deadline - hx_now_ms();

	return left < 0 ? 0 : (int)left;
}

static socklen_t target_addr(const struct hx_target *t,
			     struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, t->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)t->port);
		return sizeof(*sin);
	}
	cr_assert(inet_pton(AF_INET6, t->host, &sin6->sin6_addr) == 1,
		  "bad address literal %s", t->host);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)t->port);
	return sizeof(*sin6);
}

static int wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, ms_left(deadline));
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -ETIMEDOUT;
}

/* A TCP connection to t, being made (non-blocking); fd or -errno. */
static int stream_open(const struct hx_target *t)
{
	struct sockaddr_storage ss;
	socklen_t len = target_addr(t, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* Sends all of text; 0 or -errno. */
static int stream_send(int fd, const char *text, int64_t deadline)
{
	size_t len = strlen(text), sent = 0;

	while (sent < len) {
		ssize_t n;
		int rc;

		if ((rc = wait_for(fd, POLLOUT, deadline)) < 0)
			return rc;
		n = send(fd, text + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		sent += (size_t)n;
	}
	return 0;
}

/* Reads into buf (NUL-terminated) until EOF, or until done(buf) when done
 * is given: then one byte at a time, so that what follows (the next FTP
 * reply) stays in the socket for the next read.  Length read, or -errno. */
static ssize_t stream_read(int fd, char *buf, size_t size,
			   bool (*done)(const char *buf), int64_t deadline)
{
	size_t got = 0;

	buf[0] = '\0';
	for (;;) {
		ssize_t n;
		int rc;

		if ((rc = wait_for(fd, POLLIN, deadline)) < 0)
			return rc;
		n = recv(fd, buf + got, done ? 1 : size - 1 - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
		buf[got] = '\0';
		if (n == 0 || got == size - 1 || (done && done(buf)))
			return (ssize_t)got;
	}
}

/* TCP: connects, sends req, reads until EOF.  Length read, or -errno. */
static ssize_t exchange_stream(const struct hx_target *t, const char *req,
			       char *buf, size_t size, int64_t deadline)
{
	int fd = stream_open(t);
	ssize_t rc;

	if (fd < 0)
		return fd;
	rc = stream_send(fd, req, deadline);
	if (rc == 0)
		rc = stream_read(fd, buf, size, NULL, deadline);
	close(fd);
	return rc;
}

/*
 * UDP (memcached's frame): sends req with an 8-byte frame header and reads
 * datagrams until one holds `until`; a lost exchange is tried again every
 * second, within the deadline.  The datagram's text (after the frame
 * header), or -errno.
 */
static ssize_t exchange_memcached_udp(const struct hx_target *t,
				      const char *req, const char *until,
				      char *buf, size_t size, int64_t deadline)
{
	struct sockaddr_storage ss;
	socklen_t len = target_addr(t, &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char dgram[2048];
	size_t reqlen = strlen(req);
	ssize_t rc = -ETIMEDOUT;
	uint16_t id = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		goto out;
	}
	cr_assert(reqlen + 8 <= sizeof(dgram), "request too long");
	while (rc == -ETIMEDOUT && ms_left(deadline) > 0) {
		int64_t try_deadline = hx_now_ms() + 1000;

		if (try_deadline > deadline)
			try_deadline = deadline;
		id++;
		/* request id, sequence 0, 1 datagram, reserved */
		memset(dgram, 0, 8);
		dgram[0] = (char)(id >> 8);
		dgram[1] = (char)id;
		dgram[5] = 1;
		memcpy(dgram + 8, req, reqlen);
		if (send(fd, dgram, reqlen + 8, 0) < 0) {
			rc = -errno;
			break;
		}
		while (wait_for(fd, POLLIN, try_deadline) == 0) {
			ssize_t n = recv(fd, dgram, sizeof(dgram) - 1, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = -errno;
				break;
			}
			if (n < 8 || dgram[0] != (char)(id >> 8) ||
			    dgram[1] != (char)id)
				continue; /* an answer to an earlier try */
			dgram[n] = '\0';
			if (!strstr(dgram + 8, until))
				continue; /* another datagram of the answer */
			snprintf(buf, size, "%s", dgram + 8);
			rc = (ssize_t)strlen(buf);
			break;
		}
	}
out:
	close(fd);
	return rc;
}

/* ---- the protocols of the servers that fork ---- */

static bool line_done(const char *buf)
{
	return strstr(buf, "\r\n") != NULL;
}

/* An FTP reply is complete when its last line, "DDD text", is. */
static bool ftp_reply_done(const char *buf)
{
	size_t len = strlen(buf);
	const char *last;

	if (len < 2 || strcmp(buf + len - 2, "\r\n") != 0)
		return false;
	for (last = buf + len - 2; last > buf && last[-1] != '\n'; last--)
		;
	return len - (size_t)(last - buf) >= 6 && last[3] == ' ';
}

/* Sends cmd (unless NULL) and reads the reply; its code, or -errno. */
static int ftp_command(int fd, const char *cmd, char *reply, size_t size,
		       int64_t deadline)
{
	ssize_t n;
	int rc;

	if (cmd && (rc = stream_send(fd, cmd, deadline)) < 0)
		return rc;
	n = stream_read(fd, reply, size, ftp_reply_done, deadline);
	if (n < 0)
		return (int)n;
	return ftp_reply_done(reply) ? atoi(reply) : -EPROTO;
}

/* The data port of a "227 Entering Passive Mode (h,h,h,h,p,p)" reply. */
static int ftp_pasv_port(const char *reply)
{
	const char *p = strchr(reply, '(');
	int h[4], hi, lo;

	if (!p || sscanf(p, "(%d,%d,%d,%d,%d,%d)", &h[0], &h[1], &h[2], &h[3],
			 &hi, &lo) != 6)
		return -1;
	return hi * 256 + lo;
}

/* One FTP command of a session; false (the reply left in s->reply, the
 * step in s->step) unless the reply's code is want. */
struct ftp_session {
	int fd;
	int64_t deadline;
	const char *step;
	char reply[1024];
	int code;
};

static bool ftp_step(struct ftp_session *s, const char *cmd, int want)
{
	s->step = cmd ? cmd : "(reading a reply)";
	s->code = ftp_command(s->fd, cmd, s->reply, sizeof(s->reply),
			      s->deadline);
	return s->code == want;
}

/* One FTP session: anonymous login, PASV, RETR index.txt (the file's
 * content in buf), QUIT.  Length of the file, or -errno (-EPROTO: an
 * unexpected reply, in buf with the command it answered). */
static ssize_t exchange_ftp(const struct hx_target *t, char *buf, size_t size,
			    int64_t deadline)
{
	struct ftp_session s = { .fd = stream_open(t), .deadline = deadline };
	struct hx_target data = *t;
	int dfd = -1;
	ssize_t rc = -EPROTO;

	if (s.fd < 0)
		return s.fd;
	if (!ftp_step(&s, NULL, 220) ||
	    (!ftp_step(&s, "USER anonymous\r\n", 230) &&
	     (s.code != 331 || !ftp_step(&s, "PASS x@\r\n", 230))) ||
	    !ftp_step(&s, "TYPE I\r\n", 200) ||
	    !ftp_step(&s, "PASV\r\n", 227) ||
	    (data.port = ftp_pasv_port(s.reply)) <= 0)
		goto out;
	if ((dfd = stream_open(&data)) < 0) {
		rc = dfd;
		goto out;
	}
	if (!ftp_step(&s, "RETR index.txt\r\n", 150))
		goto out;
	if ((rc = stream_read(dfd, buf, size, NULL, deadline)) >= 0 &&
	    (!ftp_step(&s, NULL, 226) || !ftp_step(&s, "QUIT\r\n", 221)))
		rc = -EPROTO;
out:
	if (rc == -EPROTO)
		snprintf(buf, size, "\"%s\" (%d) to %s", s.reply, s.code,
			 s.step);
	if (dfd >= 0)
		close(dfd);
	close(s.fd);
	return rc;
}

/* SSH: a connection past the banners (ours, then the server's, in buf):
 * its fd, or -errno. */
static int ssh_connect(const struct hx_target *t, char *buf, size_t size,
		       int64_t deadline, ssize_t *len)
{
	int fd = stream_open(t);

	if (fd < 0)
		return fd;
	*len = stream_send(fd, "SSH-2.0-cluster-run-test\r\n", deadline);
	if (*len == 0)
		*len = stream_read(fd, buf, size, line_done, deadline);
	if (*len < 0) {
		close(fd);
		return (int)*len;
	}
	return fd;
}

/* SSH: the server's identification line, after ours; then our end is
 * shut and the rest read until the server's process for the connection
 * closes it (dropbear refuses new clients while 5 from one address have
 * not authenticated: none is left over for the next request). */
static ssize_t exchange_ssh_banner(const struct hx_target *t, char *buf,
				   size_t size, int64_t deadline)
{
	char rest[4096];
	ssize_t len = 0, n;
	int fd = ssh_connect(t, buf, size, deadline, &len);

	if (fd < 0)
		return fd;
	shutdown(fd, SHUT_WR);
	n = stream_read(fd, rest, sizeof(rest), NULL, deadline);
	close(fd);
	return n < 0 && n != -ECONNRESET ? n : len;
}

/* An SSH connection, past the banners, left open: its fd. */
static int hold_ssh_session(const struct hx_target *t, int64_t deadline)
{
	char banner[256];
	ssize_t len;

	return ssh_connect(t, banner, sizeof(banner), deadline, &len);
}

/* TFTP: RRQ for index.txt (under 512 bytes: one DATA block), ACK to the
 * port it came from (the transfer's own socket).  The file's content in
 * buf, or -errno. */
static ssize_t exchange_tftp(const struct hx_target *t, char *buf,
			     size_t size, int64_t deadline)
{
	static const char rrq[] = "\0\1index.txt\0octet";
	struct sockaddr_storage ss, from;
	socklen_t len = target_addr(t, &ss), flen = sizeof(from);
	int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned char dgram[600], ack[4] = { 0, 4, 0, 1 };
	ssize_t n, rc;

	if (fd < 0)
		return -errno;
	if (sendto(fd, rrq, sizeof(rrq), 0, (struct sockaddr *)&ss, len) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = wait_for(fd, POLLIN, deadline)) < 0)
		goto out;
	n = recvfrom(fd, dgram, sizeof(dgram), 0, (struct sockaddr *)&from,
		     &flen);
	if (n < 4 || dgram[1] != 3 || dgram[3] != 1 || (size_t)n - 4 >= size) {
		rc = n < 0 ? -errno : -EPROTO;
		goto out;
	}
	memcpy(buf, dgram + 4, (size_t)n - 4);
	buf[n - 4] = '\0';
	rc = sendto(fd, ack, sizeof(ack), 0, (struct sockaddr *)&from, flen) < 0
		? -errno : n - 4;
out:
	close(fd);
	return rc;
}

/* ---- what the answers say ---- */

struct rs_pids {
	long pid;   /* the process that answered; 0 if the answer cannot say */
	long ppid;  /* its parent, where the answer says (python) */
};

/* The body of an HTTP response with status 200, or NULL. */
static const char *http_body(const char *resp)
{
	const char *body = strstr(resp, "\r\n\r\n");

	if (strncmp(resp, "HTTP/1.", 7) != 0 || strncmp(resp + 8, " 200 ", 5))
		return NULL;
	return body ? body + 4 : NULL;
}

/* A decimal number followed by one of the characters in `ends`. */
static bool number_at(const char *p, const char *ends, long *v,
		      const char **end)
{
	char *e;

	if (!p || *p < '1' || *p > '9')
		return false;
	*v = strtol(p, &e, 10);
	if (!*e || !strchr(ends, *e))
		return false;
	if (end)
		*end = e;
	return true;
}

/* nginx (return 200 "$pid\n"), node: the body is "<pid>\n". */
static bool parse_body_pid(const char *resp, struct rs_pids *out)
{
	const char *body = http_body(resp), *end;

	return number_at(body, "\n", &out->pid, &end) && end[1] == '\0';
}

/* pidserver.py: the body is "<pid> <ppid>\n". */
static bool parse_body_pid_ppid(const char *resp, struct rs_pids *out)
{
	const char *body = http_body(resp), *end;

	return number_at(body, " ", &out->pid, &end) &&
	       number_at(end + 1, "\n", &out->ppid, &end) && end[1] == '\0';
}

#define STATIC_BODY "served by a worker of cluster-run\n"

/* A static file's content, the pid not known (python3 -m http.server). */
static bool parse_static(const char *resp, struct rs_pids *out)
{
	const char *body = http_body(resp);

	out->pid = 0;
	return body && strcmp(body, STATIC_BODY) == 0;
}

/* The file itself (vsftpd, tftpd-hpa), the pid not known. */
static bool parse_file(const char *resp, struct rs_pids *out)
{
	out->pid = 0;
	return strcmp(resp, STATIC_BODY) == 0;
}

/* An SSH server's identification line (dropbear). */
static bool parse_ssh_banner(const char *resp, struct rs_pids *out)
{
	out->pid = 0;
	return strncmp(resp, "SSH-2.0-", 8) == 0 && strstr(resp, "\r\n");
}

/* lighttpd: the file's content, and "Server: pid-<pid>" (server.tag). */
static bool parse_lighttpd(const char *resp, struct rs_pids *out)
{
	const char *body = http_body(resp), *tag = strstr(resp, "\r\nServer: pid-");

	return body && strcmp(body, STATIC_BODY) == 0 && tag && tag < body &&
	       number_at(tag + 14, "\r", &out->pid, NULL);
}

/* memcached: "STAT pid <pid>\r\n" among the stats. */
static bool parse_memcached(const char *resp, struct rs_pids *out)
{
	const char *p = strstr(resp, "STAT pid ");

	return p && number_at(p + 9, "\r", &out->pid, NULL) &&
	       (strstr(resp, "\r\nEND\r\n") || strstr(resp, "STAT uptime"));
}

/* redis: INFO server's "process_id:<pid>\r\n", then QUIT's "+OK". */
static bool parse_redis(const char *resp, struct rs_pids *out)
{
	const char *p = strstr(resp, "\r\nprocess_id:");

	return resp[0] == '$' && p &&
	       number_at(p + 13, "\r", &out->pid, NULL) &&
	       strstr(resp, "+OK\r\n");
}

/* ---- one real server under cluster-run ---- */

enum pid_rule {
	PID_IS_WORKER,     /* the worker itself answers */
	PPID_IS_WORKER,    /* a child it forked for the connection answers */
	PID_UNKNOWN,       /* the answer does not say who */
};

struct real_case {
	const char *name;
	const char *sched;
	const char *argv[MAX_ARGS];     /* the server's command line */
	struct hx_target targets[2];    /* requests alternate between them */
	size_t n_targets;
	const char *request;
	bool (*parse)(const char *resp, struct rs_pids *out);
	enum pid_rule rule;
	/* the exchange, when it is not "send request, read until EOF" */
	ssize_t (*exchange)(const struct hx_target *t, char *buf,
			    size_t size, int64_t deadline);
	int requests;                   /* 0: REQUESTS */
	bool flat_fds;                  /* cluster-run's fd count must not
					   grow with the requests */
	/* a connection held open across the stop (its fd, or -errno) */
	int (*hold)(const struct hx_target *t, int64_t deadline);
};

/* Whether pid was named by a "forked" line of c. */
static bool is_worker(const struct hx_cluster *c, long pid)
{
	for (size_t i = 0; i < c->n_events; i++)
		if (c->events[i].kind == HX_FORKED && c->events[i].pid == pid)
			return true;
	return false;
}

static const char *target_name(const struct hx_target *t)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), strchr(t->host, ':') ? "[%s]:%d/%s"
		 : "%s:%d/%s", t->host, t->port,
		 t->proto == HX_UDP ? "udp" : "tcp");
	return buf;
}

/* The pid that stands for the worker in one answer. */
static long check_answer(struct hx_cluster *c, const struct real_case *rc,
			 int i, const char *resp)
{
	struct rs_pids p = { 0, 0 };

	hx_assert(c, rc->parse(resp, &p), "%s: request %d to %s: unexpected "
		  "answer:\n%s", rc->name, i,
		  target_name(&rc->targets[i % rc->n_targets]), resp);
	switch (rc->rule) {
	case PID_IS_WORKER:
		hx_assert(c, is_worker(c, p.pid), "%s: request %d answered by "
			  "pid %ld, which is no worker of the cluster",
			  rc->name, i, p.pid);
		return p.pid;
	case PPID_IS_WORKER:
		hx_assert(c, is_worker(c, p.ppid) && !is_worker(c, p.pid),
			  "%s: request %d answered by pid %ld (parent %ld): "
			  "want a child of a worker", rc->name, i, p.pid,
			  p.ppid);
		return p.ppid;
	case PID_UNKNOWN:
		break;
	}
	return 0;
}

/* Whether some process still has c's token in its environment. */
static long find_token_process(const struct hx_cluster *c)
{
	DIR *d = opendir("/proc");
	size_t tlen = strlen(c->token);
	struct dirent *de;
	long found = 0;

	cr_assert(d != NULL, "opendir /proc: %s", strerror(errno));
	while (!found && (de = readdir(d)) != NULL) {
		char path[300], env[1 << 15];
		size_t len;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/environ", de->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		len = fread(env, 1, sizeof(env) - 1, f);
		fclose(f);
		env[len] = '\0';
		for (size_t k = 0; k + tlen <= len; k += strlen(env + k) + 1)
			if (memcmp(env + k, c->token, tlen) == 0 &&
			    env[k + tlen] == '\0')
				found = strtol(de->d_name, NULL, 10);
	}
	closedir(d);
	return found;
}

/*
 * Waits (bounded) until every worker is asleep, between requests.  A server
 * whose loop checks its "terminate" flag before blocking in epoll_wait()
 * (nginx with master_process off) loses a SIGTERM that lands just before
 * the call, and in its master mode the master resends; a test that stops
 * it right after the last answer would catch that window now and then.
 */
static void settle(struct hx_cluster *c)
{
	for (size_t i = 0; i < c->n_events; i++) {
		if (c->events[i].kind == HX_FORKED)
			(void)hx_wait_asleep(c->events[i].pid, SETTLE_MS);
	}
}

/* SIGTERM: cluster-run exits 0, no worker nor child of one is left. */
static void stop_and_check(struct hx_cluster *c, const struct real_case *rc)
{
	int64_t deadline;
	long left;
	int status;

	int held = -1;

	if (rc->hold) {
		held = rc->hold(&rc->targets[0], hx_now_ms() + HX_QUERY_MS);
		hx_assert(c, held >= 0, "%s: the connection to hold across the "
			  "stop: %s", rc->name, strerror(-held));
	}
	settle(c);
	status = hx_stop(c, SIGTERM, HX_EXIT_MS);
	/* as without cluster-run, the held connection's process may outlive
	 * the server; it ends once its client leaves */
	if (held >= 0)
		close(held);
	hx_assert(c, status != -1, "%s: cluster-run did not exit within %d ms "
		  "of SIGTERM", rc->name, HX_EXIT_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s: cluster-run wait status 0x%x after SIGTERM, want exit 0",
		  rc->name, status);
	hx_assert_workers_gone(c);
	/* What the workers forked was SIGKILLed with their process groups;
	 * wait (bounded) until the kernel has taken it away. */
	deadline = hx_now_ms() + GONE_MS;
	while ((left = find_token_process(c)) != 0 && ms_left(deadline) > 0)
		poll(NULL, 0, 10);
	hx_assert(c, left == 0, "%s: pid %ld of this run still exists after "
		  "cluster-run exited", rc->name, left);
}

/* How many fds process pid has open. */
static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	cr_assert(d != NULL, "opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static ssize_t exchange(const struct real_case *rc, const struct hx_target *t,
			char *resp, size_t size, int64_t deadline)
{
	if (rc->exchange)
		return rc->exchange(t, resp, size, deadline);
	if (t->proto == HX_UDP)
		return exchange_memcached_udp(t, rc->request, "STAT pid", resp,
					      size, deadline);
	return exchange_stream(t, rc->request, resp, size, deadline);
}

static void run_real(const struct real_case *rc)
{
	const char *args[MAX_ARGS + 8] = { "-n", port_text(WORKERS), "--sched",
					   rc->sched, "--" };
	size_t n = 5, lines = WORKERS * rc->n_targets;
	int requests = rc->requests ? rc->requests : REQUESTS;
	long pids[MAX_REQUESTS];
	int distinct = 0, fds_early = 0;
	struct hx_cluster *c;
	char resp[8192];

	for (size_t i = 0; rc->argv[i]; i++)
		args[n++] = rc->argv[i];
	args[n] = NULL;
	c = hx_start(0, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, lines, HX_START_MS),
		  "%s: want %zu \"listening\" lines within %d ms", rc->name,
		  lines, HX_START_MS);
	cr_assert(requests <= MAX_REQUESTS);
	for (int i = 0; i < requests; i++) {
		const struct hx_target *t = &rc->targets[i % rc->n_targets];
		int64_t deadline = hx_now_ms() + HX_QUERY_MS;
		ssize_t got;
		bool seen = false;

		/* after a tenth of them: what every worker had open by then */
		if (i == requests / 10)
			fds_early = count_fds(c->pid);
		got = exchange(rc, t, resp, sizeof(resp), deadline);
		hx_pump(c, 0); /* keep the stderr pipe from filling */
		hx_assert(c, got >= 0, "%s: request %d to %s failed: %s%s%s",
			  rc->name, i, target_name(t), strerror((int)-got),
			  got == -EPROTO ? "; the answer: " : "",
			  got == -EPROTO ? resp : "");
		pids[i] = check_answer(c, rc, i, resp);
		for (int k = 0; k < i && !seen; k++)
			seen = pids[k] == pids[i];
		distinct += !seen && pids[i] != 0;
	}
	cr_log_info("%s: %d requests answered by %d distinct workers",
		    rc->name, requests, distinct);
	if (rc->flat_fds) {
		int fds_late = count_fds(c->pid);

		cr_log_info("%s: cluster-run had %d fds after %d requests, %d "
			    "after %d", rc->name, fds_early, requests / 10,
			    fds_late, requests);
		hx_assert(c, fds_late <= fds_early, "%s: cluster-run's fds grew "
			  "from %d to %d over %d requests", rc->name, fds_early,
			  fds_late, requests - requests / 10);
	}
	if (strcmp(rc->sched, "rr") == 0 && rc->targets[0].proto == HX_TCP &&
	    rc->rule != PID_UNKNOWN)
		hx_assert(c, distinct >= WORKERS, "%s: rr: %d distinct workers "
			  "answered %d requests, want %d", rc->name, distinct,
			  requests, WORKERS);
	hx_assert(c, hx_count(c, HX_FORKED) == WORKERS &&
		  hx_count(c, HX_ONLINE) == WORKERS &&
		  hx_count(c, HX_EXITED) + hx_count(c, HX_KILLED) == 0,
		  "%s: a worker died, was replaced, or another process checked "
		  "in as a worker during the test", rc->name);
	stop_and_check(c, rc);
	hx_free(c);
}

/* Three tests per server, one per scheduling policy. */
#define EVERY_POLICY(name)                                          \
	static void name(const char *sched);                         \
	Test(realservers, name##_rr) { name("rr"); }                 \
	Test(realservers, name##_none) { name("none"); }             \
	Test(realservers, name##_reuseport) { name("reuseport"); }

#define HTTP_GET(path) "GET " path " HTTP/1.0\r\nHost: localhost\r\n\r\n"

static struct hx_target tcp4(int port)
{
	return (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
				   .port = port };
}

/* nginx: `master_process off; daemon off;`, one process serving. */
EVERY_POLICY(nginx)
static void nginx(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "nginx", .sched = sched,
		.argv = { find_program("nginx", "nginx-light"),
			  "-p", dir, "-c", tmp_path("nginx.conf"),
			  "-e", "stderr", NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = HTTP_GET("/"),
		.parse = parse_body_pid, .rule = PID_IS_WORKER,
	};

	write_file(tmp_path("nginx.conf"),
		   "master_process off;\n"
		   "daemon off;\n"
		   "worker_processes 1;\n"
		   "error_log stderr notice;\n"
		   "pid %s/nginx.pid;\n"
		   "events { worker_connections 128; }\n"
		   "http {\n"
		   "  access_log off;\n"
		   "  client_body_temp_path %s/body;\n"
		   "  proxy_temp_path %s/proxy;\n"
		   "  fastcgi_temp_path %s/fastcgi;\n"
		   "  uwsgi_temp_path %s/uwsgi;\n"
		   "  scgi_temp_path %s/scgi;\n"
		   "  server {\n"
		   "    listen 127.0.0.1:%d;\n"
		   "    location / { return 200 \"$pid\\n\"; }\n"
		   "  }\n"
		   "}\n", dir, dir, dir, dir, dir, dir, port);
	run_real(&rc);
}

/* lighttpd -D: epoll, an accept4 loop, TCP_NODELAY before bind. */
EVERY_POLICY(lighttpd)
static void lighttpd(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "lighttpd", .sched = sched,
		.argv = { find_program("lighttpd", "lighttpd"),
			  "-D", "-f", tmp_path("lighttpd.conf"), NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = HTTP_GET("/index.txt"),
		.parse = parse_lighttpd, .rule = PID_IS_WORKER,
	};

	write_file(tmp_path("index.txt"), STATIC_BODY);
	write_file(tmp_path("lighttpd.conf"),
		   "server.document-root = \"%s\"\n"
		   "server.bind = \"127.0.0.1\"\n"
		   "server.port = %d\n"
		   "server.tag = \"pid-\" + var.PID\n"
		   "server.event-handler = \"linux-sysepoll\"\n",
		   dir, port);
	run_real(&rc);
}

/* python3 -m http.server: its own handler serves a file. */
EVERY_POLICY(python_http_server)
static void python_http_server(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "python3 -m http.server", .sched = sched,
		.argv = { find_program("python3", "python3"), "-m",
			  "http.server", port_text(port), "--bind",
			  "127.0.0.1", "--directory", dir, NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = HTTP_GET("/index.txt"),
		.parse = parse_static, .rule = PID_UNKNOWN,
	};

	write_file(tmp_path("index.txt"), STATIC_BODY);
	run_real(&rc);
}

static const char *pidserver_py(void)
{
	static char path[512];
	const char *dir = getenv("REALSERVERS_DIR");

	cr_assert(dir != NULL, "REALSERVERS_DIR is not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/pidserver.py", dir);
	return path;
}

/* pidserver.py KIND on a free port: "<pid> <ppid>" answers. */
static void run_pidserver(const char *sched, const char *kind,
			  const char *name, enum pid_rule rule)
{
	int port = hx_free_port(SOCK_STREAM);
	struct real_case rc = {
		.name = name, .sched = sched,
		.argv = { find_program("python3", "python3"), pidserver_py(),
			  kind, "127.0.0.1", port_text(port), NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = HTTP_GET("/"),
		.parse = parse_body_pid_ppid, .rule = rule,
	};

	run_real(&rc);
}

/* http.server's ThreadingHTTPServer with a handler answering its pid. */
EVERY_POLICY(python_threading)
static void python_threading(const char *sched)
{
	run_pidserver(sched, "threading", "python3 ThreadingHTTPServer", PID_IS_WORKER);
}

/* socketserver.ForkingTCPServer: a child per connection answers. */
EVERY_POLICY(python_forking)
static void python_forking(const char *sched)
{
	run_pidserver(sched, "forking", "python3 ForkingTCPServer", PPID_IS_WORKER);
}

/* node: http.createServer (libuv accepts from its event loop). */
EVERY_POLICY(node)
static void node(const char *sched)
{
	static char script[256];
	int port = hx_free_port(SOCK_STREAM);
	struct real_case rc = {
		.name = "node", .sched = sched,
		.argv = { find_program("node", "nodejs"), "-e", script, NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = HTTP_GET("/"),
		.parse = parse_body_pid, .rule = PID_IS_WORKER,
	};

	snprintf(script, sizeof(script),
		 "require('http').createServer((req, res) => "
		 "res.end(process.pid + '\\n')).listen(%d, '127.0.0.1')", port);
	run_real(&rc);
}

/* memcached -t 2 over TCP (libevent, accepts on one thread, serves on two). */
EVERY_POLICY(memcached_tcp)
static void memcached_tcp(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	struct real_case rc = {
		.name = "memcached (TCP)", .sched = sched,
		.argv = { find_program("memcached", "memcached"), "-u", "root",
			  "-t", "2", "-l", "127.0.0.1", "-p", port_text(port),
			  "-U", "0", NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.request = "stats\r\nquit\r\n",
		.parse = parse_memcached, .rule = PID_IS_WORKER,
	};

	run_real(&rc);
}

/* memcached -U: UDP only (-p 0); UDP is always shared. */
EVERY_POLICY(memcached_udp)
static void memcached_udp(const char *sched)
{
	int port = hx_free_port(SOCK_DGRAM);
	struct real_case rc = {
		.name = "memcached (UDP)", .sched = sched,
		.argv = { find_program("memcached", "memcached"), "-u", "root",
			  "-t", "2", "-l", "127.0.0.1", "-p", "0",
			  "-U", port_text(port), NULL },
		.targets = { { .proto = HX_UDP, .host = "127.0.0.1",
			       .port = port } },
		.n_targets = 1,
		.request = "stats\r\n",
		.parse = parse_memcached, .rule = PID_IS_WORKER,
	};

	run_real(&rc);
}

/* redis-server on 127.0.0.1 and ::1 (V6ONLY): two listeners per worker. */
EVERY_POLICY(redis)
static void redis(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	bool v6 = hx_have_ipv6();
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "redis-server", .sched = sched,
		.argv = { find_program("redis-server", "redis-server"),
			  "--port", port_text(port),
			  "--bind", v6 ? "127.0.0.1 ::1" : "127.0.0.1",
			  "--save", "", "--appendonly", "no",
			  "--daemonize", "no", "--dir", dir, NULL },
		.targets = { tcp4(port),
			     { .proto = HX_TCP, .host = "::1", .port = port } },
		.n_targets = v6 ? 2 : 1,
		.request = "INFO server\r\nQUIT\r\n",
		.parse = parse_redis, .rule = PID_IS_WORKER,
	};

	if (!v6)
		cr_log_info("redis: no ::1 here; 127.0.0.1 only");
	run_real(&rc);
}

/* ---- servers whose processes do more than bind at start-up ---- */

/* A run of n consecutive TCP ports free on 127.0.0.1 right now: the
 * first. */
static int free_port_range(int n)
{
	for (int tries = 0; tries < 100; tries++) {
		int base = hx_free_port(SOCK_STREAM), k;

		for (k = 1; k < n && base + k < 65536; k++) {
			struct sockaddr_in sin = { .sin_family = AF_INET };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			int ok;

			sin.sin_port = htons((uint16_t)(base + k));
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin,
					     sizeof(sin)) == 0;
			if (fd >= 0)
				close(fd);
			if (!ok)
				break;
		}
		if (k == n)
			return base;
	}
	cr_assert_fail("no %d consecutive free ports on 127.0.0.1", n);
	return -1;
}

/* Runs argv to its end (its stdout to /dev/null); its exit status must be
 * 0. */
static void run_command(const char *const *argv)
{
	int status;
	pid_t pid = fork();

	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null >= 0)
			dup2(null, STDOUT_FILENO); /* its chatter */
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	cr_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "%s failed (status 0x%x)", argv[0],
		  status);
}

/* vsftpd: the listener's process forks a session per client; each PASV
 * binds a data listener in the session's processes, from 4 ports that 100
 * sessions reuse (as they do without cluster-run). */
EVERY_POLICY(vsftpd)
static void vsftpd(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM), pasv = free_port_range(4);
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "vsftpd", .sched = sched,
		.argv = { need_program("vsftpd", "vsftpd"),
			  tmp_path("vsftpd.conf"), NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.parse = parse_file, .rule = PID_UNKNOWN,
		.exchange = exchange_ftp,
	};

	/* the anonymous root: vsftpd refuses one its user could write */
	cr_assert(mkdir(tmp_path("ftp"), 0755) == 0, "mkdir: %s",
		  strerror(errno));
	write_file(tmp_path("ftp/index.txt"), STATIC_BODY);
	cr_assert(chmod(tmp_path("ftp"), 0555) == 0);
	write_file(tmp_path("vsftpd.conf"),
		   "listen=YES\n"
		   "listen_ipv6=NO\n"
		   "background=NO\n"
		   "listen_address=127.0.0.1\n"
		   "listen_port=%d\n"
		   "anonymous_enable=YES\n"
		   "no_anon_password=YES\n"
		   "anon_root=%s\n"
		   "local_enable=NO\n"
		   "write_enable=NO\n"
		   "pasv_enable=YES\n"
		   "pasv_address=127.0.0.1\n"
		   "pasv_min_port=%d\n"
		   "pasv_max_port=%d\n"
		   "xferlog_enable=NO\n"
		   "vsftpd_log_file=%s/vsftpd.log\n",
		   port, tmp_path("ftp"), pasv, pasv + 3, dir);
	run_real(&rc);
}

/* dropbear -F: a child per connection, which closes the inherited
 * listener (and calls setsid()); the banner comes from that child.  It is
 * stopped while an SSH connection is open: SIGTERM ends the worker at
 * once, its session's child is not its daemon. */
EVERY_POLICY(dropbear)
static void dropbear(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM);
	static char listen_at[64], pidfile[128];
	const char *dir = make_tmpdir();
	const char *keygen[] = { need_program("dropbearkey", "dropbear-bin"),
				 "-t", "ed25519", "-f", tmp_path("hostkey"),
				 NULL };
	struct real_case rc = {
		.name = "dropbear", .sched = sched,
		.argv = { need_program("dropbear", "dropbear-bin"), "-F", "-E",
			  "-p", listen_at, "-r", tmp_path("hostkey"), "-P",
			  pidfile, NULL },
		.targets = { tcp4(port) }, .n_targets = 1,
		.parse = parse_ssh_banner, .rule = PID_UNKNOWN,
		.exchange = exchange_ssh_banner, .hold = hold_ssh_session,
	};

	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
	snprintf(pidfile, sizeof(pidfile), "%s/dropbear.pid", dir);
	run_command(keygen);
	run_real(&rc);
}

/* in.tftpd -L: the main process reads each request from the shared UDP
 * socket and forks a child per transfer, which binds a socket of its own
 * (port 0) for it: 200 transfers, and cluster-run's fds stay as they
 * were. */
EVERY_POLICY(tftpd)
static void tftpd(const char *sched)
{
	int port = hx_free_port(SOCK_DGRAM);
	static char listen_at[64];
	const char *dir = make_tmpdir();
	struct real_case rc = {
		.name = "tftpd-hpa", .sched = sched,
		.argv = { need_program("in.tftpd", "tftpd-hpa"), "-L", "-s",
			  dir, "-a", listen_at, NULL },
		.targets = { { .proto = HX_UDP, .host = "127.0.0.1",
			       .port = port } },
		.n_targets = 1,
		.parse = parse_file, .rule = PID_UNKNOWN,
		.exchange = exchange_tftp,
		.requests = 200, .flat_fds = true,
	};

	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
	cr_assert(chmod(dir, 0755) == 0);
	write_file(tmp_path("index.txt"), STATIC_BODY);
	run_real(&rc);
}

/* A python server that runs subprocess.run() once after it listens:
 * CPython's vfork() child closes every fd (close_range) in the worker's
 * memory. */
EVERY_POLICY(python_subprocess)
static void python_subprocess(const char *sched)
{
	run_pidserver(sched, "subprocess", "python3 subprocess.run()", PID_IS_WORKER);
}
