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
	/* A summary line (not a worker's own event line) quotes the status. */
	for (size_t i = 0; i < c->err.n_lines; i++)
		quoted |= strstr(c->err.lines[i], "exited with code 3") &&
			  strncmp(c->err.lines[i], "cluster-run: worker ", 20);
	hx_assert(c, quoted, "no line quoting \"exited with code 3\" besides "
		  "the workers' own");
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
	struct ops_cluster oc = { 0 };
	const char *marker = ops_path("marker");
	const struct hx_event *ev;
	char port[16];
	pid_t old[2];
	size_t mark, line_mark;
	int fd;

	fd = open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "create %s: %s", marker, strerror(errno));
	close(fd);
	snprintf(oc.sock, sizeof(oc.sock), "%s", ops_path("ctl.sock"));
	oc.port = hx_free_port(SOCK_STREAM);
	oc.target = (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
					.port = oc.port };
	snprintf(port, sizeof(port), "%d", oc.port);
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
}
