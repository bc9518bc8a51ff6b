/*
 * fx_static PORT - linked statically (-static): the dynamic loader never
 * runs, LD_PRELOAD means nothing and the shim is never loaded, so the
 * worker never checks in and its bind() is its own.  It serves
 * "<id> <pid>\n" on 127.0.0.1:PORT like any fixture, unclustered.
 *
 * fx_static PORT hold - each connection stays in hand until its client
 * sends a byte (fxs_serve_one_held); it still dies at once on SIGTERM, so
 * a graceful signal sent while it holds one loses that request.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	bool hold = argc > 2 && strcmp(argv[2], "hold") == 0;
	int fd;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	for (;;)
		FXS_CHECK(hold ? fxs_serve_one_held(fd) : fxs_serve_one(fd));
}
