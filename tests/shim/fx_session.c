/*
 * fx_session PORT - per-session listeners, as an FTP server in passive
 * mode opens them: for each connection on PORT the worker binds a fresh
 * 127.0.0.1:0 listener, answers "PASV_PORT ID PID", and serves one
 * connection on that listener (with the usual "ID PID" answer) before it
 * closes it; each session in a thread of its own, so that sessions of one
 * worker overlap, as FTP clients' do.  Without cluster-run the data
 * connection reaches the process that opened the listener; so it must with
 * cluster-run, in every worker.  Prints "ready ID".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fxs.h"

static int session_listener(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = fxs_bound(SOCK_STREAM, 0);

	FXS_CHECK(listen(fd, 1) == 0);
	FXS_CHECK(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void *session(void *arg)
{
	int conn = (int)(long)arg;
	char line[64];
	int port, lfd = session_listener(&port), data;
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	snprintf(line, sizeof(line), "%d %d %d\n", port, fxs_worker_id(),
		 (int)getpid());
	FXS_CHECK(write(conn, line, strlen(line)) == (ssize_t)strlen(line));
	close(conn);
	/* the client connects at once; a session it abandons ends here */
	if (poll(&pfd, 1, 5000) == 1 && (data = accept(lfd, NULL, NULL)) >= 0)
		fx_answer(data);
	FXS_CHECK(close(lfd) == 0);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), fd;

	fx_exit_on_sigterm();
	fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(fd, 128) == 0);
	fxs_say("ready %d", fxs_worker_id());
	for (;;) {
		int conn = fx_accept(fd);
		pthread_t t;

		if (conn < 0)
			continue;
		FXS_CHECK(pthread_create(&t, NULL, session,
					 (void *)(long)conn) == 0);
		FXS_CHECK(pthread_detach(t) == 0);
	}
}
