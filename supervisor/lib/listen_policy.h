/*
 * listen_policy.h - the privilege boundary: with --uid, a worker may only
 * obtain the listeners the operator declared with --listen.  Addresses are
 * "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" or "unix:/run/app.sock".
 */
#ifndef LISTEN_POLICY_H
#define LISTEN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* 0, or -1 when text is no address of those forms. */
int listen_addr_parse(const char *text, struct listen_addr *out);

/* Is addr (as a worker asked for it) one of the declared ones? */
bool listen_addr_allowed(const struct listen_addr *allowed, size_t n,
			 const struct sockaddr *addr, socklen_t len);

#endif
