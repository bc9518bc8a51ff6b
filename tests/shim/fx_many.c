/*
 * fx_many COUNT - COUNT listeners in one worker, each on an address of its
 * own (127.0.0.K:0, K = 1, 2, ...: all of 127/8 is loopback), bound and
 * listening, as the README promises up to 256 per worker.  Prints "last
 * ADDRESS PORT" (the last listener's) and serves that one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "fxs.h"

#define MAX_LISTENERS 256

int main(int argc, char **argv)
{
	int count = fxs_arg_int(argc, argv, 1), fd = -1, i;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	char text[INET_ADDRSTRLEN];

	fx_exit_on_sigterm();
	if (count < 1 || count > MAX_LISTENERS)
		return 2;
	for (i = 0; i < count; i++) {
		/* 127.0.0.1 .. 127.0.0.255, then 127.0.1.1 */
		sin.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)i +
					    (i >= 255 ? 2u : 0u));
		sin.sin_port = 0;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		FXS_CHECK(fd >= 0);
		FXS_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
		FXS_CHECK(listen(fd, 16) == 0);
	}
	FXS_CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	FXS_CHECK(inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)));
	fxs_say("last %s %d", text, ntohs(sin.sin_port));
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
