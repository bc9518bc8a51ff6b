/*
 * test_worker_signals.c - a worker's signals are the command's alone: its
 * writes to the terminal cluster-run runs on in the foreground go through
 * under `stty tostop` (the worker's process group is never the terminal's
 * foreground one), and what cluster-run inherited ignored or blocked
 * (nohup's SIGHUP) the worker inherits too.
 */
#include "ops.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(worker_signals, .fini = ops_fini, .timeout = 60);

/*
 * `stty tostop; cluster-run ...` in the terminal's foreground, workers
 * `sh -c` that write a line on the terminal, read one, then exec the
 * server: alone in the foreground the write goes through; in a process
 * group of its own the kernel would stop the worker (SIGTTOU) for good.
 * The read fails at once (EIO) rather than stopping it.
 */
Test(worker_signals, terminal_writes_from_the_foreground)
{
	static const char script[] =
		"echo \"worker $CLUSTER_WORKER_ID wrote\" >&2; "
		"read line; echo \"worker $CLUSTER_WORKER_ID read: $?\" >&2; "
		"exec \"$0\" --port \"$1\"";
	struct ops_cluster oc;
	struct ops_tty t;
	const char *port = ops_prepare(&oc);
	char want[64];
	pid_t pids[2];

	ops_tty_start_foreground(&t, (const char *[]){ "--control", oc.sock,
		"-n", "2", "--", "sh", "-c", script,
		hx_fixture("fx_blocking_accept"), port, NULL });
	for (int id = 1; id <= 2; id++) {
		snprintf(want, sizeof(want), "worker %d wrote", id);
		hx_assert(t.c, ops_wait_line(t.c, want, 0, HX_START_MS) >= 0,
			  "no \"%s\" line on the terminal within %d ms: the "
			  "worker's write stopped it", want, HX_START_MS);
		snprintf(want, sizeof(want), "worker %d read: ", id);
		hx_assert(t.c, ops_wait_line(t.c, want, 0, HX_START_MS) >= 0,
			  "no \"%s...\" line within %d ms: the worker's read "
			  "stopped it", want, HX_START_MS);
	}
	hx_assert(t.c, hx_wait_count(t.c, HX_LISTENING, 2, HX_START_MS),
		  "want 2 \"listening\" lines on the terminal");
	for (int id = 1; id <= 2; id++) {
		pids[id - 1] = hx_worker_pid(t.c, id);
		hx_assert(t.c, hx_wait_asleep(pids[id - 1], HX_START_MS),
			  "worker %d (pid %d) is not asleep in accept()", id,
			  (int)pids[id - 1]);
	}
	for (int i = 0; i < 4; i++)
		ops_query_from(t.c, &oc.target, pids, 2, "in the foreground");
	hx_assert(t.c, kill(t.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	hx_assert(t.c, strcmp(ops_tty_report(&t, "exited ", HX_EXIT_MS),
			      "exited 0x0") == 0,
		  "SIGTERM: \"%s\", want exit 0 (and no stop before it)",
		  t.line);
	ops_tty_free(&t);
}

/* How a parent starts argv: these signals ignored, those blocked. */
struct started_as {
	const char *const *argv;
	const int *ignored, *blocked;   /* 0-terminated */
};

static int exec_as(void *arg)
{
	const struct started_as *as = arg;
	sigset_t set;

	for (const int *s = as->ignored; *s; s++)
		signal(*s, SIG_IGN);
	sigemptyset(&set);
	for (const int *s = as->blocked; *s; s++)
		sigaddset(&set, *s);
	sigprocmask(SIG_SETMASK, &set, NULL);
	execvp(as->argv[0], (char *const *)as->argv);
	fprintf(stderr, "exec %s: %s\n", as->argv[0], strerror(errno));
	return 127;
}

/* The value of "Name:\t..." in text (/proc/PID/status), 0 if none. */
static unsigned long long status_mask(const char *text, const char *name)
{
	const char *p = strstr(text, name);

	return p ? strtoull(p + strlen(name), NULL, 16) : 0;
}

#define SIGBIT(sig) (1ULL << ((sig) - 1))

/*
 * The same grep of its own SigIgn and SigBlk, started alone and as
 * cluster-run's worker, by a parent that ignores and blocks signals
 * (nohup's SIGHUP, a shell's SIGINT and SIGQUIT for a background job),
 * and by one that does neither (cluster-run's own SIGPIPE ignore and
 * handlers must not leak): the same lines.
 */
Test(worker_signals, inherited_dispositions_and_mask)
{
	static const int nohup_like[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR2, 0 };
	static const int blocked[] = { SIGUSR1, SIGWINCH, 0 };
	static const int none[] = { 0 };
	const char *bin = getenv("CLUSTER_RUN_BIN");
	const char *alone[] = { "grep", "-E", "^Sig(Ign|Blk):",
				"/proc/self/status", NULL };
	/* it exits 0 before it listens: a failed start, the last one */
	const char *under[] = { bin, "--control", ops_path("ctl.sock"), "-n",
				"1", "--crash-limit", "1:60", "--", "grep",
				"-E", "^Sig(Ign|Blk):", "/proc/self/status",
				NULL };
	const struct started_as ways[][2] = {
		{ { alone, nohup_like, blocked }, { under, nohup_like, blocked } },
		{ { alone, none, none }, { under, none, none } },
	};

	cr_assert(bin != NULL, "CLUSTER_RUN_BIN is not set (run through meson test)");
	for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
		struct ops_run r[2];
		unsigned long long ign[2], blk[2];

		for (int k = 0; k < 2; k++) {
			ops_run_fn(exec_as, (void *)&ways[w][k], &r[k]);
			ign[k] = status_mask(r[k].out, "SigIgn:");
			blk[k] = status_mask(r[k].out, "SigBlk:");
		}
		cr_assert(ops_exit_code(&r[0]) == 0 && strstr(r[0].out, "SigIgn:"),
			  "alone: exit %d, stdout \"%s\", stderr \"%s\"",
			  ops_exit_code(&r[0]), r[0].out, r[0].err);
		cr_assert(ops_exit_code(&r[1]) == 1 && strstr(r[1].out, "SigIgn:"),
			  "cluster-run: exit %d, want 1 (the crash limit); "
			  "stdout \"%s\", stderr \"%s\"", ops_exit_code(&r[1]),
			  r[1].out, r[1].err);
		if (w == 0)
			cr_assert((ign[0] & SIGBIT(SIGHUP)) &&
				  (blk[0] & SIGBIT(SIGUSR1)),
				  "alone: SigIgn %llx SigBlk %llx lack SIGHUP, "
				  "SIGUSR1", ign[0], blk[0]);
		cr_assert(ign[1] == ign[0] && blk[1] == blk[0],
			  "case %zu: the worker has SigIgn %llx SigBlk %llx, "
			  "alone SigIgn %llx SigBlk %llx", w, ign[1], blk[1],
			  ign[0], blk[0]);
		for (int k = 0; k < 2; k++)
			ops_run_free(&r[k]);
	}
}
