/*
 * fx_bypass probe | PORT - tries two ways around a filter that only knows
 * bind() and listen() of the 64-bit ABI, and says what it got:
 *   "io_uring_setup: ok" or "io_uring_setup: <errno name>" (io_uring binds
 *     and accepts without a system call to stop);
 *   "i386 bind: ok" or "i386 bind: <errno name>" (a 32-bit bind() through
 *     int $0x80, on x86_64 only; "i386 bind: n/a" elsewhere).
 * "probe": says both and exits 0 (what the kernel does without a filter).
 * PORT: says both, then serves "<id> <pid>\n" on 127.0.0.1:PORT.
 * Linked statically (a program the shim never reaches).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

#define I386_BIND 361

static void say_result(const char *what, long rc)
{
	if (rc >= 0)
		fxs_say("%s: ok", what);
	else
		fxs_say("%s: %s", what, strerrorname_np((int)-rc));
}

static void try_io_uring(void)
{
	char params[120]; /* struct io_uring_params */
	long fd;

	memset(params, 0, sizeof(params));
	fd = syscall(__NR_io_uring_setup, 4, params);
	say_result("io_uring_setup", fd < 0 ? -errno : fd);
	if (fd >= 0)
		close((int)fd);
}

/* Static, so below 4 GiB in a non-PIE static binary: a 32-bit pointer. */
static struct sockaddr_in any_port;

static void try_i386_bind(void)
{
#if defined(__x86_64__)
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	long rc;

	FXS_CHECK(fd >= 0);
	any_port.sin_family = AF_INET;
	any_port.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((unsigned long)&any_port > 0xffffffffUL) {
		fxs_say("i386 bind: n/a");
		close(fd);
		return;
	}
	__asm__ volatile("int $0x80"
			 : "=a"(rc)
			 : "a"(I386_BIND), "b"(fd), "c"(&any_port),
			   "d"(sizeof(any_port))
			 : "memory");
	say_result("i386 bind", rc);
	close(fd);
#else
	fxs_say("i386 bind: n/a");
#endif
}

int main(int argc, char **argv)
{
	int fd;

	fx_exit_on_sigterm();
	try_io_uring();
	try_i386_bind();
	if (argc > 1 && strcmp(argv[1], "probe") == 0)
		return 0;
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
