/*
 * fx_static PORT - linked statically (-static): the dynamic loader never
 * runs, LD_PRELOAD means nothing and the shim is never loaded, so the
 * worker never checks in and its bind() is its own.  It serves
 * "<id> <pid>\n" on 127.0.0.1:PORT like any fixture, unclustered.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

int main(int argc, char **argv)
{
	int fd;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, fxs_arg_int(argc, argv, 1));
	FXS_CHECK(listen(fd, 16) == 0);
	for (;;)
		FXS_CHECK(fxs_serve_one(fd));
}
