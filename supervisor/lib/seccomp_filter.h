/*
 * seccomp_filter.h - the seccomp mode's filter, installed by a worker's
 * child process before exec (seccomp_filter.c), and the way its listener fd
 * reaches the supervisor.
 */
#ifndef SECCOMP_FILTER_H
#define SECCOMP_FILTER_H

#include <stdbool.h>

/* The payload of the message that carries the listener fd on the
 * exec-status socket (an errno there is positive). */
#define SECCOMP_LISTENER_MARKER (-1)
/* The first of the two ints of the message that says the filter could
 * not be installed (the second is the errno). */
#define SECCOMP_FILTER_FAILED (-2)

/* The i386 system calls the filter stops (x86_64 only; the numbers of
 * arch/x86/entry/syscalls/syscall_32.tbl), and socketcall()'s first
 * argument for the two it stops (SYS_BIND, SYS_LISTEN of <linux/net.h>). */
#define I386_SETSID 66
#define I386_SOCKETCALL 102
#define I386_BIND 361
#define I386_LISTEN 363
#define I386_IO_URING_SETUP 425
#define I386_SYS_BIND 2
#define I386_SYS_LISTEN 4

/* Installs the filter on the calling thread (then inherited by exec and
 * every child); no_new_privs: set PR_SET_NO_NEW_PRIVS first (required
 * without CAP_SYS_ADMIN).  The listener fd, or -1 with errno. */
int seccomp_filter_install(bool no_new_privs);
/* Sends listener over sock (SCM_RIGHTS); 0, or -1 with errno. */
int seccomp_listener_send(int sock, int listener);

#endif
