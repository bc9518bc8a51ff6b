/*
 * seccomp_support.h - what the seccomp-mode tests (test_seccomp*.c,
 * test_kernel_rr.c, test_exec.c) share on top of shim_tests.h: whether the
 * kernel can run the mode at all, skips that say why, and the servers and
 * load generators several of them drive (busybox httpd's document root,
 * wrk, a fixture's "probe" run alone).
 */
#ifndef SECCOMP_SUPPORT_H
#define SECCOMP_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

#include "shim_tests.h"

/* ---- skips, each with its reason printed ---- */

/* Skips the running test, printing "SUITE::TEST skipped: REASON" on stdout
 * first: Criterion's own skip line is easy to miss in a test log. */
__attribute__((format(printf, 1, 2), noreturn))
void ss_skip(const char *fmt, ...);

/* A .init for tests of the seccomp mode: skips, saying so, where this
 * kernel refuses a seccomp filter with a notification listener. */
void ss_skip_without_user_notification(void);

/* Skips unless the fixture FIXTURE was built; `missing` says what its build
 * needs ("golang-go missing"). */
void ss_skip_unless_built(const char *fixture, const char *missing);

/* ---- cluster-run's side ---- */

/* PORT as text, in one of 4 buffers used in turn (a test may need two
 * at once). */
const char *ss_port_text(int port);

/* Waits for `workers` listening lines of c, each naming policy
 * ("(reuseport)", "(shared)", "(rr)"; NULL: any); c. */
struct hx_cluster *ss_wait_listening(struct hx_cluster *c, size_t workers,
				     const char *policy);

/* The line that says why cluster-run runs the program in the seccomp mode
 * ("WHY ... its workers run in the seccomp mode") came. */
void ss_assert_mode_said(struct hx_cluster *c, const char *why);

/* The line that the kernel deals c's connections round robin came; where
 * it hashes instead (no eBPF loaded), stops c and skips, saying so. */
void ss_assert_kernel_rr(struct hx_cluster *c);

/* ---- busybox httpd ---- */

/* Skips unless /bin/busybox is there (busybox-static). */
void ss_skip_unless_busybox(void);

/* A document root (a temporary directory) whose /cgi-bin/who answers
 * "<id> <pid>": CLUSTER_WORKER_ID and the pid of the CGI's parent (the
 * httpd process, worker or daemon, whose per-connection child ran it). */
const char *ss_make_www(void);

/* Removes the document root ss_make_www() made. */
void ss_remove_www(void);

/* One GET of path on 127.0.0.1:port, answered "HTTP/1.x 200" with an
 * "<id> <pid>" body: that answer. */
struct hx_answer ss_http_get(struct hx_cluster *c, int port,
			     const char *path);

/* ---- wrk ---- */

/* Skips unless wrk is on PATH. */
void ss_skip_unless_wrk(void);

/* wrk -t2 -c8 -dSECONDS http://127.0.0.1:PORT/, its stdout on a pipe
 * (*out_fd); its pid.  It stops by itself after SECONDS. */
pid_t ss_wrk_start(int port, int seconds, int *out_fd);

/* Reads wrk's report until it exits (within timeout_ms, else it is killed)
 * and asserts it exited 0, counted requests and saw no socket error nor a
 * non-2xx answer (`across` names what ran meanwhile, for the message);
 * the requests it counted. */
long ss_wrk_finish(struct hx_cluster *c, pid_t pid, int fd, int timeout_ms,
		   const char *across);

/* ---- fixtures alone ---- */

/* What "FIXTURE probe" prints, run without cluster-run (so without a
 * filter), into out; asserts it exits 0. */
void ss_probe_alone(const char *fixture, char *out, size_t size);

#endif
