/*
 * fuzz.h - what the fuzz targets of tests/fuzz share.
 *
 * Each target (fuzz_validate.c, fuzz_channel.c) defines libFuzzer's entry
 * points.  scripts/fuzz builds them with clang -fsanitize=fuzzer; meson
 * builds them with driver.c instead (any compiler), which feeds the files
 * of tests/fuzz/corpus/ to the same entry points as regression tests.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* sandbox.c: the binaries are linked with -Wl,--wrap=bind,--wrap=unlink,
 * --wrap=kill so that what a fuzzed message asks the supervisor to do stays
 * harmless: binds only on loopback or under FUZZ_SANDBOX_DIR (or abstract
 * unix names), unlinks only under FUZZ_SANDBOX_DIR, and no signal is ever
 * sent (the fake worker has no process). */
#define FUZZ_SANDBOX_DIR "/tmp/cluster-fuzz"
void fuzz_sandbox_init(void);
unsigned long fuzz_kills(void);

/* Open fds among the low ones (the kernel hands out the lowest free
 * number, so a leak lands there): taken before an input, checked after. */
#define FUZZ_FD_SCAN 128
struct fuzz_fds {
	uint64_t open[FUZZ_FD_SCAN / 64];
};
void fuzz_fds_take(struct fuzz_fds *s);
/* Dies if an fd is open now that was not in s. */
void fuzz_fds_check(const struct fuzz_fds *s, const char *what);

/* Dies with a message: an invariant of the supervisor broke. */
void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * fuzz_channel's input, also written by gen_corpus.c:
 *   byte 0       the cluster: bits 0-1 its policy (0 rr, 1 none,
 *                2 reuseport, 3 rr with --uid and --listen 127.0.0.1:8080
 *                --listen unix:FUZZ_SANDBOX_DIR/s.sock), bits 2-3 the first fake worker's
 *                id - 1; bit 4: the second has the same id (a reload's
 *                new worker), else the next one
 *   then up to FUZZ_MAX_RECORDS records, one message each:
 *     u8 fds     bits 0-1: how many fds come with it (0..3); bits 2-3,
 *                4-5, 6-7: what each is (enum fuzz_fd)
 *     u16 len    little endian; bit 15: from the second worker
 *     len bytes  the message as the worker wrote it
 */
#define FUZZ_MAX_RECORDS 16
#define FUZZ_SECOND_WORKER 0x8000

enum fuzz_fd {
	FUZZ_FD_REPLY = 0,  /* a SOCK_SEQPACKET socketpair end: a reply socket */
	FUZZ_FD_STREAM = 1, /* a stream socket of the query's domain */
	FUZZ_FD_QUERY = 2,  /* a socket of the query's domain and type */
	FUZZ_FD_NULL = 3,   /* /dev/null */
};

#define FUZZ_FDS(n, k0, k1, k2) \
	((uint8_t)((n) | ((k0) << 2) | ((k1) << 4) | ((k2) << 6)))

#endif
