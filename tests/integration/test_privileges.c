/*
 * --uid/--gid: the workers run as the given user while the supervisor, as
 * root, binds a privileged port for them; --chdir and --env reach them.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(privileges, .fini = hx_cleanup, .timeout = 60);

/* A port below 1024 that nobody holds right now. */
static int free_privileged_port(void)
{
	for (int port = 1000; port > 900; port--) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* The real uid in /proc/PID/status, or -1. */
static long process_uid(pid_t pid)
{
	char path[64], line[256];
	long uid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

Test(privileges, workers_run_as_uid_on_a_privileged_port)
{
	static char port[16], listen[32];
	const char *args[] = { "-n", "2", "--uid", "65534", "--gid", "65534",
			       "--listen", listen,
			       "--", hx_fixture("fx_blocking_accept"),
			       "--port", port, NULL };
	struct hx_target t = { .proto = HX_TCP, .host = "127.0.0.1" };
	struct hx_cluster *c;
	struct hx_answer ans;

	if (geteuid() != 0)
		cr_skip_test("needs root to switch users");
	t.port = free_privileged_port();
	cr_assert_gt(t.port, 0, "no free port in 901..1000");
	snprintf(port, sizeof(port), "%d", t.port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", t.port);
	c = hx_start(0, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS),
		  "workers did not listen on privileged port %d", t.port);
	for (int i = 0; i < 10; i++) {
		hx_assert(c, hx_query(&t, HX_QUERY_MS, &ans) == 0,
			  "request %d failed", i);
		hx_assert(c, process_uid(ans.pid) == 65534,
			  "worker pid %d runs as uid %ld, want 65534",
			  (int)ans.pid, process_uid(ans.pid));
	}
	hx_assert(c, hx_stop(c, SIGTERM, HX_EXIT_MS) == 0, "stop failed");
	hx_assert_workers_gone(c);
	hx_free(c);
}

/* With --uid, an address that was not declared with --listen is refused:
 * the worker's bind() fails with EACCES, the supervisor says so, and since
 * no worker can ever listen, cluster-run stops with an error. */
Test(privileges, undeclared_port_is_refused)
{
	static char port[16], declared[32];
	const char *args[] = { "-n", "1", "--uid", "65534",
			       "--listen", declared,
			       "--", hx_fixture("fx_blocking_accept"),
			       "--port", port, NULL };
	struct hx_cluster *c;
	int status, wanted = free_privileged_port();

	if (geteuid() != 0)
		cr_skip_test("needs root to switch users");
	cr_assert_gt(wanted, 0, "no free port in 901..1000");
	snprintf(port, sizeof(port), "%d", wanted);
	snprintf(declared, sizeof(declared), "127.0.0.1:%d", hx_free_port(SOCK_STREAM));
	c = hx_start(0, args);
	status = hx_wait_exit(c, HX_EXIT_MS);
	hx_assert(c, status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0,
		  "cluster-run should stop with an error (status 0x%x)", status);
	hx_assert(c, strstr(hx_output(c), "not among the --listen addresses"),
		  "no line saying the address was refused");
	hx_assert(c, strstr(hx_output(c), "Permission denied"),
		  "the worker's bind did not fail with EACCES");
	hx_assert(c, hx_count(c, HX_LISTENING) == 0, "a worker listened");
	hx_free(c);
}
