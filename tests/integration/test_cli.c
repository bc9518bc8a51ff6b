/*
 * test_cli.c - cluster-run's command line: fatal errors (usage, a missing
 * command, a port held by another program) end in one "cluster-run: " line
 * and a non-zero exit; the scheduling policy comes from --sched or
 * $CLUSTER_SCHED_POLICY, rr by default.
 */
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FATAL_MS 10000   /* a fatal error ends cluster-run within this */
#define PREFIX "cluster-run: "

TestSuite(cli, .fini = hx_cleanup, .timeout = 60);

/* Waits for cluster-run to give up; asserts a non-zero exit. */
static void expect_failure(struct hx_cluster *c)
{
	int status = hx_wait_exit(c, FATAL_MS);

	hx_assert(c, status != -1, "cluster-run still runs after %d ms",
		  FATAL_MS);
	hx_assert(c, WIFEXITED(status) && WEXITSTATUS(status) != 0,
		  "wait status 0x%x, want a non-zero exit", status);
}

/* cluster-run ARGS fails with exactly one line, "cluster-run: ...". */
static void usage_error(const char *const *args)
{
	struct hx_cluster *c = hx_start(0, args);

	expect_failure(c);
	hx_assert(c, c->err.n_lines == 1 &&
		  strncmp(c->err.lines[0], PREFIX, strlen(PREFIX)) == 0,
		  "want exactly one stderr line starting \"" PREFIX "\"");
	hx_assert_workers_gone(c);
	hx_free(c);
}

/* A free port, as a string in a static buffer. */
static const char *some_port(void)
{
	static char port[16];

	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	return port;
}

Test(cli, no_arguments)
{
	usage_error((const char *[]){ NULL });
}

Test(cli, no_command_after_dashes)
{
	usage_error((const char *[]){ "-n", "2", "--", NULL });
}

Test(cli, zero_workers)
{
	usage_error((const char *[]){ "-n", "0", "--",
		hx_fixture("fx_blocking_accept"), "--port", some_port(), NULL });
}

Test(cli, bogus_sched)
{
	usage_error((const char *[]){ "-n", "2", "--sched", "bogus", "--",
		hx_fixture("fx_blocking_accept"), "--port", some_port(), NULL });
}

Test(cli, missing_command_path)
{
	usage_error((const char *[]){ "-n", "2", "--",
		hx_fixture("fx_no_such_server"), "--port", some_port(), NULL });
}

Test(cli, missing_command_in_path)
{
	usage_error((const char *[]){ "-n", "2", "--",
		"cluster-run-no-such-command", NULL });
}

/* Exits 0 within the deadline and says something. */
static void informational(const char *option)
{
	struct hx_cluster *c = hx_start(HX_CAPTURE_STDOUT,
					(const char *[]){ option, NULL });
	int status = hx_wait_exit(c, FATAL_MS);

	hx_assert(c, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "%s: wait status 0x%x, want exit 0",
		  option, status);
	hx_assert(c, c->out.n_lines + c->err.n_lines > 0, "%s printed nothing",
		  option);
	hx_free(c);
}

Test(cli, help) { informational("-h"); }
Test(cli, version) { informational("--version"); }

/* ---- a port held by another program ---- */

/* The fatal line names the cause. */
static void expect_in_use(struct hx_cluster *c)
{
	bool found = false;

	expect_failure(c);
	for (size_t i = 0; i < c->err.n_lines; i++)
		found |= strncmp(c->err.lines[i], PREFIX, strlen(PREFIX)) == 0 &&
			 strstr(c->err.lines[i], "Address already in use");
	hx_assert(c, found, "want a \"" PREFIX "...Address already in use\" "
		  "line");
	hx_assert_workers_gone(c);
}

static struct hx_cluster *start_on(const char *sched, const char *port)
{
	return hx_start_fixture(0, 3, sched, "fx_blocking_accept",
				(const char *[]){ "--port", port, NULL });
}

static void held_by_cluster(const char *sched)
{
	const char *port = some_port();
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1",
			       .port = atoi(port) };
	struct hx_cluster *first = start_on(sched, port), *second;
	struct hx_answer ans;
	int err, status;

	hx_assert(first, hx_wait_count(first, HX_LISTENING, 3, HX_START_MS),
		  "the first cluster-run did not listen");
	second = start_on(sched, port);
	expect_in_use(second);
	hx_free(second);

	err = hx_query(&t, HX_QUERY_MS, &ans);
	hx_assert(first, err == 0, "the first cluster-run stopped serving: "
		  "%s", strerror(-err));
	status = hx_stop(first, SIGTERM, HX_EXIT_MS);
	hx_assert(first, status != -1 && WIFEXITED(status) &&
		  WEXITSTATUS(status) == 0, "wait status 0x%x, want exit 0",
		  status);
	hx_assert_workers_gone(first);
	hx_free(first);
}

Test(cli, port_held_by_cluster_rr) { held_by_cluster("rr"); }
Test(cli, port_held_by_cluster_none) { held_by_cluster("none"); }

static void held_by_socket(const char *sched)
{
	int port = hx_free_port(SOCK_STREAM), one = 1;
	char port_s[16];
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct hx_cluster *c;

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		  listen(fd, 16) == 0, "holding port %d: %s", port,
		  strerror(errno));
	snprintf(port_s, sizeof(port_s), "%d", port);
	c = start_on(sched, port_s);
	expect_in_use(c);
	hx_free(c);
	close(fd);
}

Test(cli, port_held_by_socket_rr) { held_by_socket("rr"); }
Test(cli, port_held_by_socket_none) { held_by_socket("none"); }

/* ---- choosing the policy ---- */

/* cluster-run -n 1 [--sched SCHED] -- fx_blocking_accept listens in MODE. */
static void listens_in(const char *sched, const char *mode)
{
	const char *port = some_port();
	const char *fx = hx_fixture("fx_blocking_accept");
	struct hx_cluster *c = sched
		? hx_start(0, (const char *[]){ "-n", "1", "--sched", sched,
						"--", fx, "--port", port, NULL })
		: hx_start(0, (const char *[]){ "-n", "1", "--", fx, "--port",
						port, NULL });
	const struct hx_event *ev;
	char want[64];

	ev = hx_wait_event(c, HX_LISTENING, 1, 0, 0, HX_START_MS);
	hx_assert(c, ev != NULL, "worker 1 did not listen");
	snprintf(want, sizeof(want), "127.0.0.1:%s (%s)", port, mode);
	hx_assert(c, strcmp(ev->what, want) == 0,
		  "\"listening on %s\", want \"listening on %s\"", ev->what,
		  want);
	hx_assert(c, WIFEXITED(hx_stop(c, SIGTERM, HX_EXIT_MS)) &&
		  WEXITSTATUS(c->status) == 0, "no clean exit on SIGTERM");
	hx_free(c);
}

Test(cli, default_sched_is_rr)
{
	unsetenv("CLUSTER_SCHED_POLICY");
	listens_in(NULL, "rr");
}

Test(cli, sched_from_environment)
{
	setenv("CLUSTER_SCHED_POLICY", "none", 1);
	listens_in(NULL, "none");
}

/* ---- messages that name the real cause (issue 13) ---- */

/* cluster-run ARGS fails; its last stderr line starts "cluster-run: " and
 * holds want. */
static void fails_saying(const char *const *args, const char *want)
{
	struct hx_cluster *c = hx_start(0, args);
	const char *last;

	expect_failure(c);
	hx_assert(c, c->err.n_lines > 0, "nothing on stderr");
	last = c->err.lines[c->err.n_lines - 1];
	hx_assert(c, strncmp(last, PREFIX, strlen(PREFIX)) == 0 &&
		  strstr(last, want), "last line \"%s\", want \"%s\"", last,
		  want);
	hx_assert_workers_gone(c);
	hx_free(c);
}

Test(cli, prefix_with_a_value)
{
	fails_saying((const char *[]){ "--prefix=yes", "--", "true", NULL },
		     "--prefix takes no value");
	usage_error((const char *[]){ "--prefix=yes", "--", "true", NULL });
}

Test(cli, ambiguous_abbreviation)
{
	fails_saying((const char *[]){ "--re", "2", "--", "true", NULL },
		     "ambiguous option '--re': it could be --reload-parallel, "
		     "--ready-timeout, --restart-delay, --restart-reset");
}

/* Each of these was accepted without a word before. */
Test(cli, options_that_cannot_work_are_refused)
{
	usage_error((const char *[]){ "--gid", "0", "--", "true", NULL });
	usage_error((const char *[]){ "--restart-delay", "5:1", "--", "true",
				      NULL });
	usage_error((const char *[]){ "--graceful-signal", "KILL", "--",
				      "true", NULL });
	usage_error((const char *[]){ "--graceful-signal", "STOP", "--",
				      "true", NULL });
	fails_saying((const char *[]){ "--env", "LD_PRELOAD=/lib/none.so", "--",
				       "true", NULL },
		     "cluster-run sets the workers' LD_PRELOAD");
}

/* Whatever CLUSTER_SHIM_PATH names is checked before any worker starts. */
static void not_the_shim(const char *path, const char *want)
{
	setenv("CLUSTER_SHIM_PATH", path, 1);
	fails_saying((const char *[]){ "-n", "1", "--",
		hx_fixture("fx_blocking_accept"), "--port", some_port(), NULL },
		want);
	unsetenv("CLUSTER_SHIM_PATH");
}

Test(cli, shim_path_to_a_text_file)
{
	not_the_shim("/etc/passwd", "CLUSTER_SHIM_PATH=/etc/passwd is not "
		     "cluster-run's shim (libcluster_shim.so): not an ELF file");
}

Test(cli, shim_path_to_a_program)
{
	not_the_shim("/bin/sh", "without a soname");
}

Test(cli, shim_path_to_another_library)
{
	char libc[256];
	FILE *f = popen("ldd /bin/sh | awk '/libc.so/ { print $3 }'", "r");

	cr_assert(f && fgets(libc, sizeof(libc), f), "no libc found by ldd");
	pclose(f);
	libc[strcspn(libc, "\n")] = '\0';
	not_the_shim(libc, "another library (its soname is libc.so.6)");
}

Test(cli, shim_path_missing)
{
	not_the_shim("/nonexistent/libcluster_shim.so", "No such file");
}

Test(cli, ctl_control_path_that_is_not_a_socket)
{
	fails_saying((const char *[]){ "ctl", "--control", "/etc/passwd",
				       "status", NULL },
		     "/etc/passwd is not a socket");
}

/* With --uid, the final line says the port was not declared, not that it
 * is privileged (it is not: a free port above 1024). */
Test(cli, uid_without_matching_listen)
{
	static char declared[32], want[96];
	const char *port = some_port();

	if (geteuid() != 0)
		cr_skip_test("needs root to switch users");
	snprintf(declared, sizeof(declared), "127.0.0.1:%d",
		 hx_free_port(SOCK_STREAM));
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%s: it is not "
		 "declared with --listen", port);
	fails_saying((const char *[]){ "-n", "1", "--uid", "65534", "--listen",
		declared, "--", hx_fixture("fx_blocking_accept"), "--port", port,
		NULL }, want);
}
