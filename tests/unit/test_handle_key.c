/* Handle keys and Node's index rule: the Nth identical bind inside one
 * worker gets index N-1, so port-0 listeners pair up across workers. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "handle_key.h"
#include "sockaddr_text.h"

static struct sockaddr_in v4(const char *ip, unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

Test(handle_key, base_names_address_and_type)
{
	struct sockaddr_in a = v4("127.0.0.1", 8080);
	struct sockaddr_in6 b = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	struct sockaddr_un u = { .sun_family = AF_UNIX, .sun_path = "/run/x.sock" };
	char key[HANDLE_KEY_MAX];

	inet_pton(AF_INET6, "::1", &b.sin6_addr);
	cr_expect_str_eq(handle_key_base((struct sockaddr *)&a, sizeof(a),
					 SOCK_STREAM, key, sizeof(key)),
			 "127.0.0.1:8080:stream");
	cr_expect_str_eq(handle_key_base((struct sockaddr *)&b, sizeof(b),
					 SOCK_DGRAM, key, sizeof(key)),
			 "[::1]:80:dgram");
	cr_expect_str_eq(handle_key_base((struct sockaddr *)&u,
					 offsetof(struct sockaddr_un, sun_path) + 12,
					 SOCK_STREAM, key, sizeof(key)),
			 "unix:/run/x.sock:stream");
	cr_expect_str_eq(handle_key_with_index("127.0.0.1:0:stream", 2, key,
					       sizeof(key)),
			 "127.0.0.1:0:stream:2");
}

Test(handle_key, abstract_unix_names_are_marked)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	char text[SOCKADDR_TEXT_MAX];

	memcpy(u.sun_path, "\0hidden", 7);
	cr_expect_str_eq(sockaddr_text((struct sockaddr *)&u,
				       offsetof(struct sockaddr_un, sun_path) + 7,
				       text, sizeof(text)),
			 "unix:@hidden");
}

Test(handle_key, port0_index_pairs_listeners_across_workers)
{
	struct handle_index_set w1 = { 0 }, w2 = { 0 };
	const char *base = "127.0.0.1:0:stream";

	/* each worker binds port 0 twice: 1st with 1st, 2nd with 2nd */
	cr_expect_eq(handle_index_acquire(&w1, base), 0);
	cr_expect_eq(handle_index_acquire(&w1, base), 1);
	cr_expect_eq(handle_index_acquire(&w2, base), 0);
	cr_expect_eq(handle_index_acquire(&w2, base), 1);
}

Test(handle_key, index_counts_per_address)
{
	struct handle_index_set w = { 0 };

	cr_expect_eq(handle_index_acquire(&w, "127.0.0.1:0:stream"), 0);
	cr_expect_eq(handle_index_acquire(&w, "[::1]:0:stream"), 0);
	cr_expect_eq(handle_index_acquire(&w, "127.0.0.1:0:dgram"), 0);
	cr_expect_eq(handle_index_acquire(&w, "127.0.0.1:0:stream"), 1);
}

Test(handle_key, index_restarts_once_all_are_closed)
{
	struct handle_index_set w = { 0 };
	const char *base = "127.0.0.1:0:stream";

	cr_expect_eq(handle_index_acquire(&w, base), 0);
	cr_expect_eq(handle_index_acquire(&w, base), 1);
	handle_index_release(&w, base);
	/* one still open: numbering goes on, as in Node's child.js */
	cr_expect_eq(handle_index_acquire(&w, base), 2);
	handle_index_release(&w, base);
	handle_index_release(&w, base);
	cr_expect_eq(handle_index_acquire(&w, base), 0);
}

Test(handle_key, full_set_refuses)
{
	struct handle_index_set w = { 0 };
	char base[32];
	int i;

	for (i = 0; i < HANDLE_INDEX_SET_MAX; i++) {
		snprintf(base, sizeof(base), "127.0.0.1:%d:stream", 1000 + i);
		cr_assert_eq(handle_index_acquire(&w, base), 0);
	}
	cr_expect_eq(handle_index_acquire(&w, "127.0.0.1:1:stream"), -1);
}
