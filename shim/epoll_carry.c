/*
 * A server may register its socket with epoll before bind() or listen();
 * the registration belongs to the file behind the fd, and the shim puts
 * another file behind that fd number (a faux handle, the shared socket, a
 * retired listener).  The registrations of the old file under that fd are
 * read from /proc/self/fdinfo of every epoll instance of the process,
 * removed before the swap and made again, with the same events and data,
 * after it.  Once per listener installed; no allocation (this may run in a
 * child forked from a threaded server).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

/* Reads one epoll instance's fdinfo; adds the entries on (fd, ino). */
static int scan_fdinfo(int epfd, int fd, unsigned long ino,
		       struct shim_epoll_reg *regs, int n, int max)
{
	char path[64], buf[4096 + 256];
	size_t have = 0;
	ssize_t got;
	int info;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	info = open(path, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		return n;
	while ((got = read(info, buf + have, sizeof(buf) - 1 - have)) > 0 ||
	       have > 0) {
		char *line = buf, *nl;

		have += got > 0 ? (size_t)got : 0;
		buf[have] = '\0';
		while ((nl = strchr(line, '\n')) != NULL ||
		       (got <= 0 && *line)) {
			int tfd;
			unsigned events;
			unsigned long long data;
			unsigned long tino;

			if (nl)
				*nl = '\0';
			if (sscanf(line, "tfd: %d events: %x data: %llx pos:%*d "
				   "ino:%lx", &tfd, &events, &data, &tino) == 4 &&
			    tfd == fd && tino == ino && n < max) {
				regs[n].epfd = epfd;
				regs[n].events = events;
				regs[n].data = data;
				n++;
			}
			line = nl ? nl + 1 : line + strlen(line);
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (got <= 0 || have >= sizeof(buf) - 1)
			break; /* EOF, or a line too long to be ours */
	}
	real_close(info);
	return n;
}

static bool is_epoll(int dir, const char *name)
{
	static const char want[] = "anon_inode:[eventpoll]";
	char link[sizeof(want) + 8];
	ssize_t len = readlinkat(dir, name, link, sizeof(link) - 1);

	return len == (ssize_t)(sizeof(want) - 1) &&
	       memcmp(link, want, sizeof(want) - 1) == 0;
}

int shim_epoll_regs(int fd, struct shim_epoll_reg *regs, int max)
{
	char buf[4096];
	struct stat st;
	ssize_t got;
	int dir, n = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return 0; /* no /proc: registrations cannot be carried */
	while (n < max && (got = getdents64(dir, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < got;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9' ||
			    !is_epoll(dir, d->d_name))
				continue;
			n = scan_fdinfo(atoi(d->d_name), fd,
					(unsigned long)st.st_ino, regs, n, max);
		}
	}
	real_close(dir);
	return n;
}

void shim_epoll_drop(int fd, const struct shim_epoll_reg *regs, int n)
{
	for (int i = 0; i < n; i++)
		epoll_ctl(regs[i].epfd, EPOLL_CTL_DEL, fd, NULL);
}

void shim_epoll_restore(int fd, const struct shim_epoll_reg *regs, int n)
{
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = regs[i].events,
					  .data.u64 = regs[i].data };

		epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}
