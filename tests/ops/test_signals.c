/*
 * test_signals.c - the operations signals (SIGHUP reload, SIGTTIN and
 * SIGTTOU scaling), the crash-loop stop, and a reload whose replacement
 * fails; what cluster-run did is read back with `cluster-run ctl status`.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(signals, .fini = ops_fini, .timeout = 60);

/* `ctl status` lists exactly the workers pids[0..n), not replacements. */
static void expect_pids(struct ops_cluster *oc, const pid_t *pids, size_t n)
{
	struct ops_row rows[8];
	size_t got = ops_status(oc->c, oc->sock, rows, 8);

	hx_assert(oc->c, got == n, "ctl status lists %zu workers, want %zu",
		  got, n);
	for (size_t i = 0; i < got; i++) {
		bool known = false;

		for (size_t k = 0; k < n; k++)
			known |= rows[i].pid == pids[k];
		hx_assert(oc->c, known && !rows[i].replacement &&
			  strcmp(rows[i].state, "listening") == 0,
			  "ctl status: worker %u pid %d \"%s\" is not one of "
			  "the expected workers", rows[i].id, (int)rows[i].pid,
			  rows[i].state);
	}
}

static void signal_cluster(struct hx_cluster *c, int sig)
{
	hx_assert(c, c->pid > 0 && kill(c->pid, sig) == 0, "kill %d: %s", sig,
		  strerror(errno));
}

Test(signals, sighup_reloads)
{
	struct ops_cluster oc;
	pid_t old1, old2, fresh[2];
	size_t mark, line_mark;

	ops_start(&oc, 2, NULL);
	old1 = hx_worker_pid(oc.c, 1);
	old2 = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	signal_cluster(oc.c, SIGHUP);
	fresh[0] = ops_wait_forked(oc.c, 1, old1, mark);
	fresh[1] = ops_wait_forked(oc.c, 2, old2, mark);
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", line_mark,
				      HX_START_MS) >= 0,
		  "no \"reload: done\" line within %d ms", HX_START_MS);
	expect_pids(&oc, fresh, 2);
	for (int i = 0; i < 6; i++)
		ops_query_from(oc.c, &oc.target, fresh, 2, "after SIGHUP");
}

Test(signals, sigttin_adds_a_worker)
{
	struct ops_cluster oc;
	pid_t pids[3];
	size_t mark;
	const struct hx_event *ev;

	ops_start(&oc, 2, NULL);
	mark = oc.c->n_events;
	signal_cluster(oc.c, SIGTTIN);
	ev = hx_wait_event(oc.c, HX_LISTENING, 3, 0, mark, HX_START_MS);
	hx_assert(oc.c, ev != NULL, "no \"listening\" line for worker 3");
	for (int id = 1; id <= 3; id++)
		pids[id - 1] = hx_worker_pid(oc.c, id);
	expect_pids(&oc, pids, 3);
}

Test(signals, sigttou_removes_a_worker)
{
	struct ops_cluster oc;
	pid_t old1, old2;
	size_t mark;
	const struct hx_event *ev;

	ops_start(&oc, 2, NULL);
	old1 = hx_worker_pid(oc.c, 1);
	old2 = hx_worker_pid(oc.c, 2);
	mark = oc.c->n_events;
	signal_cluster(oc.c, SIGTTOU);
	ev = hx_wait_event(oc.c, HX_EXITED, 2, 0, mark, HX_START_MS);
	hx_assert(oc.c, ev && ev->pid == old2 && ev->code == 0,
		  "want \"worker 2 (pid %d) exited with code 0\"", (int)old2);
	expect_pids(&oc, &old1, 1);
	for (int i = 0; i < 3; i++)
		ops_query_from(oc.c, &oc.target, &old1, 1, "after SIGTTOU");
	hx_assert(oc.c, hx_find_event(oc.c, HX_FORKED, 0, 0, mark) == NULL,
		  "a worker was forked after SIGTTOU");
}

Test(signals, sigttou_keeps_the_last_worker)
{
	struct ops_cluster oc;
	pid_t only;
	size_t mark, line_mark;

	ops_start(&oc, 1, NULL);
	only = hx_worker_pid(oc.c, 1);
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	signal_cluster(oc.c, SIGTTOU);
	hx_assert(oc.c, ops_wait_line(oc.c, "already at 1 worker", line_mark,
				      HX_START_MS) >= 0,
		  "no line saying it keeps its one worker");
	expect_pids(&oc, &only, 1);
	hx_assert(oc.c, hx_find_event(oc.c, HX_DISCONNECT, 0, 0, mark) == NULL &&
		  hx_find_event(oc.c, HX_EXITED, 0, 0, mark) == NULL,
		  "the last worker was disconnected");
}

/* cluster-run -n 1 ... -- sh -c 'exit 3': it gives up, non-zero. */
Test(signals, crash_loop_stops)
{
	struct hx_cluster *c;
	struct stat st;
	const char *sock = ops_path("ctl.sock");
	bool quoted = false;
	int status;

	c = ops_start_args(sock, (const char *[]){ "-n", "1", "--restart-delay",
		"10:20", "--crash-limit", "3:60", "--", "sh", "-c", "exit 3",
		NULL });
	status = hx_wait_exit(c, HX_EXIT_MS);
	hx_assert(c, status != -1, "cluster-run still runs after %d ms of a "
		  "worker that always exits 3", HX_EXIT_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) != 0,
		  "wait status 0x%x, want a non-zero exit", status);
	/* A summary line (not a worker's own event line, nor a line about
	 * one restart) quotes the status. */
	for (size_t i = 0; i < c->err.n_lines; i++)
		quoted |= strstr(c->err.lines[i], "exited with code 3") &&
			  strncmp(c->err.lines[i], "cluster-run: worker ", 20) &&
			  strncmp(c->err.lines[i], "cluster-run: restart: ", 22);
	hx_assert(c, quoted, "no line quoting \"exited with code 3\" besides "
		  "the workers' own and the restart lines");
	hx_assert(c, hx_count(c, HX_EXITED) >= 3, "want 3 failed starts");
	hx_assert_workers_gone(c);
	hx_assert(c, lstat(sock, &st) < 0 && errno == ENOENT,
		  "the control socket is still there after the exit");
	hx_free(c);
}

/*
 * Workers run `sh -c` that execs the server while DIR/marker exists and
 * otherwise exits 1; with the marker gone, SIGHUP's first replacement
 * fails: the reload stops and the old workers keep serving.
 */
Test(signals, reload_with_failing_replacement)
{
	static const char script[] =
		"[ -e \"$0\" ] || exit 1; exec \"$1\" --port \"$2\"";
	struct ops_cluster oc;
	const char *marker = ops_path("marker");
	const struct hx_event *ev;
	const char *port;
	struct ops_run r;
	char last[256];
	pid_t old[2];
	size_t mark, line_mark;
	int fd;

	fd = open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "create %s: %s", marker, strerror(errno));
	close(fd);
	port = ops_prepare(&oc);
	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "2", "--",
		"sh", "-c", script, marker, hx_fixture("fx_blocking_accept"),
		port, NULL });
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	old[0] = hx_worker_pid(oc.c, 1);
	old[1] = hx_worker_pid(oc.c, 2);

	cr_assert(unlink(marker) == 0, "unlink: %s", strerror(errno));
	mark = oc.c->n_events;
	line_mark = oc.c->err.n_lines;
	signal_cluster(oc.c, SIGHUP);
	hx_assert(oc.c, ops_wait_line(oc.c, "reload stopped", line_mark,
				      HX_START_MS) >= 0,
		  "no \"reload stopped\" line within %d ms", HX_START_MS);
	ev = hx_find_event(oc.c, HX_EXITED, 1, old[0], mark);
	hx_assert(oc.c, ev && ev->code == 1, "want the replacement's "
		  "\"exited with code 1\" line");
	expect_pids(&oc, old, 2);
	for (int i = 0; i < 6; i++)
		ops_query_from(oc.c, &oc.target, old, 2,
			       "after the failed reload");

	/* The failure is kept in status, with its reason. */
	ops_status_reload(oc.c, oc.sock, NULL, 0, last);
	hx_assert(oc.c, strncmp(last, "last reload: failed ", 20) == 0 &&
		  strstr(last, "exited with code 1 before listening"),
		  "status: \"%s\", want \"last reload: failed Ns ago: ..."
		  "exited with code 1 before listening\"", last);
	/* And `ctl reload --wait` answers it as a failure, exit 1. */
	ops_ctl(oc.c, oc.sock, (const char *[]){ "reload", "--wait", NULL },
		&r);
	hx_assert(oc.c, ops_exit_code(&r) == 1 && r.out[0] == '\0' &&
		  strncmp(r.err, "cluster-run: reload failed: replacement "
			  "worker 1 (pid ", 40) == 0 &&
		  strstr(r.err, ") exited with code 1 before listening\n"),
		  "ctl reload --wait: exit %d, stdout \"%s\", stderr \"%s\"",
		  ops_exit_code(&r), r.out, r.err);
	ops_run_free(&r);
	expect_pids(&oc, old, 2);
}

/*
 * `stty tostop; cluster-run ... &` on a real terminal: its first line on
 * the terminal stops it with the kernel's SIGTTOU (before any worker), as
 * any background program; after `fg` it starts its workers and serves,
 * and that SIGTTOU was no request to scale.  A SIGTTOU sent with kill
 * still means one worker fewer, a SIGHUP a reload; the terminal's hangup
 * stops it.
 */
Test(signals, background_on_a_terminal_stops_and_continues)
{
	struct ops_tty t;
	char port[16];
	const char *sock = ops_path("ctl.sock");
	const struct hx_event *ev;
	struct ops_row rows[8];
	size_t n, mark;
	pid_t first;

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	ops_tty_start(&t, (const char *[]){ "--control", sock, "-n", "2", "--",
		hx_fixture("fx_blocking_accept"), "--port", port, NULL });
	hx_assert(t.c, strcmp(ops_tty_report(&t, "stopped ", HX_START_MS),
			      "stopped 22") == 0 && SIGTTOU == 22,
		  "want cluster-run stopped by SIGTTOU (22), got \"%s\"",
		  t.line);
	hx_pump(t.c, 0);
	hx_assert(t.c, hx_count(t.c, HX_FORKED) == 0,
		  "workers were forked before cluster-run could write");

	ops_tty_fg(&t);
	ops_tty_report(&t, "continued", HX_START_MS);
	hx_assert(t.c, hx_wait_count(t.c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines on the terminal after fg");
	n = ops_status(t.c, sock, rows, 8);
	hx_assert(t.c, n == 2 && ops_count_lines(t.c, "scale", 0) == 0,
		  "after fg: %zu workers in ctl status, want 2, and no "
		  "scaling", n);

	first = hx_worker_pid(t.c, 1);
	mark = t.c->n_events;
	hx_assert(t.c, kill(t.pid, SIGTTOU) == 0, "kill: %s", strerror(errno));
	ev = hx_wait_event(t.c, HX_EXITED, 2, 0, mark, HX_START_MS);
	hx_assert(t.c, ev && ev->code == 0, "kill -TTOU: want worker 2 to "
		  "exit with code 0");
	n = ops_status(t.c, sock, rows, 8);
	hx_assert(t.c, n == 1 && rows[0].pid == first,
		  "after kill -TTOU: %zu workers, want worker 1 alone", n);

	/* A kill -HUP reloads; the terminal's hangup ends it, exit 0. */
	mark = t.c->n_events;
	hx_assert(t.c, kill(t.pid, SIGHUP) == 0, "kill: %s", strerror(errno));
	hx_assert(t.c, hx_wait_event(t.c, HX_LISTENING, 1, first, mark,
				     HX_START_MS) != NULL,
		  "kill -HUP: no new worker 1 listening");
	ops_tty_hangup(&t);
	hx_assert(t.c, strcmp(ops_tty_report(&t, "exited ", HX_EXIT_MS),
			      "exited 0x0") == 0,
		  "after the hangup: \"%s\", want exit 0", t.line);
	ops_tty_free(&t);
}

/* A server that reopens its logs on SIGUSR1 (here: says so on stderr)
 * and answers "<id> <pid>" to each connection. */
static const char usr1_server[] =
	"import os, signal, socket, sys\n"
	"wid = os.environ['CLUSTER_WORKER_ID']\n"
	"def usr1(sig, frame):\n"
	"    os.write(2, b'usr1 in worker %s pid %d\\n' % (wid.encode(), os.getpid()))\n"
	"signal.signal(signal.SIGUSR1, usr1)\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	"s.listen(16)\n"
	"while True:\n"
	"    c, _ = s.accept()\n"
	"    c.sendall(b'%s %d\\n' % (wid.encode(), os.getpid()))\n"
	"    c.close()\n";

/* SIGUSR1 reaches every worker's own handler (nginx's and gunicorn's log
 * reopen); the signals with no meaning are logged, one line each, and
 * change nothing. */
Test(signals, usr1_passed_on_the_others_logged_and_ignored)
{
	const int ignored[] = { SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPIPE,
				SIGXCPU, SIGXFSZ, SIGPOLL, SIGSTKFLT, SIGPWR,
				SIGRTMIN, SIGRTMIN + 1, SIGRTMAX - 1,
				SIGRTMAX };
	struct ops_cluster oc;
	const char *port;
	char from[32];
	pid_t pids[2];
	size_t mark, line_mark;
	long line;
	int status;

	port = ops_prepare(&oc);
	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "2", "--",
		"/usr/bin/python3", "-c", usr1_server, port, NULL });
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	pids[0] = hx_worker_pid(oc.c, 1);
	pids[1] = hx_worker_pid(oc.c, 2);
	snprintf(from, sizeof(from), "from pid %d: ", (int)getpid());
	mark = oc.c->n_events;

	line_mark = oc.c->err.n_lines;
	signal_cluster(oc.c, SIGUSR1);
	line = ops_wait_line(oc.c, "SIGUSR1 from pid", line_mark, HX_START_MS);
	hx_assert(oc.c, line >= 0 && strstr(oc.c->err.lines[line], from) &&
		  strstr(oc.c->err.lines[line], "passed on to 2 workers"),
		  "want \"SIGUSR1 %spassed on to 2 workers\"", from);
	for (int i = 0; i < 2; i++) {
		char want[64];

		snprintf(want, sizeof(want), "usr1 in worker %d pid %d", i + 1,
			 (int)pids[i]);
		hx_assert(oc.c, ops_wait_line(oc.c, want, line_mark,
					      HX_START_MS) >= 0,
			  "no \"%s\" line: SIGUSR1 did not reach it", want);
	}

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		line_mark = oc.c->err.n_lines;
		signal_cluster(oc.c, ignored[i]);
		line = ops_wait_line(oc.c, ": ignored", line_mark, HX_START_MS);
		hx_assert(oc.c, line >= 0 && strstr(oc.c->err.lines[line], from) &&
			  ops_count_lines(oc.c, ": ignored", line_mark) == 1,
			  "signal %d (%s): want one \"...%signored\" line",
			  ignored[i], strsignal(ignored[i]), from);
	}
	expect_pids(&oc, pids, 2);
	for (int i = 0; i < 4; i++)
		ops_query_from(oc.c, &oc.target, pids, 2, "after the signals");
	hx_assert(oc.c, hx_find_event(oc.c, HX_FORKED, 0, 0, mark) == NULL &&
		  hx_find_event(oc.c, HX_EXITED, 0, 0, mark) == NULL &&
		  hx_find_event(oc.c, HX_KILLED, 0, 0, mark) == NULL,
		  "a worker came or went after the signals");
	status = hx_stop(oc.c, SIGTERM, HX_EXIT_MS);
	hx_assert(oc.c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "SIGTERM: wait status 0x%x, want "
		  "exit 0", status);
}

/* A server that answers one connection and exits 0. */
static const char one_shot_server[] =
	"import os, socket, sys\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	"s.listen(16)\n"
	"c, _ = s.accept()\n"
	"c.sendall(b'%s %d\\n' % (os.environ['CLUSTER_WORKER_ID'].encode(),\n"
	"                          os.getpid()))\n"
	"c.close()\n";

/*
 * A worker that exits 0 after it listened (nothing asked it to) is
 * restarted with a line that says so, and with the same back-off as a
 * crash: 0.1 s, 0.2 s, 0.4 s.
 */
Test(signals, exit_0_after_listening_is_restarted_with_a_line)
{
	static const char *const delays[] = { "0.1", "0.2", "0.4" };
	struct ops_cluster oc;
	const char *port = ops_prepare(&oc);
	size_t line_mark = 0;

	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "1", "--",
		"/usr/bin/python3", "-c", one_shot_server, port, NULL });
	for (unsigned i = 0; i < 3; i++) {
		char want[160];
		pid_t pid;

		hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, i + 1,
					      HX_START_MS),
			  "want \"listening\" line %u", i + 1);
		pid = hx_worker_pid(oc.c, 1);
		ops_query_from(oc.c, &oc.target, &pid, 1, "its one answer");
		snprintf(want, sizeof(want), "worker 1 (pid %d) exited with "
			 "code 0 after it listened, though nothing asked it to "
			 "stop; restarting it in %s s (restart %u)", (int)pid,
			 delays[i], i + 1);
		hx_assert(oc.c, ops_wait_line(oc.c, want, line_mark,
					      HX_START_MS) >= 0,
			  "no line \"%s\"", want);
		line_mark = oc.c->err.n_lines;
	}
}
