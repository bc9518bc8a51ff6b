/*
 * This process's handle slots.  A fixed array: no malloc, so nothing here can
 * deadlock in a child forked while another thread held the allocator lock.
 *
 * The worker lets go of a handle (CLOSE) when its own last fd on it is
 * closed and no process it forked since it got the handle still holds the
 * listener's file (rule 4 of the ownership model, shim.h): a pre-fork
 * master that closes its listener leaves it to its children, as the kernel
 * does.  Whether an heir holds it is read from /proc/PID/fd, only at such a
 * close; a handle left to heirs is looked at again at the worker's next
 * bind through the supervisor or close of a listener, and goes with the
 * worker at the latest; a unix listener's also when the worker unlinks its
 * path (gunicorn's arbiter closes and unlinks before it stops its
 * workers: the path goes, as without cluster-run).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

static struct shim_handle slots[SHIM_MAX_HANDLES];

struct shim_handle *shim_handle_get(unsigned slot)
{
	return slot < SHIM_MAX_HANDLES ? &slots[slot] : NULL;
}

int shim_handle_alloc(void)
{
	unsigned i;

	for (i = 0; i < SHIM_MAX_HANDLES; i++) {
		int expected = 0;

		if (__atomic_compare_exchange_n(&slots[i].in_use, &expected, 1,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			struct shim_handle *h = &slots[i];

			h->handle_id = 0;
			h->shadow_fd = -1;
			h->ino = 0;
			h->nheirs = 0;
			h->left_to_heirs = false;
			__atomic_store_n(&h->refs, 1, __ATOMIC_RELEASE);
			return (int)i;
		}
	}
	return -1;
}

void shim_handle_discard(unsigned slot)
{
	if (slot < SHIM_MAX_HANDLES)
		__atomic_store_n(&slots[slot].in_use, 0, __ATOMIC_RELEASE);
}

void shim_handle_ref(unsigned slot)
{
	if (slot < SHIM_MAX_HANDLES && shim_owns_memory())
		__atomic_add_fetch(&slots[slot].refs, 1, __ATOMIC_ACQ_REL);
}

/* Waits for the supervisor's answer (rule 1 of the suites: a close() of
 * the last copy returns once the listening socket is closed), except in a
 * signal handler (stop-accepting), which only tells. */
static void tell_supervisor_closed(uint32_t handle_id)
{
	struct cluster_msg_close msg;
	struct cluster_msg_reply reply;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i;

	cluster_msg_init(&msg, CLUSTER_MSG_CLOSE);
	msg.handle_id = handle_id;
	if (shim_in_signal_handler() ||
	    shim_channel_request(&msg, -1, &reply, fds, &nfds) < 0) {
		(void)shim_channel_notify(&msg);
		return;
	}
	for (i = 0; i < nfds; i++)
		real_close(fds[i]);
}

void shim_handle_set_file(unsigned slot, int fd)
{
	struct shim_handle *h = shim_handle_get(slot);
	struct stat st;

	if (h && shim_owns_memory() && fstat(fd, &st) == 0)
		h->ino = (unsigned long)st.st_ino;
}

void shim_handle_note_fork(pid_t child)
{
	unsigned i;

	for (i = 0; i < SHIM_MAX_HANDLES; i++) {
		struct shim_handle *h = &slots[i];

		if (__atomic_load_n(&h->in_use, __ATOMIC_ACQUIRE) != 1 ||
		    __atomic_load_n(&h->refs, __ATOMIC_ACQUIRE) <= 0)
			continue;
		h->heirs[h->nheirs++ % SHIM_HANDLE_HEIRS] = child;
	}
}

/* Whether process pid has an fd on the socket with inode ino.  No
 * allocation: open and getdents64, as close_range.c does. */
static bool holds_socket(pid_t pid, unsigned long ino)
{
	char path[64], want[64], link[64], buf[2048];
	int dir, want_len;
	bool found = false;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	want_len = snprintf(want, sizeof(want), "socket:[%lu]", ino);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return false;
	while (!found && (n = getdents64(dir, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n && !found;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			ssize_t len;

			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			len = readlinkat(dir, d->d_name, link, sizeof(link));
			found = len == want_len && memcmp(link, want, len) == 0;
		}
	real_close(dir);
	return found;
}

static bool heir_holds(const struct shim_handle *h)
{
	unsigned i, n = h->nheirs < SHIM_HANDLE_HEIRS ? h->nheirs
						       : SHIM_HANDLE_HEIRS;

	for (i = 0; i < n && h->ino != 0; i++)
		if (kill(h->heirs[i], 0) == 0 && holds_socket(h->heirs[i], h->ino))
			return true;
	return false;
}

static void close_shadow(struct shim_handle *h)
{
	if (h->shadow_fd >= 0) {
		shim_fd_clear(h->shadow_fd);
		real_close(h->shadow_fd);
	}
	h->shadow_fd = -1;
}

/* The worker's last fd on h is closed: CLOSE now, or once no heir holds
 * it.  The shadow (rr's copy of the real listener) goes first, so that
 * the supervisor's close is the listening socket's last. */
static void release(struct shim_handle *h)
{
	close_shadow(h);
	if (shim_is_worker_main())
		tell_supervisor_closed(h->handle_id);
	h->left_to_heirs = false;
	__atomic_store_n(&h->in_use, 0, __ATOMIC_RELEASE);
}

static void let_go(struct shim_handle *h)
{
	if (shim_is_worker_main() && heir_holds(h)) {
		h->left_to_heirs = true;
		return;
	}
	release(h);
}

static bool unix_path_is(const struct cluster_sockaddr *a, const char *path)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;

	return sun->sun_family == AF_UNIX && sun->sun_path[0] != '\0' &&
	       strncmp(sun->sun_path, path, sizeof(sun->sun_path)) == 0;
}

void shim_handle_path_unlinked(const char *path)
{
	unsigned i;

	for (i = 0; i < SHIM_MAX_HANDLES; i++) {
		struct shim_handle *h = &slots[i];

		if (__atomic_load_n(&h->in_use, __ATOMIC_ACQUIRE) == 1 &&
		    h->left_to_heirs && h->domain == AF_UNIX &&
		    (unix_path_is(&h->requested, path) ||
		     unix_path_is(&h->bound, path)))
			release(h);
	}
}

void shim_handle_recheck_heirs(void)
{
	unsigned i;

	for (i = 0; i < SHIM_MAX_HANDLES; i++) {
		struct shim_handle *h = &slots[i];

		if (__atomic_load_n(&h->in_use, __ATOMIC_ACQUIRE) == 1 &&
		    h->left_to_heirs && !heir_holds(h))
			let_go(h);
	}
}

void shim_handle_unref(unsigned slot)
{
	struct shim_handle *h = shim_handle_get(slot);

	if (!h || !shim_owns_memory() ||
	    __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	let_go(h);
	shim_handle_recheck_heirs();
}
