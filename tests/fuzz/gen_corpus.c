/*
 * gen_corpus.c - writes the seed corpus of tests/fuzz/corpus/: valid
 * conversations and invalid messages, for fuzz_channel (corpus/channel/)
 * and fuzz_validate (corpus/validate/).  The files are committed; run this
 * again when the message format changes:
 *
 *   build/tests/fuzz/gen_corpus tests/fuzz/corpus
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cluster_proto.h"
#include "fuzz.h"
#include "proto_codec.h"

static const char *outdir;
static uint8_t buf[8192];
static size_t len;

static void begin(uint8_t config)
{
	buf[0] = config;
	len = 1;
}

static void record_from(int second, uint8_t fds, const void *msg, size_t mlen)
{
	size_t field = mlen | (second ? FUZZ_SECOND_WORKER : 0);

	buf[len++] = fds;
	buf[len++] = (uint8_t)(field & 0xff);
	buf[len++] = (uint8_t)(field >> 8);
	memcpy(buf + len, msg, mlen);
	len += mlen;
}

static void record(uint8_t fds, const void *msg, size_t mlen)
{
	record_from(0, fds, msg, mlen);
}

static void save(const char *sub, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A single message for fuzz_validate: nfds given, fds attached. */
static void save_validate(const char *name, const void *msg, size_t mlen,
			  int nfds, int attach)
{
	buf[0] = (uint8_t)((nfds < 0 ? 4 - nfds : nfds) | attach << 3);
	memcpy(buf + 1, msg, mlen);
	len = 1 + mlen;
	save("validate", name);
}

static struct cluster_msg_query_server query_inet(int type)
{
	struct cluster_msg_query_server q;
	struct sockaddr_in *sin = (struct sockaddr_in *)&q.addr.ss;

	cluster_msg_init(&q, CLUSTER_MSG_QUERY_SERVER);
	q.domain = AF_INET;
	q.type = type;
	q.addr.len = sizeof(*sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return q;
}

static struct cluster_msg_query_server query_inet6(void)
{
	struct cluster_msg_query_server q;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&q.addr.ss;

	cluster_msg_init(&q, CLUSTER_MSG_QUERY_SERVER);
	q.domain = AF_INET6;
	q.type = SOCK_STREAM;
	q.addr.len = sizeof(*sin6);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_loopback;
	return q;
}

static struct cluster_msg_query_server query_unix(const char *path,
						  bool abstract)
{
	struct cluster_msg_query_server q;
	struct sockaddr_un *sun = (struct sockaddr_un *)&q.addr.ss;

	cluster_msg_init(&q, CLUSTER_MSG_QUERY_SERVER);
	q.domain = AF_UNIX;
	q.type = SOCK_STREAM;
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path + abstract, path);
	q.addr.len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) +
				abstract + strlen(path) + !abstract);
	return q;
}

static struct cluster_msg_listen listen_msg(uint32_t id, uint32_t flags)
{
	struct cluster_msg_listen l;

	cluster_msg_init(&l, CLUSTER_MSG_LISTEN);
	l.handle_id = id;
	l.backlog = 64;
	l.flags = flags;
	return l;
}

static struct cluster_msg_close close_msg(uint32_t id)
{
	struct cluster_msg_close c;

	cluster_msg_init(&c, CLUSTER_MSG_CLOSE);
	c.handle_id = id;
	return c;
}

static struct cluster_msg_unlink_path unlink_msg(const char *path)
{
	struct cluster_msg_unlink_path u;

	cluster_msg_init(&u, CLUSTER_MSG_UNLINK_PATH);
	snprintf(u.path, sizeof(u.path), "%s", path);
	return u;
}

#define REPLY1 FUZZ_FDS(1, FUZZ_FD_REPLY, 0, 0)
#define QUERY2 FUZZ_FDS(2, FUZZ_FD_REPLY, FUZZ_FD_QUERY, 0)

/* QUERY, LISTEN, CLOSE of one handle in each policy. */
static void conversations(void)
{
	static const char *const policy[] = { "rr", "none", "reuseport" };
	struct cluster_msg_hello hello;
	struct cluster_msg_query_server q;
	struct cluster_msg_listen l = listen_msg(1, 0);
	struct cluster_msg_listen lnb = listen_msg(1, CLUSTER_LISTEN_NONBLOCK_CONNS);
	struct cluster_msg_close c = close_msg(1);
	struct cluster_msg_unlink_path u;
	char name[64];
	int p;

	cluster_msg_init(&hello, CLUSTER_MSG_HELLO);
	for (p = 0; p < 3; p++) {
		q = query_inet(SOCK_STREAM);
		begin((uint8_t)p);
		record(0, &hello, sizeof(hello));
		record(QUERY2, &q, sizeof(q));
		record(REPLY1, &l, sizeof(l));
		record(0, &c, sizeof(c));
		snprintf(name, sizeof(name), "tcp-%s", policy[p]);
		save("channel", name);

		begin((uint8_t)(p | 1 << 2));
		record(QUERY2, &q, sizeof(q));
		record(QUERY2, &q, sizeof(q));
		record(REPLY1, &lnb, sizeof(lnb));
		l.handle_id = 2;
		record(REPLY1, &l, sizeof(l));
		l.handle_id = 1;
		record(REPLY1, &l, sizeof(l)); /* again: EINVAL */
		record(0, &c, sizeof(c));
		record(0, &c, sizeof(c));      /* again: ignored */
		record(REPLY1, &l, sizeof(l)); /* after CLOSE: EBADF */
		snprintf(name, sizeof(name), "two-handles-%s", policy[p]);
		save("channel", name);

		q = query_inet6();
		begin((uint8_t)p);
		record(QUERY2, &q, sizeof(q));
		record(REPLY1, &l, sizeof(l));
		snprintf(name, sizeof(name), "tcp6-%s", policy[p]);
		save("channel", name);

		q = query_unix(FUZZ_SANDBOX_DIR "/s.sock", false);
		u = unlink_msg(FUZZ_SANDBOX_DIR "/s.sock");
		begin((uint8_t)p);
		record(REPLY1, &u, sizeof(u));
		record(QUERY2, &q, sizeof(q));
		record(REPLY1, &l, sizeof(l));
		record(REPLY1, &u, sizeof(u)); /* live: left alone */
		record(0, &c, sizeof(c));
		snprintf(name, sizeof(name), "unix-%s", policy[p]);
		save("channel", name);
	}
	/* two workers on one handle: the second joins, then both let go */
	for (p = 0; p < 4; p++) {
		q = query_inet(SOCK_STREAM);
		begin((uint8_t)(p < 3 ? p : 2 | 0x10)); /* 0x10: same slot */
		record_from(0, QUERY2, &q, sizeof(q));
		record_from(0, REPLY1, &l, sizeof(l));
		record_from(1, REPLY1, &l, sizeof(l)); /* not its own: EBADF */
		record_from(1, QUERY2, &q, sizeof(q));
		record_from(1, REPLY1, &l, sizeof(l));
		record_from(0, 0, &c, sizeof(c));
		record_from(1, REPLY1, &l, sizeof(l));
		record_from(1, 0, &c, sizeof(c));
		snprintf(name, sizeof(name), "shared-%s%s", policy[p < 3 ? p : 2],
			 p < 3 ? "" : "-same-slot");
		save("channel", name);
	}

	/* --uid: a declared address and path, an undeclared port */
	q = query_inet(SOCK_STREAM);
	((struct sockaddr_in *)&q.addr.ss)->sin_port = htons(8080);
	u = unlink_msg(FUZZ_SANDBOX_DIR "/s.sock");
	begin(3);
	record(QUERY2, &q, sizeof(q));
	record(REPLY1, &l, sizeof(l));
	record(REPLY1, &u, sizeof(u));
	q = query_unix(FUZZ_SANDBOX_DIR "/s.sock", false);
	record(QUERY2, &q, sizeof(q));
	q = query_inet(SOCK_STREAM);
	record(QUERY2, &q, sizeof(q));
	u = unlink_msg(FUZZ_SANDBOX_DIR "/other.sock");
	record(REPLY1, &u, sizeof(u));
	save("channel", "uid-declared");

	q = query_inet(SOCK_DGRAM);
	begin(0);
	record(QUERY2, &q, sizeof(q));
	record(REPLY1, &l, sizeof(l)); /* datagrams: EOPNOTSUPP */
	record(0, &c, sizeof(c));
	save("channel", "udp");

	q = query_unix("abstract", true);
	begin(0);
	record(QUERY2, &q, sizeof(q));
	record(REPLY1, &l, sizeof(l));
	save("channel", "unix-abstract");

	/* a reply socket that is /dev/null, a server socket of another kind */
	q = query_inet(SOCK_STREAM);
	begin(0);
	record(FUZZ_FDS(2, FUZZ_FD_NULL, FUZZ_FD_REPLY, 0), &q, sizeof(q));
	record(FUZZ_FDS(1, FUZZ_FD_NULL, 0, 0), &l, sizeof(l));
	save("channel", "odd-fds");

	/* a worker about to exec what will not load the shim, before any
	 * listener (auto: the switch), then once one exists (too late) */
	{
		struct cluster_msg_exec e;

		cluster_msg_init(&e, CLUSTER_MSG_EXEC);
		e.reason = CLUSTER_EXEC_STATIC;
		snprintf(e.path, sizeof(e.path), "/bin/static-server");
		begin(0);
		record(0, &hello, sizeof(hello));
		record(REPLY1, &e, sizeof(e));
		save("channel", "exec-static");
		q = query_inet(SOCK_STREAM);
		begin(0);
		record(QUERY2, &q, sizeof(q));
		record(REPLY1, &l, sizeof(l));
		e.reason = CLUSTER_EXEC_NO_PRELOAD;
		record(REPLY1, &e, sizeof(e));
		save("channel", "exec-late");
	}
}

/* One violation each, after a valid HELLO. */
static void violations(void)
{
	struct cluster_msg_hello hello;
	struct cluster_msg_reply reply;
	struct cluster_msg_newconn nc;
	struct cluster_msg_listen l = listen_msg(77, 0);
	struct cluster_msg_close c = close_msg(0);
	struct cluster_msg_query_server q = query_inet(SOCK_STREAM);
	struct cluster_msg_unlink_path u;
	uint8_t big[600] = { 0 };

	cluster_msg_init(&hello, CLUSTER_MSG_HELLO);
	cluster_msg_init(&reply, CLUSTER_MSG_REPLY);
	cluster_msg_init(&nc, CLUSTER_MSG_NEWCONN);
	memcpy(big, &hello, sizeof(hello));

#define VIOLATION(name, fds, msg, mlen) \
	do {                                \
		begin(0);                   \
		record(0, &hello, sizeof(hello)); \
		record(fds, msg, mlen);     \
		save("channel", "bad-" name); \
	} while (0)
	VIOLATION("empty", 0, "", 0);
	VIOLATION("short", 0, &hello, 5);
	VIOLATION("oversized", 0, big, sizeof(big));
	hello.hdr.version = 2;
	VIOLATION("version", 0, &hello, sizeof(hello));
	hello.hdr.version = CLUSTER_PROTO_VERSION;
	hello.hdr.type = 99;
	VIOLATION("type", 0, &hello, sizeof(hello));
	hello.hdr.type = CLUSTER_MSG_HELLO;
	hello.hdr.length = 12;
	VIOLATION("length", 0, &hello, sizeof(hello));
	hello.hdr.length = sizeof(hello);
	VIOLATION("fds", FUZZ_FDS(2, FUZZ_FD_NULL, FUZZ_FD_STREAM, 0), &hello,
		  sizeof(hello));
	VIOLATION("reply", FUZZ_FDS(1, FUZZ_FD_NULL, 0, 0), &reply, sizeof(reply));
	VIOLATION("newconn", FUZZ_FDS(1, FUZZ_FD_STREAM, 0, 0), &nc, sizeof(nc));
	VIOLATION("listen-unissued", REPLY1, &l, sizeof(l));
	VIOLATION("close-unissued", 0, &c, sizeof(c));
	q.domain = 17;
	VIOLATION("query-domain", QUERY2, &q, sizeof(q));
	q = query_inet(SOCK_STREAM);
	q.addr.len = 200;
	VIOLATION("query-addrlen", QUERY2, &q, sizeof(q));
	u = unlink_msg("");
	memset(u.path, 'x', sizeof(u.path));
	VIOLATION("unlink-unterminated", REPLY1, &u, sizeof(u));
	{
		struct cluster_msg_exec e;

		cluster_msg_init(&e, CLUSTER_MSG_EXEC);
		e.reason = CLUSTER_EXEC_REASON_MAX;
		VIOLATION("exec-reason", REPLY1, &e, sizeof(e));
		e.reason = CLUSTER_EXEC_GO;
		memset(e.path, 'x', sizeof(e.path));
		VIOLATION("exec-unterminated", REPLY1, &e, sizeof(e));
	}
	VIOLATION("query-3fds", FUZZ_FDS(3, FUZZ_FD_REPLY, FUZZ_FD_QUERY,
					 FUZZ_FD_NULL), &q, sizeof(q));
}

static void validate_seeds(void)
{
	struct cluster_msg_hello hello;
	struct cluster_msg_query_server q = query_inet(SOCK_STREAM);
	struct cluster_msg_listen l = listen_msg(1, 0);
	struct cluster_msg_close c = close_msg(1);
	struct cluster_msg_unlink_path u = unlink_msg("/tmp/x.sock");
	struct cluster_msg_reply r;
	struct cluster_msg_newconn nc;

	cluster_msg_init(&hello, CLUSTER_MSG_HELLO);
	cluster_msg_init(&r, CLUSTER_MSG_REPLY);
	cluster_msg_init(&nc, CLUSTER_MSG_NEWCONN);
	save_validate("hello", &hello, sizeof(hello), 0, 0);
	save_validate("query", &q, sizeof(q), 2, 2);
	save_validate("listen", &l, sizeof(l), 1, 1);
	save_validate("close", &c, sizeof(c), 0, 0);
	save_validate("unlink", &u, sizeof(u), 1, 1);
	save_validate("reply", &r, sizeof(r), 2, 2);
	save_validate("newconn", &nc, sizeof(nc), 1, 1);
	save_validate("query-7fds", &q, sizeof(q), 3, 7);
	save_validate("hello-neg-fds", &hello, sizeof(hello), -1, 0);
	save_validate("short", &hello, 6, 0, 0);
	hello.hdr.version = 9;
	save_validate("version", &hello, sizeof(hello), 0, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	conversations();
	violations();
	validate_seeds();
	return 0;
}
