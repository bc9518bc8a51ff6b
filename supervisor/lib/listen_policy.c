#include "listen_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int parse_port(const char *text, in_port_t *port)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (!*text || *end || v < 1 || v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

static int parse_unix(const char *path, struct listen_addr *out)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(sun->sun_path) || path[0] != '/')
		return -1;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int listen_addr_parse(const char *text, struct listen_addr *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (strncmp(text, "unix:", 5) == 0)
		return parse_unix(text + 5, out);
	colon = strrchr(text, ':');
	if (!colon || (hlen = (size_t)(colon - text)) == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->ss;

		host[hlen - 1] = '\0';
		a->sin6_family = AF_INET6;
		out->len = sizeof(*a);
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 &&
			       parse_port(colon + 1, &a->sin6_port) == 0
		       ? 0 : -1;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&out->ss;

		a->sin_family = AF_INET;
		out->len = sizeof(*a);
		return inet_pton(AF_INET, host, &a->sin_addr) == 1 &&
			       parse_port(colon + 1, &a->sin_port) == 0
		       ? 0 : -1;
	}
}

static bool same_address(const struct listen_addr *a,
			 const struct sockaddr *b, socklen_t len)
{
	if (a->ss.ss_family != b->sa_family)
		return false;
	switch (b->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)b;

		return len >= sizeof(*y) && x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)b;

		return len >= sizeof(*y) && x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX: {
		const struct sockaddr_un *x = (const void *)&a->ss, *y = (const void *)b;
		size_t off = offsetof(struct sockaddr_un, sun_path);

		return len > off && strncmp(x->sun_path, y->sun_path,
					    len - off) == 0 &&
		       strlen(x->sun_path) == strnlen(y->sun_path, len - off);
	}
	}
	return false;
}

bool listen_addr_allowed(const struct listen_addr *allowed, size_t n,
			 const struct sockaddr *addr, socklen_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (same_address(&allowed[i], addr, len))
			return true;
	return false;
}
