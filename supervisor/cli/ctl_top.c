/*
 * ctl_top.c - `cluster-run ctl top`: `ctl status`, redrawn each second, with
 * connections per second, like `pm2 monit` or `top`.
 *
 * Each second one `status --json` request (the control socket closes after
 * each answer); connections per second come from the rise of each worker's
 * handed count (by pid) and each rr listener's accepted count between two
 * answers.  The answer's layout is ours (control_server.c): one worker or
 * listener object per line, so a line is read by its keys; keys added
 * later do no harm.
 *
 * The terminal: plain ANSI (home, clear to end of line and of screen) on
 * the alternate screen with the cursor hidden, the keyboard without line
 * buffering or echo so that a single q ends it; Ctrl-C (SIGINT), SIGTERM
 * and SIGHUP end it too.  Whatever ends it, the terminal is put back: the
 * saved termios, the cursor, the normal screen.  With stdout not a
 * terminal each frame is printed plainly, one after the other.
 */
#include "ctl_top.h"
#include "control_internal.h"
#include "status_format.h"
#include "monotonic.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_PERIOD_MS 1000
#define TOP_MAX_ROWS 4096

struct top_worker {
	unsigned id;
	long pid;
	char state[32];
	double uptime_ms, restarts, handed, cpu, rss; /* -1: unknown */
	bool replacement, retiring;
	bool waiting;        /* a slot without a worker (pid 0) */
	double cps;
};

struct top_listener {
	char address[160];
	char policy[16];
	double queued, backlog, accepted, held;
	double cps;
};

struct top_view {
	long pid;
	double size;
	bool reloading, stopping;
	struct top_worker w[TOP_MAX_ROWS];
	unsigned nw;
	struct top_listener l[64];
	unsigned nl;
	long long at_ms;
};

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

/* ---- reading the answer ---- */

/* The value after "key": in line, or NULL. */
static const char *json_value(const char *line, const char *key)
{
	char pat[40];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static double json_number(const char *line, const char *key)
{
	const char *v = json_value(line, key);

	return v && *v != 'n' ? strtod(v, NULL) : -1;
}

static bool json_true(const char *line, const char *key)
{
	const char *v = json_value(line, key);

	return v && strncmp(v, "true", 4) == 0;
}

static void json_string(const char *line, const char *key, char *buf,
			size_t cap)
{
	const char *v = json_value(line, key);
	size_t n = 0;

	if (v && *v == '"')
		for (v++; *v && *v != '"' && n + 1 < cap; v++) {
			if (*v == '\\' && v[1])
				v++;
			buf[n++] = *v;
		}
	buf[n] = '\0';
}

static void read_worker(struct top_view *t, const char *line)
{
	struct top_worker *w = &t->w[t->nw++];

	w->id = (unsigned)json_number(line, "id");
	w->pid = (long)json_number(line, "pid");
	json_string(line, "state", w->state, sizeof(w->state));
	w->uptime_ms = json_number(line, "uptime_ms");
	w->restarts = json_number(line, "restarts");
	w->handed = json_number(line, "handed");
	w->cpu = json_number(line, "cpu_percent");
	w->rss = json_number(line, "rss_bytes");
	w->replacement = json_true(line, "replacement");
	w->retiring = json_true(line, "retiring");
	w->waiting = json_true(line, "waiting");
	if (w->waiting)
		w->uptime_ms = w->handed = -1;
	w->cps = -1;
}

static void read_listener(struct top_view *t, const char *line)
{
	struct top_listener *l = &t->l[t->nl++];

	json_string(line, "address", l->address, sizeof(l->address));
	json_string(line, "policy", l->policy, sizeof(l->policy));
	l->queued = json_number(line, "queued");
	l->backlog = json_number(line, "backlog");
	l->accepted = json_number(line, "accepted");
	l->held = json_number(line, "held");
	l->cps = -1;
}

static void read_view(struct top_view *t, char *answer)
{
	char *save = NULL, *line;

	t->nw = t->nl = 0;
	t->pid = -1;
	for (line = strtok_r(answer, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "{\"id\": ") && t->nw < TOP_MAX_ROWS)
			read_worker(t, line);
		else if (strstr(line, "{\"address\": ") &&
			 t->nl < sizeof(t->l) / sizeof(t->l[0]))
			read_listener(t, line);
		else if (json_value(line, "pid") && t->pid < 0)
			t->pid = (long)json_number(line, "pid");
		else if (json_value(line, "size"))
			t->size = json_number(line, "size");
		else if (json_value(line, "reloading"))
			t->reloading = json_true(line, "reloading");
		else if (json_value(line, "stopping"))
			t->stopping = json_true(line, "stopping");
	}
}

/* Whether cluster-run hands connections out (rr): without, the workers'
 * handed counts stay 0 and say nothing of their load. */
static bool any_rr(const struct top_view *t)
{
	unsigned i;

	for (i = 0; i < t->nl; i++)
		if (strcmp(t->l[i].policy, "rr") == 0)
			return true;
	return false;
}

/* Connections per second since the previous view (same pid, address). */
static void rates(struct top_view *t, const struct top_view *prev)
{
	double sec = (double)(t->at_ms - prev->at_ms) / 1000.0;
	unsigned i, j;

	if (sec <= 0)
		return;
	for (i = 0; i < t->nw && any_rr(t); i++)
		for (j = 0; j < prev->nw; j++)
			if (!t->w[i].waiting && prev->w[j].pid == t->w[i].pid &&
			    t->w[i].handed >= prev->w[j].handed)
				t->w[i].cps = (t->w[i].handed -
					       prev->w[j].handed) / sec;
	for (i = 0; i < t->nl; i++)
		for (j = 0; j < prev->nl; j++)
			if (strcmp(prev->l[j].address, t->l[i].address) == 0 &&
			    t->l[i].accepted >= 0 && prev->l[j].accepted >= 0 &&
			    t->l[i].accepted >= prev->l[j].accepted)
				t->l[i].cps = (t->l[i].accepted -
					       prev->l[j].accepted) / sec;
}

/* ---- drawing ---- */

struct screen {
	bool tty;
	unsigned cols, rows, used;
	char *buf;
	size_t len, cap;
};

static void screen_line(struct screen *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line, cut to the terminal's width; lines past its height dropped. */
static void screen_line(struct screen *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	size_t n;

	if (s->tty && s->used + 1 >= s->rows)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == ' ')
		n--;
	if (s->tty && n > s->cols)
		n = s->cols;
	if (s->len + n + 8 > s->cap) {
		size_t cap = (s->cap + n + 8) * 2;
		char *more = realloc(s->buf, cap);

		if (!more)
			return;
		s->buf = more;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, line, n);
	s->len += n;
	if (s->tty) {
		memcpy(s->buf + s->len, "\033[K", 3);
		s->len += 3;
	}
	s->buf[s->len++] = '\n';
	s->used++;
}

static void cell(char *buf, size_t cap, double v, const char *fmt)
{
	if (v < 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, fmt, v);
}

static void draw_workers(struct screen *s, const struct top_view *t)
{
	unsigned i;

	screen_line(s, "%-5s %-8s %-14s %-8s %-9s %-8s %-9s %-6s %-7s", "id",
		    "pid", "state", "uptime", "restarts", "conn/s", "handed",
		    "cpu", "mem");
	for (i = 0; i < t->nw; i++) {
		const struct top_worker *w = &t->w[i];
		char pid[24], up[32], cps[24], handed[24], cpu[16], mem[16];

		cell(pid, sizeof(pid), w->waiting ? -1 : (double)w->pid, "%.0f");
		if (w->uptime_ms < 0)
			snprintf(up, sizeof(up), "-");
		else
			status_format_uptime((long long)w->uptime_ms, up,
					     sizeof(up));
		cell(cps, sizeof(cps), w->cps, "%.0f");
		cell(handed, sizeof(handed), w->handed, "%.0f");
		cell(cpu, sizeof(cpu), w->cpu, "%.0f%%");
		if (w->rss < 0)
			snprintf(mem, sizeof(mem), "-");
		else
			status_format_bytes((unsigned long long)w->rss, mem,
					    sizeof(mem));
		screen_line(s, "%-5u %-8s %-14s %-8s %-9.0f %-8s %-9s %-6s "
			    "%-7s %s", w->id, pid,
			    strcmp(w->state, "none") == 0 ? "starting" : w->state,
			    up, w->restarts, cps, handed, cpu, mem,
			    w->replacement ? "new (reload)"
			    : w->retiring ? "old (reload)" : "");
	}
}

static void draw_listeners(struct screen *s, const struct top_view *t)
{
	unsigned i;

	if (!t->nl)
		return;
	screen_line(s, "%s", "");
	screen_line(s, "%-24s %-9s %-7s %-8s %-6s %s", "listener", "policy",
		    "queued", "backlog", "held", "conn/s");
	for (i = 0; i < t->nl; i++) {
		const struct top_listener *l = &t->l[i];
		char q[24], b[24], h[24], cps[24];

		cell(q, sizeof(q), l->queued, "%.0f");
		cell(b, sizeof(b), l->backlog, "%.0f");
		cell(h, sizeof(h), l->held, "%.0f");
		cell(cps, sizeof(cps), l->cps, "%.0f");
		screen_line(s, "%-24s %-9s %-7s %-8s %-6s %s", l->address,
			    l->policy, q, b, h, cps);
	}
}

static void draw(struct screen *s, const struct top_view *t)
{
	unsigned i, listening = 0;
	struct winsize ws;

	s->len = s->used = 0;
	s->cols = 80;
	s->rows = 24;
	if (s->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col > 0 && ws.ws_row > 0) {
		s->cols = ws.ws_col;
		s->rows = ws.ws_row;
	}
	for (i = 0; i < t->nw; i++)
		listening += strcmp(t->w[i].state, "listening") == 0 &&
			     !t->w[i].replacement && !t->w[i].retiring;
	screen_line(s, "cluster-run %ld: %u/%.0f workers listening%s%s   "
		    "(q or Ctrl-C: quit)", t->pid, listening, t->size,
		    t->reloading ? "; reload running" : "",
		    t->stopping ? "; stopping" : "");
	screen_line(s, "%s", "");
	draw_workers(s, t);
	draw_listeners(s, t);
	if (s->tty) {
		if (write(STDOUT_FILENO, "\033[H", 3) < 0)
			return;
	}
	if (s->len && write(STDOUT_FILENO, s->buf, s->len) < 0)
		return;
	if (s->tty) {
		if (write(STDOUT_FILENO, "\033[J", 3) < 0)
			return;
	} else if (write(STDOUT_FILENO, "\n", 1) < 0) {
		return;
	}
}

/* ---- the terminal ---- */

struct term {
	bool raw;            /* stdin's termios changed: put it back */
	bool screen;         /* stdout on the alternate screen */
	struct termios saved;
};

static void term_enter(struct term *tm)
{
	struct termios raw;

	memset(tm, 0, sizeof(*tm));
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tm->saved) == 0) {
		raw = tm->saved;
		/* keys one at a time, unechoed; ISIG kept: ^C is SIGINT */
		raw.c_lflag &= (tcflag_t)~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tm->raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	if (isatty(STDOUT_FILENO)) {
		tm->screen = true;
		if (write(STDOUT_FILENO, "\033[?1049h\033[?25l", 14) < 0)
			tm->screen = false;
	}
}

static void term_leave(struct term *tm)
{
	if (tm->screen && write(STDOUT_FILENO, "\033[?25h\033[?1049l", 14) < 0)
		tm->screen = false;
	if (tm->raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &tm->saved);
	tm->raw = tm->screen = false;
}

static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;   /* no SA_RESTART: poll() returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the loop ---- */

/* A fresh view; false when there is none (the failure reported, the
 * terminal put back). */
static bool fetch(const char *path, struct top_view *t, struct term *tm)
{
	char *answer = ctl_exchange(path, "status --json\n", false);

	if (answer && strncmp(answer, CONTROL_ERROR_PREFIX,
			      strlen(CONTROL_ERROR_PREFIX)) == 0) {
		term_leave(tm);
		fprintf(stderr, "cluster-run: %s", answer +
			strlen(CONTROL_ERROR_PREFIX));
		free(answer);
		return false;
	}
	if (!answer) {
		term_leave(tm);
		fprintf(stderr, "cluster-run: ctl top: no status from %s; "
			"stopped\n", path);
		return false;
	}
	t->at_ms = monotonic_ms();
	read_view(t, answer);
	free(answer);
	return true;
}

/* q, Q: done.  Anything else is ignored.  EOF: stdin is not watched. */
static bool read_keys(int *stdin_fd)
{
	char keys[64];
	ssize_t n = read(*stdin_fd, keys, sizeof(keys));

	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
		*stdin_fd = -1;
	return n > 0 && (memchr(keys, 'q', (size_t)n) ||
			 memchr(keys, 'Q', (size_t)n));
}

int ctl_top(const char *path)
{
	struct top_view *views = calloc(2, sizeof(*views));
	struct screen s = { .tty = isatty(STDOUT_FILENO) };
	struct term tm = { 0 };
	int cur = 0, stdin_fd = STDIN_FILENO, rc = 0;
	long long next;
	bool quit = false;

	if (!views) {
		fprintf(stderr, "cluster-run: out of memory\n");
		return 1;
	}
	catch_stop_signals();
	/* The first answer before the screen changes: a failure is seen. */
	if (!fetch(path, &views[cur], &tm)) {
		free(views);
		return 1;
	}
	term_enter(&tm);
	draw(&s, &views[cur]);
	next = monotonic_ms() + TOP_PERIOD_MS;
	while (!quit && !stop_signal) {
		struct pollfd pfd = { stdin_fd, POLLIN, 0 };
		long long left = next - monotonic_ms();
		int r = poll(&pfd, 1, left > 0 ? (int)left : 0);

		if (r > 0 && read_keys(&stdin_fd)) {
			quit = true;
		} else if (r == 0) {
			cur ^= 1;
			if (!fetch(path, &views[cur], &tm)) {
				rc = 1;
				break;
			}
			rates(&views[cur], &views[cur ^ 1]);
			draw(&s, &views[cur]);
			next = monotonic_ms() + TOP_PERIOD_MS;
		}
	}
	term_leave(&tm);
	free(s.buf);
	free(views);
	return rc;
}
