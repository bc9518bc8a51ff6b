/*
 * seccomp_filter.c - the worker's side of the seccomp mode, run in the
 * child between fork() and exec(): a filter that hands every bind() and
 * listen() to the supervisor (SECCOMP_RET_USER_NOTIF), setsid() too (a
 * daemon in the making, seccomp_daemon.c; rare), and the listener fd
 * it returns, sent to the supervisor on the exec-status socket.  No
 * allocation: the child of a threaded program may only make system calls.
 *
 * What the filter does besides, as it must for nothing to bypass it:
 *   - io_uring_setup() fails with ENOSYS: IORING_OP_BIND, _LISTEN and
 *     _ACCEPT reach the kernel without a system call to notify.  Runtimes
 *     that try io_uring fall back to plain system calls on ENOSYS.
 *   - x86_64: the i386 ABI (int $0x80: a 32-bit program, or a 64-bit one
 *     making 32-bit calls) is covered too, since a filter that only knows
 *     the 64-bit numbers would let it through: its bind() and listen(),
 *     and socketcall() when it is SYS_BIND or SYS_LISTEN (older i386
 *     libcs make every socket call through it), and its setsid() (a
 *     32-bit daemon, followed as a native one is) are notified as well
 *     (seccomp_notify.c decodes them), its io_uring_setup() fails with
 *     ENOSYS.  The x32 ABI (numbers with bit 30 set), which hardly any
 *     program uses, fails with ENOSYS.
 *   - another architecture than the supervisor's: every call fails with
 *     ENOSYS (there is no other on the architectures below but x86's i386).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto_codec.h"
#include "seccomp_filter.h"

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#define X32_SYSCALL_BIT 0x40000000u

#define LOAD(field) \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
/* if A == k, skip t instructions, else f */
#define IF_EQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))
#define ENOSYS_RET (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

#ifdef NATIVE_ARCH
static struct sock_filter filter[] = {
	/* 0 */ LOAD(arch),
	/* 1 */ IF_EQ(NATIVE_ARCH, 0, 7),          /* else 9: foreign */
	/* 2 */ LOAD(nr),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 16, 0),
	/* 4 */ IF_EQ(__NR_bind, 16, 0),           /* 21: notify */
	/* 5 */ IF_EQ(__NR_listen, 15, 0),
	/* 6 */ IF_EQ(__NR_setsid, 14, 0),         /* a daemon, maybe */
	/* 7 */ IF_EQ(__NR_io_uring_setup, 12, 0), /* 20: ENOSYS */
	/* 8 */ RET(SECCOMP_RET_ALLOW),
#if defined(__x86_64__)
	/* 9 */ IF_EQ(AUDIT_ARCH_I386, 0, 10),     /* else 20 */
	/* 10 */ LOAD(nr),
	/* 11 */ IF_EQ(I386_BIND, 9, 0),
	/* 12 */ IF_EQ(I386_LISTEN, 8, 0),
	/* 13 */ IF_EQ(I386_SETSID, 7, 0),
	/* 14 */ IF_EQ(I386_IO_URING_SETUP, 5, 0),
	/* 15 */ IF_EQ(I386_SOCKETCALL, 0, 3),     /* else 19: allow */
	/* 16 */ LOAD(args[0]),                    /* its low half: the call */
	/* 17 */ IF_EQ(I386_SYS_BIND, 3, 0),
	/* 18 */ IF_EQ(I386_SYS_LISTEN, 2, 0),
	/* 19 */ RET(SECCOMP_RET_ALLOW),
#else
	/* 9..19 */ RET(ENOSYS_RET), RET(ENOSYS_RET), RET(ENOSYS_RET),
	RET(ENOSYS_RET), RET(ENOSYS_RET), RET(ENOSYS_RET), RET(ENOSYS_RET),
	RET(ENOSYS_RET), RET(ENOSYS_RET), RET(ENOSYS_RET), RET(ENOSYS_RET),
#endif
	/* 20 */ RET(ENOSYS_RET),
	/* 21 */ RET(SECCOMP_RET_USER_NOTIF),
};
/* the jumps above count on these two being last */
_Static_assert(sizeof(filter) / sizeof(filter[0]) == 22,
	       "the filter's jump offsets are out of step with its length");
#endif

int seccomp_filter_install(bool no_new_privs)
{
#ifdef NATIVE_ARCH
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};
	long fd;

	if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	/* WAIT_KILLABLE_RECV (5.19): once the supervisor has read the
	 * notification only a fatal signal interrupts the call, so a signal
	 * storm (Go's SIGURG) cannot restart a bind for ever. */
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		     SECCOMP_FILTER_FLAG_NEW_LISTENER |
		     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			     SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	return (int)fd;
#else
	(void)no_new_privs;
	errno = ENOSYS;
	return -1;
#endif
}

int seccomp_listener_send(int sock, int listener)
{
	int marker = SECCOMP_LISTENER_MARKER;

	/* proto_codec's sendmsg: no allocation, fit for the child */
	return cluster_msg_send(sock, &marker, sizeof(marker), &listener, 1,
				0) < 0 ? -1 : 0;
}
