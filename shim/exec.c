/*
 * The exec family: a worker that execs a program which will not load the
 * shim says so first.  A wrapper script that execs a static or Go server
 * (`cluster-run -n 4 -- ./run.sh`), or a program that clears LD_PRELOAD
 * before it execs the server, would leave the shim behind: each worker
 * would bind on its own and all but the first fail with EADDRINUSE.  So,
 * in the worker's main process (or its daemon) before it serves - the
 * processes whose bind() is the cluster's (shim.h, rule 3) - an exec of
 * such a program first tells the supervisor (CLUSTER_MSG_EXEC: the path
 * and why) and waits for its answer, EXEC_ANSWER_MS at most.  The
 * supervisor may switch the cluster to the seccomp mode and restart the
 * worker instead (then this process is killed while it waits); otherwise
 * the exec goes on as asked.  Any other exec (a forked child's: CGI, a
 * shell-out; one after the worker serves; a vfork child's) goes straight
 * to libc.
 *
 * Each function needs its own wrapper: glibc's execvp(), execl() and the
 * others call execve() inside libc, out of reach of interposition.  What
 * runs between the check and the exec allocates nothing and calls only
 * async-signal-safe functions (a vfork child or a signal handler may exec):
 * open, pread, fstat, poll, sendmsg, recvmsg.  libc's functions are looked
 * up once, at load, never on the way to an exec.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "elf_kind.h"
#include "real.h"
#include "shim.h"

#define EXEC_ANSWER_MS 5000 /* then the exec goes on unanswered */
#define SCRIPT_HEAD 256     /* the "#!" line the kernel reads */

extern char **environ;

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

static execve_fn libc_execve, libc_execvpe;
static execv_fn libc_execv, libc_execvp;
static fexecve_fn libc_fexecve;
static char shim_file[PATH_MAX]; /* this library's path, from the loader */

static void *libc_symbol(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f) {
		static const char msg[] = "libcluster_shim: cannot find libc "
					  "symbol ";

		(void)!write(2, msg, sizeof(msg) - 1);
		(void)!write(2, name, strlen(name));
		(void)!write(2, "\n", 1);
		_exit(127);
	}
	return f;
}

__attribute__((constructor)) static void exec_init(void)
{
	Dl_info info;

	libc_execve = (execve_fn)libc_symbol("execve");
	libc_execvpe = (execve_fn)libc_symbol("execvpe");
	libc_execv = (execv_fn)libc_symbol("execv");
	libc_execvp = (execv_fn)libc_symbol("execvp");
	libc_fexecve = (fexecve_fn)libc_symbol("fexecve");
	if (dladdr((void *)exec_init, &info) && info.dli_fname &&
	    strlen(info.dli_fname) < sizeof(shim_file))
		strcpy(shim_file, info.dli_fname);
}

/* ---- what the new image will do ---- */

/* NAME's value in env, or NULL. */
static const char *env_value(char *const env[], const char *name)
{
	size_t len = strlen(name);

	for (; env && *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			return *env + len + 1;
	return NULL;
}

static const char *base_name(const char *path, size_t len)
{
	const char *p = path + len;

	while (p > path && p[-1] != '/')
		p--;
	return p;
}

/* Whether an entry of LD_PRELOAD (':' or ' ' separated, as the loader
 * reads it) is this library: the same file name, whatever its directory. */
static bool preload_names_shim(const char *preload)
{
	const char *self = base_name(shim_file, strlen(shim_file));
	size_t self_len = strlen(self);

	if (!preload || !*self)
		return preload && !*self; /* path unknown: assume it does */
	while (*preload) {
		size_t len = strcspn(preload, ": ");
		const char *name = base_name(preload, len);

		if ((size_t)(preload + len - name) == self_len &&
		    memcmp(name, self, self_len) == 0)
			return true;
		preload += len;
		preload += *preload != '\0';
	}
	return false;
}

static bool env_keeps_worker(char *const env[])
{
	const char *pid = env_value(env, CLUSTER_ENV_WORKER_PID);
	long want = shim_real_pid(), got = 0;

	if (!env_value(env, CLUSTER_ENV_CHANNEL_FD) || !pid || !*pid)
		return false;
	for (; *pid >= '0' && *pid <= '9'; pid++)
		got = got * 10 + (*pid - '0');
	return *pid == '\0' && got == want;
}

/* Whether fd is a "#!" script; if so, *interp is the interpreter it
 * names, opened (or -1). */
static bool is_script(int fd, int *interp)
{
	char head[SCRIPT_HEAD];
	ssize_t n = pread(fd, head, sizeof(head) - 1, 0);
	char *p, *end;

	*interp = -1;
	if (n < 2 || head[0] != '#' || head[1] != '!')
		return false;
	head[n] = '\0';
	for (p = head + 2; *p == ' ' || *p == '\t'; p++)
		;
	end = p + strcspn(p, " \t\n");
	*end = '\0';
	if (*p == '/')
		*interp = open(p, O_RDONLY | O_CLOEXEC);
	return true;
}

/* Why the ELF file in fd will not load the shim, or 0 when it will (or
 * when it is none: a nested script's interpreter, left to the kernel). */
static enum cluster_exec_reason elf_reason(int fd, bool check_setuid)
{
	struct stat st;
	bool is32;

	switch (elf_kind_of(fd, &is32)) {
	case ELF_KIND_GO:
		return CLUSTER_EXEC_GO;
	case ELF_KIND_STATIC:
		return CLUSTER_EXEC_STATIC;
	default:
		break;
	}
	if (is32)
		return CLUSTER_EXEC_32BIT;
	if (check_setuid && fstat(fd, &st) == 0 &&
	    elf_runs_secure(&st, getuid(), getgid()) &&
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return CLUSTER_EXEC_SETUID;
	return 0;
}

/* A script runs as its interpreter (its own set-user-ID bit means
 * nothing to Linux). */
static enum cluster_exec_reason file_reason(int fd)
{
	enum cluster_exec_reason why;
	int interp;

	if (!is_script(fd, &interp))
		return elf_reason(fd, true);
	if (interp < 0)
		return 0;
	why = elf_reason(interp, false);
	close(interp);
	return why;
}

static enum cluster_exec_reason image_reason(int fd, char *const env[])
{
	enum cluster_exec_reason why = file_reason(fd);

	if (why)
		return why;
	if (!preload_names_shim(env_value(env, "LD_PRELOAD")))
		return CLUSTER_EXEC_NO_PRELOAD;
	if (!env_keeps_worker(env))
		return CLUSTER_EXEC_NO_WORKER_ENV;
	return 0;
}

/* execvp()'s search: file itself when it names a directory, else the
 * first executable PATH entry (glibc's default when PATH is unset). */
static int open_searched(const char *file, char *path, size_t cap)
{
	const char *dirs = env_value(environ, "PATH"), *p;

	if (strchr(file, '/')) {
		if (strlen(file) >= cap)
			return -1;
		strcpy(path, file);
		return access(path, X_OK) == 0 ? open(path, O_RDONLY | O_CLOEXEC)
					       : -1;
	}
	for (p = dirs ? dirs : "/bin:/usr/bin"; ; p++) {
		size_t len = strcspn(p, ":");
		struct stat st;

		if (len + 1 + strlen(file) < cap) {
			memcpy(path, len ? p : ".", len ? len : 1);
			path[len ? len : 1] = '\0';
			strcat(path, "/");
			strcat(path, file);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(path, X_OK) == 0)
				return open(path, O_RDONLY | O_CLOEXEC);
		}
		p += len;
		if (!*p)
			return -1;
	}
}

/* ---- asking the supervisor ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the answer (or the end of its socket) until the deadline; the
 * answer itself says nothing more than "go on". */
static void await_answer(int sock)
{
	long long deadline = now_ms() + EXEC_ANSWER_MS;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cluster_msg_reply reply;
	int fds[CLUSTER_MSG_RECV_FDS], nfds, i, rc;

	do {
		long long left = deadline - now_ms();

		rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
	} while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		return;
	if (cluster_msg_recv(sock, &reply, sizeof(reply), fds, &nfds,
			     MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL) > 0)
		for (i = 0; i < nfds; i++)
			real_close(fds[i]);
}

static void tell_supervisor(enum cluster_exec_reason why, const char *path)
{
	struct cluster_msg_exec msg;
	size_t len = strlen(path);
	int pair[2];

	cluster_msg_init(&msg, CLUSTER_MSG_EXEC);
	msg.reason = (uint32_t)why;
	if (len >= sizeof(msg.path))
		len = sizeof(msg.path) - 1;
	memcpy(msg.path, path, len);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		return;
	if (cluster_msg_send(shim_channel_fd, &msg, sizeof(msg), &pair[1], 1,
			     0) == 0) {
		real_close(pair[1]);
		await_answer(pair[0]);
	} else {
		real_close(pair[1]);
	}
	real_close(pair[0]);
}

/* Whether this process's exec is the worker's (shim.h, rule 3). */
static bool exec_is_workers(void)
{
	return shim_active() && shim_binds_for_cluster();
}

/* Before an exec of the file in fd (path: what to call it): tell the
 * supervisor if the new image will not load the shim.  Closes fd unless
 * keep_fd. */
static void check_image(int fd, bool keep_fd, const char *path,
			char *const env[])
{
	enum cluster_exec_reason why = 0;
	struct stat st;

	if (fd < 0)
		return;
	/* what the kernel will not run is not looked at: the exec fails */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		why = image_reason(fd, env);
	if (!keep_fd)
		close(fd);
	if (why)
		tell_supervisor(why, path);
}

static void check_exec(const char *file, bool search, char *const env[])
{
	char path[PATH_MAX];
	int saved = errno, fd;

	if (!file || !exec_is_workers())
		return;
	if (search)
		fd = open_searched(file, path, sizeof(path));
	else
		fd = access(file, X_OK) == 0 ? open(file, O_RDONLY | O_CLOEXEC)
					     : -1;
	check_image(fd, false, search ? path : file, env);
	errno = saved;
}

/* "/proc/self/fd/N", without stdio. */
static void proc_fd_path(char link[32], int fd)
{
	char digits[12];
	int n = 0;
	unsigned v = (unsigned)fd;

	strcpy(link, "/proc/self/fd/");
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0 && n < 11);
	link += strlen(link);
	while (n > 0)
		*link++ = digits[--n];
	*link = '\0';
}

static void check_fexec(int fd, char *const env[])
{
	char link[32], path[PATH_MAX];
	ssize_t n;
	int saved = errno;

	if (!exec_is_workers())
		return;
	proc_fd_path(link, fd);
	n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	check_image(fd, true, n > 0 ? path : link, env);
	errno = saved;
}

/* ---- the interposed functions ---- */

int execve(const char *path, char *const argv[], char *const envp[])
{
	check_exec(path, false, envp);
	return libc_execve(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	check_exec(path, false, environ);
	return libc_execv(path, argv);
}

int execvp(const char *file, char *const argv[])
{
	check_exec(file, true, environ);
	return libc_execvp(file, argv);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	check_exec(file, true, envp);
	return libc_execvpe(file, argv, envp);
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	check_fexec(fd, envp);
	return libc_fexecve(fd, argv, envp);
}

/* execl() and friends: their list made an argv on the stack, as glibc
 * does; the arguments after the NULL (execle's envp) follow it in ap. */
static size_t count_args(const char *arg, va_list ap)
{
	va_list aq;
	size_t n = 1;

	va_copy(aq, ap);
	if (arg)
		while (va_arg(aq, const char *))
			n++;
	va_end(aq);
	return n;
}

#define LIST_TO_ARGV(argv, arg, ap)                                         \
	size_t nargs_ = count_args(arg, ap);                                \
	char *argv[nargs_ + 1];                                             \
	do {                                                                \
		argv[0] = (char *)(arg);                                    \
		for (size_t i_ = 1; i_ < nargs_; i_++)                      \
			argv[i_] = va_arg(ap, char *);                      \
		if (argv[0])                                                \
			(void)va_arg(ap, char *); /* the NULL */            \
		argv[nargs_] = NULL;                                        \
	} while (0)

int execl(const char *path, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	LIST_TO_ARGV(argv, arg, ap);
	va_end(ap);
	check_exec(path, false, environ);
	return libc_execve(path, argv, environ);
}

int execlp(const char *file, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	LIST_TO_ARGV(argv, arg, ap);
	va_end(ap);
	check_exec(file, true, environ);
	return libc_execvp(file, argv);
}

int execle(const char *path, const char *arg, ...)
{
	char *const *envp;
	va_list ap;

	va_start(ap, arg);
	LIST_TO_ARGV(argv, arg, ap);
	envp = va_arg(ap, char *const *);
	va_end(ap);
	check_exec(path, false, envp);
	return libc_execve(path, argv, envp);
}
