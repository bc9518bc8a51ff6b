/*
 * syscall(): a server that makes its socket calls through glibc's
 * syscall() (syscall(SYS_bind, ...), syscall(SYS_accept4, ...)) gets what
 * the plain calls would give it.  The numbers the shim interposes on are
 * routed to the shim's own functions: bind, listen, accept, accept4,
 * shutdown, and close, close_range, dup2, dup3 (which must not touch the
 * shim's own fds).  Every other number passes through untouched.  Programs
 * that make system calls without glibc (Go) are out of reach.
 */
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	int i;

	/* As glibc's own syscall() does: six words, whatever was passed. */
	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (shim_active()) {
		switch (number) {
		case SYS_bind:
			return bind((int)a[0], (const struct sockaddr *)a[1],
				    (socklen_t)a[2]);
		case SYS_listen:
			return listen((int)a[0], (int)a[1]);
		case SYS_accept:
			return accept((int)a[0], (struct sockaddr *)a[1],
				      (socklen_t *)a[2]);
		case SYS_accept4:
			return accept4((int)a[0], (struct sockaddr *)a[1],
				       (socklen_t *)a[2], (int)a[3]);
		case SYS_shutdown:
			return shutdown((int)a[0], (int)a[1]);
		case SYS_close:
			return close((int)a[0]);
		case SYS_close_range:
			return close_range((unsigned)a[0], (unsigned)a[1],
					   (int)a[2]);
#ifdef SYS_dup2
		case SYS_dup2:
			return dup2((int)a[0], (int)a[1]);
#endif
		case SYS_dup3:
			return dup3((int)a[0], (int)a[1], (int)a[2]);
		}
	}
	return real_syscall6(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
