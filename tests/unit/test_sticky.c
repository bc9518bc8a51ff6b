/* Sticky sessions without I/O: rendezvous hashing spreads keys evenly and
 * a new slot moves only its own share; the pinned table keeps its bound,
 * least recently used out; the HTTP scan finds header, cookie, query and
 * X-Forwarded-For values, waits for a head that is not complete, and
 * tells what is not HTTP. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "sticky.h"

#define KEYS 20000

/* The winner among slots 1..n for key. */
static unsigned owner(uint64_t key, unsigned n)
{
	unsigned best = 0, s;
	uint64_t best_score = 0;

	for (s = 1; s <= n; s++) {
		uint64_t score = sticky_score(key, s);

		if (!best || score > best_score) {
			best = s;
			best_score = score;
		}
	}
	return best;
}

static uint64_t key_of(unsigned i)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(0x0a000000u + i) };

	return sticky_hash_addr(12345, (struct sockaddr *)&in, sizeof(in));
}

Test(sticky_hash, even_spread_and_minimal_moves)
{
	unsigned per[6] = { 0 }, moved = 0, i, s;

	for (i = 0; i < KEYS; i++) {
		unsigned a = owner(key_of(i), 4), b = owner(key_of(i), 5);

		per[a]++;
		cr_assert(b == a || b == 5, "key %u moved from %u to %u", i, a, b);
		moved += b != a;
	}
	for (s = 1; s <= 4; s++) /* 5000 each; 4% off at most */
		cr_assert(per[s] > KEYS / 4 * 96 / 100 &&
			  per[s] < KEYS / 4 * 104 / 100, "slot %u: %u of %u",
			  s, per[s], KEYS);
	/* 1/5 of them (4000), within 5% */
	cr_assert(moved > KEYS / 5 * 95 / 100 && moved < KEYS / 5 * 105 / 100,
		  "4 -> 5 slots moved %u of %u", moved, KEYS);
}

Test(sticky_hash, port_does_not_matter_v4_mapped_is_v4)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1),
				 .sin_addr.s_addr = htonl(0x7f000002) };
	struct sockaddr_in b = a;
	struct sockaddr_in6 m = { .sin6_family = AF_INET6 };

	b.sin_port = htons(2);
	m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m.sin6_addr.s6_addr[12], &a.sin_addr, 4);
	cr_assert_eq(sticky_hash_addr(7, (struct sockaddr *)&a, sizeof(a)),
		     sticky_hash_addr(7, (struct sockaddr *)&b, sizeof(b)));
	cr_assert_eq(sticky_hash_addr(7, (struct sockaddr *)&a, sizeof(a)),
		     sticky_hash_addr(7, (struct sockaddr *)&m, sizeof(m)));
	cr_assert_neq(sticky_hash_addr(7, (struct sockaddr *)&a, sizeof(a)),
		      sticky_hash_addr(8, (struct sockaddr *)&a, sizeof(a)),
		      "the seed changes nothing");
}

Test(sticky_table, pins_bounded_lru_out)
{
	struct sticky_table *t = sticky_table_new(3);
	unsigned counts[4] = { 0 };

	cr_assert(t);
	sticky_table_note(t, 10, 1, true);
	sticky_table_note(t, 20, 2, true);
	sticky_table_note(t, 10, 3, true); /* pinned: keeps slot 1 */
	cr_assert_eq(sticky_table_lookup(t, 10), 1);
	sticky_table_note(t, 20, 3, false); /* counted: follows */
	cr_assert_eq(sticky_table_lookup(t, 20), 3);
	sticky_table_note(t, 30, 2, true);
	cr_assert_eq(sticky_table_lookup(t, 10), 1); /* 10 newest, 20 oldest */
	sticky_table_note(t, 40, 2, true);          /* 20 goes */
	cr_assert_eq(sticky_table_lookup(t, 20), 0);
	cr_assert_eq(sticky_table_lookup(t, 30), 2);
	cr_assert_eq(sticky_table_lookup(t, 40), 2);
	cr_assert_eq(sticky_table_counts(t, counts, 4), 3);
	cr_assert(counts[1] == 1 && counts[2] == 2 && counts[3] == 0);
	for (uint64_t v = 100; v < 1000; v++) /* never past its bound */
		sticky_table_note(t, v, 1, true);
	cr_assert_eq(sticky_table_counts(t, counts, 4), 3);
	cr_assert_eq(sticky_table_lookup(t, 999), 1);
	sticky_table_free(t);
}

static enum sticky_http_state scan(const char *req, bool full,
				   enum cluster_sticky mode, const char *name,
				   struct sticky_http_found *f)
{
	return sticky_http_scan(req, strlen(req), full, mode, name, f);
}

static void assert_value(const struct sticky_http_found *f, const char *want)
{
	cr_assert(f->value, "no value, want \"%s\"", want);
	cr_assert(f->value_len == strlen(want) &&
		  memcmp(f->value, want, f->value_len) == 0,
		  "value \"%.*s\", want \"%s\"", (int)f->value_len, f->value, want);
}

Test(sticky_http, values_of_each_mode)
{
	struct sticky_http_found f;
	const char *req = "GET /socket.io/?EIO=4&transport=polling&sid=AbC- "
			  "HTTP/1.1\r\nHost: x\r\n"
			  "x-forwarded-for:  10.0.0.7 , 192.168.1.1\r\n"
			  "Cookie: a=1; io=xyz; sid=s9\r\n"
			  "X-Session: k1\r\n\r\n";

	cr_assert_eq(scan(req, false, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_DONE);
	assert_value(&f, "AbC-");
	cr_assert(f.forwarded_len == 8 && memcmp(f.forwarded, "10.0.0.7", 8) == 0);
	cr_assert_eq(scan(req, false, CLUSTER_STICKY_COOKIE, "io", &f),
		     STICKY_HTTP_DONE);
	assert_value(&f, "xyz");
	cr_assert_eq(scan(req, false, CLUSTER_STICKY_HEADER, "X-Forwarded-For",
			  &f), STICKY_HTTP_DONE);
	assert_value(&f, "10.0.0.7");
	cr_assert_eq(scan(req, false, CLUSTER_STICKY_HEADER, "x-session", &f),
		     STICKY_HTTP_DONE);
	assert_value(&f, "k1");
	cr_assert_eq(scan(req, false, CLUSTER_STICKY_COOKIE, "i", &f),
		     STICKY_HTTP_DONE);
	cr_assert_null(f.value, "cookie 'i' is not 'io'");
	cr_assert_eq(scan("GET /?xsid=1&sid=2 HTTP/1.0\n\n", false,
			  CLUSTER_STICKY_QUERY, "sid", &f), STICKY_HTTP_DONE);
	assert_value(&f, "2");
}

Test(sticky_http, incomplete_waits_full_decides)
{
	struct sticky_http_found f;

	cr_assert_eq(scan("GE", false, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_MORE);
	cr_assert_eq(scan("GET /?sid=1", false, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_MORE);
	cr_assert_eq(scan("GET / HTTP/1.1\r\nCookie: sid=1\r\n", false,
			  CLUSTER_STICKY_COOKIE, "sid", &f), STICKY_HTTP_MORE);
	cr_assert_eq(scan("GET / HTTP/1.1\r\nCookie: sid=1\r\n", true,
			  CLUSTER_STICKY_COOKIE, "sid", &f), STICKY_HTTP_DONE);
	assert_value(&f, "1");
	/* a line cut short is not read */
	cr_assert_eq(scan("GET / HTTP/1.1\r\nCookie: sid=12", true,
			  CLUSTER_STICKY_COOKIE, "sid", &f), STICKY_HTTP_DONE);
	cr_assert_null(f.value);
}

Test(sticky_http, not_http)
{
	struct sticky_http_found f;

	cr_assert_eq(scan("\x16\x03\x01", false, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_NOT_HTTP);
	cr_assert_eq(scan("get / HTTP/1.1\r\n\r\n", false, CLUSTER_STICKY_QUERY,
			  "sid", &f), STICKY_HTTP_NOT_HTTP);
	cr_assert_eq(scan(" GET", false, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_NOT_HTTP);
	cr_assert_eq(scan("GET", true, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_NOT_HTTP);
	cr_assert_eq(scan("", true, CLUSTER_STICKY_QUERY, "sid", &f),
		     STICKY_HTTP_NOT_HTTP);
	cr_assert_eq(scan("ABCDEFGHIJKLMNOPQRSTUVWXYZ", false,
			  CLUSTER_STICKY_QUERY, "sid", &f), STICKY_HTTP_NOT_HTTP);
}
