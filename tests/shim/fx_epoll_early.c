/*
 * fx_epoll_early PORT [edge] - registers its socket with epoll before bind()
 * (EPOLLIN, or EPOLLIN|EPOLLET with "edge", and a data word of its own),
 * then binds and listens: the shim swaps the file behind that fd number (a
 * faux handle in rr, the shared socket in none) and the registration must
 * follow it.  Prints "ready", then serves from epoll_wait() with accept4()
 * until EAGAIN, checking every event carries its data word.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

#define MAGIC 0xc1a55e7deadbeefULL

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1);
	bool edge = argc > 2 && strcmp(argv[2], "edge") == 0;
	struct epoll_event ev = { .events = EPOLLIN | (edge ? EPOLLET : 0),
				  .data.u64 = MAGIC };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1, fd, ep;

	fx_exit_on_sigterm();
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	FXS_CHECK(fd >= 0 && ep >= 0);
	FXS_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			     sizeof(one)) == 0);
	FXS_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	FXS_CHECK(listen(fd, 128) == 0);
	/* still registered, under the same fd */
	FXS_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1 &&
		  errno == EEXIST);
	fxs_say("ready %d", fxs_worker_id());
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		FXS_CHECK(n > 0);
		for (int i = 0; i < n; i++) {
			FXS_CHECK(evs[i].data.u64 == MAGIC);
			for (;;) {
				int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0) {
					fx_answer(c);
					continue;
				}
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				FXS_CHECK(errno == EAGAIN ||
					  errno == EWOULDBLOCK);
				break;
			}
		}
	}
}
