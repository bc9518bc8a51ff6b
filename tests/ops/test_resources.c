/*
 * test_resources.c - what `ctl status` says about resources, checked
 * against the kernel: each worker's process tree (processes, RSS, CPU
 * seconds of a child that burns CPU), each listener's accept queue and
 * backlog (workers stopped with SIGSTOP, clients connected), and in rr the
 * connections the supervisor holds and has accepted.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SAMPLE_WAIT_MS 15000
#define MAX_CLIENTS 32

TestSuite(resources, .fini = ops_fini, .timeout = 90);

/* The RSS (bytes) of pid and its descendants, found the other way round
 * from cluster-run: every /proc/N/stat on the machine, by parent pid. */
static unsigned long long tree_rss_by_scan(pid_t root, unsigned *nproc)
{
	struct proc { int pid, ppid; unsigned long long rss; } *p =
		calloc(4096, sizeof(*p));
	size_t n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool in[4096] = { false };
	unsigned long long sum = 0;
	bool grew = true;

	cr_assert(d != NULL && p != NULL);
	while ((e = readdir(d)) != NULL && n < 4096) {
		char path[300], buf[1024], *rp;
		FILE *f;
		long long rss = 0;
		int ppid = 0;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
		    sscanf(rp + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			   "%*u %*u %*d %*d %*d %*d %*d %*d %*u %*u %lld",
			   &ppid, &rss) == 2) {
			p[n].pid = atoi(e->d_name);
			p[n].ppid = ppid;
			p[n].rss = (unsigned long long)rss * 4096;
			in[n] = p[n].pid == root;
			n++;
		}
		fclose(f);
	}
	closedir(d);
	while (grew) {
		grew = false;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n && !in[i]; j++)
				if (in[j] && p[i].ppid == p[j].pid)
					in[i] = grew = true;
	}
	*nproc = 0;
	for (size_t i = 0; i < n; i++)
		if (in[i]) {
			sum += p[i].rss;
			(*nproc)++;
		}
	free(p);
	return sum;
}

Test(resources, process_tree_cpu_and_mem)
{
	struct ops_cluster oc;
	const char *args[] = { "-n", "2", "--", hx_fixture("fx_prefork"),
			       "--port", NULL, NULL };
	char port[16], cond[256];
	struct ops_run r;

	memset(&oc, 0, sizeof(oc));
	snprintf(oc.sock, sizeof(oc.sock), "%s", ops_path("ctl.sock"));
	oc.port = hx_free_port(SOCK_STREAM);
	snprintf(port, sizeof(port), "%d", oc.port);
	args[5] = port;
	oc.c = ops_start_args(oc.sock, args);
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines");
	/* the parent and its three pre-forked children, sampled twice */
	hx_assert(oc.c, ops_wait_status(&oc, "len(W) == 2 and "
					"all(w['processes'] == 4 and "
					"w['cpu_percent'] is not None for w "
					"in W)", SAMPLE_WAIT_MS),
		  "ctl status never showed 2 workers of 4 processes each with "
		  "a cpu figure");
	for (int id = 1; id <= 2; id++) {
		unsigned nproc;
		pid_t pid = hx_worker_pid(oc.c, id);
		unsigned long long scan = tree_rss_by_scan(pid, &nproc);
		long rss;

		snprintf(cond, sizeof(cond), "[w['rss_bytes'] for w in W if "
			 "w['pid'] == %d][0]", (int)pid);
		rss = ops_status_long(&oc, cond);
		hx_assert(oc.c, nproc == 4, "the /proc scan finds %u processes "
			  "under worker %d", nproc, id);
		/* Idle processes: their RSS moves little between the two
		 * readings. */
		hx_assert(oc.c, rss > 0 && (unsigned long long)rss * 2 > scan &&
			  (unsigned long long)rss < scan * 2, "worker %d: status "
			  "says %ld bytes resident, /proc adds up to %llu", id,
			  rss, scan);
	}
	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", NULL }, &r);
	hx_assert(oc.c, strstr(r.out, " cpu ") && strstr(r.out, " mem ") &&
		  strstr(r.out, "%"), "no cpu and mem columns:\n%s", r.out);
	ops_run_free(&r);
}

/* A worker whose child burns a second of CPU and then idles. */
static const char burner[] =
	"import os, socket, sys, time\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	"s.listen(16)\n"
	"r, w = os.pipe()\n"
	"if os.fork() == 0:\n"
	"    os.close(w)\n"
	"    t = time.process_time()\n"
	"    while time.process_time() - t < 1.0:\n"
	"        pass\n"
	"    os.read(r, 1)\n"
	"    os._exit(0)\n"
	"while True:\n"
	"    c, _ = s.accept()\n"
	"    c.close()\n";

Test(resources, cpu_seconds_of_a_child)
{
	struct ops_cluster oc;
	char port[16];
	const char *args[] = { "-n", "1", "--", "python3", "-c", burner, port,
			       NULL };

	memset(&oc, 0, sizeof(oc));
	snprintf(oc.sock, sizeof(oc.sock), "%s", ops_path("ctl.sock"));
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	oc.c = ops_start_args(oc.sock, args);
	hx_assert(oc.c, hx_wait_count(oc.c, HX_LISTENING, 1, HX_START_MS),
		  "want a \"listening\" line");
	hx_assert(oc.c, ops_wait_status(&oc, "W[0]['processes'] == 2 and "
					"W[0]['cpu_seconds'] >= 0.95",
					SAMPLE_WAIT_MS),
		  "the burning child's second of CPU never showed: %s",
		  ops_status_eval(&oc, "W[0]"));
	/* and it stays counted: a counter (cpu_percent is null until a
	 * second sample gives a rate) */
	hx_assert(oc.c, ops_wait_status(&oc, "W[0]['cpu_seconds'] >= 0.95 and "
					"W[0]['cpu_percent'] is not None and "
					"W[0]['cpu_percent'] < 20", SAMPLE_WAIT_MS),
		  "after the burn: %s", ops_status_eval(&oc, "W[0]"));
}

/* SIGSTOP, and wait (bounded) until the kernel says it is stopped: a
 * worker woken in accept() by the signal would take one more connection
 * before it stops. */
static void stop_worker(struct hx_cluster *c, pid_t pid)
{
	int64_t deadline = hx_now_ms() + HX_QUERY_MS;
	char path[64], buf[512], *rp;

	cr_assert(kill(pid, SIGSTOP) == 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) {
		FILE *f = fopen(path, "r");
		bool stopped = false;

		if (f) {
			stopped = fgets(buf, sizeof(buf), f) &&
				  (rp = strrchr(buf, ')')) && rp[2] == 'T';
			fclose(f);
		}
		if (stopped)
			return;
		hx_assert(c, hx_now_ms() < deadline, "worker %d never stopped",
			  (int)pid);
		hx_pump(c, 10);
	}
}

static int connect_clients(int port, int *fds, int n)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(fds[i] >= 0);
		/* completes from the backlog, with nobody accepting */
		cr_assert(connect(fds[i], (struct sockaddr *)&sin,
				  sizeof(sin)) == 0, "connect: %s",
			  strerror(errno));
	}
	return n;
}

static void close_clients(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static long somaxconn(void)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	long v = 4096;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 4096;
		fclose(f);
	}
	return v;
}

Test(resources, accept_queue_of_a_shared_listener)
{
	struct ops_cluster oc;
	int fds[MAX_CLIENTS];
	pid_t pid;
	char cond[256];
	/* fixture_common.c listens with 128 */
	long backlog = somaxconn() < 128 ? somaxconn() : 128;

	ops_start(&oc, 1, (const char *[]){ "--sched", "none", NULL });
	pid = hx_worker_pid(oc.c, 1);
	stop_worker(oc.c, pid);
	connect_clients(oc.port, fds, 5);
	snprintf(cond, sizeof(cond), "len(L) == 1 and L[0]['queued'] == 5 and "
		 "L[0]['backlog'] == %ld and L[0]['policy'] == 'none' and "
		 "L[0]['held'] is None", backlog);
	hx_assert(oc.c, ops_wait_status(&oc, cond, SAMPLE_WAIT_MS),
		  "want 5 queued of %ld: %s", backlog, ops_status_eval(&oc, "L"));
	cr_assert(kill(pid, SIGCONT) == 0);
	hx_assert(oc.c, ops_wait_status(&oc, "L[0]['queued'] == 0",
					SAMPLE_WAIT_MS),
		  "the worker resumed, but: %s", ops_status_eval(&oc, "L"));
	close_clients(fds, 5);
}

Test(resources, rr_held_and_accepted)
{
	struct ops_cluster oc;
	int fds[MAX_CLIENTS];
	pid_t pid;
	struct ops_run r;
	const int n = 24;

	ops_start(&oc, 1, NULL);
	pid = hx_worker_pid(oc.c, 1);
	stop_worker(oc.c, pid);
	connect_clients(oc.port, fds, n);
	/* Every connection is somewhere: in the supervisor's hands (what it
	 * accepted, the stopped worker has not) or in the kernel's queue. */
	hx_assert(oc.c, ops_wait_status(&oc, "L[0]['held'] > 0 and L[0]['held'] "
					"+ L[0]['queued'] == 24 and "
					"L[0]['accepted'] == L[0]['held']",
					SAMPLE_WAIT_MS),
		  "24 clients, a stopped worker: %s", ops_status_eval(&oc, "L"));
	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", NULL }, &r);
	hx_assert(oc.c, strstr(r.out, "listener") && strstr(r.out, "held"),
		  "no listener table:\n%s", r.out);
	ops_run_free(&r);
	cr_assert(kill(pid, SIGCONT) == 0);
	hx_assert(oc.c, ops_wait_status(&oc, "L[0]['held'] == 0 and "
					"L[0]['queued'] == 0 and "
					"L[0]['accepted'] == 24", SAMPLE_WAIT_MS),
		  "the worker resumed, but: %s", ops_status_eval(&oc, "L"));
	close_clients(fds, n);
}

/* Worker 2 exits at once: its slot waits for the restart. */
static const char exits_as_two[] =
	"import os, socket, sys\n"
	"if os.environ['CLUSTER_WORKER_ID'] == '2':\n"
	"    sys.exit(3)\n"
	"s = socket.socket()\n"
	"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	"s.bind(('127.0.0.1', int(sys.argv[1])))\n"
	"s.listen(16)\n"
	"while True:\n"
	"    s.accept()[0].close()\n";

Test(resources, a_waiting_slot_has_no_figures)
{
	struct ops_cluster oc;
	char port[16];
	const char *args[] = { "-n", "2", "--restart-delay", "60000", "--",
			       "python3", "-c", exits_as_two, port, NULL };
	struct ops_run r;
	char *save = NULL, *line;
	bool seen = false;

	memset(&oc, 0, sizeof(oc));
	snprintf(oc.sock, sizeof(oc.sock), "%s", ops_path("ctl.sock"));
	snprintf(port, sizeof(port), "%d", hx_free_port(SOCK_STREAM));
	oc.c = ops_start_args(oc.sock, args);
	hx_assert(oc.c, ops_wait_line(oc.c, "restarting it in", 0,
				      HX_START_MS) >= 0, "worker 2 never exited");
	hx_assert(oc.c, ops_wait_status(&oc, "W[0]['cpu_percent'] is not None "
					"and W[1]['waiting'] and "
					"W[1]['rss_bytes'] is None",
					SAMPLE_WAIT_MS),
		  "status: %s", ops_status_eval(&oc, "W"));
	ops_ctl(oc.c, oc.sock, (const char *[]){ "status", NULL }, &r);
	for (line = strtok_r(r.out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char id[8], pid[16], state[32], up[16], restarts[16];
		char handed[16], cpu[16], mem[16], ls[16];

		if (sscanf(line, "%7s %15s %31s %15s %15s %15s %15s %15s %15s",
			   id, pid, state, up, restarts, handed, cpu, mem,
			   ls) != 9 || strcmp(id, "2") != 0)
			continue;
		seen = true;
		hx_assert(oc.c, strcmp(state, "restarting") == 0 &&
			  strcmp(pid, "-") == 0 && strcmp(cpu, "-") == 0 &&
			  strcmp(mem, "-") == 0 && strcmp(ls, "-") == 0,
			  "the waiting slot's row: %s", line);
	}
	hx_assert(oc.c, seen, "no row for slot 2:\n%s", r.out);
	ops_run_free(&r);
}
