/*
 * sticky_http.c - what a sticky mode names in the head of an HTTP request
 * (see sticky.h): the value of a header (its first comma-separated element:
 * X-Forwarded-For's first address), of a cookie, or of a parameter of the
 * request target's query, and X-Forwarded-For's first address, which
 * stands for the client's when the value is missing (behind a proxy every
 * connection has the proxy's address).  Only reads the bytes given.
 */
#include "sticky.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define METHOD_MAX 16

struct span {
	const char *p;
	size_t len;
};

/* The next line of [*pos, end): without its "\r\n" or "\n"; false when no
 * line ends before end. */
static bool next_line(const char **pos, const char *end, struct span *line)
{
	const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));

	if (!nl)
		return false;
	line->p = *pos;
	line->len = (size_t)(nl - *pos);
	if (line->len && line->p[line->len - 1] == '\r')
		line->len--;
	*pos = nl + 1;
	return true;
}

static struct span trim(const char *p, size_t len)
{
	while (len && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return (struct span){ p, len };
}

/* The part of s before the first sep, trimmed. */
static struct span first_element(struct span s, char sep)
{
	const char *c = memchr(s.p, sep, s.len);

	return trim(s.p, c ? (size_t)(c - s.p) : s.len);
}

/* "GET " and the like: a method of capitals and a space; what comes before
 * it tells a request from anything else as soon as it is there. */
static enum sticky_http_state method_state(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && i <= METHOD_MAX; i++) {
		if (buf[i] == ' ')
			return i ? STICKY_HTTP_DONE : STICKY_HTTP_NOT_HTTP;
		if (buf[i] < 'A' || buf[i] > 'Z')
			return STICKY_HTTP_NOT_HTTP;
	}
	return i > METHOD_MAX ? STICKY_HTTP_NOT_HTTP : STICKY_HTTP_MORE;
}

/* In "a=1&sid=xy" (sep '&') or "a=1; sid=xy" (sep ';'): name's value. */
static bool find_pair(struct span list, char sep, const char *name,
		      struct span *value)
{
	size_t nlen = strlen(name);
	const char *p = list.p, *end = list.p + list.len;

	while (p < end) {
		const char *c = memchr(p, sep, (size_t)(end - p));
		struct span item = trim(p, c ? (size_t)(c - p) : (size_t)(end - p));

		if (item.len > nlen && item.p[nlen] == '=' &&
		    memcmp(item.p, name, nlen) == 0) {
			*value = (struct span){ item.p + nlen + 1,
						item.len - nlen - 1 };
			return true;
		}
		p = c ? c + 1 : end;
	}
	return false;
}

/* The query of the request line "GET /path?query HTTP/1.1". */
static struct span request_query(struct span line)
{
	const char *sp = memchr(line.p, ' ', line.len), *q, *end;

	if (!sp)
		return (struct span){ line.p, 0 };
	end = memchr(sp + 1, ' ', (size_t)(line.p + line.len - sp - 1));
	if (!end)
		end = line.p + line.len;
	q = memchr(sp + 1, '?', (size_t)(end - sp - 1));
	if (!q)
		return (struct span){ end, 0 };
	return (struct span){ q + 1, (size_t)(end - q - 1) };
}

/* "Name: value": value, when the name is name (any case). */
static bool header_value(struct span line, const char *name, struct span *value)
{
	size_t nlen = strlen(name);

	if (line.len <= nlen || line.p[nlen] != ':' ||
	    strncasecmp(line.p, name, nlen) != 0)
		return false;
	*value = trim(line.p + nlen + 1, line.len - nlen - 1);
	return true;
}

static void found_set(const char **p, size_t *len, struct span s)
{
	if (!*p && s.len) {
		*p = s.p;
		*len = s.len;
	}
}

enum sticky_http_state sticky_http_scan(const char *buf, size_t len, bool full,
					enum cluster_sticky mode,
					const char *name,
					struct sticky_http_found *found)
{
	enum sticky_http_state st = method_state(buf, len);
	const char *pos = buf, *end = buf + len;
	struct span line, v;

	memset(found, 0, sizeof(*found));
	if (st != STICKY_HTTP_DONE)
		return st == STICKY_HTTP_MORE && full ? STICKY_HTTP_NOT_HTTP : st;
	if (!next_line(&pos, end, &line))
		return full ? STICKY_HTTP_DONE : STICKY_HTTP_MORE;
	if (mode == CLUSTER_STICKY_QUERY &&
	    find_pair(request_query(line), '&', name, &v))
		found_set(&found->value, &found->value_len, v);
	while (next_line(&pos, end, &line)) {
		if (line.len == 0)
			return STICKY_HTTP_DONE;
		if (header_value(line, "X-Forwarded-For", &v))
			found_set(&found->forwarded, &found->forwarded_len,
				  first_element(v, ','));
		if (mode == CLUSTER_STICKY_HEADER && header_value(line, name, &v))
			found_set(&found->value, &found->value_len,
				  first_element(v, ','));
		if (mode == CLUSTER_STICKY_COOKIE &&
		    header_value(line, "Cookie", &v) &&
		    find_pair(v, ';', name, &v))
			found_set(&found->value, &found->value_len, v);
	}
	/* No end of the head yet: what was found may still be followed by
	 * the header that matters. */
	return full ? STICKY_HTTP_DONE : STICKY_HTTP_MORE;
}
