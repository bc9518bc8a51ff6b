/*
 * worker_drain.c - step 2 of a graceful disconnect: the connections a
 * worker holds finish before it gets the graceful signal.
 *
 * One census for the whole cluster per tick while any worker drains: a
 * thread asks the kernel (conn_census.c, inet_diag) for the connections on
 * the ports being drained, in the families of their listeners, and counts
 * how many of them each draining worker holds (it reads their fds too: one
 * readlink per fd); the loop hears the answer.  A worker with none left,
 * or whose time (half the kill timeout) is up, gets the graceful signal.
 * Stopping 256 workers costs one census per tick, not 256; nothing here
 * waits for the kernel.
 * The tick starts at DRAIN_TICK_MS (an idle worker goes at once, a short
 * request is seen to end soon) and doubles up to DRAIN_TICK_MAX_MS while
 * connections stay open (each census walks the kernel's whole connection
 * hash: an idle keep-alive connection held for 15 s costs ~80 of them,
 * not 750).  The census lives while any worker drains.
 *
 * A worker whose shim was told to stop accepting (none, reuseport) is
 * counted only once it has: until then it may still take a connection
 * after the census counted (a signal it has not yet handled; SIGTERM, a
 * lower number, is delivered before the real-time one when both are
 * pending).  The census looks for the listeners it was told about among
 * its fds before it dumps: once none is there, that census counts all it
 * holds.  At most DRAIN_LET_GO_MS: a worker that blocks the signal is
 * then counted as it is, as before.
 *
 * A seccomp worker leaving its reuseport slots (a scale-down) cannot be
 * made to stop accepting: its slots leave the kernel's selection instead
 * (reuseport_handle.c), and it is done once what was queued in them when
 * the census was asked for is taken (one getsockopt per slot and tick) and
 * it holds none of it.
 */
#include <errno.h>
#include <event2/event.h>
#include <string.h>
#include <time.h>

#include "cluster_internal.h"
#include "conn_census.h"
#include "monotonic.h"

#define DRAIN_TICK_MS 20
#define DRAIN_TICK_MAX_MS 200
/* How long a drain waits for the shim to stop accepting, at most. */
#define DRAIN_LET_GO_MS 1000
/* Workers one census counts for (more wait for the next, or their time). */
#define DRAIN_PIDS_MAX 1024

/* The families of w's TCP listeners on the port (CONN_CENSUS_IPV4/6). */
static unsigned port_families(const struct cluster_worker *w, unsigned port)
{
	const struct membership *m;
	unsigned families = 0;

	for (m = w->memberships; m; m = m->next_in_worker) {
		const struct handle *h = m->handle;

		if (h->type == SOCK_STREAM &&
		    sockaddr_port((const struct sockaddr *)&h->addr, h->addrlen) == port)
			families |= h->domain == AF_INET6 ? CONN_CENSUS_IPV6
				    : h->domain == AF_INET ? CONN_CENSUS_IPV4 : 0;
	}
	return families;
}

/* The ports of every draining worker, each once, and their families. */
static unsigned drain_ports(struct cluster *c, unsigned *ports,
			    unsigned *families)
{
	struct cluster_worker *w;
	unsigned n = 0, i, k;

	*families = 0;
	for (w = c->workers; w; w = w->next) {
		if (!w->draining)
			continue;
		for (i = 0; i < w->ndrain_ports; i++) {
			*families |= port_families(w, w->drain_ports[i]);
			for (k = 0; k < n && ports[k] != w->drain_ports[i]; k++)
				;
			if (k == n && n < CONN_CENSUS_PORTS_MAX)
				ports[n++] = w->drain_ports[i];
		}
	}
	if (*families == 0) /* (no listener known now: ask about both) */
		*families = CONN_CENSUS_ALL;
	return n;
}

/* The last drain is over: the census goes (and the tick stops). */
static void drain_release(struct cluster *c)
{
	if (c->ndraining > 0)
		return;
	conn_census_free(c->drain_census);
	c->drain_census = NULL;
	if (c->drain_timer)
		evtimer_del(c->drain_timer);
}

static void drain_finish(struct cluster_worker *w)
{
	w->draining = false;
	w->cluster->ndraining--;
	reuseport_worker_left(w);
	worker_signal_graceful(w);
}

/* Whether the census found w holds none (or could not read its fds),
 * and nothing handed to it waits unread (in a full stop its rr faux
 * handles keep what it was sent).  A worker that began to drain after the
 * census was asked for is not in it (nor, perhaps, its ports): the next
 * census tells. */
static bool drain_holds_none(const struct conn_table *t,
			     const struct cluster_worker *w)
{
	int count;

	return t && conn_table_lookup(t, w->pid, &count) && count <= 0 &&
	       worker_rr_unread(w) == 0;
}

/* Whether w is done: its leaving slots' queues were empty when the census
 * was asked for and still are (what it accepted before is in the census),
 * and it holds none (all: nothing can be counted). */
static bool drain_done(const struct conn_table *t, struct cluster_worker *w,
		       bool all)
{
	if (!w->drain_queue_empty || reuseport_leaving_queue(w) > 0)
		return false;
	if (all)
		return true;
	return w->drain_counted_after_let_go && drain_holds_none(t, w);
}

/* Who goes now: every draining worker (all: nothing can be counted), a
 * worker that holds none of t's connections (t NULL: no census this
 * tick), or whose time is up. */
static void drain_check(struct cluster *c, const struct conn_table *t,
			bool all)
{
	struct cluster_worker *w, *next;
	long long now = monotonic_ms();

	for (w = c->workers; w; w = next) {
		next = w->next;
		if (w->draining && (drain_done(t, w, all) ||
				    now >= w->drain_deadline_ms))
			drain_finish(w);
	}
}

/* The pids of the draining workers (as many as fit). */
static size_t drain_pids(struct cluster *c, pid_t *pids, size_t max)
{
	struct cluster_worker *w;
	size_t n = 0;

	for (w = c->workers; w && n < max; w = w->next)
		if (w->draining)
			pids[n++] = w->pid;
	return n;
}

/* w's shim has not stopped accepting within DRAIN_LET_GO_MS: counted
 * from now on as it is. */
static void drain_stop_overdue(struct cluster_worker *w)
{
	w->drain_let_go = true;
	cluster_logf(w->cluster, "worker %u (pid %d) still holds its listener "
		     "%d ms after it was told to stop accepting (does it block "
		     "the shim's signal?): it gets its graceful signal once it "
		     "holds no connection, and may take one more meanwhile",
		     w->id, (int)w->pid, DRAIN_LET_GO_MS);
}

/* As a census is asked for: whose leaving slots have nothing queued (a
 * getsockopt per slot; nothing new is dealt to them), who is known to
 * have stopped accepting (this census counts all it holds), and the
 * listeners the others are to let go of, for the census to look for. */
static void drain_note_queues(struct cluster *c)
{
	struct cluster_worker *w;
	long long now = monotonic_ms();
	unsigned i;

	for (w = c->workers; w; w = w->next) {
		if (!w->draining)
			continue;
		w->drain_queue_empty = reuseport_leaving_queue(w) == 0;
		if (!w->drain_let_go && now >= w->drain_let_go_deadline_ms)
			drain_stop_overdue(w);
		w->drain_counted_after_let_go = w->drain_let_go;
		for (i = 0; !w->drain_let_go && i < w->nstop_inodes; i++)
			conn_census_watch_listener(c->drain_census,
						   w->stop_inodes[i]);
	}
}

/* Who the census saw hold none of the listeners it was told to let go of
 * (its shim stopped accepting) before it dumped: its count is whole. */
static void drain_note_let_go(struct cluster *c, const struct conn_table *t)
{
	struct cluster_worker *w;
	int count;

	for (w = c->workers; w; w = w->next)
		if (w->draining && !w->drain_counted_after_let_go &&
		    conn_table_lookup(t, w->pid, &count) && count >= 0 &&
		    !conn_table_holds_listener(t, w->pid))
			w->drain_let_go = w->drain_counted_after_let_go = true;
}

/* The kernel's answer.  Without one (sock_diag unavailable) nobody can be
 * seen to hold a connection: each goes at once, as with none open. */
static void drain_on_census(void *arg, const struct conn_table *t, int error)
{
	struct cluster *c = arg;

	if (error && !c->drain_said_blind) {
		c->drain_said_blind = true;
		cluster_logf(c, "cannot count a draining worker's connections "
			     "(NETLINK_SOCK_DIAG: %s): it gets its graceful "
			     "signal at once", strerror(error));
	}
	if (!error)
		drain_note_let_go(c, t);
	drain_check(c, t, error != 0);
	drain_release(c);
}

/* Asks for a census; while one is still being read, only the deadlines
 * are looked at. */
static void drain_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *c = arg;
	struct timeval tick = { 0, c->drain_tick_ms * 1000 };
	unsigned ports[CONN_CENSUS_PORTS_MAX], families;
	pid_t pids[DRAIN_PIDS_MAX];
	struct conn_table none = { 0 };
	unsigned n = drain_ports(c, ports, &families);
	size_t npids = drain_pids(c, pids, DRAIN_PIDS_MAX);

	evtimer_add(c->drain_timer, &tick); /* deleted with the last drain */
	if (c->drain_tick_ms < DRAIN_TICK_MAX_MS)
		c->drain_tick_ms = c->drain_tick_ms * 2 < DRAIN_TICK_MAX_MS
					   ? c->drain_tick_ms * 2
					   : DRAIN_TICK_MAX_MS;
	if (conn_census_busy(c->drain_census)) {
		drain_check(c, NULL, false);
		return;
	}
	drain_note_queues(c);
	if (n == 0) { /* no TCP port left to wait for */
		drain_check(c, NULL, true);
		drain_release(c);
	} else if (conn_census_request(c->drain_census, ports, n, families,
				       pids, npids) < 0)
		drain_on_census(c, &none, errno ? errno : ENOMEM);
}

bool worker_drain_start(struct cluster_worker *w)
{
	struct cluster *c = w->cluster;
	struct timeval now = { 0, 0 }; /* first look at once: idle workers go */

	if (w->ndrain_ports == 0)
		return false;
	if (!c->drain_timer)
		c->drain_timer = evtimer_new(c->base, drain_on_tick, c);
	if (!c->drain_census)
		c->drain_census = conn_census_new(c->base, drain_on_census, c);
	if (!c->drain_timer || !c->drain_census) {
		drain_release(c);
		return false;
	}
	w->draining = true;
	w->drain_queue_empty = false; /* seen at the first census */
	w->drain_deadline_ms = monotonic_ms() + c->settings.kill_timeout_ms / 2;
	w->drain_let_go = w->nstop_inodes == 0; /* nothing to wait for */
	w->drain_counted_after_let_go = w->drain_let_go;
	w->drain_let_go_deadline_ms = monotonic_ms() + DRAIN_LET_GO_MS;
	c->drain_tick_ms = DRAIN_TICK_MS; /* a new drain: look often again */
	if (c->ndraining++ == 0)
		evtimer_add(c->drain_timer, &now);
	return true;
}

void worker_drain_cancel(struct cluster_worker *w)
{
	if (!w->draining)
		return;
	w->draining = false;
	w->cluster->ndraining--;
	drain_release(w->cluster);
}
