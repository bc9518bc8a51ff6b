/*
 * worker_diagnose.c - saying so when the shim cannot reach a worker.
 *
 * A static or setuid binary never loads the preload library, and a program
 * that makes its own socket system calls (Go) binds behind the shim's back:
 * both run, but their listeners are not shared, and with more than one
 * worker the others fail with EADDRINUSE, fast enough to end in a
 * crash-loop stop within two seconds.  So the program is judged before its
 * first worker runs: its ELF file, read once per cluster at the first fork
 * (a few pread()s of one file), says static, setuid/setgid or Go, and one
 * line says so at once, ahead of anything the crash loop prints.
 *
 * For what the file cannot tell (a program that clears LD_PRELOAD, a
 * wrapper that execs a static binary), 5, 10 and 15 s after a worker starts
 * the supervisor looks, only while that worker has not asked cluster-run
 * for any listener (not checked in, or checked in and never asked: a Go
 * binary linked with cgo loads the shim and still binds behind it): has its
 * shim checked in, and does it hold a TCP listener that is none of the
 * cluster's (conn_census.c, a LISTEN-only dump)?  One line each, once.  A
 * worker that listens through cluster-run costs nothing.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "conn_census.h"
#include "elf_kind.h"

#define DIAGNOSE_EVERY_S 5
#define DIAGNOSE_ROUNDS 3
#define KNOWN_INODES_MAX 256

/* Whether the kernel runs it in secure-execution mode for the workers
 * (set-user-ID to another user, set-group-ID to another group): then the
 * loader ignores LD_PRELOAD. */
static bool runs_secure(const struct stat *st, const struct cluster *c)
{
	uid_t uid = c->settings.set_uid ? c->settings.uid : getuid();
	gid_t gid = c->settings.set_gid ? c->settings.gid : getgid();

	return elf_runs_secure(st, uid, gid);
}

/* Why the program in fd cannot be reached by the shim, or NULL when
 * nothing in the file says so. */
static const char *file_cause(int fd, const struct cluster *c)
{
	bool is32;
	enum elf_kind kind = elf_kind_of(fd, &is32);
	struct stat st;

	if (kind == ELF_KIND_GO)
		return "is a Go binary: it makes its own socket system calls, "
		       "behind the shim";
	if (kind == ELF_KIND_STATIC)
		return "is a static binary: it never loads the shim";
	if (is32)
		return "is a 32-bit program: the loader ignores the 64-bit "
		       "shim (wrong ELF class), so it never loads it";
	if (fstat(fd, &st) == 0 && runs_secure(&st, c))
		return "is setuid or setgid: the loader ignores LD_PRELOAD, so "
		       "it never loads the shim";
	return NULL;
}

/* Why the worker's program would not load the shim (it has not). */
static const char *likely_cause(const struct cluster_worker *w)
{
	const char *cause;
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)w->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "may clear LD_PRELOAD";
	cause = file_cause(fd, w->cluster);
	close(fd);
	return cause ? cause : "may clear LD_PRELOAD";
}

/* ---- the program, once per cluster ---- */

/* The file execvpe() will run: argv[0] (in the workers' directory when
 * relative), else found in PATH.  -1 when none is found. */
static int open_program(const struct cluster *c)
{
	const char *prog = c->settings.argv[0], *dir = c->settings.chdir_path;
	const char *path = getenv("PATH"), *p, *end;
	char file[PATH_MAX];

	if (strchr(prog, '/')) {
		if (prog[0] != '/' && dir)
			snprintf(file, sizeof(file), "%s/%s", dir, prog);
		else
			snprintf(file, sizeof(file), "%s", prog);
		return open(file, O_RDONLY | O_CLOEXEC);
	}
	for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p; p = end) {
		int fd;

		end = strchrnul(p, ':');
		if (end == p) /* an empty entry is the current directory */
			snprintf(file, sizeof(file), "./%s", prog);
		else
			snprintf(file, sizeof(file), "%.*s/%s", (int)(end - p), p,
				 prog);
		if (*end)
			end++;
		if (access(file, X_OK) == 0 &&
		    (fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0)
			return fd;
	}
	return -1;
}

/* What the program's file says, read once (a few pread()s). */
struct program_facts {
	enum elf_kind kind;
	bool secure;   /* setuid/setgid for the workers */
	bool is32;     /* a 32-bit ELF file */
};

static bool judge_program(struct cluster *c, struct program_facts *pf)
{
	struct stat st;
	int fd = open_program(c);

	memset(pf, 0, sizeof(*pf));
	if (fd < 0)
		return false;
	pf->kind = elf_kind_of(fd, &pf->is32);
	pf->secure = fstat(fd, &st) == 0 && runs_secure(&st, c);
	c->diag_cause = file_cause(fd, c);
	close(fd);
	return true;
}

/* auto: the seccomp mode where the shim cannot load and the mode can
 * serve: static, Go and 32-bit binaries (the filter covers the i386 ABI);
 * a setuid one only when we are root (then
 * it keeps its rights, see seccomp_say_privileges). */
static bool wants_seccomp(const struct cluster *c,
			  const struct program_facts *pf)
{
	switch (c->settings.intercept) {
	case CLUSTER_INTERCEPT_SHIM:
		return false;
	case CLUSTER_INTERCEPT_SECCOMP:
		return true;
	default:
		return pf->kind == ELF_KIND_STATIC || pf->kind == ELF_KIND_GO ||
		       pf->is32 || (pf->secure && geteuid() == 0);
	}
}

static void seccomp_say_privileges(struct cluster *c,
				   const struct program_facts *pf)
{
	const char *prog = c->settings.argv[0];

	if (!pf->secure)
		return;
	if (c->seccomp_keeps_privs)
		cluster_logf(c, "%s is setuid or setgid and cluster-run runs as "
			     "root: PR_SET_NO_NEW_PRIVS is skipped, the program "
			     "keeps the rights of its file's owner", prog);
	else
		cluster_logf(c, "%s is setuid or setgid: the seccomp mode sets "
			     "PR_SET_NO_NEW_PRIVS without root, so it runs with "
			     "the rights of its caller, not of its file's owner "
			     "(run cluster-run as root to keep them)", prog);
}

/* Policies other than reuseport need the shim: rr's faux listeners, and
 * the stop-accepting swap of none. */
static void seccomp_force_reuseport(struct cluster *c)
{
	if (c->settings.sched == CLUSTER_SCHED_REUSEPORT)
		return;
	cluster_logf(c, "seccomp mode: the workers share listeners by "
		     "reuseport (an SO_REUSEPORT socket per worker slot); "
		     "--sched %s is the shim's",
		     cluster_sched_name(c->settings.sched));
	c->settings.sched = CLUSTER_SCHED_REUSEPORT;
	reuseport_enable_migration(c);
}

static void seccomp_say_mode(struct cluster *c, const struct program_facts *pf)
{
	const char *prog = c->settings.argv[0];

	cluster_logf(c, "%s %s; its workers run in the seccomp mode: a filter "
		     "hands each bind() and listen() to cluster-run, and "
		     "io_uring_setup() fails with ENOSYS so that nothing "
		     "bypasses it", prog,
		     c->diag_cause ? c->diag_cause : "runs with --intercept "
		     "seccomp");
	seccomp_say_privileges(c, pf);
	seccomp_force_reuseport(c);
}

void cluster_seccomp_enter(struct cluster *c, bool keeps_privs)
{
	c->diag_program_read = true;
	c->seccomp = true;
	c->seccomp_keeps_privs = keeps_privs;
	seccomp_force_reuseport(c);
}

bool cluster_seccomp_mode(struct cluster *c)
{
	struct program_facts pf;

	if (c->diag_program_read)
		return c->seccomp;
	c->diag_program_read = true;
	if (!judge_program(c, &pf) &&
	    c->settings.intercept != CLUSTER_INTERCEPT_SECCOMP)
		return false; /* not found: the exec will say so */
	c->seccomp = wants_seccomp(c, &pf);
	if (!c->seccomp)
		return false;
	c->seccomp_keeps_privs = pf.secure && geteuid() == 0;
	seccomp_say_mode(c, &pf);
	return true;
}

/* The one line for a program the shim cannot reach; true when said (or
 * when the seccomp mode reaches it instead: nothing to look at). */
static bool diagnose_program(struct cluster *c)
{
	if (cluster_seccomp_mode(c))
		return true;
	if (c->diag_program_said || !c->diag_cause)
		return c->diag_program_said;
	c->diag_program_said = true;
	cluster_logf(c, "%s %s; its listeners are not shared: each worker "
		     "binds on its own, and with more than one the others "
		     "fail with EADDRINUSE (--intercept seccomp runs it)",
		     c->settings.argv[0], c->diag_cause);
	return true;
}

/* ---- each worker that has not asked for a listener ---- */

static void diagnose_check_in(struct cluster_worker *w)
{
	if (w->state != WORKER_NONE || w->diag_said_no_shim)
		return;
	w->diag_said_no_shim = true;
	cluster_logf(w->cluster, "worker %u (pid %d) has not loaded the shim "
		     "%d s after it started: %s %s; its listeners are not shared",
		     w->id, (int)w->pid, DIAGNOSE_EVERY_S,
		     w->cluster->settings.argv[0], likely_cause(w));
}

static void diagnose_listeners(struct cluster_worker *w)
{
	unsigned long known[KNOWN_INODES_MAX];
	size_t nknown;
	char addr[SOCKADDR_TEXT_MAX];

	if (w->diag_said_foreign)
		return;
	nknown = handle_inodes(w->cluster, known, KNOWN_INODES_MAX);
	if (conn_census_foreign_listener(w->pid, known, nknown, addr,
					 sizeof(addr)) != 1)
		return;
	w->diag_said_foreign = true;
	cluster_logf(w->cluster, "worker %u (pid %d) listens on %s, which it "
		     "never asked cluster-run for: %s makes its own socket "
		     "system calls (a Go binary?) or bypasses the shim; that "
		     "listener is not shared", w->id, (int)w->pid, addr,
		     w->cluster->settings.argv[0]);
}

static void worker_on_diagnose(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_worker *w = arg;
	struct timeval tv = { DIAGNOSE_EVERY_S, 0 };

	/* asked for a listener: the shim reaches it, nothing to look at */
	if (w->state >= WORKER_LISTENING)
		return;
	diagnose_check_in(w);
	diagnose_listeners(w);
	if (++w->diag_rounds < DIAGNOSE_ROUNDS)
		evtimer_add(w->diag_timer, &tv);
}

void worker_diagnose_start(struct cluster_worker *w)
{
	struct timeval tv = { DIAGNOSE_EVERY_S, 0 };

	if (diagnose_program(w->cluster))
		return; /* said for every worker; each would say it again */
	w->diag_timer = evtimer_new(w->cluster->base, worker_on_diagnose, w);
	if (w->diag_timer)
		evtimer_add(w->diag_timer, &tv);
}

void worker_diagnose_stop(struct cluster_worker *w)
{
	if (w->diag_timer) {
		event_free(w->diag_timer);
		w->diag_timer = NULL;
	}
}
