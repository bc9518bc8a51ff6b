/*
 * test_seccomp_i386.c - 32-bit programs in the seccomp mode: the filter
 * stops the i386 ABI's bind() and listen(), and socketcall() of either
 * (seccomp_filter.c), and the supervisor decodes them (seccomp_notify.c).
 *
 * fx_i386 (-m32, built static and dynamic where gcc-multilib is there)
 * binds with glibc's bind(), with socketcall(SYS_BIND, args) or with the
 * direct i386 bind (361); under
 * -n 3 and --intercept auto (which picks the seccomp mode for it, saying
 * why in one line): every request answered, by each of the 3 workers,
 * none replaced; SIGTERM leaves nothing.  The same for a 32-bit file with
 * Go's section (fx_gobin32), and --intercept shim's line for fx_i386.
 * The i386 io_uring_setup() fails with ENOSYS in a worker.  Without a -m32 toolchain, or
 * without seccomp user notification, each test skips saying so.
 */
#include "seccomp_support.h"

#include <string.h>

#define WORKERS 3
#define REQUESTS 150

TestSuite(seccomp_i386, .init = ss_skip_without_user_notification,
	  .fini = hx_cleanup, .timeout = 60);

/* Skips unless fixture (a -m32 build) was built. */
static void skip_unless_built(const char *fixture)
{
	ss_skip_unless_built(fixture, "the compiler cannot link -m32: install "
			     "gcc-multilib");
}

/* -n 3 -- FIXTURE MODE PORT, --intercept auto: the line saying why the
 * seccomp mode runs it, then every request answered, each worker some. */
static void three_workers_serve(const char *fixture, const char *mode,
				const char *why)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "3", "--", hx_fixture(fixture), mode,
			       ss_port_text(port), NULL };
	struct hx_tally tally;
	struct hx_cluster *c;

	skip_unless_built(fixture);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	ss_assert_mode_said(c, why);
	hx_assert(c, hx_wait_count(c, HX_LISTENING, WORKERS, HX_START_MS),
		  "want %d \"listening\" lines within %d ms (an i386 bind "
		  "not handed to cluster-run fails with EADDRINUSE)", WORKERS,
		  HX_START_MS);
	st_load(c, port, REQUESTS, WORKERS, false, &tally);
	for (int id = 1; id <= WORKERS; id++)
		hx_assert(c, tally.served[id] > 0, "worker %d served none of "
			  "%d (%d, %d, %d)", id, REQUESTS, tally.served[1],
			  tally.served[2], tally.served[3]);
	st_assert_steady(c, WORKERS);
	cr_log_info("%s %s: %d/%d/%d of %d", fixture, mode, tally.served[1],
		    tally.served[2], tally.served[3], REQUESTS);
	st_stop(c);
}

/* glibc's bind() and listen(): socketcall in Debian 12's i386 glibc */
Test(seccomp_i386, static_libc_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386_static", "libc",
			    "fx_i386_static is a static binary");
}

Test(seccomp_i386, static_socketcall_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386_static", "socketcall",
			    "fx_i386_static is a static binary");
}

/* bind (361) and listen (363), the calls newer libcs make */
Test(seccomp_i386, static_direct_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386_static", "direct",
			    "fx_i386_static is a static binary");
}

Test(seccomp_i386, dynamic_libc_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386", "libc", "fx_i386 is a 32-bit program");
}

Test(seccomp_i386, dynamic_socketcall_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386", "socketcall",
			    "fx_i386 is a 32-bit program");
}

Test(seccomp_i386, dynamic_direct_bind_served_by_three_workers)
{
	three_workers_serve("fx_i386", "direct", "fx_i386 is a 32-bit program");
}

/* Go's section in a 32-bit file: the ELF check reads Elf32 section
 * headers (a GOARCH=386 binary makes its socket calls by socketcall) */
Test(seccomp_i386, go_style_32_bit_binary_served_by_three_workers)
{
	three_workers_serve("fx_gobin32", "libc",
			    "fx_gobin32 is a Go binary");
}

/* --intercept shim: the 64-bit shim never loads in it, and one line says
 * so and that the seccomp mode would run it; as the line says, its
 * listeners are not shared: a second worker fails (EADDRINUSE). */
Test(seccomp_i386, intercept_shim_says_the_shim_never_loads)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "2", "--intercept", "shim", "--",
			       hx_fixture("fx_i386"), "libc", ss_port_text(port),
			       NULL };
	const char *said[] = { "fx_i386 is a 32-bit program: the loader "
			       "ignores the 64-bit shim",
			       "--intercept seccomp runs it", NULL };
	struct hx_cluster *c;

	skip_unless_built("fx_i386");
	c = hx_start(HX_CAPTURE_STDOUT, args);
	hx_assert(c, st_wait_err_line(c, said, HX_START_MS) != NULL,
		  "no line \"fx_i386 is a 32-bit program: the loader ignores "
		  "the 64-bit shim ... --intercept seccomp runs it\"");
	hx_assert(c, hx_wait_count(c, HX_EXITED, 1, HX_START_MS),
		  "no worker exited: with the shim not loaded, want one to "
		  "fail to bind the port the other holds");
	hx_assert(c, hx_count(c, HX_LISTENING) == 0,
		  "a listening line: a worker was reached without the shim");
	st_stop(c);
}

/* The i386 io_uring_setup (425) fails with ENOSYS in a worker, where
 * without the filter it works. */
Test(seccomp_i386, io_uring_setup_fails_with_enosys)
{
	int port = hx_free_port(SOCK_STREAM);
	const char *args[] = { "-n", "1", "--", hx_fixture("fx_i386_static"),
			       "libc", ss_port_text(port), NULL };
	struct hx_cluster *c;
	char alone[128];

	skip_unless_built("fx_i386_static");
	ss_probe_alone("fx_i386_static", alone, sizeof(alone));
	if (!strstr(alone, "io_uring_setup: ok"))
		ss_skip("without a filter the i386 io_uring_setup does not "
			"work here either (%s)", alone);
	c = hx_start(HX_CAPTURE_STDOUT, args);
	hx_assert(c, hx_wait_stdout_lines(c, 1, HX_START_MS),
		  "fx_i386_static said nothing on stdout");
	hx_assert(c, st_stdout_line(c, "io_uring_setup: ENOSYS"),
		  "the i386 io_uring_setup in a seccomp worker: want ENOSYS; %s",
		  c->out.lines[0]);
	st_stop(c);
}
