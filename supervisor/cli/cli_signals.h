/*
 * cli_signals.h - what each signal does to cluster-run (the table in
 * `cluster-run --help` and the README):
 *
 *   SIGTERM, SIGINT, SIGQUIT  graceful stop (a second SIGINT: SIGKILL all)
 *   SIGHUP                    rolling reload; once the controlling
 *                             terminal has hung up: stop, unless SIGHUP
 *                             was ignored at start (nohup)
 *   SIGTTIN, SIGTTOU          sent by a process (kill): one worker more,
 *                             one fewer; sent by the terminal (job
 *                             control): cluster-run stops, as any program
 *   SIGUSR1                   passed on to every worker (log reopen)
 *   SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPIPE, SIGXCPU, SIGXFSZ,
 *   SIGPOLL, SIGSTKFLT, SIGPWR, SIGRTMIN..SIGRTMAX
 *                             one line, then ignored
 *
 * Every one is caught by an SA_SIGINFO handler that tells who sent it
 * (si_code, si_pid) and writes a record to a non-blocking self-pipe; the
 * loop reads the pipe and acts.  Fault signals (SIGSEGV, SIGABRT, ...)
 * keep their defaults.
 */
#ifndef CLI_SIGNALS_H
#define CLI_SIGNALS_H

struct event_base;
struct pool;
struct cli_signals;

/* Installs the handlers for this process (one set at a time).  NULL with
 * errno when the pipe or the event cannot be had. */
struct cli_signals *cli_signals_new(struct event_base *base, struct pool *p);
/* Back to the defaults, and frees.  NULL is fine. */
void cli_signals_free(struct cli_signals *s);

#endif
