/*
 * This process's handle slots.  A fixed array: no malloc, so nothing here can
 * deadlock in a child forked while another thread held the allocator lock.
 */
#include <string.h>
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
	if (slot < SHIM_MAX_HANDLES)
		__atomic_add_fetch(&slots[slot].refs, 1, __ATOMIC_ACQ_REL);
}

static void tell_supervisor_closed(uint32_t handle_id)
{
	struct cluster_msg_close msg;

	cluster_msg_init(&msg, CLUSTER_MSG_CLOSE);
	msg.handle_id = handle_id;
	(void)shim_channel_notify(&msg);
}

void shim_handle_unref(unsigned slot)
{
	struct shim_handle *h = shim_handle_get(slot);

	if (!h || __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (shim_is_worker_main())
		tell_supervisor_closed(h->handle_id);
	if (h->shadow_fd >= 0) {
		shim_fd_clear(h->shadow_fd);
		real_close(h->shadow_fd);
	}
	h->shadow_fd = -1;
	__atomic_store_n(&h->in_use, 0, __ATOMIC_RELEASE);
}
