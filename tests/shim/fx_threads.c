/*
 * fx_threads PORT THREADS MODE - THREADS threads per worker blocked in
 * accept() on the listener (memcached and node accept from threads).
 *   shutdown  worker 1 waits until its threads are all asleep in accept(),
 *             says "asleep 1", waits for SIGUSR1 (the test sends it once
 *             every worker listens: a worker that binds after the
 *             shared listener was let go of would find its port held
 *             until those threads are woken), calls shutdown(SHUT_RDWR)
 *             on the listener and checks that
 *             every thread's accept() fails with EINVAL, as on a real
 *             listener; prints "woken N" and serves nothing more.  The
 *             other workers serve ("serving ID").
 *   stop      every worker serves from its threads and prints "serving
 *             ID"; SIGTERM prints "term ID" and is otherwise ignored (the
 *             test watches a worker that was told to stop and is still
 *             there: it must not take another connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fxs.h"

#define MAX_THREADS 8

static int listen_fd, nthreads;
static pid_t tids[MAX_THREADS];
static int results[MAX_THREADS];

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(listen_fd, NULL, NULL);

		if (c >= 0)
			fx_answer(c);
		else
			FXS_CHECK(errno == EINTR || errno == ECONNABORTED);
	}
	return NULL;
}

static void *accept_once(void *arg)
{
	int i = (int)(long)arg, c;

	__atomic_store_n(&tids[i], (pid_t)syscall(SYS_gettid),
			 __ATOMIC_RELEASE);
	/* as servers do (in rr the faux handle's end reads as an aborted
	 * connection first) */
	do
		c = accept(listen_fd, NULL, NULL);
	while (c < 0 && (errno == EINTR || errno == ECONNABORTED));
	FXS_CHECK(c < 0);
	results[i] = errno;
	return NULL;
}

/* The kernel's word that thread tid sleeps in accept (its syscall
 * number, first in /proc/self/task/TID/syscall; in rr the shim's accept
 * is a recvmsg on the faux handle). */
static bool in_accept(pid_t tid)
{
	char path[64], buf[64];
	int fd, n;
	long nr;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	nr = strtol(buf, NULL, 10);
	return nr == SYS_accept || nr == SYS_accept4 || nr == SYS_recvmsg;
}

static void all_in_accept(void)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	int i, rounds;

	/* a deadline on an observable state, 10 s */
	for (rounds = 0; rounds < 2000; rounds++) {
		for (i = 0; i < nthreads; i++)
			if (!__atomic_load_n(&tids[i], __ATOMIC_ACQUIRE) ||
			    !in_accept(tids[i]))
				break;
		if (i == nthreads)
			return;
		nanosleep(&pause, NULL);
	}
	FXS_CHECK(!"threads asleep in accept() within 10 s");
}

static void shutdown_case(void)
{
	pthread_t t[MAX_THREADS];
	sigset_t usr1;
	int i, sig;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	FXS_CHECK(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
	for (i = 0; i < nthreads; i++)
		FXS_CHECK(pthread_create(&t[i], NULL, accept_once,
					 (void *)(long)i) == 0);
	all_in_accept();
	fxs_say("asleep %d", fxs_worker_id());
	FXS_CHECK(sigwait(&usr1, &sig) == 0);
	FXS_CHECK(shutdown(listen_fd, SHUT_RDWR) == 0);
	for (i = 0; i < nthreads; i++) {
		FXS_CHECK(pthread_join(t[i], NULL) == 0);
		FXS_CHECK(results[i] == EINVAL);
	}
	fxs_say("woken %d", nthreads);
	for (;;)
		pause();
}

static void on_term(int sig)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "term %d\n", fxs_worker_id());

	(void)sig;
	(void)!write(STDOUT_FILENO, line, (size_t)n);
}

int main(int argc, char **argv)
{
	int port = fxs_arg_int(argc, argv, 1), i;
	const char *mode = argc > 3 ? argv[3] : "";
	pthread_t t;

	nthreads = fxs_arg_int(argc, argv, 2);
	if (nthreads < 1 || nthreads > MAX_THREADS ||
	    (strcmp(mode, "shutdown") && strcmp(mode, "stop")))
		return 2;
	if (strcmp(mode, "stop") == 0)
		signal(SIGTERM, on_term);
	else
		fx_exit_on_sigterm();
	listen_fd = fxs_bound(SOCK_STREAM, port);
	FXS_CHECK(listen(listen_fd, 128) == 0);
	if (strcmp(mode, "shutdown") == 0 && fxs_worker_id() == 1)
		shutdown_case();
	for (i = 0; i < nthreads; i++)
		FXS_CHECK(pthread_create(&t, NULL, serve, NULL) == 0);
	fxs_say("serving %d", fxs_worker_id());
	for (;;)
		pause();
}
