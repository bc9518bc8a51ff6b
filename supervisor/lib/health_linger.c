#include "health_linger.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* What a lingering socket reads at most: one read per wakeup, so that a
 * server that writes without end cannot hold the loop, and this much in
 * all (a probe's answer is small; past it, the server is only talking). */
#define LINGER_READ 4096
#define LINGER_TOTAL (64 * 1024)

struct health_linger {
	int fd;
	size_t read;
	struct event *ev;
	struct health_linger **list, *prev, *next;
};

static void linger_free(struct health_linger *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		*l->list = l->next;
	if (l->next)
		l->next->prev = l->prev;
	event_free(l->ev);
	close(l->fd);
	free(l);
}

static void linger_on_event(evutil_socket_t fd, short what, void *arg)
{
	struct health_linger *l = arg;
	char drop[LINGER_READ];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		linger_free(l);
		return;
	}
	n = recv(l->fd, drop, sizeof(drop), 0);
	if (n > 0)
		l->read += (size_t)n;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
	    l->read > LINGER_TOTAL)
		linger_free(l); /* closed, broken, or too much said */
}

void health_linger_start(struct event_base *base, struct health_linger **list,
			 int fd, unsigned timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct health_linger *l = calloc(1, sizeof(*l));

	if (l)
		l->ev = event_new(base, fd, EV_READ | EV_PERSIST,
				  linger_on_event, l);
	if (!l || !l->ev || event_add(l->ev, &tv) < 0) {
		if (l && l->ev)
			event_free(l->ev);
		free(l);
		close(fd);
		return;
	}
	l->fd = fd;
	l->list = list;
	l->next = *list;
	if (*list)
		(*list)->prev = l;
	*list = l;
}

void health_linger_free_all(struct health_linger **list)
{
	while (*list)
		linger_free(*list);
}
