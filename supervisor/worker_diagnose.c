/*
 * worker_diagnose.c - saying so when the shim cannot reach a worker.
 *
 * A static or setuid binary never loads the preload library, and a program
 * that makes its own socket system calls (Go) binds behind the shim's back:
 * both run, but their listeners are not shared.  5, 10 and 15 s after a
 * worker starts the supervisor looks: has its shim checked in, and does it
 * hold a TCP listener that is none of the cluster's?  One line each, once.
 */
#include <elf.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "conn_census.h"

#define DIAGNOSE_EVERY_S 5
#define DIAGNOSE_ROUNDS 3
#define KNOWN_INODES_MAX 256

/* Does the ELF file have a program interpreter (is it dynamically linked)? */
static bool elf_has_interp(int fd)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	unsigned i;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(ph))
		return true; /* not what we can read: assume dynamic */
	for (i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return true;
		if (ph.p_type == PT_INTERP)
			return true;
	}
	return false;
}

/* Why the worker's program would not load the shim. */
static const char *likely_cause(pid_t pid)
{
	char path[64];
	struct stat st;
	bool dynamic;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "may clear LD_PRELOAD";
	dynamic = elf_has_interp(fd);
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	close(fd);
	if (!dynamic)
		return "is a static binary";
	if (st.st_mode & (S_ISUID | S_ISGID))
		return "is setuid or setgid";
	return "may clear LD_PRELOAD";
}

static void diagnose_check_in(struct cluster_worker *w)
{
	if (w->state != WORKER_NONE || w->diag_said_no_shim)
		return;
	w->diag_said_no_shim = true;
	cluster_logf(w->cluster, "worker %u (pid %d) has not loaded the shim "
		     "%d s after it started: %s %s; its listeners are not shared",
		     w->id, (int)w->pid, DIAGNOSE_EVERY_S,
		     w->cluster->settings.argv[0], likely_cause(w->pid));
}

static void diagnose_listeners(struct cluster_worker *w)
{
	unsigned long known[KNOWN_INODES_MAX];
	size_t nknown = handle_inodes(w->cluster, known, KNOWN_INODES_MAX);
	char addr[SOCKADDR_TEXT_MAX];

	if (w->diag_said_foreign ||
	    conn_census_foreign_listener(w->pid, known, nknown, addr,
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

	if (w->state == WORKER_DEAD)
		return;
	diagnose_check_in(w);
	diagnose_listeners(w);
	if (++w->diag_rounds < DIAGNOSE_ROUNDS)
		evtimer_add(w->diag_timer, &tv);
}

void worker_diagnose_start(struct cluster_worker *w)
{
	struct timeval tv = { DIAGNOSE_EVERY_S, 0 };

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
