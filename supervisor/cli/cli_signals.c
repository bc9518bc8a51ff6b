/* cli_signals.c - see cli_signals.h. */
#include "cli_signals.h"
#include "log_line.h"
#include "pool.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum meaning {
	MEANS_STOP,
	MEANS_RELOAD,
	MEANS_MORE,        /* one worker more */
	MEANS_FEWER,       /* one worker fewer */
	MEANS_PASS_ON,     /* to every worker */
	MEANS_NOTHING,     /* logged, ignored */
};

/* What the handler tells the loop: one write, well under PIPE_BUF. */
struct signal_record {
	int sig;
	int code;          /* si_code */
	pid_t pid;         /* si_pid, for the line */
};

struct cli_signals {
	struct pool *pool;
	struct event *ev;
	int pipe_r;
	bool nohup;        /* SIGHUP was ignored when we started */
	bool had_tty;      /* we had a controlling terminal then */
};

/* The handler's state: one set of handlers per process. */
static int pipe_w = -1;
static pid_t owner;                    /* cluster-run, not a fork of it */
static volatile sig_atomic_t dropped;  /* records the full pipe refused */

/* The fixed signals; the real-time ones are added in signal_meaning(). */
static const struct {
	int sig;
	enum meaning meaning;
} table[] = {
	{ SIGTERM, MEANS_STOP },     { SIGINT, MEANS_STOP },
	{ SIGQUIT, MEANS_STOP },     { SIGHUP, MEANS_RELOAD },
	{ SIGTTIN, MEANS_MORE },     { SIGTTOU, MEANS_FEWER },
	{ SIGUSR1, MEANS_PASS_ON },  { SIGUSR2, MEANS_NOTHING },
	{ SIGALRM, MEANS_NOTHING },  { SIGVTALRM, MEANS_NOTHING },
	{ SIGPROF, MEANS_NOTHING },  { SIGPIPE, MEANS_NOTHING },
	{ SIGXCPU, MEANS_NOTHING },  { SIGXFSZ, MEANS_NOTHING },
	{ SIGPOLL, MEANS_NOTHING },  { SIGSTKFLT, MEANS_NOTHING },
	{ SIGPWR, MEANS_NOTHING },
};

#define TABLE_SIZE (sizeof(table) / sizeof(table[0]))

static int signal_meaning(int sig)
{
	size_t i;

	for (i = 0; i < TABLE_SIZE; i++)
		if (table[i].sig == sig)
			return (int)table[i].meaning;
	if (sig >= SIGRTMIN && sig <= SIGRTMAX)
		return MEANS_NOTHING;
	return -1;
}

static void signals_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void signals_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(NULL, NULL, fmt, ap);
	va_end(ap);
}

/* kill(), sigqueue(), tgkill(): an operator or a script; anything else
 * (SI_KERNEL) comes from the kernel, such as the terminal's job control. */
static bool sent_by_a_process(int code)
{
	return code == SI_USER || code == SI_QUEUE || code == SI_TKILL;
}

/* ---- in the handler: async-signal-safe calls only ---- */

/*
 * The terminal's SIGTTIN/SIGTTOU (a background cluster-run wrote to, or
 * read from, a terminal with `stty tostop`): what the default action
 * would do, stop this process until SIGCONT (`fg`).  The interrupted
 * write is restarted then (SA_RESTART), and goes through in the
 * foreground, or stops us again.
 */
static void stop_as_by_default(int sig)
{
	struct sigaction dfl, mine;
	sigset_t set;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, &mine);
	sigemptyset(&set);
	sigaddset(&set, sig);
	raise(sig);                             /* pending: sig is blocked */
	sigprocmask(SIG_UNBLOCK, &set, NULL);   /* stopped here */
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigaction(sig, &mine, NULL);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	struct signal_record rec = { sig, si->si_code, si->si_pid };
	int saved = errno;

	(void)uc;
	/* A fork not yet exec'd (a worker being started) has our handler
	 * for a moment: the signal is cluster-run's to act on, not its. */
	if (getpid() != owner)
		goto out;
	if ((sig == SIGTTIN || sig == SIGTTOU) && !sent_by_a_process(rec.code)) {
		stop_as_by_default(sig);
		goto out;
	}
	/* Our own write to a closed pipe or socket: the write fails with
	 * EPIPE, and that is where it is handled. */
	if (sig == SIGPIPE && rec.code == SI_USER && rec.pid == owner)
		goto out;
	if (write(pipe_w, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		dropped = dropped + 1;
out:
	errno = saved;
}

/* ---- on the loop ---- */

/* "SIGUSR1", "SIGRTMIN+2" */
static void signal_name(int sig, char *buf, size_t cap)
{
	const char *abbrev = sigabbrev_np(sig);

	/* as `kill -l` names them */
	if (sig == SIGRTMIN)
		snprintf(buf, cap, "SIGRTMIN");
	else if (sig == SIGRTMAX)
		snprintf(buf, cap, "SIGRTMAX");
	else if (sig > SIGRTMIN && sig - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2)
		snprintf(buf, cap, "SIGRTMIN+%d", sig - SIGRTMIN);
	else if (sig > SIGRTMIN && sig < SIGRTMAX)
		snprintf(buf, cap, "SIGRTMAX-%d", SIGRTMAX - sig);
	else if (abbrev)
		snprintf(buf, cap, "SIG%s", abbrev);
	else
		snprintf(buf, cap, "signal %d", sig);
}

/* "SIGTERM from pid 4121", "SIGINT from the terminal" (^C) or "SIGXCPU
 * from the kernel" */
static void describe(const struct signal_record *r, char *buf, size_t cap)
{
	char name[32];

	signal_name(r->sig, name, sizeof(name));
	if (sent_by_a_process(r->code))
		snprintf(buf, cap, "%s from pid %d", name, (int)r->pid);
	else if (r->sig == SIGINT || r->sig == SIGQUIT || r->sig == SIGHUP)
		snprintf(buf, cap, "%s from the terminal", name);
	else
		snprintf(buf, cap, "%s from the kernel", name);
}

static void act_stop(struct cli_signals *s, const struct signal_record *r,
		     const char *who)
{
	if (!pool_stopping(s->pool)) {
		signals_log("%s: stopping every worker", who);
		pool_stop(s->pool, 0);
	} else if (r->sig == SIGINT) {
		signals_log("second SIGINT: killing every worker now");
		pool_kill_now(s->pool);
	} else {
		signals_log("%s: already stopping", who);
	}
}

/* Whether this process has a controlling terminal (a hangup takes it
 * away: /dev/tty is ENXIO then). */
static bool tty_reachable(void)
{
	int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * SIGHUP is a reload (nginx, gunicorn), unless the terminal cluster-run
 * ran on has hung up: then it is what it is to any program, the end,
 * unless cluster-run runs under nohup.  The shell passes the hangup on
 * with kill(), so the sender does not tell; the terminal being gone does.
 */
static void act_hup(struct cli_signals *s, const struct signal_record *r,
		    const char *who)
{
	(void)r;
	if (!s->had_tty || tty_reachable()) {
		signals_log("%s: rolling reload", who);
		pool_reload(s->pool); /* coalesced when one runs; says so */
	}
	else if (s->nohup)
		signals_log("%s (a hangup): ignored, as nohup asked", who);
	else if (!pool_stopping(s->pool)) {
		signals_log("%s (a hangup): stopping every worker", who);
		pool_stop(s->pool, 0);
	}
}

static void act_scale(struct cli_signals *s, bool more, const char *who)
{
	unsigned n = pool_size(s->pool);

	if (more) {
		signals_log("%s: one worker more", who);
		pool_scale(s->pool, n + 1);
	} else if (n > 1) {
		signals_log("%s: one worker fewer", who);
		pool_scale(s->pool, n - 1);
	} else {
		signals_log("%s: already at 1 worker, the fewest there can be",
			    who);
	}
}

static void act(struct cli_signals *s, const struct signal_record *r)
{
	char who[64];
	unsigned n;

	describe(r, who, sizeof(who));
	switch (signal_meaning(r->sig)) {
	case MEANS_STOP:
		act_stop(s, r, who);
		break;
	case MEANS_RELOAD:
		act_hup(s, r, who);
		break;
	case MEANS_MORE:
	case MEANS_FEWER:
		act_scale(s, r->sig == SIGTTIN, who);
		break;
	case MEANS_PASS_ON:
		n = pool_signal_workers(s->pool, r->sig);
		signals_log("%s: passed on to %u worker%s", who, n,
			    n == 1 ? "" : "s");
		break;
	default:
		signals_log("%s: ignored (cluster-run gives it no meaning)", who);
		break;
	}
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct cli_signals *s = arg;
	struct signal_record rec;
	sig_atomic_t lost;

	(void)what;
	while (read(fd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec))
		act(s, &rec);
	lost = dropped;
	if (lost) {
		dropped = 0;
		signals_log("%d signal%s lost: they came faster than they were "
			    "read", (int)lost, lost == 1 ? "" : "s");
	}
}

/* sig's handler: ours (on) or back to the default. */
static void set_handler(int sig, bool on)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (on) {
		sa.sa_sigaction = on_signal;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		/* Nothing writes to a closed pipe as a way to die. */
		sa.sa_handler = sig == SIGPIPE ? SIG_IGN : SIG_DFL;
	}
	sigaction(sig, &sa, NULL);
}

static void set_handlers(bool on)
{
	size_t i;
	int sig;

	for (i = 0; i < TABLE_SIZE; i++)
		set_handler(table[i].sig, on);
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		set_handler(sig, on);
}

struct cli_signals *cli_signals_new(struct event_base *base, struct pool *p)
{
	struct cli_signals *s = calloc(1, sizeof(*s));
	struct sigaction old;
	int fds[2];

	if (!s)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(s);
		return NULL;
	}
	s->pool = p;
	s->pipe_r = fds[0];
	s->nohup = sigaction(SIGHUP, NULL, &old) == 0 &&
		   old.sa_handler == SIG_IGN;
	s->had_tty = tty_reachable();
	s->ev = event_new(base, fds[0], EV_READ | EV_PERSIST, on_pipe, s);
	if (!s->ev || event_add(s->ev, NULL) < 0) {
		if (s->ev)
			event_free(s->ev);
		close(fds[0]);
		close(fds[1]);
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	owner = getpid();
	pipe_w = fds[1];
	set_handlers(true);
	return s;
}

void cli_signals_free(struct cli_signals *s)
{
	if (!s)
		return;
	set_handlers(false);
	event_free(s->ev);
	close(s->pipe_r);
	close(pipe_w);
	pipe_w = -1;
	free(s);
}
