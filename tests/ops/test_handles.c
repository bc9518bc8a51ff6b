/*
 * test_handles.c - a listener nobody takes again is closed: after a reload
 * onto another port the old port refuses connections, and a unix socket
 * bound per pid is removed once the restarted worker serves on its own;
 * a crash keeps the listener open (clients wait in the backlog) for the
 * restarted worker, even with no worker alive for a while.
 */
#include "ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(handles, .fini = ops_fini, .timeout = 60);

/* The worker's port is read from DIR/port each time it starts. */
static const char port_from_file[] =
	"exec \"$1\" --port \"$(cat \"$0/port\")\"";

static void write_port(int port)
{
	FILE *f = fopen(ops_path("port"), "w");

	cr_assert(f && fprintf(f, "%d\n", port) > 0 && fclose(f) == 0,
		  "writing %s: %s", ops_path("port"), strerror(errno));
}

static struct hx_target tcp_target(int port)
{
	return (struct hx_target){ .proto = HX_TCP, .host = "127.0.0.1",
				   .port = port };
}

Test(handles, reload_onto_another_port_closes_the_old_one)
{
	struct ops_cluster oc;
	int old_port = hx_free_port(SOCK_STREAM), new_port;
	struct hx_target old_t = tcp_target(old_port), new_t;
	struct hx_answer ans;
	struct ops_run r;
	size_t lines;
	pid_t fresh;

	ops_prepare(&oc); /* its socket path; the port is the test's own */
	write_port(old_port);
	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "1", "--",
		"sh", "-c", port_from_file, ops_dir(),
		hx_fixture("fx_blocking_accept"), NULL });
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 1, HX_START_MS),
		  "no \"listening\" line");
	hx_assert(oc.c, hx_query(&old_t, HX_QUERY_MS, &ans) == 0,
		  "port %d does not answer before the reload", old_port);

	new_port = hx_free_port(SOCK_STREAM);
	new_t = tcp_target(new_port);
	write_port(new_port);
	lines = oc.c->err.n_lines;
	ops_ctl(oc.c, oc.sock, (const char *[]){ "reload", NULL }, &r);
	hx_assert(oc.c, ops_exit_code(&r) == 0, "ctl reload: %s", r.err);
	ops_run_free(&r);
	hx_assert(oc.c, ops_wait_line(oc.c, "reload: done", lines,
				      HX_START_MS) >= 0, "the reload did not end");
	hx_assert(oc.c, ops_wait_line(oc.c, "closed: worker 1 held it last",
				      lines, HX_QUERY_MS) >= 0,
		  "no line saying the old port was closed");
	fresh = hx_worker_pid(oc.c, 1);
	hx_assert(oc.c, hx_query(&new_t, HX_QUERY_MS, &ans) == 0 &&
		  ans.pid == fresh, "the new port %d does not answer from the "
		  "new worker", new_port);
	hx_assert(oc.c, hx_query(&old_t, HX_QUERY_MS, &ans) == -ECONNREFUSED,
		  "the old port %d still takes connections nobody serves",
		  old_port);
}

/* A lone worker killed: until its restart listens, connections wait in
 * the backlog of the listener the cluster kept; then they are served. */
Test(handles, crash_restart_keeps_the_listener)
{
	struct ops_cluster oc;
	struct hx_answer ans;
	size_t mark;
	pid_t victim;

	ops_start(&oc, 1, (const char *[]){ "--restart-delay", "300", NULL });
	victim = hx_worker_pid(oc.c, 1);
	mark = oc.c->n_events;
	cr_assert(kill(victim, SIGKILL) == 0);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_KILLED, 1, 0, mark,
				      HX_EXIT_MS) != NULL, "no kill line");
	/* nobody is alive now: the connection waits for the restart */
	hx_assert(oc.c, hx_query(&oc.target, HX_START_MS, &ans) == 0 &&
		  ans.pid != victim, "no answer across the restart");
	hx_assert(oc.c, ops_count_lines(oc.c, "closed: worker", 0) == 0,
		  "the listener was closed across a crash-restart");
}

/* The server binds DIR/s.PID: its restart binds another path. */
static const char path_per_pid[] = "exec \"$1\" --path \"$0/s.$$\"";

/* Its old listener is closed: the old path refuses, and stays on disk as
 * the kernel leaves the socket file of a server that was killed. */
Test(handles, unix_path_per_pid_is_closed_after_a_restart)
{
	struct ops_cluster oc;
	struct hx_answer ans;
	char old_path[256], new_path[256];
	struct hx_target t = { .proto = HX_UNIX };
	struct stat st;
	size_t mark, lines;
	pid_t victim, fresh;

	ops_prepare(&oc); /* its socket path; the port is the test's own */
	oc.c = ops_start_args(oc.sock, (const char *[]){ "-n", "1",
		"--restart-delay", "100", "--", "sh", "-c", path_per_pid, ops_dir(),
		hx_fixture("fx_unix"), NULL });
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 1, HX_START_MS),
		  "no \"listening\" line");
	victim = hx_worker_pid(oc.c, 1);
	snprintf(old_path, sizeof(old_path), "%s/s.%d", ops_dir(), (int)victim);
	cr_assert(stat(old_path, &st) == 0, "%s: %s", old_path, strerror(errno));

	mark = oc.c->n_events;
	lines = oc.c->err.n_lines;
	cr_assert(kill(victim, SIGKILL) == 0);
	hx_assert(oc.c, hx_wait_event(oc.c, HX_LISTENING, 1, victim, mark,
				      HX_START_MS) != NULL,
		  "the restarted worker did not listen");
	fresh = hx_worker_pid(oc.c, 1);
	snprintf(new_path, sizeof(new_path), "%s/s.%d", ops_dir(), (int)fresh);
	t.path = new_path;
	hx_assert(oc.c, hx_query(&t, HX_QUERY_MS, &ans) == 0 &&
		  ans.pid == fresh, "%s does not answer", new_path);
	hx_assert(oc.c, ops_wait_line(oc.c, "closed: worker 1 held it last",
				      lines, HX_QUERY_MS) >= 0,
		  "no line saying the old path's listener was closed");
	t.path = old_path;
	hx_assert(oc.c, hx_query(&t, HX_QUERY_MS, &ans) == -ECONNREFUSED,
		  "%s still accepts after the restart serves elsewhere",
		  old_path);
	hx_assert(oc.c, stat(old_path, &st) == 0,
		  "%s was removed: the kernel never removes a socket's name",
		  old_path);
}
