/*
 * fx_rawbind PORT - makes its socket calls as Go binaries do: system calls
 * issued by the program itself, not through glibc, which the shim cannot
 * see (it is loaded and checks in; its listener is its own).  Serves
 * "<id> <pid>\n" on 127.0.0.1:PORT, unclustered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

static long raw(long n, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
			 : "memory");
	return x0;
#else
	/* elsewhere glibc's syscall(), which the shim does see */
	long ret = syscall(n, a, b, c, d, e);

	return ret < 0 ? -errno : ret;
#endif
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1;
	long fd;

	fx_exit_on_sigterm();
	sin.sin_port = htons((uint16_t)fxs_arg_int(argc, argv, 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = raw(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0, 0);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(raw(SYS_setsockopt, fd, SOL_SOCKET, SO_REUSEADDR,
		      (long)&one, sizeof(one)) == 0);
	FXS_CHECK(raw(SYS_bind, fd, (long)&sin, sizeof(sin), 0, 0) == 0);
	FXS_CHECK(raw(SYS_listen, fd, 16, 0, 0, 0) == 0);
	for (;;) {
		long c = raw(SYS_accept4, fd, 0, 0, SOCK_CLOEXEC, 0);

		if (c == -EINTR || c == -ECONNABORTED)
			continue;
		FXS_CHECK(c >= 0);
		fx_answer((int)c);
	}
}
