/*
 * shared_handle.c - Node's SharedHandle (SCHED_NONE, and every datagram
 * socket): each worker gets the listening socket itself and the kernel
 * decides who accepts.  Nothing to do per connection.
 */
#include "cluster_internal.h"

int shared_handle_fds(struct handle *h, int *fds)
{
	fds[0] = h->fd;
	return 1;
}
