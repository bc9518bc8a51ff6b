/*
 * fx_i386 libc|socketcall|direct PORT | probe - a 32-bit (-m32) server: the loader
 * never gives it the 64-bit shim, and its system calls are the i386 ABI's
 * (int $0x80 or the vDSO's sysenter), which a filter of 64-bit numbers does
 * not see.  It binds 127.0.0.1:PORT and listens with glibc's bind() and
 * listen() ("libc": Debian 12's glibc makes them through socketcall, strace
 * -n says), through socketcall(SYS_BIND / SYS_LISTEN, args) itself
 * ("socketcall"), or with the direct i386 calls, bind (361) and listen
 * (363) ("direct", as newer libcs and runtimes do), then serves
 * "<id> <pid>\n" like every fixture.  Built -static and dynamic.
 *
 * It says first what the i386 io_uring_setup() (425) gave it:
 * "io_uring_setup: ok" or "io_uring_setup: <errno name>" (io_uring would
 * bind and accept without a system call to stop); "fx_i386 probe" says
 * only that and exits 0 (what the kernel does without a filter).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

#define BACKLOG 16

/* socketcall(call, args): args are the call's arguments as longs (32-bit
 * words here). */
static int by_socketcall(int call, unsigned long *args)
{
#ifdef SYS_socketcall
	return (int)syscall(SYS_socketcall, call, args);
#else
	(void)call, (void)args;
	fxs_fail(__FILE__, __LINE__, "socketcall is i386's: build with -m32");
#endif
}

/* The direct i386 system calls (syscall(2) makes them with int $0x80 or
 * the vDSO, never socketcall). */
static int direct_listener(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	FXS_CHECK(syscall(SYS_bind, fd, &sin, sizeof(sin)) == 0);
	FXS_CHECK(syscall(SYS_listen, fd, BACKLOG) == 0);
	return fd;
}

static void try_io_uring(void)
{
	char params[120]; /* struct io_uring_params */
	long fd;

	memset(params, 0, sizeof(params));
	fd = syscall(SYS_io_uring_setup, 4, params);
	if (fd >= 0) {
		fxs_say("io_uring_setup: ok");
		close((int)fd);
	} else {
		fxs_say("io_uring_setup: %s", strerrorname_np(errno));
	}
}

static int socketcall_listener(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned long bind_args[3], listen_args[2];

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FXS_CHECK(fd >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	bind_args[0] = (unsigned long)fd;
	bind_args[1] = (unsigned long)&sin;
	bind_args[2] = sizeof(sin);
	FXS_CHECK(by_socketcall(SYS_BIND, bind_args) == 0);
	listen_args[0] = (unsigned long)fd;
	listen_args[1] = BACKLOG;
	FXS_CHECK(by_socketcall(SYS_LISTEN, listen_args) == 0);
	return fd;
}

int main(int argc, char **argv)
{
	int fd, port;

	fx_exit_on_sigterm();
	try_io_uring();
	if (argc > 1 && strcmp(argv[1], "probe") == 0)
		return 0;
	port = fxs_arg_int(argc, argv, 2);
	if (strcmp(argv[1], "socketcall") == 0) {
		fd = socketcall_listener(port);
	} else if (strcmp(argv[1], "direct") == 0) {
		fd = direct_listener(port);
	} else {
		FXS_CHECK(strcmp(argv[1], "libc") == 0);
		fd = fxs_bound(SOCK_STREAM, port);
		FXS_CHECK(listen(fd, BACKLOG) == 0);
	}
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
