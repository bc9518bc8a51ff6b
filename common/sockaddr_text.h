/*
 * sockaddr_text.h - socket addresses as text, for log lines and handle keys:
 * "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock", "unix:@abstract".
 */
#ifndef SOCKADDR_TEXT_H
#define SOCKADDR_TEXT_H

#include <stddef.h>
#include <sys/socket.h>

#define SOCKADDR_TEXT_MAX 160

/* Writes the text (always NUL-terminated) and returns buf. */
char *sockaddr_text(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t cap);

/* The port of an AF_INET/AF_INET6 address in host order, else 0. */
unsigned sockaddr_port(const struct sockaddr *sa, socklen_t len);

#endif
