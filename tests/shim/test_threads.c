/*
 * test_threads.c - threads blocked in accept() on a listener are woken
 * when the listener is retired (fx_threads), in rr, none and reuseport
 * (shutdown() in rr and none only: in reuseport a slot's socket keeps its
 * share of the connections after its worker shut it down, which no waking
 * can help):
 *   - shutdown(SHUT_RDWR) by worker 1, four threads asleep in accept():
 *     every accept() fails with EINVAL (as on a real listener), and the
 *     other workers serve every request;
 *   - stop-accepting: a worker removed with SIGTTOU (disconnected, told
 *     to stop accepting, then its graceful signal, which it ignores) takes
 *     no connection after it was told: every request is answered by the
 *     worker that stays.
 */
#include "shim_tests.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS "4"
#define REQUESTS 40

TestSuite(threads, .fini = hx_cleanup, .timeout = 90);

/* Whether pid holds one of the sockets listening on TCP port (IPv4): the
 * inodes of /proc/net/tcp's LISTEN rows for it against /proc/PID/fd. */
static bool holds_listener(pid_t pid, int port)
{
	unsigned long inodes[64];
	int n = 0;
	unsigned local_port, st;
	unsigned long ino;
	char line[512], path[64], link[64];
	FILE *f = fopen("/proc/net/tcp", "r");
	struct dirent *de;
	DIR *d;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f) && n < 64)
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*s %*s %*s %*s %*s %lu",
			   &local_port, &st, &ino) == 3 &&
		    (int)local_port == port && st == 0x0A)
			inodes[n++] = ino;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(path)))
		return false;
	while ((de = readdir(d)) != NULL) {
		char fdpath[sizeof(path) + sizeof(de->d_name) + 1];
		ssize_t len;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		len = readlink(fdpath, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		for (int i = 0; i < n; i++) {
			char want[40];

			snprintf(want, sizeof(want), "socket:[%lu]", inodes[i]);
			if (strcmp(link, want) == 0) {
				closedir(d);
				return true;
			}
		}
	}
	closedir(d);
	return false;
}

static void shutdown_case(const char *sched)
{
	static char port[16];
	const char *args[] = { port, THREADS, "shutdown", NULL };
	struct hx_cluster *c;
	struct hx_tally tally;
	int p = hx_free_port(SOCK_STREAM);

	snprintf(port, sizeof(port), "%d", p);
	/* "asleep 1" of worker 1 and "serving" of workers 2 and 3 */
	c = st_start(sched, 3, "fx_threads", args, 3, 3);
	hx_assert(c, kill(hx_worker_pid(c, 1), SIGUSR1) == 0, "kill: %s",
		  strerror(errno));
	hx_assert(c, hx_wait_stdout_lines(c, 4, HX_START_MS) &&
		  st_stdout_line(c, "woken " THREADS) != NULL,
		  "worker 1's threads were not all woken by shutdown()");
	st_load(c, p, REQUESTS, 3, false, &tally);
	hx_assert(c, tally.served[1] == 0, "worker 1 shut its listener down "
		  "and still served %d", tally.served[1]);
	st_assert_steady(c, 3);
	st_stop(c);
}

static void stop_case(const char *sched)
{
	static char port[16];
	const char *args[] = { "-n", "2", "--sched", sched, "--kill-timeout",
			       "4", "--", hx_fixture("fx_threads"), port,
			       THREADS, "stop", NULL };
	const struct hx_event *ev;
	struct hx_cluster *c;
	struct hx_tally tally;
	char term[16];
	int p = hx_free_port(SOCK_STREAM), gone;

	snprintf(port, sizeof(port), "%d", p);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, 2, HX_START_MS) &&
		  hx_wait_stdout_lines(c, 2, HX_START_MS), "not serving");
	kill(c->pid, SIGTTOU);
	ev = hx_wait_event(c, HX_DISCONNECT, 0, 0, 0, HX_START_MS);
	hx_assert(c, ev != NULL, "no worker disconnected after SIGTTOU");
	gone = ev->id;
	/* its graceful signal came: it was told to stop accepting before */
	snprintf(term, sizeof(term), "term %d", gone);
	for (int64_t end = hx_now_ms() + HX_START_MS;
	     !st_stdout_line(c, term) && hx_now_ms() < end;)
		hx_pump(c, 100);
	hx_assert(c, st_stdout_line(c, term) != NULL, "worker %d got no "
		  "graceful signal", gone);
	/* The stop-accepting signal was sent before the graceful one, but a
	 * loaded machine may run the worker's handlers in the kernel's order
	 * (SIGTERM before the real-time signal): wait until its shim has put
	 * the never-ready socket in place of the cluster's listener. */
	for (int64_t end = hx_now_ms() + HX_START_MS;
	     holds_listener(hx_worker_pid(c, gone), p) && hx_now_ms() < end;)
		hx_pump(c, 10);
	hx_assert(c, !holds_listener(hx_worker_pid(c, gone), p),
		  "worker %d still holds the cluster's listener", gone);
	st_load(c, p, REQUESTS, 2, false, &tally);
	cr_log_info("%s stop: workers 1, 2 served %d, %d", sched,
		    tally.served[1], tally.served[2]);
	hx_assert(c, tally.served[gone] == 0, "worker %d was told to stop "
		  "accepting and still took %d of %d connections", gone,
		  tally.served[gone], REQUESTS);
	hx_assert(c, hx_wait_event(c, HX_KILLED, gone, 0, 0, HX_START_MS),
		  "worker %d not killed after the kill timeout", gone);
	st_stop(c);
}

#define CASES(what)                                                     \
	Test(threads, what##_rr) { what##_case("rr"); }                  \
	Test(threads, what##_none) { what##_case("none"); }

CASES(shutdown)
CASES(stop)
Test(threads, stop_reuseport) { stop_case("reuseport"); }
