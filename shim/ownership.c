/*
 * Who speaks for the worker, and when a listener is the cluster's: the
 * ownership model stated at the head of shim.h.  The state it keeps is one
 * MAP_SHARED page, made at start-up, so that every process of the worker
 * (the main process, the daemon it becomes, their forks) sees whether the
 * worker has started serving and who its daemon is.
 */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"
#include "shim.h"

struct shim_worker_page *shim_page;
pid_t shim_self_pid;

/* Never glibc's getpid(): the real pid, from the kernel, every time. */
pid_t shim_real_pid(void)
{
	return (pid_t)real_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
}

bool shim_owns_memory(void)
{
	pid_t self = __atomic_load_n(&shim_self_pid, __ATOMIC_RELAXED);

	return self != 0 && shim_real_pid() == self;
}

bool shim_is_worker_main(void)
{
	if (!shim_owns_memory())
		return false;
	return shim_self_pid == shim_worker_pid || shim_is_daemon() ||
	       (shim_is_daemon_heir() && !shim_worker_serving());
}

bool shim_worker_serving(void)
{
	return shim_page &&
	       __atomic_load_n(&shim_page->serving, __ATOMIC_ACQUIRE) != 0;
}

bool shim_binds_for_cluster(void)
{
	return !shim_worker_serving() && shim_is_worker_main();
}

int shim_took_connection(int conn)
{
	if (conn >= 0 && shim_page && !shim_worker_serving() &&
	    shim_is_worker_main())
		__atomic_store_n(&shim_page->serving, 1, __ATOMIC_RELEASE);
	return conn;
}

void shim_ownership_init(void)
{
	void *p = mmap(NULL, sizeof(*shim_page), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	shim_self_pid = shim_real_pid();
	if (p != MAP_FAILED)
		shim_page = p;
}

void shim_ownership_after_fork_child(void)
{
	__atomic_store_n(&shim_self_pid, shim_real_pid(), __ATOMIC_RELAXED);
}
