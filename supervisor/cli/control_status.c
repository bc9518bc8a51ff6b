/*
 * control_status.c - the answer to `status` and `status --json`: every
 * worker of every slot (a reload's new and old one too), every wanted
 * slot that waits for its restart, and how the last reload ended; each
 * worker's process tree (cpu, mem) and each listener's accept queue; why
 * each slot was last replaced (crash, hang, memory, ...) and the figure.
 */
#include "control_internal.h"
#include "control_sticky.h"
#include "pool.h"
#include "status_format.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A JSON string of text (exit descriptions, reasons). */
static void add_json_string(struct evbuffer *out, const char *text)
{
	const unsigned char *c;

	evbuffer_add(out, "\"", 1);
	for (c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			evbuffer_add_printf(out, "\\%c", *c);
		else if (*c < 0x20)
			evbuffer_add_printf(out, "\\u%04x", *c);
		else
			evbuffer_add(out, c, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/* A string, or null when it is empty. */
static void add_json_string_or_null(struct evbuffer *out, const char *text)
{
	if (text[0])
		add_json_string(out, text);
	else
		evbuffer_add(out, "null", 4);
}

/* A worker forked whose shim has not checked in yet is "none" to the
 * cluster library; to an operator it is starting. */
static const char *state_name(const struct pool_worker_info *w)
{
	return strcmp(w->state, "none") == 0 ? "starting" : w->state;
}

static const char *json_bool(bool b)
{
	return b ? "true" : "false";
}

/* The cluster's listeners now (calloc'd; NULL and *n 0 without memory). */
static struct cluster_listener_stats *listener_snapshot(struct pool *p,
							unsigned *n)
{
	const struct cluster *c = pool_cluster(p);
	unsigned want = cluster_listener_stats(c, NULL, 0);
	struct cluster_listener_stats *st = calloc(want ? want : 1, sizeof(*st));

	*n = st ? cluster_listener_stats(c, st, want) : 0;
	if (*n > want)
		*n = want;
	return st;
}

/* ", \"cpu_percent\": ..." inside a worker's object; null until known. */
static void add_usage_json(struct evbuffer *out,
			   const struct worker_resources *res)
{
	if (!res->samples) {
		evbuffer_add_printf(out, ", \"cpu_percent\": null, "
				    "\"cpu_seconds\": null, \"rss_bytes\": "
				    "null, \"processes\": null");
		return;
	}
	if (res->cpu_percent < 0)
		evbuffer_add_printf(out, ", \"cpu_percent\": null");
	else
		evbuffer_add_printf(out, ", \"cpu_percent\": %.1f",
				    res->cpu_percent);
	evbuffer_add_printf(out, ", \"cpu_seconds\": %.2f, \"rss_bytes\": "
			    "%llu, \"processes\": %u", res->cpu_seconds,
			    res->rss_bytes, res->processes);
}

/* A count, or null where the kernel does not tell. */
static void add_json_count(struct evbuffer *out, const char *key, long v,
			   bool known)
{
	if (known && v >= 0)
		evbuffer_add_printf(out, ", \"%s\": %ld", key, v);
	else
		evbuffer_add_printf(out, ", \"%s\": null", key);
}

/* ",\n  \"listeners\": [...]" after the workers. */
static void add_listeners_json(struct pool *p, struct evbuffer *out)
{
	unsigned i, n;
	struct cluster_listener_stats *st = listener_snapshot(p, &n);

	evbuffer_add_printf(out, ",\n  \"listeners\": [");
	for (i = 0; i < n; i++) {
		evbuffer_add_printf(out, "%s\n    {\"address\": ", i ? "," : "");
		add_json_string(out, st[i].address);
		evbuffer_add_printf(out, ", \"policy\": ");
		add_json_string(out, st[i].policy);
		add_json_count(out, "queued", st[i].queued, true);
		add_json_count(out, "backlog", st[i].backlog, true);
		add_json_count(out, "accepted", (long)st[i].accepted, st[i].rr);
		add_json_count(out, "held", (long)st[i].held, st[i].rr);
		evbuffer_add(out, "}", 1);
	}
	evbuffer_add_printf(out, "%s]", n ? "\n  " : "");
	free(st);
}

/* ", \"last_replaced\": {...} or null, \"rss_start_bytes\": ..." */
static void add_replaced_json(struct evbuffer *out,
			      const struct pool_worker_info *w)
{
	evbuffer_add_printf(out, ", \"last_replaced\": ");
	if (w->replaced.why == REPLACE_NONE) {
		evbuffer_add(out, "null", 4);
	} else {
		evbuffer_add_printf(out, "{\"reason\": \"%s\", \"figure\": ",
				    replace_reason_name(w->replaced.why));
		add_json_string_or_null(out, w->replaced.figure);
		evbuffer_add(out, "}", 1);
	}
	if (w->rss_start)
		evbuffer_add_printf(out, ", \"rss_start_bytes\": %llu",
				    w->rss_start);
	else
		evbuffer_add_printf(out, ", \"rss_start_bytes\": null");
}

static void add_worker_json(struct evbuffer *out,
			    const struct pool_worker_info *w)
{
	evbuffer_add_printf(out, "{\"id\": %u, \"pid\": %d, \"state\": ", w->id,
			    (int)w->pid);
	add_json_string(out, state_name(w));
	evbuffer_add_printf(out, ", \"uptime_ms\": %lld, \"restarts\": %u, "
			    "\"handed\": %lu, \"listeners\": %u, "
			    "\"replacement\": %s, \"retiring\": %s, "
			    "\"waiting\": %s, \"restart_in_ms\": ",
			    w->uptime_ms > 0 ? w->uptime_ms : 0, w->restarts,
			    w->handed, w->listeners, json_bool(w->replacement),
			    json_bool(w->retiring), json_bool(w->waiting));
	if (w->restart_in_ms >= 0)
		evbuffer_add_printf(out, "%lld", w->restart_in_ms);
	else
		evbuffer_add(out, "null", 4);
	evbuffer_add_printf(out, ", \"last_exit\": ");
	add_json_string_or_null(out, w->last_exit);
	add_replaced_json(out, w);
	add_usage_json(out, &w->res);
	evbuffer_add(out, "}", 1);
}

static void add_reload_json(struct evbuffer *out,
			    const struct pool_reload_outcome *r)
{
	if (!r->ran) {
		evbuffer_add(out, "null", 4);
		return;
	}
	evbuffer_add_printf(out, "{\"outcome\": \"%s\", \"ok\": %s, "
			    "\"ago_ms\": %lld, \"why\": ",
			    r->ok ? "done" : "failed", json_bool(r->ok),
			    r->ago_ms);
	add_json_string_or_null(out, r->why);
	evbuffer_add(out, "}", 1);
}

static void add_status_json(struct pool *p, struct evbuffer *out,
			    const struct pool_worker_info *w, unsigned n)
{
	struct pool_reload_outcome r;
	unsigned i;

	pool_last_reload(p, &r);
	evbuffer_add_printf(out, "{\n  \"pid\": %d,\n  \"size\": %u,\n"
			    "  \"reloading\": %s,\n  \"stopping\": %s,\n"
			    "  \"last_reload\": ", (int)getpid(), pool_size(p),
			    json_bool(pool_reloading(p)),
			    json_bool(pool_stopping(p)));
	add_reload_json(out, &r);
	evbuffer_add_printf(out, ",\n  \"workers\": [");
	for (i = 0; i < n; i++) {
		evbuffer_add_printf(out, "%s\n    ", i ? "," : "");
		add_worker_json(out, &w[i]);
	}
	evbuffer_add_printf(out, "%s]", n ? "\n  " : "");
	add_listeners_json(p, out);
	control_sticky_json(p, out);
	evbuffer_add_printf(out, "\n}\n");
}

#define ROW_FORMAT "%-5s %-8s %-14s %-8s %-9s %-9s %-6s %-7s %-10s %s"
#define ROW_COLUMNS 10

/* One row of the table, without trailing blanks. */
static void add_row(struct evbuffer *out, const char *const col[ROW_COLUMNS])
{
	char row[320];
	size_t n;

	snprintf(row, sizeof(row), ROW_FORMAT, col[0], col[1], col[2], col[3],
		 col[4], col[5], col[6], col[7], col[8], col[9]);
	n = strlen(row);
	while (n > 0 && row[n - 1] == ' ')
		n--;
	evbuffer_add(out, row, n);
	evbuffer_add(out, "\n", 1);
}

/* The last column: what a row is beyond its state; for a slot's worker
 * in charge, why the slot was last replaced. */
static void row_note(const struct pool_worker_info *w, char *buf, size_t cap)
{
	if (w->replacement)
		snprintf(buf, cap, "new (reload)");
	else if (w->retiring)
		snprintf(buf, cap, "old (reload)");
	else if (w->waiting && w->restart_in_ms >= 0)
		snprintf(buf, cap, "restarting in %lld.%lld s; last: %s",
			 (w->restart_in_ms + 50) / 1000,
			 (w->restart_in_ms + 50) % 1000 / 100,
			 w->last_exit[0] ? w->last_exit : "none");
	else if (w->waiting)
		snprintf(buf, cap, "no restart due; last: %s",
			 w->last_exit[0] ? w->last_exit : "none");
	else if (w->replaced.why != REPLACE_NONE)
		snprintf(buf, cap, "replaced: %s%s%s",
			 replace_reason_name(w->replaced.why),
			 w->replaced.figure[0] ? ", " : "", w->replaced.figure);
	else
		buf[0] = '\0';
}

/* The cpu and mem columns: "-" until the first samples. */
static void format_usage(const struct worker_resources *res, char *cpu,
			 size_t cpucap, char *mem, size_t memcap)
{
	if (res->samples && res->cpu_percent >= 0)
		snprintf(cpu, cpucap, "%.0f%%", res->cpu_percent);
	else
		snprintf(cpu, cpucap, "-");
	if (res->samples)
		status_format_bytes(res->rss_bytes, mem, memcap);
	else
		snprintf(mem, memcap, "-");
}

static void add_count_cell(char *buf, size_t cap, long v, bool known)
{
	if (known && v >= 0)
		snprintf(buf, cap, "%ld", v);
	else
		snprintf(buf, cap, "-");
}

/* After the workers: each listener's accept queue, and what rr holds. */
static void add_listener_table(struct pool *p, struct evbuffer *out)
{
	unsigned i, n;
	struct cluster_listener_stats *st = listener_snapshot(p, &n);

	if (n)
		evbuffer_add_printf(out, "%-24s %-9s %-7s %-8s %-9s %s\n",
				    "listener", "policy", "queued", "backlog",
				    "accepted", "held");
	for (i = 0; i < n; i++) {
		char q[24], b[24], a[24], h[24];

		add_count_cell(q, sizeof(q), st[i].queued, true);
		add_count_cell(b, sizeof(b), st[i].backlog, true);
		add_count_cell(a, sizeof(a), (long)st[i].accepted, st[i].rr);
		add_count_cell(h, sizeof(h), (long)st[i].held, st[i].rr);
		evbuffer_add_printf(out, "%-24s %-9s %-7s %-8s %-9s %s\n",
				    st[i].address, st[i].policy, q, b, a, h);
	}
	free(st);
}

static void add_worker_row(struct evbuffer *out,
			   const struct pool_worker_info *w)
{
	char id[16], pid[16], up[32], restarts[16], handed[24], ls[16];
	char cpu[16], mem[16], note[160];
	const char *col[ROW_COLUMNS] = { id, pid, state_name(w), up, restarts,
					 handed, cpu, mem, ls, note };

	snprintf(id, sizeof(id), "%u", w->id);
	snprintf(restarts, sizeof(restarts), "%u", w->restarts);
	if (w->waiting) {
		col[1] = col[3] = col[5] = col[8] = "-";
	} else {
		snprintf(pid, sizeof(pid), "%d", (int)w->pid);
		status_format_uptime(w->uptime_ms, up, sizeof(up));
		snprintf(handed, sizeof(handed), "%lu", w->handed);
		snprintf(ls, sizeof(ls), "%u", w->listeners);
	}
	format_usage(&w->res, cpu, sizeof(cpu), mem, sizeof(mem));
	row_note(w, note, sizeof(note));
	add_row(out, col);
}

static void add_status_table(struct pool *p, struct evbuffer *out,
			     const struct pool_worker_info *w, unsigned n)
{
	static const char *const head[ROW_COLUMNS] = {
		"id", "pid", "state", "uptime", "restarts", "handed", "cpu",
		"mem", "listeners", ""
	};
	struct pool_reload_outcome r;
	unsigned i, size = pool_size(p);
	char ago[32];

	add_row(out, head);
	for (i = 0; i < n; i++)
		add_worker_row(out, &w[i]);
	evbuffer_add_printf(out, "%u worker%s wanted%s%s\n", size,
			    size == 1 ? "" : "s",
			    pool_reloading(p) ? "; reload running" : "",
			    pool_stopping(p) ? "; stopping" : "");
	pool_last_reload(p, &r);
	if (r.ran) {
		status_format_uptime(r.ago_ms, ago, sizeof(ago));
		evbuffer_add_printf(out, "last reload: %s %s ago%s%s\n",
				    r.ok ? "done" : "failed", ago,
				    r.ok ? "" : ": ", r.ok ? "" : r.why);
	}
	add_listener_table(p, out);
	control_sticky_text(p, out);
}

int control_status(struct pool *p, struct evbuffer *out, bool json)
{
	unsigned n = pool_snapshot(p, NULL, 0);
	struct pool_worker_info *w = calloc(n ? n : 1, sizeof(*w));

	if (!w)
		return -1;
	n = pool_snapshot(p, w, n);
	if (json)
		add_status_json(p, out, w, n);
	else
		add_status_table(p, out, w, n);
	free(w);
	return 0;
}
