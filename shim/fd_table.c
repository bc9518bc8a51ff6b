/* fd -> (kind, slot), one 32-bit word per fd, readable without a lock.
 * Only the process that owns this memory writes it (rule 5, shim.h): a
 * vfork child's calls find the entries but change none. */
#include "shim.h"

static uint32_t fd_table[SHIM_MAX_FD];
/* The highest fd that ever had an entry: scans of ranges stop there. */
static int fd_high = -1;

#define ENTRY(kind, slot) (((uint32_t)(kind) << 24) | ((slot) & 0xffffffu))
#define ENTRY_KIND(e) ((enum shim_fd_kind)((e) >> 24))
#define ENTRY_SLOT(e) ((e) & 0xffffffu)

static uint32_t entry(int fd)
{
	if (fd < 0 || fd >= SHIM_MAX_FD)
		return 0;
	return __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE);
}

bool shim_fd_lookup(int fd, struct shim_fd_info *info)
{
	uint32_t e = entry(fd);

	if (e == 0 || ENTRY_KIND(e) == SHIM_FD_INTERNAL)
		return false;
	info->kind = ENTRY_KIND(e);
	info->slot = ENTRY_SLOT(e);
	return true;
}

bool shim_fd_internal(int fd, unsigned *slot)
{
	uint32_t e = entry(fd);

	if (e == 0 || ENTRY_KIND(e) != SHIM_FD_INTERNAL)
		return false;
	if (slot)
		*slot = ENTRY_SLOT(e);
	return true;
}

int shim_fd_high(void)
{
	return __atomic_load_n(&fd_high, __ATOMIC_ACQUIRE);
}

void shim_fd_set(int fd, enum shim_fd_kind kind, unsigned slot)
{
	int high;

	if (fd < 0 || fd >= SHIM_MAX_FD || !shim_owns_memory())
		return;
	__atomic_store_n(&fd_table[fd], ENTRY(kind, slot), __ATOMIC_RELEASE);
	high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);
	while (fd > high &&
	       !__atomic_compare_exchange_n(&fd_high, &high, fd, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

void shim_fd_clear(int fd)
{
	if (fd >= 0 && fd < SHIM_MAX_FD && shim_owns_memory())
		__atomic_store_n(&fd_table[fd], 0, __ATOMIC_RELEASE);
}

void shim_fd_detach(int fd)
{
	uint32_t e;

	if (fd < 0 || fd >= SHIM_MAX_FD)
		return;
	/* Plain load first: close() of an ordinary fd pays no locked op. */
	e = __atomic_load_n(&fd_table[fd], __ATOMIC_RELAXED);
	if (e == 0 || ENTRY_KIND(e) == SHIM_FD_INTERNAL || !shim_owns_memory())
		return;
	/* Whoever clears the entry drops its reference, once. */
	if (__atomic_compare_exchange_n(&fd_table[fd], &e, 0, false,
					__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		shim_handle_unref(ENTRY_SLOT(e));
}

int shim_fd_take(int fd, unsigned *slot)
{
	uint32_t e;

	if (fd < 0 || fd >= SHIM_MAX_FD)
		return 0;
	/* One plain load: close() of an ordinary fd costs nothing more. */
	e = __atomic_load_n(&fd_table[fd], __ATOMIC_RELAXED);
	if (e == 0 || !shim_owns_memory())
		return 0; /* a vfork child closes its own fd, nothing more */
	if (ENTRY_KIND(e) == SHIM_FD_INTERNAL)
		return -1;
	if (!__atomic_compare_exchange_n(&fd_table[fd], &e, 0, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return 0; /* another thread took it */
	*slot = ENTRY_SLOT(e);
	return 1;
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
