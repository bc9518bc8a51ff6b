/*
 * test_output_prefix.c - the core of --prefix (line_prefixer: bytes in,
 * whole prefixed lines out) and the sink that writes them without holding
 * the loop when nobody reads (output_sink).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output_prefix.h"

/* What came out: the lines, each as emitted (with its '\n'). */
struct lines {
	char *v[64];
	size_t len[64];
	size_t n;
};

static void collect(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;

	cr_assert(l->n < 64, "too many lines");
	l->v[l->n] = malloc(len + 1);
	cr_assert(l->v[l->n] != NULL, "out of memory");
	memcpy(l->v[l->n], line, len);
	l->v[l->n][len] = '\0';
	l->len[l->n++] = len;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void feed(struct line_prefixer *lp, const char *text, struct lines *l)
{
	line_prefixer_feed(lp, text, strlen(text), collect, l);
}

Test(line_prefixer, complete_lines_in_one_read)
{
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(line_prefixer_init(&lp, "[1] ", OUTPUT_PREFIX_MAX_LINE) == 0);
	feed(&lp, "one\ntwo\n\nthree\n", &l);
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(l.v[0], "[1] one\n");
	cr_assert_str_eq(l.v[1], "[1] two\n");
	cr_assert_str_eq(l.v[2], "[1] \n");
	cr_assert_str_eq(l.v[3], "[1] three\n");
	cr_assert_eq(line_prefixer_pending(&lp), 0);
	line_prefixer_finish(&lp, collect, &l);
	cr_assert_eq(l.n, 4, "finish with nothing pending emits nothing");
	lines_free(&l);
	line_prefixer_free(&lp);
}

Test(line_prefixer, a_line_over_many_reads_comes_out_once)
{
	static const char text[] = "hello, world\nsecond line\n";
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(line_prefixer_init(&lp, "[12] ", OUTPUT_PREFIX_MAX_LINE) == 0);
	for (size_t i = 0; i < sizeof(text) - 1; i++) {
		line_prefixer_feed(&lp, text + i, 1, collect, &l);
		if (i < 12)
			cr_assert_eq(l.n, 0, "a line out before its newline");
	}
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.v[0], "[12] hello, world\n");
	cr_assert_str_eq(l.v[1], "[12] second line\n");
	lines_free(&l);
	line_prefixer_free(&lp);
}

Test(line_prefixer, reads_that_cut_lines_anywhere)
{
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(line_prefixer_init(&lp, "[2] ", OUTPUT_PREFIX_MAX_LINE) == 0);
	feed(&lp, "ab", &l);
	feed(&lp, "c\nde", &l);
	feed(&lp, "f\ng", &l);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.v[0], "[2] abc\n");
	cr_assert_str_eq(l.v[1], "[2] def\n");
	cr_assert_eq(line_prefixer_pending(&lp), 1);
	lines_free(&l);
	line_prefixer_free(&lp);
}

Test(line_prefixer, last_line_without_newline_at_eof)
{
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(line_prefixer_init(&lp, "[3] ", OUTPUT_PREFIX_MAX_LINE) == 0);
	feed(&lp, "whole\npartial", &l);
	cr_assert_eq(l.n, 1);
	line_prefixer_finish(&lp, collect, &l);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.v[1], "[3] partial\n", "got \"%s\"", l.v[1]);
	line_prefixer_finish(&lp, collect, &l);
	cr_assert_eq(l.n, 2, "the partial line came out twice");
	lines_free(&l);
	line_prefixer_free(&lp);
}

Test(line_prefixer, long_line_in_pieces)
{
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(line_prefixer_init(&lp, "[4] ", 4) == 0);
	feed(&lp, "abcdefghij\n", &l);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.v[0], "[4] abcd [cluster-run: line cut, continues]\n");
	cr_assert_str_eq(l.v[1], "[4] efgh [cluster-run: line cut, continues]\n");
	cr_assert_str_eq(l.v[2], "[4] ij\n");
	lines_free(&l);
	/* exactly max_line, then its newline in the next read: one line */
	feed(&lp, "wxyz", &l);
	cr_assert_eq(l.n, 0, "a full line went out before its newline came");
	feed(&lp, "\nab", &l);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.v[0], "[4] wxyz\n");
	line_prefixer_finish(&lp, collect, &l);
	cr_assert_str_eq(l.v[1], "[4] ab\n");
	lines_free(&l);
	line_prefixer_free(&lp);
}

/* A line of 200 KiB without a newline: out in 64 KiB pieces, each
 * prefixed and ended, each but the last saying it was cut; nothing held
 * but the last piece. */
#define CUT_NOTE " [cluster-run: line cut, continues]"
#define CUT (sizeof(CUT_NOTE) - 1)

Test(line_prefixer, huge_line_does_not_grow_without_bound)
{
	size_t total = 200 * 1024, chunk = 7000, done = 0, text = 0;
	char *data = malloc(chunk);
	struct line_prefixer lp;
	struct lines l = { .n = 0 };

	cr_assert(data != NULL);
	memset(data, 'y', chunk);
	cr_assert(line_prefixer_init(&lp, "[5] ", OUTPUT_PREFIX_MAX_LINE) == 0);
	while (done < total) {
		size_t n = total - done < chunk ? total - done : chunk;

		line_prefixer_feed(&lp, data, n, collect, &l);
		done += n;
		cr_assert_leq(line_prefixer_pending(&lp), OUTPUT_PREFIX_MAX_LINE);
		cr_assert_leq(lp.cap, OUTPUT_PREFIX_MAX_LINE + 4 + CUT + 1,
			      "buffer grew to %zu", lp.cap);
	}
	line_prefixer_finish(&lp, collect, &l);
	cr_assert_eq(l.n, 4, "want 3 full pieces and the rest, got %zu", l.n);
	for (size_t i = 0; i < l.n; i++) {
		cr_assert(strncmp(l.v[i], "[5] ", 4) == 0, "piece %zu unprefixed", i);
		cr_assert_eq(l.v[i][l.len[i] - 1], '\n');
		cr_assert_eq(strchr(l.v[i], '\n'), l.v[i] + l.len[i] - 1,
			     "a newline inside piece %zu", i);
		if (i < 3) {
			cr_assert_eq(l.len[i], 4 + OUTPUT_PREFIX_MAX_LINE + CUT + 1);
			cr_assert_str_eq(l.v[i] + l.len[i] - CUT - 1,
					 CUT_NOTE "\n", "piece %zu not marked cut", i);
			text -= CUT;
		} else {
			cr_assert_null(strstr(l.v[i], CUT_NOTE),
				       "the last piece marked cut");
		}
		text += l.len[i] - 5;
	}
	cr_assert_eq(text, total, "%zu bytes of text came out, want %zu",
		     text, total);
	lines_free(&l);
	line_prefixer_free(&lp);
	free(data);
}

Test(line_prefixer, bad_arguments)
{
	struct line_prefixer lp;

	cr_assert(line_prefixer_init(&lp, "[1] ", 0) < 0);
	cr_assert_eq(errno, EINVAL);
}

/* ---- output_sink ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads everything in the pipe now into buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

/*
 * Nobody reads the pipe: once it is full, a line waits budget_ms at most,
 * then lines are dropped without waiting; once the reader comes back, a
 * note says how many were lost and the lines go on, none merged.
 */
Test(output_sink, stuck_reader_costs_one_budget_then_drops)
{
	static char line[1000], buf[1 << 20];
	struct output_sink s;
	int p[2];
	long long t0, stall, t1;
	unsigned written = 0;

	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	output_sink_init(&s, p[1], 100);
	memset(line, 'z', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	t0 = now_ms();
	while (output_sink_write(&s, line, sizeof(line)) == 0)
		cr_assert_lt(++written, 10000, "the pipe never filled");
	stall = now_ms() - t0;
	cr_log_info("%u lines before the pipe filled; that write gave up after "
		    "%lld ms in all", written, stall);
	cr_assert_geq(stall, 100, "gave up before the budget");
	cr_assert_lt(stall, 2000, "held the caller %lld ms", stall);
	cr_assert(s.stuck && s.dropped == 1);

	t1 = now_ms();
	for (int i = 0; i < 100; i++)
		cr_assert_eq(output_sink_write(&s, line, sizeof(line)), -1);
	cr_assert_lt(now_ms() - t1, 50, "dropping 100 lines took %lld ms",
		     now_ms() - t1);
	cr_assert_eq(s.dropped, 101);

	read_all(p[0], buf, sizeof(buf));
	cr_assert_eq(output_sink_write(&s, "[1] back\n", 9), 0);
	cr_assert(!s.stuck && s.dropped == 0 && s.dropped_total == 101);
	read_all(p[0], buf, sizeof(buf));
	cr_assert(strstr(buf, "cluster-run: 101 lines of worker output dropped"),
		  "no note in \"%.200s\"", buf);
	cr_assert(strstr(buf, "\n[1] back\n") || strncmp(buf, "[1] back\n", 9) == 0 ||
		  strstr(buf, "dropped: nothing read cluster-run's stdout for "
			 "100 ms\n[1] back\n"),
		  "the line after the note is not whole: \"%.300s\"", buf);
	close(p[0]);
	close(p[1]);
}

/* A line longer than PIPE_BUF cut short by a full pipe: the next line
 * starts on a line of its own. */
Test(output_sink, line_cut_short_is_ended_before_the_next)
{
	static char big[100000], buf[1 << 20];
	struct output_sink s;
	int p[2];
	char *note;

	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	output_sink_init(&s, p[1], 20);
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	cr_assert_eq(output_sink_write(&s, big, sizeof(big)), -1,
		     "100000 bytes fit in a pipe nobody reads?");
	cr_assert(s.mid_line);
	read_all(p[0], buf, sizeof(buf));
	cr_assert_eq(output_sink_write(&s, "[2] next\n", 9), 0);
	read_all(p[0], buf, sizeof(buf));
	note = strstr(buf, "cluster-run: 1 line of worker output dropped");
	cr_assert(note == buf + 1 && buf[0] == '\n',
		  "want \"\\n\" then the note, got \"%.100s\"", buf);
	cr_assert(strstr(note, "ms\n[2] next\n"), "got \"%.200s\"", note);
	close(p[0]);
	close(p[1]);
}

/* No reader at all (EPIPE): lines are dropped at once. */
Test(output_sink, closed_reader_drops_at_once)
{
	struct output_sink s;
	long long t0;
	int p[2];

	signal(SIGPIPE, SIG_IGN);
	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	close(p[0]);
	output_sink_init(&s, p[1], 1000);
	t0 = now_ms();
	cr_assert_eq(output_sink_write(&s, "x\n", 2), -1);
	cr_assert_eq(output_sink_write(&s, "y\n", 2), -1);
	cr_assert_lt(now_ms() - t0, 500);
	cr_assert_eq(s.dropped, 2);
	close(p[1]);
}

/* Buffered (as cluster-run's stdout is): lines wait for the flush, go out
 * whole and in order; a flush that cannot go out counts every line. */
Test(output_sink, buffered_lines_go_out_at_flush)
{
	static char store[16384], buf[1 << 20], line[101];
	struct output_sink s;
	int p[2], fl;

	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	output_sink_init(&s, p[1], 50);
	output_sink_set_buffer(&s, store, sizeof(store));
	cr_assert_eq(output_sink_write(&s, "[1] a\n", 6), 0);
	cr_assert_eq(output_sink_write(&s, "[2] b\n", 6), 0);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), -1, "written before the flush");
	cr_assert_eq(output_sink_flush(&s), 0);
	read_all(p[0], buf, sizeof(buf));
	cr_assert_str_eq(buf, "[1] a\n[2] b\n");

	/* the pipe full (filled past the sink), ten lines queued */
	fl = fcntl(p[1], F_GETFL);
	fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
	memset(line, 'w', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	while (write(p[1], line, sizeof(line)) > 0)
		;
	fcntl(p[1], F_SETFL, fl);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(output_sink_write(&s, "[1] lost\n", 9), 0);
	cr_assert_eq(output_sink_flush(&s), -1);
	cr_assert_eq(s.dropped, 10);
	read_all(p[0], buf, sizeof(buf));
	cr_assert_eq(output_sink_write(&s, "[2] after\n", 10), 0);
	cr_assert_eq(output_sink_flush(&s), 0);
	read_all(p[0], buf, sizeof(buf));
	cr_assert(strncmp(buf, "cluster-run: 10 lines of worker output dropped",
			  46) == 0 && strstr(buf, "ms\n[2] after\n"),
		  "got \"%.200s\"", buf);
	close(p[0]);
	close(p[1]);
}
