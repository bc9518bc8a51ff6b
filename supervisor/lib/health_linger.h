/*
 * health_linger.h - a health probe's socket after its verdict: it reads
 * and drops what the server still sends until the server closes (or a
 * timeout), and only then is closed.  A probe that closed at once would
 * leave the server writing to a socket that is gone: EPIPE, and SIGPIPE
 * for a server that does not ignore it (at once on a unix socket, on the
 * second write on TCP).  The probe has shut its side down first, so a
 * server that waits for a request reads EOF instead of waiting.  Part of
 * health_probe.c's checker.
 */
#ifndef HEALTH_LINGER_H
#define HEALTH_LINGER_H

struct event_base;
struct health_linger;

/* fd lingers for at most timeout_ms, on list; closed at once if that
 * cannot be set up. */
void health_linger_start(struct event_base *base, struct health_linger **list,
			 int fd, unsigned timeout_ms);
/* Closes every socket on list. */
void health_linger_free_all(struct health_linger **list);

#endif
