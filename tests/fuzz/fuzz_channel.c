/*
 * fuzz_channel.c - the supervisor's handling of what a worker sends:
 * worker_channel_handle() on a fake worker (no process) of a real cluster
 * object, with real fds attached (reply socketpairs, sockets, /dev/null),
 * a sequence of messages per input (see fuzz.h for the format).
 *
 * Checked besides the sanitizers: every fd a message brought is used or
 * closed and the supervisor opens none it does not close again (nothing
 * leaks once the worker and the handles are gone), every answer on a reply
 * socket is a well-formed REPLY with the fds it says, and a worker cut off
 * for a violation is sent SIGKILL (caught by sandbox.c) and read no more.
 */
#include "fuzz.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "listen_policy.h"
#include "proto_codec.h"

#define FAKE_PID 0x3fffffff /* sandbox.c swallows every kill() */

static struct event_base *base;
static struct cluster *clusters[4];
static enum cluster_sched made_sched[4];
static struct listen_addr declared[2]; /* clusters[3]'s --listen */
static int devnull = -1;
static bool verbose; /* FUZZ_VERBOSE=1: the log lines and the answers */

static void log_line(void *arg, const char *line)
{
	(void)arg;
	if (verbose)
		fprintf(stderr, "cluster-run: %s\n", line);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char *const argv0[] = { "fuzz-worker", NULL };
	struct cluster_settings s = { .argv = argv0, .log = log_line };
	int i;

	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	fuzz_sandbox_init();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	base = event_base_new();
	if (devnull < 0 || !base)
		fuzz_fail("cannot set up: %s", strerror(errno));
	if (listen_addr_parse("127.0.0.1:8080", &declared[0]) < 0 ||
	    listen_addr_parse("unix:" FUZZ_SANDBOX_DIR "/s.sock",
			      &declared[1]) < 0)
		fuzz_fail("listen_addr_parse failed");
	for (i = 0; i < 4; i++) {
		s.sched = i == 1 ? CLUSTER_SCHED_NONE
			: i == 2 ? CLUSTER_SCHED_REUSEPORT : CLUSTER_SCHED_RR;
		if (i == 3) { /* --uid 65534 --listen ... (nobody is forked) */
			s.set_uid = true;
			s.uid = 65534;
			s.allowed_listen = declared;
			s.nallowed_listen = 2;
		}
		made_sched[i] = s.sched;
		clusters[i] = cluster_new(base, &s);
		if (!clusters[i])
			fuzz_fail("cluster_new failed");
	}
	return 0;
}

/* The domain and type a QUERY_SERVER-sized message names, else TCP. */
static void query_kind(const uint8_t *msg, size_t len, int *domain, int *type)
{
	struct cluster_msg_query_server q;

	*domain = AF_INET;
	*type = SOCK_STREAM;
	if (len < sizeof(q))
		return;
	memcpy(&q, msg, sizeof(q));
	if (q.domain == AF_INET6 || q.domain == AF_UNIX)
		*domain = q.domain;
	if (q.type == SOCK_DGRAM || q.type == SOCK_SEQPACKET)
		*type = q.type;
}

/* fds[i] for the worker to send; peers[i] is the end kept (or -1). */
static void make_fds(uint8_t spec, const uint8_t *msg, size_t len, int *fds,
		     int *peers, int *nfds)
{
	int i, domain, type;

	query_kind(msg, len, &domain, &type);
	*nfds = spec & 3;
	for (i = 0; i < *nfds; i++) {
		int sv[2];

		peers[i] = -1;
		switch ((enum fuzz_fd)((spec >> (2 + 2 * i)) & 3)) {
		case FUZZ_FD_REPLY:
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
				       0, sv) < 0)
				fuzz_fail("socketpair: %s", strerror(errno));
			fds[i] = sv[1];
			peers[i] = sv[0];
			break;
		case FUZZ_FD_STREAM:
			fds[i] = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
			break;
		case FUZZ_FD_QUERY: /* AF_INET has no SOCK_SEQPACKET */
			fds[i] = socket(domain, type | SOCK_CLOEXEC, 0);
			break;
		case FUZZ_FD_NULL:
			fds[i] = -1;
			break;
		}
		if (fds[i] < 0)
			fds[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
		if (fds[i] < 0)
			fuzz_fail("cannot make fd %d: %s", i, strerror(errno));
	}
}

/* Whatever the supervisor wrote on a reply socket must be one REPLY. */
static void check_answers(int peer)
{
	union {
		struct cluster_msg_reply reply;
		char bytes[CLUSTER_MSG_MAX_SIZE];
	} in;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, trunc, i, replies = 0;
	ssize_t n;

	while ((n = cluster_msg_recv(peer, &in, sizeof(in), fds, &nfds,
				     MSG_DONTWAIT | MSG_CMSG_CLOEXEC,
				     &trunc)) >= 0) {
		if (n == 0 && nfds == 0)
			break; /* the supervisor's end is closed */
		if (trunc || cluster_msg_validate(&in, (size_t)n, nfds) != 0 ||
		    in.reply.hdr.type != CLUSTER_MSG_REPLY ||
		    in.reply.nfds != (uint32_t)nfds || ++replies > 1)
			fuzz_fail("bad answer: %zd bytes, %d fds, type %u, "
				  "says %u fds (answer %d)", n, nfds,
				  in.reply.hdr.type, in.reply.nfds, replies);
		if (in.reply.error < 0 || (in.reply.error != 0 && nfds != 0))
			fuzz_fail("answer with error %d and %d fds",
				  in.reply.error, nfds);
		if (verbose)
			fprintf(stderr, "  answer: error %d, handle %u, kind %u, "
				"%d fds\n", in.reply.error, in.reply.handle_id,
				in.reply.kind, nfds);
		for (i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static struct cluster_worker *fake_worker(struct cluster *c, unsigned id)
{
	struct cluster_worker *w = calloc(1, sizeof(*w));

	if (!w)
		fuzz_fail("out of memory");
	w->cluster = c;
	w->id = id;
	w->pid = FAKE_PID;
	w->channel_fd = -1;
	w->connected = true;
	return w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_fds before;
	struct cluster_worker *ws[2];
	bool cut_off[2] = { false, false };
	struct cluster *c;
	unsigned id;
	size_t pos = 1;
	int records = 0;

	if (size < 1)
		return 0;
	c = clusters[data[0] & 3];
	id = 1 + ((data[0] >> 2) & 3);
	fuzz_fds_take(&before);
	ws[0] = fake_worker(c, id);
	/* the second: another slot, or the same one (a reload's new worker) */
	ws[1] = fake_worker(c, data[0] & 0x10 ? id : id % 4 + 1);
	c->next_handle_id = 0; /* no handle is left: ids start at 1 again */
	while (pos + 3 <= size && records++ < FUZZ_MAX_RECORDS) {
		uint8_t spec = data[pos];
		size_t len = ((size_t)data[pos + 1] | (size_t)data[pos + 2] << 8);
		int who = (int)(len >> 15), fds[3], peers[3], nfds, i, rc;
		unsigned long kills = fuzz_kills();
		struct cluster_worker *w = ws[who];

		len &= 0x7fff;
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		if (cut_off[who]) { /* its channel is closed: nothing comes */
			pos += len;
			continue;
		}
		make_fds(spec, data + pos, len, fds, peers, &nfds);
		rc = worker_channel_handle(w, data + pos, len, fds, nfds);
		pos += len;
		for (i = 0; i < nfds; i++) {
			if (peers[i] < 0)
				continue;
			check_answers(peers[i]);
			close(peers[i]);
		}
		if (rc < 0 && (fuzz_kills() == kills || w->connected))
			fuzz_fail("a violation, and the worker was neither "
				  "killed nor cut off");
		if (rc == 0 && fuzz_kills() != kills)
			fuzz_fail("the worker was killed without a violation");
		cut_off[who] = rc < 0;
	}
	/* the events the input caused wait in the cluster's queue for the
	 * loop: delivered (to no subscriber) before their workers go */
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (int i = 0; i < 2; i++) {
		handle_worker_gone(ws[i]);
		free(ws[i]);
	}
	handle_free_all(c);
	/* an EXEC may have switched it to the seccomp mode (worker_exec.c):
	 * each input starts from the cluster as it was made */
	c->seccomp = false;
	c->said_exec = false;
	c->settings.sched = made_sched[data[0] & 3];
	fuzz_fds_check(&before, "the messages of one input");
	return 0;
}
