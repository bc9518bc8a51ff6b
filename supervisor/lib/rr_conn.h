/*
 * rr_conn.h - a connection the supervisor accepted in rr and has not
 * handed to a worker yet (rr_handle.c), and how sticky sessions route it
 * (sticky.h, sticky_peek.c).
 */
#ifndef RR_CONN_H
#define RR_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct rr_conn {
	int fd;
	bool nonblock; /* accepted with SOCK_NONBLOCK */
	socklen_t addrlen;
	struct sockaddr_storage addr;
	uint64_t key;   /* sticky: its slots' order (sticky_score) */
	uint64_t value; /* sticky: the value its request names, or 0 */
	unsigned pin;   /* sticky: the slot value is pinned to, or 0 */
};

#endif
