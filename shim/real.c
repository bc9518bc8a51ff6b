#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * One pointer per symbol, looked up on first use.  The lookup is idempotent,
 * so two threads racing on it store the same value; relaxed atomics keep
 * that race defined.
 */
#define REAL_FN(ret, name, params, args)                                    \
	ret real_##name params                                              \
	{                                                                   \
		static ret(*fn) params;                                     \
		ret(*f) params = __atomic_load_n(&fn, __ATOMIC_RELAXED);    \
		if (!f) {                                                   \
			f = (ret(*) params)dlsym(RTLD_NEXT, #name);         \
			if (!f)                                             \
				real_missing(#name);                        \
			__atomic_store_n(&fn, f, __ATOMIC_RELAXED);         \
		}                                                           \
		return f args;                                              \
	}

static void real_missing(const char *name)
{
	static const char msg[] = "libcluster_shim: cannot find libc symbol ";

	/* No stdio: this can run before libc is fully up, or after fork(). */
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, name, __builtin_strlen(name));
	(void)!write(2, "\n", 1);
	abort();
}

REAL_FN(int, bind, (int fd, const struct sockaddr *addr, socklen_t len),
	(fd, addr, len))
REAL_FN(int, listen, (int fd, int backlog), (fd, backlog))
REAL_FN(int, accept, (int fd, struct sockaddr *addr, socklen_t *len),
	(fd, addr, len))
REAL_FN(int, accept4,
	(int fd, struct sockaddr *addr, socklen_t *len, int flags),
	(fd, addr, len, flags))
REAL_FN(int, close, (int fd), (fd))
REAL_FN(int, shutdown, (int fd, int how), (fd, how))
REAL_FN(int, connect, (int fd, const struct sockaddr *addr, socklen_t len),
	(fd, addr, len))
REAL_FN(int, getsockname, (int fd, struct sockaddr *addr, socklen_t *len),
	(fd, addr, len))
REAL_FN(int, getpeername, (int fd, struct sockaddr *addr, socklen_t *len),
	(fd, addr, len))
REAL_FN(int, getsockopt,
	(int fd, int level, int name, void *val, socklen_t *len),
	(fd, level, name, val, len))
REAL_FN(int, setsockopt,
	(int fd, int level, int name, const void *val, socklen_t len),
	(fd, level, name, val, len))
REAL_FN(int, dup, (int fd), (fd))
REAL_FN(int, dup2, (int fd, int fd2), (fd, fd2))
REAL_FN(int, dup3, (int fd, int fd2, int flags), (fd, fd2, flags))

/* fcntl and ioctl are variadic in libc: called through variadic pointers. */
#define REAL_VARIADIC_FN(name, type2)                                       \
	int real_##name(int fd, type2 cmd, void *arg)                       \
	{                                                                   \
		static int (*fn)(int, type2, ...);                          \
		int (*f)(int, type2, ...) =                                 \
			__atomic_load_n(&fn, __ATOMIC_RELAXED);             \
		if (!f) {                                                   \
			f = (int (*)(int, type2, ...))dlsym(RTLD_NEXT, #name); \
			if (!f)                                             \
				real_missing(#name);                        \
			__atomic_store_n(&fn, f, __ATOMIC_RELAXED);         \
		}                                                           \
		return f(fd, cmd, arg);                                     \
	}

REAL_VARIADIC_FN(fcntl, int)
REAL_VARIADIC_FN(ioctl, unsigned long)
REAL_FN(pid_t, fork, (void), ())
REAL_FN(pid_t, setsid, (void), ())
REAL_FN(int, daemon, (int nochdir, int noclose), (nochdir, noclose))
REAL_FN(int, unlink, (const char *path), (path))
REAL_FN(int, unlinkat, (int dirfd, const char *path, int flags),
	(dirfd, path, flags))

/* syscall() is variadic; every system call takes at most six words. */
long real_syscall6(long number, long a1, long a2, long a3, long a4, long a5,
		   long a6)
{
	static long (*fn)(long, ...);
	long (*f)(long, ...) = __atomic_load_n(&fn, __ATOMIC_RELAXED);

	if (!f) {
		f = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
		if (!f)
			real_missing("syscall");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	return f(number, a1, a2, a3, a4, a5, a6);
}

void real__exit(int code)
{
	static void (*fn)(int);
	void (*f)(int) = __atomic_load_n(&fn, __ATOMIC_RELAXED);

	if (!f) {
		f = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
		if (!f) /* cannot happen with glibc; end anyway */
			f = (void (*)(int))dlsym(RTLD_DEFAULT, "_Exit");
		__atomic_store_n(&fn, f, __ATOMIC_RELAXED);
	}
	f(code);
	abort(); /* unreachable */
}
