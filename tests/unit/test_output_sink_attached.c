/*
 * test_output_sink_attached.c - the sink as cluster-run uses it while its
 * loop runs (output_sink_attach): it never waits.  What the pipe does not
 * take at once is queued and goes out when the loop sees the pipe
 * writable; a full queue drops lines (and every line after, until it has
 * drained), and the first thing out after that is the note.  Real pipes, a
 * real event loop.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output_prefix.h"

#define QUEUE 8192

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends what the pipe has now to out (NUL-terminated); how much came. */
static size_t read_now(int fd, char *out, size_t *len, size_t cap)
{
	size_t before = *len;
	ssize_t n;

	while (*len < cap - 1 && (n = read(fd, out + *len, cap - 1 - *len)) > 0)
		*len += (size_t)n;
	out[*len] = '\0';
	return *len - before;
}

static void line_n(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, "[1] line %05d of the flood\n", i);
}

Test(output_sink_attached, never_waits_queues_drops_then_notes)
{
	static char store[QUEUE], got[1 << 20];
	struct event_base *base = event_base_new();
	struct output_sink s;
	char line[64];
	size_t len = 0;
	int p[2], i, first_dropped = -1, total = 0;
	long long t0;

	cr_assert(base != NULL);
	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	cr_assert(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 0);
	output_sink_init(&s, p[1], 1000); /* a budget it must never use */
	output_sink_set_buffer(&s, store, sizeof(store));
	cr_assert_eq(output_sink_attach(&s, base), 0);

	/* Nobody reads: the pipe fills, the queue fills, then lines drop. */
	t0 = now_ms();
	for (i = 0; i < 2000; i++) {
		line_n(line, sizeof(line), i);
		if (output_sink_write(&s, line, strlen(line)) < 0 &&
		    first_dropped < 0)
			first_dropped = i;
		output_sink_flush(&s);
	}
	total = i;
	cr_assert_lt(now_ms() - t0, 500, "2000 lines took %lld ms: it waited",
		     now_ms() - t0);
	cr_assert_gt(first_dropped, 0, "nothing queued, or nothing dropped");
	cr_assert_eq(s.dropped, (unsigned long)(total - first_dropped),
		     "every line after the first dropped one is dropped");
	cr_assert_gt(s.len, 0, "the queue is empty with the pipe full");

	/* The reader is back: the loop writes the queue, then the note. */
	for (int round = 0; round < 1000 && (s.len > 0 || s.dropped); round++) {
		read_now(p[0], got, &len, sizeof(got));
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	read_now(p[0], got, &len, sizeof(got));
	cr_assert_eq(s.len, 0, "the queue did not drain");
	cr_assert_eq(s.dropped, 0);

	line_n(line, sizeof(line), first_dropped - 1);
	cr_assert(strstr(got, line) != NULL, "the last queued line is missing");
	line_n(line, sizeof(line), first_dropped);
	cr_assert(strstr(got, line) == NULL, "a dropped line came out");
	snprintf(line, sizeof(line), "\ncluster-run: %d lines of output dropped",
		 total - first_dropped);
	cr_assert(strstr(got, line) != NULL, "no note \"%s\" in the output",
		  line + 1);
	cr_assert(strstr(got, "was full (nothing read it fast enough)\n"));

	/* Lines go on after the note, in order and whole. */
	cr_assert_eq(output_sink_write(&s, "[2] after\n", 10), 0);
	cr_assert_eq(output_sink_flush(&s), 0);
	read_now(p[0], got, &len, sizeof(got));
	cr_assert(len >= 10 && strcmp(got + len - 10, "[2] after\n") == 0);
	for (i = 0; i < first_dropped; i++) { /* every queued line, in order */
		line_n(line, sizeof(line), i);
		cr_assert(strstr(got, line), "line %d lost", i);
	}
	output_sink_detach(&s);
	event_base_free(base);
	close(p[0]);
	close(p[1]);
}

/* No reader at all: lines are dropped, and nothing watches the pipe (its
 * error would make the loop spin). */
Test(output_sink_attached, closed_reader_is_not_watched)
{
	static char store[QUEUE];
	struct event_base *base = event_base_new();
	struct output_sink s;
	long long t0;
	int p[2], i;

	signal(SIGPIPE, SIG_IGN);
	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	close(p[0]);
	output_sink_init(&s, p[1], 1000);
	output_sink_set_buffer(&s, store, sizeof(store));
	cr_assert_eq(output_sink_attach(&s, base), 0);
	t0 = now_ms();
	for (i = 0; i < 3000; i++) { /* more than the queue holds */
		output_sink_write(&s, "gone\n", 5);
		output_sink_flush(&s);
	}
	cr_assert_lt(now_ms() - t0, 500);
	cr_assert_gt(s.dropped, 0);
	cr_assert_eq(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0,
		     "a pipe without a reader is watched");
	output_sink_detach(&s);
	event_base_free(base);
	close(p[1]);
}

/* Detached again (the loop is over): what was queued goes out. */
Test(output_sink_attached, detach_writes_the_queue)
{
	static char store[QUEUE], got[65536];
	struct event_base *base = event_base_new();
	struct output_sink s;
	size_t len = 0;
	int p[2];

	cr_assert(pipe2(p, O_CLOEXEC) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	output_sink_init(&s, p[1], 1000);
	output_sink_set_buffer(&s, store, sizeof(store));
	cr_assert_eq(output_sink_attach(&s, base), 0);
	cr_assert_eq(output_sink_write(&s, "one\n", 4), 0);
	cr_assert_eq(output_sink_write(&s, "two\n", 4), 0);
	cr_assert_eq(read(p[0], got, sizeof(got)), -1, "written before a flush");
	output_sink_detach(&s);
	read_now(p[0], got, &len, sizeof(got));
	cr_assert_str_eq(got, "one\ntwo\n");
	event_base_free(base);
	close(p[0]);
	close(p[1]);
}
