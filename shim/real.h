/*
 * real.h - the libc functions the shim interposes, called through one clear
 * namespace: real_close(fd) is glibc's close(), whatever the shim does with
 * close() itself.  Resolved with dlsym(RTLD_NEXT, ...) on first use.
 */
#ifndef SHIM_REAL_H
#define SHIM_REAL_H

#include <stdarg.h>
#include <sys/socket.h>
#include <sys/types.h>

int real_bind(int fd, const struct sockaddr *addr, socklen_t len);
int real_listen(int fd, int backlog);
int real_accept(int fd, struct sockaddr *addr, socklen_t *len);
int real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int real_close(int fd);
int real_shutdown(int fd, int how);
int real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int real_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int real_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
int real_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int real_setsockopt(int fd, int level, int name, const void *val,
		    socklen_t len);
int real_dup(int fd);
int real_dup2(int fd, int fd2);
int real_dup3(int fd, int fd2, int flags);
int real_fcntl(int fd, int cmd, void *arg);
int real_ioctl(int fd, unsigned long request, void *arg);
int real_unlink(const char *path);
int real_unlinkat(int dirfd, const char *path, int flags);
pid_t real_fork(void);
pid_t real_setsid(void);
int real_daemon(int nochdir, int noclose);
void real__exit(int code) __attribute__((noreturn));
long real_syscall6(long number, long a1, long a2, long a3, long a4, long a5,
		   long a6);

#endif
