/*
 * fx_notifier_wrap ARGS... - runs $CLUSTER_RUN_REAL ARGS under a seccomp
 * filter that has a notification listener of its own, as some container
 * runtimes do: the filter stops only acct(), which nothing here calls, and
 * its listener stays open across the exec.  The kernel allows one listener
 * per filter chain, so a seccomp worker's own filter is refused (EBUSY).
 * Exit 2 when the filter cannot be installed (test_seccomp's probe of the
 * kernel: with /bin/true as CLUSTER_RUN_REAL, exit 0 says it can).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_acct, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };
	const char *real = getenv("CLUSTER_RUN_REAL");
	long listener;

	if (!real || argc < 1) {
		fprintf(stderr, "fx_notifier_wrap: CLUSTER_RUN_REAL not set\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    (listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog)) < 0) {
		fprintf(stderr, "fx_notifier_wrap: seccomp: %s\n",
			strerror(errno));
		return 2;
	}
	fcntl((int)listener, F_SETFD, 0); /* the listener outlives the exec */
	execv(real, argv);
	fprintf(stderr, "fx_notifier_wrap: %s: %s\n", real, strerror(errno));
	return 127;
}
