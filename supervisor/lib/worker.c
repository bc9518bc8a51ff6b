/*
 * worker.c - one worker's life (Node's Worker): states, the graceful
 * disconnect, kill, and the end of the process.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "listen_policy.h"
#include "output_prefix.h"
#include "sd_activation.h"


static const char *const state_names[] = {
	[WORKER_NONE] = "none",
	[WORKER_ONLINE] = "online",
	[WORKER_LISTENING] = "listening",
	[WORKER_DISCONNECTING] = "disconnecting",
	[WORKER_DISCONNECTED] = "disconnected",
	[WORKER_DEAD] = "dead",
};

const char *worker_state_name(enum worker_state state)
{
	return state <= WORKER_DEAD ? state_names[state] : "?";
}

static void worker_emit(struct cluster_worker *w, enum cluster_event_type t)
{
	struct cluster_event ev = { .type = t, .worker = w };

	cluster_emit(w->cluster, &ev);
}

void worker_mark_online(struct cluster_worker *w)
{
	if (w->state != WORKER_NONE)
		return;
	w->state = WORKER_ONLINE;
	worker_emit(w, CLUSTER_EV_ONLINE);
}

void worker_mark_listening(struct cluster_worker *w, struct handle *h)
{
	struct cluster_event ev = {
		.type = CLUSTER_EV_LISTENING,
		.worker = w,
		.address = h->text,
		.policy = handle_policy_name(h),
	};

	if (w->state < WORKER_LISTENING)
		w->state = WORKER_LISTENING;
	worker_start_settled(w); /* the next queued worker may start */
	cluster_emit(w->cluster, &ev);
}

void worker_report_bind_error(struct cluster_worker *w,
			      const struct cluster_msg_query_server *q, int err)
{
	char text[SOCKADDR_TEXT_MAX], passed[SOCKADDR_TEXT_MAX];
	struct cluster_event ev = {
		.type = CLUSTER_EV_BIND_ERROR,
		.worker = w,
		.address = sockaddr_text((const struct sockaddr *)&q->addr.ss,
					 q->addr.len, text, sizeof(text)),
		.error = err,
	};
	const struct cluster_settings *s = &w->cluster->settings;

	ev.undeclared = err == EACCES && s->set_uid &&
		!listen_addr_allowed(s->allowed_listen, s->nallowed_listen,
				     (const struct sockaddr *)&q->addr.ss,
				     q->addr.len);

	/* The likely cause: systemd holds the port on another address. */
	if (err == EADDRINUSE &&
	    systemd_listen_near_miss(s->listen_fds, s->n_listen_fds,
				     (const struct sockaddr *)&q->addr.ss,
				     q->addr.len, passed, sizeof(passed)) >= 0)
		cluster_logf(w->cluster, "socket activation: the server binds "
			     "%s but systemd passed %s; only the very address "
			     "is adopted: make the .socket unit's Listen%s= %s",
			     text, passed,
			     q->type == SOCK_DGRAM ? "Datagram" : "Stream", text);
	cluster_emit(w->cluster, &ev);
}

static void worker_set_disconnected(struct cluster_worker *w)
{
	bool was_connected = w->connected;

	worker_channel_stop(w);
	if (w->state < WORKER_DISCONNECTED)
		w->state = WORKER_DISCONNECTED;
	if (was_connected)
		worker_emit(w, CLUSTER_EV_DISCONNECT);
}

void worker_channel_lost(struct cluster_worker *w)
{
	handle_worker_stop_routing(w);
	worker_set_disconnected(w);
}

static void worker_on_kill_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cluster_worker *w = arg;

	cluster_logf(w->cluster, "worker %u (pid %d) did not exit within %d ms; "
		     "sending SIGKILL", w->id, (int)w->pid,
		     w->cluster->settings.kill_timeout_ms);
	kill(-w->pid, SIGKILL);
	kill(w->pid, SIGKILL);
}

static void worker_arm_kill_timer(struct cluster_worker *w)
{
	int ms = w->cluster->settings.kill_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!w->kill_timer)
		w->kill_timer = evtimer_new(w->cluster->base,
					    worker_on_kill_timeout, w);
	if (w->kill_timer)
		evtimer_add(w->kill_timer, &tv);
}

void worker_signal_graceful(struct cluster_worker *w)
{
	kill(w->pid, w->cluster->settings.graceful_signal);
	worker_arm_kill_timer(w);
}

/*
 * Step 1 where the worker accepts on a shared socket (none, reuseport): its
 * shim, if it checked in, swaps those listeners for sockets nobody can
 * reach.  Without a shim to ask, only its rr listeners can be drained.
 * Returns the ports whose connections the drain waits for.
 */
static unsigned worker_stop_accepting(struct cluster_worker *w, bool shim_up)
{
	unsigned all = handle_worker_tcp_ports(w, false, w->drain_ports, 16);
	unsigned rr = handle_worker_tcp_ports(w, true, w->drain_ports, 16);

	w->nstop_inodes = 0;
	if (!shim_up || all == rr)
		return rr;
	/* the drain counts its connections once it holds none of these */
	w->nstop_inodes = handle_worker_accepting_inodes(w, w->stop_inodes, 16);
	kill(w->pid, CLUSTER_SIG_STOP_ACCEPTING);
	return handle_worker_tcp_ports(w, false, w->drain_ports, 16);
}

int worker_disconnect(struct cluster_worker *w)
{
	/* a seccomp worker has no shim to swap its listeners */
	bool shim_up = !w->cluster->seccomp && (w->state == WORKER_ONLINE ||
				       w->state == WORKER_LISTENING);

	if (w->state == WORKER_DEAD) {
		errno = ESRCH;
		return -1;
	}
	if (w->state == WORKER_DISCONNECTING)
		return 0;
	if (w->queued) { /* not started yet: it never will be */
		cluster_start_cancel(w);
		return 0;
	}
	w->exited_after_disconnect = true;
	/* Step 1: no new connections.  The unread ones go to others. */
	handle_worker_stop_routing(w);
	if (w->state < WORKER_DISCONNECTING)
		w->state = WORKER_DISCONNECTING;
	if (w->connected)
		worker_emit(w, CLUSTER_EV_DISCONNECT);
	/* the channel stays open: the worker's children may still ask */
	w->connected = false;
	w->ndrain_ports = worker_stop_accepting(w, shim_up);
	if (shim_up)
		handle_worker_release_slots(w);
	else if (reuseport_worker_leave(w) > 0) /* it takes their queues */
		w->ndrain_ports = handle_worker_tcp_ports(w, false,
							  w->drain_ports, 16);
	if (!worker_drain_start(w))
		worker_signal_graceful(w); /* step 3 */
	return 0;
}

int worker_kill(struct cluster_worker *w, int sig)
{
	if (w->state == WORKER_DEAD) {
		errno = ESRCH;
		return -1;
	}
	if (w->queued) {
		cluster_start_cancel(w);
		return 0;
	}
	w->exited_after_disconnect = true;
	handle_worker_stop_routing(w);
	handle_worker_release_slots(w);
	return kill(w->pid, sig);
}

void worker_output_stop(struct cluster_worker *w)
{
	int i;

	for (i = 0; i < 2; i++) {
		output_pipe_free(w->output[i]);
		w->output[i] = NULL;
	}
}

void worker_reap(struct cluster_worker *w, int status)
{
	struct cluster_event ev = { .type = CLUSTER_EV_EXIT, .worker = w };

	/* A failed exec wrote its errno before the child exited. */
	worker_exec_settle(w, true);
	worker_start_settled(w);
	/* What its process group still holds (a pre-fork pool's children)
	 * goes with it: nothing keeps serving for a worker that is gone. */
	kill(-w->pid, SIGKILL);
	/* Its last lines come out before the line that says it exited. */
	worker_output_stop(w);
	reuseport_worker_left(w);
	handle_worker_gone(w);
	worker_set_disconnected(w);
	w->state = WORKER_DEAD;
	if (w->kill_timer) {
		event_free(w->kill_timer);
		w->kill_timer = NULL;
	}
	worker_drain_cancel(w);
	worker_diagnose_stop(w);
	seccomp_notify_stop(w);
	seccomp_daemon_stop(w);
	ev.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	ev.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	ev.error = w->start_error;
	cluster_emit_exit(w, &ev);
}

bool worker_is_dead(const struct cluster_worker *w)
{
	return w->state == WORKER_DEAD;
}

bool worker_is_connected(const struct cluster_worker *w)
{
	return w->connected;
}

bool worker_exited_after_disconnect(const struct cluster_worker *w)
{
	return w->exited_after_disconnect;
}

unsigned worker_id(const struct cluster_worker *w)
{
	return w->id;
}

pid_t worker_pid(const struct cluster_worker *w)
{
	return w->pid;
}

enum worker_state worker_state(const struct cluster_worker *w)
{
	return w->state;
}

unsigned long worker_handed_connections(const struct cluster_worker *w)
{
	return w->handed;
}

void worker_set_data(struct cluster_worker *w, void *data)
{
	w->data = data;
}

void *worker_data(const struct cluster_worker *w)
{
	return w->data;
}
