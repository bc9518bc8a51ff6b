/*
 * test_sticky.c - sticky sessions (--sticky): clients on many loopback
 * source addresses each always reach one worker, `ctl scale 5` moves at
 * most 30% of them (only to the new slot), a stopped worker's clients go
 * to their next slot while its window is full and the connections queued
 * on it are served once it goes on; a killed worker's clients are served
 * by their next slot until its slot's new worker has them back, and a
 * reload's new workers keep every client on its slot; the HTTP modes route by what the
 * request names and the server still reads the request byte for byte
 * (also one that comes in several segments); a request whose head never
 * completes is served after the wait; `ctl status` counts the clients per
 * slot; --sticky with another --sched is refused.  And the real thing:
 * python-socketio (Debian's, unmodified, threading mode, long polling)
 * under -n 4 --sticky serves 20 clients x 20 messages without an error,
 * and fails without --sticky.
 */
#include "ops.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(sticky, .fini = ops_fini, .timeout = 120);

#define SOURCES 250         /* client addresses 127.0.0.2 ... 127.0.0.251 */
#define RR_WINDOW 16        /* connections queued per worker (the default) */
#define SIO_CLIENTS "20"
#define SIO_MESSAGES "20"
#define SIO_SOURCES "8"     /* 127.0.0.2 ... 127.0.0.9 */
#define SIO_RUN_MS 60000    /* the clients' run ends (bounded by its own timeouts) */

static const char *source(int i)
{
	static char buf[4][24];
	static int turn;
	char *b = buf[turn++ % 4];

	snprintf(b, sizeof(buf[0]), "127.0.0.%d", 2 + i);
	return b;
}

/* The answer to one connection from src; asserts there is one. */
static struct hx_answer query_from(struct ops_cluster *oc, const char *src)
{
	struct hx_target t = oc->target;
	struct hx_answer ans;
	int err;

	t.source = src;
	err = hx_query(&t, HX_QUERY_MS, &ans);
	hx_assert(oc->c, err == 0, "query from %s: %s", src, strerror(-err));
	return ans;
}

/* Each source's worker id, asked `times` times: always the same one. */
static void map_sources(struct ops_cluster *oc, int *id, int times)
{
	for (int i = 0; i < SOURCES; i++) {
		id[i] = query_from(oc, source(i)).id;
		for (int k = 1; k < times; k++) {
			int again = query_from(oc, source(i)).id;

			hx_assert(oc->c, again == id[i], "%s reached worker %d, "
				  "then worker %d", source(i), id[i], again);
		}
	}
}

Test(sticky, ip_each_client_one_worker_and_scaling_moves_few)
{
	struct ops_cluster oc;
	struct ops_run r;
	int before[SOURCES], after[SOURCES], per[6] = { 0 }, moved = 0;

	ops_start(&oc, 4, (const char *[]){ "--sticky", "ip", NULL });
	map_sources(&oc, before, 3);
	for (int i = 0; i < SOURCES; i++)
		per[before[i]]++;
	cr_log_info("%d clients over 4 workers: %d %d %d %d", SOURCES, per[1],
		    per[2], per[3], per[4]);
	for (int id = 1; id <= 4; id++) /* about 50 each: spread, not stuck */
		hx_assert(oc.c, per[id] >= SOURCES / 10, "worker %d got %d of "
			  "%d clients", id, per[id], SOURCES);

	/* ctl status counts them per slot. */
	hx_assert(oc.c, ops_status_long(&oc, "d['sticky']['remembered']") ==
		  SOURCES, "status does not count %d clients", SOURCES);
	for (int id = 1; id <= 4; id++) {
		char expr[64];

		snprintf(expr, sizeof(expr), "d['sticky']['clients']['%d']", id);
		hx_assert(oc.c, ops_status_long(&oc, expr) == per[id],
			  "status: slot %d's clients are not %d", id, per[id]);
	}

	ops_ctl(oc.c, oc.sock, (const char *[]){ "scale", "5", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl scale 5: %s", r.err);
	ops_run_free(&r);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_LISTENING, 5, 0, 0, HX_START_MS),
		  "worker 5 does not listen");
	map_sources(&oc, after, 2);
	for (int i = 0; i < SOURCES; i++) {
		hx_assert(oc.c, after[i] == before[i] || after[i] == 5,
			  "%s moved from worker %d to worker %d, not to the new "
			  "one", source(i), before[i], after[i]);
		moved += after[i] != before[i];
	}
	cr_log_info("scale 4 -> 5 moved %d of %d clients (1/5: %d)", moved,
		    SOURCES, SOURCES / 5);
	hx_assert(oc.c, moved > 0 && moved * 10 <= SOURCES * 3,
		  "scale 4 -> 5 moved %d of %d clients; want some, at most 30%%",
		  moved, SOURCES);
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, stopped_worker_clients_go_to_their_next_slot)
{
	struct ops_cluster oc;
	int id[SOURCES], queued[RR_WINDOW], victim, mine = -1, n = 0;
	pid_t pid;
	char buf[128];

	ops_start(&oc, 4, (const char *[]){ "--sticky", "ip", NULL });
	map_sources(&oc, id, 1);
	victim = id[0];
	pid = hx_worker_pid(oc.c, victim);
	cr_assert(kill(pid, SIGSTOP) == 0);
	hx_assert(oc.c, hx_wait_stopped(pid, HX_QUERY_MS), "worker %d (pid %d) "
		  "does not stop", victim, (int)pid);

	/* A window's worth of its clients' connections wait on it... */
	for (int k = 0; k < RR_WINDOW; k++) {
		struct hx_target t = oc.target;

		t.source = source(0);
		queued[k] = hx_connect(&t, HX_QUERY_MS);
		hx_assert(oc.c, queued[k] >= 0, "connect: %s",
			  strerror(-queued[k]));
	}
	/* ...then its clients go to their next slot, each always the same
	 * one, and nobody else moves. */
	for (int i = 0; i < SOURCES; i++) {
		struct hx_answer a = query_from(&oc, source(i));

		if (id[i] != victim) {
			hx_assert(oc.c, a.id == id[i], "%s moved from worker %d "
				  "to %d", source(i), id[i], a.id);
			continue;
		}
		hx_assert(oc.c, a.id != victim, "served by a stopped worker");
		hx_assert(oc.c, query_from(&oc, source(i)).id == a.id,
			  "%s: its next slot changed", source(i));
		if (i == 0)
			mine = a.id;
		n++;
	}
	cr_log_info("%d clients of stopped worker %d went on elsewhere", n,
		    victim);
	hx_assert(oc.c, mine > 0, "source 0 was not served");

	/* The queued connections were not lost: served once it goes on. */
	cr_assert(kill(pid, SIGCONT) == 0);
	for (int k = 0; k < RR_WINDOW; k++) {
		struct hx_answer a;
		int err = hx_read_all(queued[k], buf, sizeof(buf), HX_QUERY_MS);

		hx_assert(oc.c, err == 0 && hx_parse_answer(buf, &a) &&
			  a.id == victim, "queued connection %d: \"%s\" (%s)",
			  k, buf, strerror(-err));
		close(queued[k]);
	}
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, restarted_worker_gets_its_clients_back)
{
	struct ops_cluster oc;
	int id[SOURCES], victim;
	pid_t pid;
	size_t mark;

	/* The restart waits 8 s: time to see its clients served meanwhile. */
	ops_start(&oc, 4, (const char *[]){ "--sticky", "ip",
					    "--restart-delay", "8000", NULL });
	map_sources(&oc, id, 1);
	victim = id[0];
	pid = hx_worker_pid(oc.c, victim);
	mark = oc.c->n_events;
	cr_assert(kill(pid, SIGKILL) == 0);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_KILLED, victim, 0, mark,
				      HX_EXIT_MS), "worker %d not reaped", victim);
	/* Gone: its clients are served by their next slot, not refused. */
	for (int i = 0; i < SOURCES; i++) {
		int now = query_from(&oc, source(i)).id;

		hx_assert(oc.c, id[i] == victim ? now != victim : now == id[i],
			  "%s: worker %d while worker %d restarts (was %d)",
			  source(i), now, victim, id[i]);
	}
	/* Its slot's new worker has them all back. */
	hx_assert(oc.c, hx_wait_event(oc.c, HX_LISTENING, victim, pid, mark,
				      HX_START_MS), "worker %d not restarted",
		  victim);
	for (int i = 0; i < SOURCES; i++) {
		struct hx_answer a = query_from(&oc, source(i));

		hx_assert(oc.c, a.id == id[i], "%s reached worker %d after the "
			  "restart, not %d", source(i), a.id, id[i]);
		hx_assert(oc.c, id[i] != victim || a.pid != pid,
			  "answered by the killed pid");
	}
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, reload_keeps_every_client_on_its_slot)
{
	struct ops_cluster oc;
	struct ops_run r;
	int before[SOURCES], after[SOURCES];
	pid_t old[5];

	ops_start(&oc, 4, (const char *[]){ "--sticky", "ip", NULL });
	map_sources(&oc, before, 1);
	for (int id = 1; id <= 4; id++)
		old[id] = hx_worker_pid(oc.c, id);
	ops_ctl(oc.c, oc.sock, (const char *[]){ "reload", "--wait", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl reload --wait: %s", r.err);
	ops_run_free(&r);
	for (int id = 1; id <= 4; id++)
		hx_assert(oc.c, hx_worker_pid(oc.c, id) != old[id],
			  "worker %d was not replaced", id);
	map_sources(&oc, after, 1);
	for (int i = 0; i < SOURCES; i++)
		hx_assert(oc.c, after[i] == before[i], "%s reached worker %d "
			  "after the reload, %d before", source(i), after[i],
			  before[i]);
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

/* ---- HTTP modes, with fx_echo_request ---- */

/* cluster-run -n 4 --sticky MODE [--sticky-wait MS] -- fixture. */
static void start_http(struct ops_cluster *oc, const char *mode,
		       const char *wait_ms, const char *fixture)
{
	const char *port = ops_prepare(oc);
	const char *args[16] = { "-n", "4", "--sticky", mode };
	size_t n = 4;

	if (wait_ms) {
		args[n++] = "--sticky-wait";
		args[n++] = wait_ms;
	}
	args[n++] = "--";
	args[n++] = hx_fixture(fixture);
	args[n++] = "--port";
	args[n++] = port;
	oc->c = ops_start_args(oc->sock, args);
	hx_assert(oc->c, hx_wait_count(oc->c, HX_LISTENING, 4, HX_START_MS),
		  "want 4 \"listening\" lines");
}

/* Sends parts (NULL-terminated) one after another on one connection from
 * src, each after the one before it is held by the supervisor (its peek
 * incomplete), and asserts that the server read exactly their bytes; the
 * worker id that answered. */
static int echo_parts(struct ops_cluster *oc, const char *src,
		      const char *const *parts)
{
	struct hx_target t = oc->target;
	char want[4096] = "", got[4096], line[64], *nl;
	struct hx_answer a;
	int fd, err;

	t.source = src;
	fd = hx_connect(&t, HX_QUERY_MS);
	hx_assert(oc->c, fd >= 0, "connect from %s: %s", src, strerror(-fd));
	for (int k = 0; parts[k]; k++) {
		if (k > 0)
			hx_assert(oc->c, ops_wait_status(oc, "L[0]['held'] == 1",
							 HX_QUERY_MS),
				  "the first %d parts are not held", k);
		cr_assert(hx_send_all(fd, parts[k]) == 0);
		strncat(want, parts[k], sizeof(want) - strlen(want) - 1);
	}
	err = hx_read_all(fd, got, sizeof(got), HX_QUERY_MS);
	close(fd);
	nl = strchr(got, '\n');
	if (nl && (size_t)(nl - got) < sizeof(line) - 1)
		snprintf(line, sizeof(line), "%.*s", (int)(nl - got + 1), got);
	else
		line[0] = '\0';
	hx_assert(oc->c, err == 0 && nl && hx_parse_answer(line, &a),
		  "no answer from %s: \"%s\" (%s)", src, got, strerror(-err));
	hx_assert(oc->c, strcmp(nl + 1, want) == 0, "the server read \"%s\", "
		  "the client sent \"%s\"", nl + 1, want);
	return a.id;
}

static int echo(struct ops_cluster *oc, const char *src, const char *request)
{
	return echo_parts(oc, src, (const char *[]){ request, NULL });
}

#define PLAIN "GET /poll HTTP/1.1\r\nHost: test\r\n\r\n"
#define WITH_SID "GET /poll HTTP/1.1\r\nHost: test\r\n" \
		 "Cookie: theme=dark; sid=S1\r\n\r\n"

Test(sticky, cookie_pinned_where_first_seen_byte_exact)
{
	struct ops_cluster oc;
	int by_addr[40], first, other = 0, pinned;
	char expr[64];

	/* The wait outlasts a `ctl status` on a loaded machine: each part
	 * is sent once the ones before it are seen held. */
	start_http(&oc, "cookie:sid", "20000", "fx_echo_request");
	for (int i = 0; i < 40; i++) {
		by_addr[i] = echo(&oc, source(i), PLAIN);
		if (other == 0 && by_addr[i] != by_addr[0])
			other = i;
	}
	hx_assert(oc.c, other > 0, "40 addresses all on worker %d", by_addr[0]);

	/* A value seen for the first time goes by the client's address and
	 * is pinned there; from another address it goes there too. */
	first = echo(&oc, source(0), WITH_SID);
	hx_assert(oc.c, first == by_addr[0], "a new sid went to worker %d, its "
		  "address's is %d", first, by_addr[0]);
	pinned = echo(&oc, source(other), WITH_SID);
	hx_assert(oc.c, pinned == first, "sid S1 from %s reached worker %d, "
		  "pinned to %d", source(other), pinned, first);

	/* In segments, the cookie last: the supervisor waits for it. */
	pinned = echo_parts(&oc, source(other), (const char *[]){
		"GET /poll HTTP/1.1\r\nHo", "st: test\r\nCookie: th",
		"eme=dark; sid=S1\r\n", "\r\n", NULL });
	hx_assert(oc.c, pinned == first, "a request in segments reached worker "
		  "%d, not %d where its sid is pinned", pinned, first);

	/* Not HTTP: by the address, every byte still there. */
	hx_assert(oc.c, echo(&oc, source(other), "\x16\x03\x01 hello\r\n\r\n") ==
		  by_addr[other], "a request that is not HTTP did not go by "
		  "its address");

	hx_assert(oc.c, ops_status_long(&oc, "d['sticky']['remembered']") == 1,
		  "status: not one pinned value");
	snprintf(expr, sizeof(expr), "d['sticky']['clients']['%d']", first);
	hx_assert(oc.c, ops_status_long(&oc, expr) == 1,
		  "status: slot %d has not the pinned value", first);
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, header_forwarded_for_spreads_and_sticks)
{
	struct ops_cluster oc;
	int id[40] = { 0 }, per[5] = { 0 }, used = 0;
	char req[256];

	start_http(&oc, "header:X-Forwarded-For", NULL, "fx_echo_request");
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 40; i++) {
			int got;

			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\n"
				 "X-Forwarded-For: 10.1.2.%d, 127.0.0.1\r\n\r\n",
				 i);
			got = echo(&oc, "127.0.0.1", req);
			if (round == 0) {
				id[i] = got;
				used += per[got]++ == 0;
			}
			hx_assert(oc.c, got == id[i], "client 10.1.2.%d reached "
				  "worker %d, then %d", i, id[i], got);
		}
	cr_log_info("40 forwarded clients from one proxy address on %d "
		    "workers", used);
	hx_assert(oc.c, used >= 2, "40 forwarded clients all on one worker");
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, incomplete_head_served_after_the_wait)
{
	static const char *const sent[] = { "GET /?si", "" };
	struct ops_cluster oc;
	struct hx_answer a;
	char buf[128], line[64];
	int64_t t0, held_ms;
	int fd, err;

	/* Half a head, or nothing at all (a server-first protocol): held
	 * until the wait is over, then served by the client's address. */
	start_http(&oc, "query:sid", "2000", "fx_echo_request");
	for (int k = 0; k < 2; k++) {
		t0 = hx_now_ms();
		fd = hx_connect(&oc.target, HX_QUERY_MS);
		hx_assert(oc.c, fd >= 0, "connect: %s", strerror(-fd));
		cr_assert(hx_send_all(fd, sent[k]) == 0);
		hx_assert(oc.c, ops_wait_status(&oc, "L[0]['held'] == 1",
						HX_QUERY_MS), "not held");
		hx_assert(oc.c, ops_wait_status(&oc, "L[0]['held'] == 0",
						HX_QUERY_MS), "held for ever");
		held_ms = hx_now_ms() - t0;
		/* The server reads until EOF: what it read is what was sent. */
		shutdown(fd, SHUT_WR);
		err = hx_read_all(fd, buf, sizeof(buf), HX_QUERY_MS);
		close(fd);
		snprintf(line, sizeof(line), "%.*s", (int)strcspn(buf, "\n") + 1,
			 buf);
		hx_assert(oc.c, err == 0 && hx_parse_answer(line, &a) &&
			  strcmp(buf + strlen(line), sent[k]) == 0,
			  "not served intact: \"%s\" (%s)", buf, strerror(-err));
		cr_log_info("\"%s\": handed after %lld ms", sent[k],
			    (long long)held_ms);
		hx_assert(oc.c, held_ms >= 1900, "handed after %lld ms, before "
			  "the 2000 ms wait", (long long)held_ms);
	}
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

Test(sticky, needs_rr)
{
	const char *args[] = { "--sticky", "ip", "--sched", "none", "--",
			       hx_fixture("fx_blocking_accept"), NULL };
	struct hx_cluster *c = hx_start(0, args);
	int status = hx_wait_exit(c, HX_EXIT_MS);

	hx_assert(c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 2 && c->err.n_lines == 1 &&
		  strstr(c->err.lines[0], "--sticky needs --sched rr"),
		  "want exit 2 and one line saying --sticky needs rr");
	hx_free(c);
}

/* ---- python-socketio ---- */

static const char *ops_script(const char *name)
{
	static char path[2][512];
	static int turn;
	const char *dir = getenv("OPS_DIR");
	char *p = path[turn++ % 2];

	cr_assert(dir != NULL, "OPS_DIR is not set (run through meson test)");
	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	return p;
}

static void need_socketio(void)
{
	struct ops_run r;

	if (access("/usr/bin/python3", X_OK) != 0)
		cr_skip_test("no /usr/bin/python3 (Debian's python3)");
	ops_run((const char *[]){ "/usr/bin/python3", "-c",
				  "import socketio, engineio", NULL }, NULL, &r);
	if (ops_exit_code(&r) != 0) {
		ops_run_free(&r);
		cr_skip_test("python3-socketio or python3-engineio is not "
			     "installed (apt-get install python3-socketio)");
	}
	ops_run_free(&r);
}

struct sio_result {
	int clients, messages, errors, pids;
	char failed[512]; /* the first client error line */
	bool one_worker_each; /* every client's answers came from one pid */
};

/* cluster-run -n 4 [--sticky MODE] -- python3 sio_server.py, and the
 * clients (from SIO_SOURCES addresses; forwarded: all from 127.0.0.2
 * with X-Forwarded-For). */
static void run_socketio(const char *mode, bool forwarded,
			 struct sio_result *res)
{
	struct ops_cluster oc;
	const char *port = ops_prepare(&oc);
	const char *args[16] = { "-n", "4" };
	struct ops_run r;
	size_t n = 2;
	const char *last;

	if (mode) {
		args[n++] = "--sticky";
		args[n++] = mode;
	}
	args[n++] = "--";
	args[n++] = "/usr/bin/python3";
	args[n++] = ops_script("sio_server.py");
	args[n++] = "127.0.0.1";
	args[n++] = port;
	oc.c = ops_start_args(oc.sock, args);
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 4, HX_START_MS),
		  "want 4 \"listening\" lines");
	/* 400 long-polling round trips through python on both sides: past
	 * ops_run's 10 s once beside another test run on 2 cores */
	ops_run_within((const char *[]){ "/usr/bin/python3",
					 ops_script("sio_clients.py"), port,
					 SIO_CLIENTS, SIO_MESSAGES,
					 forwarded ? "1" : SIO_SOURCES,
					 forwarded ? "FORWARDED" : NULL, NULL },
		       SIO_RUN_MS, &r);
	last = strstr(r.out, "clients ");
	while (last && strstr(last + 1, "\nclients "))
		last = strstr(last + 1, "\nclients ") + 1;
	hx_assert(oc.c, ops_exit_code(&r) == 0 && last &&
		  sscanf(last, "clients %d messages %d errors %d pids %d",
			 &res->clients, &res->messages, &res->errors,
			 &res->pids) == 4,
		  "sio_clients.py: exit %d\n%s%s", ops_exit_code(&r), r.out,
		  r.err);
	res->one_worker_each = !strstr(r.out, ",");
	last = strstr(r.out, " error ");
	snprintf(res->failed, sizeof(res->failed), "%.*s",
		 last ? (int)strcspn(last, "\n") : 0, last ? last : "");
	cr_log_info("--sticky %s%s: %d clients, %d messages, %d errors, %d "
		    "workers", mode ? mode : "(none)",
		    forwarded ? " (X-Forwarded-For)" : "", res->clients,
		    res->messages, res->errors, res->pids);
	if (res->errors)
		cr_log_info("%s", r.out);
	ops_run_free(&r);
	hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
}

static void assert_sessions_kept(const char *mode, bool forwarded)
{
	struct sio_result res;

	need_socketio();
	run_socketio(mode, forwarded, &res);
	cr_assert(res.errors == 0 && res.messages == 20 * 20,
		  "--sticky %s: %d errors, %d of 400 messages (%s)", mode,
		  res.errors, res.messages, res.failed);
	cr_assert(res.one_worker_each, "a client was served by two workers");
	cr_assert(res.pids >= 2, "every client on one worker: nothing dealt");
}

Test(sticky, socketio_sessions_kept_by_ip)
{
	assert_sessions_kept("ip", false);
}

Test(sticky, socketio_sessions_kept_by_sid_behind_a_proxy)
{
	assert_sessions_kept("query:sid", true);
}

Test(sticky, socketio_sessions_lost_without_sticky)
{
	struct sio_result res;

	need_socketio();
	run_socketio(NULL, false, &res);
	cr_assert(res.errors > 0, "without --sticky all %d clients kept their "
		  "sessions: the test could not fail", res.clients);
}
