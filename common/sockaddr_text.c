#include "sockaddr_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

static char *unix_text(const struct sockaddr_un *sun, socklen_t len,
		       char *buf, size_t cap)
{
	size_t path_len;

	if (len <= offsetof(struct sockaddr_un, sun_path)) {
		snprintf(buf, cap, "unix:(unnamed)");
		return buf;
	}
	path_len = len - offsetof(struct sockaddr_un, sun_path);
	if (path_len > sizeof(sun->sun_path))
		path_len = sizeof(sun->sun_path);
	if (sun->sun_path[0] == '\0') /* abstract namespace */
		snprintf(buf, cap, "unix:@%.*s", (int)path_len - 1,
			 sun->sun_path + 1);
	else
		snprintf(buf, cap, "unix:%.*s", (int)strnlen(sun->sun_path, path_len),
			 sun->sun_path);
	return buf;
}

char *sockaddr_text(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (cap == 0)
		return buf;
	if (!sa || len < sizeof(sa_family_t)) {
		snprintf(buf, cap, "(none)");
		return buf;
	}
	switch (sa->sa_family) {
	case AF_INET:
		if (len < sizeof(struct sockaddr_in))
			break;
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, sockaddr_port(sa, len));
		return buf;
	case AF_INET6:
		if (len < sizeof(struct sockaddr_in6))
			break;
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, sockaddr_port(sa, len));
		return buf;
	case AF_UNIX:
		return unix_text((const struct sockaddr_un *)sa, len, buf, cap);
	}
	snprintf(buf, cap, "(family %d)", sa->sa_family);
	return buf;
}

unsigned sockaddr_port(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}
