/* fd -> (kind, slot), one 32-bit word per fd, readable without a lock. */
#include "shim.h"

static uint32_t fd_table[SHIM_MAX_FD];

#define ENTRY(kind, slot) (((uint32_t)(kind) << 24) | ((slot) & 0xffffffu))

bool shim_fd_lookup(int fd, struct shim_fd_info *info)
{
	uint32_t e;

	if (fd < 0 || fd >= SHIM_MAX_FD)
		return false;
	e = __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE);
	if (e == 0)
		return false;
	info->kind = (enum shim_fd_kind)(e >> 24);
	info->slot = e & 0xffffffu;
	return true;
}

void shim_fd_set(int fd, enum shim_fd_kind kind, unsigned slot)
{
	if (fd >= 0 && fd < SHIM_MAX_FD)
		__atomic_store_n(&fd_table[fd], ENTRY(kind, slot),
				 __ATOMIC_RELEASE);
}

void shim_fd_clear(int fd)
{
	if (fd >= 0 && fd < SHIM_MAX_FD)
		__atomic_store_n(&fd_table[fd], 0, __ATOMIC_RELEASE);
}

void shim_fd_detach(int fd)
{
	uint32_t e;

	if (fd < 0 || fd >= SHIM_MAX_FD)
		return;
	/* Plain load first: close() of an ordinary fd pays no locked op. */
	if (__atomic_load_n(&fd_table[fd], __ATOMIC_RELAXED) == 0)
		return;
	e = __atomic_exchange_n(&fd_table[fd], 0, __ATOMIC_ACQ_REL);
	if (e != 0)
		shim_handle_unref(e & 0xffffffu);
}

void shim_fd_copy(int fd, int fd2)
{
	struct shim_fd_info info;

	if (fd == fd2)
		return;
	shim_fd_detach(fd2); /* fd2 was closed by dup2/dup3 */
	if (!shim_fd_lookup(fd, &info))
		return;
	if (fd2 < 0 || fd2 >= SHIM_MAX_FD)
		return; /* untracked beyond the table: documented limit */
	shim_handle_ref(info.slot);
	shim_fd_set(fd2, info.kind, info.slot);
}
