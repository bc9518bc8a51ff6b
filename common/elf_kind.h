/*
 * elf_kind.h - what a program's ELF file says about whether the shim can
 * reach it: static (the dynamic loader never runs, LD_PRELOAD means
 * nothing), Go (its runtime makes its own socket system calls, behind the
 * shim), 32-bit (a 64-bit shim cannot load into it), setuid or setgid (the
 * loader ignores LD_PRELOAD in secure-execution mode).
 *
 * One piece of code for the supervisor, which reads the command's file
 * before the first fork (worker_diagnose.c), and for the shim, which reads
 * the file a worker is about to exec (shim/exec.c).  So nothing here
 * allocates, touches stdio or keeps state: a few pread()s of an open fd,
 * into buffers on the stack, async-signal-safe.
 */
#ifndef ELF_KIND_H
#define ELF_KIND_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

enum elf_kind {
	ELF_KIND_DYNAMIC, /* also: not an ELF file we can read (a script) */
	ELF_KIND_STATIC,  /* no program interpreter */
	ELF_KIND_GO,      /* Go's build id or build info sections */
};

/* What the ELF file in fd is, of either class; *is32: a 32-bit file,
 * which the loader never gives the 64-bit shim ("wrong ELF class"). */
enum elf_kind elf_kind_of(int fd, bool *is32);

/* Whether the kernel runs the file st describes in secure-execution mode
 * for a process of this real uid and gid: set-user-ID to another user, or
 * set-group-ID to another group. */
bool elf_runs_secure(const struct stat *st, uid_t uid, gid_t gid);

#endif
