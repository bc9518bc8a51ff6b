/*
 * reuseport_rr.c - exact round robin over a reuseport handle's selectable
 * slot sockets, done by the kernel at no cost to the supervisor: an eBPF
 * SK_REUSEPORT program attached to the group (SO_ATTACH_REUSEPORT_EBPF)
 * picks, for each new connection, the socket at key counter++ % n of a
 * REUSEPORT_SOCKARRAY map (bpf_sk_select_reuseport).
 *
 * The supervisor keeps that map compact: the n selectable slots' sockets at
 * keys 0..n-1 (struct handle's rr_key_fd says which socket is at which
 * key: a slot's, or one a reloaded seccomp worker still drains).  A slot joins when it listens; it leaves the selection before its
 * socket leaves the group (a scale-down, a drain: worker_drain.c), so a
 * socket on its way out gets no new connection while its worker still
 * takes what was queued.  Taking one out moves the last key's socket into
 * its key (n is lowered first): keys 0..n-1 never have a hole, and the
 * round robin stays exact over the others.  n and the counter are in a
 * one-entry array map ({ counter, n }).
 *
 * Attached as BPF_SK_REUSEPORT_SELECT_OR_MIGRATE: when a slot socket
 * closes with connections queued (or half-open), the kernel asks the same
 * program where to move them, and they go to a live slot rather than
 * being reset, even where net.ipv4.tcp_migrate_req is 0.
 *
 * Only a bare SYN (a new connection) advances the counter: a late ACK or
 * RST of a connection already gone reaches the listeners too; such a
 * packet, n = 0 or an empty key leaves the choice to the kernel's hash.
 *
 * Hand-assembled (33 instructions) rather than libbpf: no object file, no
 * BTF, no build-time clang, no library to link, and the whole program
 * reads below; libbpf would need a compiled .bpf.o (clang at build) or
 * the same instructions in its own wrappers.  It needs CAP_BPF (or
 * CAP_SYS_ADMIN): without it one line says so, and the kernel hashes.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cluster_internal.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

#define TH_SYN_ACK 0x12  /* the SYN and ACK bits of the TCP flags byte */
#define TH_SYN_ONLY 0x02
#define TCP_FLAGS_OFF 13 /* the flags byte in the TCP header */
/* Slots one handle's round robin can deal to (a key each); more than
 * that many workers share the rest by the kernel's hash. */
#define RR_KEYS_MAX 4096

struct rr_state {
	uint64_t counter; /* connections dealt since the last update */
	uint64_t n;       /* selectable slot sockets: keys 0..n-1 */
};

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
			    .off = (o), .imm = (i) })
#define MD(field) offsetof(struct sk_reuseport_md, field)

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int map_create(uint32_t type, uint32_t value_size, uint32_t max)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = sizeof(uint32_t);
	a.value_size = value_size;
	a.max_entries = max;
	return (int)bpf(BPF_MAP_CREATE, &a);
}

static int prog_load(int state, int socks)
{
	const struct bpf_insn insns[] = {
		/* 0: r6 = the context */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
		/* 1-2: a closing slot's connection to move: deal it too */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_6, MD(migrating_sk), 0),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 8, 0),
		/* 3-7: r2 = the TCP header (data), 14 bytes of it or hash */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_6, MD(data), 0),
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_3, BPF_REG_6, MD(data_end), 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, TCP_FLAGS_OFF + 1),
		INSN(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 23, 0),
		/* 8-10: only a connection's SYN counts */
		INSN(BPF_LDX | BPF_MEM | BPF_B, BPF_REG_4, BPF_REG_2, TCP_FLAGS_OFF, 0),
		INSN(BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_4, 0, 0, TH_SYN_ACK),
		INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 20, TH_SYN_ONLY),
		/* 11: key = 0 on the stack */
		INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -4, 0),
		/* 12-13: r1 = the state map */
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, state),
		INSN(0, 0, 0, 0, 0),
		/* 14-16: r0 = lookup(state, &key) */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		/* 17: no entry: hash */
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 13, 0),
		/* 18-19: r2 = n; none: hash */
		INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_0,
		     offsetof(struct rr_state, n), 0),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_2, 0, 11, 0),
		/* 20-21: r1 = counter++ (atomic: SYNs on every CPU) */
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_1, 0, 0, 1),
		INSN(BPF_STX | BPF_ATOMIC | BPF_DW, BPF_REG_0, BPF_REG_1,
		     offsetof(struct rr_state, counter), BPF_ADD | BPF_FETCH),
		/* 22-23: index = r1 % n, on the stack */
		INSN(BPF_ALU64 | BPF_MOD | BPF_X, BPF_REG_1, BPF_REG_2, 0, 0),
		INSN(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_1, -8, 0),
		/* 24-29: select_reuseport(ctx, socks, &index, 0) */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
		INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, socks),
		INSN(0, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, -8),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0),
		/* 30: (an error, an empty key: nothing selected, the hash) */
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_select_reuseport),
		/* 31-32: pass, with the socket selected if one was; the
		 * jumps to 31 leave the choice to the hash */
		INSN(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, SK_PASS),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static const char license[] = "GPL";
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
	a.expected_attach_type = BPF_SK_REUSEPORT_SELECT_OR_MIGRATE;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	a.license = (uint64_t)(uintptr_t)license;
	return (int)bpf(BPF_PROG_LOAD, &a);
}

/* What the kernel's refusal most likely means: EPERM is privileges; a
 * kernel without the migrate attach type (before 5.14) says EINVAL. */
static const char *rr_needs(int err)
{
	if (err == EPERM || err == EACCES)
		return "it needs CAP_BPF or CAP_SYS_ADMIN";
	if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP)
		return "it needs Linux 5.14 or later";
	return "it needs CAP_BPF and Linux 5.14 or later";
}

static void say_hash(struct cluster *c, int err)
{
	if (c->said_kernel_rr)
		return;
	c->said_kernel_rr = true;
	cluster_logf(c, "reuseport: no round robin by the kernel (eBPF: %s; "
		     "%s): the kernel hashes connections over the slots",
		     strerror(err), rr_needs(err));
}

static void close_maps(struct handle *h)
{
	if (h->rr_map >= 0)
		close(h->rr_map);
	if (h->rr_socks >= 0)
		close(h->rr_socks);
	h->rr_map = h->rr_socks = -1;
}

/* The program on h's group, through its listening socket fd; 0 or errno. */
static int rr_attach(struct handle *h, int fd)
{
	int prog = -1, err;

	h->rr_map = map_create(BPF_MAP_TYPE_ARRAY, sizeof(struct rr_state), 1);
	h->rr_socks = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
				 sizeof(uint32_t), RR_KEYS_MAX);
	if (h->rr_map < 0 || h->rr_socks < 0 ||
	    (prog = prog_load(h->rr_map, h->rr_socks)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog,
		       sizeof(prog)) < 0) {
		err = errno;
		if (prog >= 0)
			close(prog);
		close_maps(h);
		return err;
	}
	close(prog); /* the group holds it */
	h->kernel_rr = true;
	if (!h->cluster->said_kernel_rr) {
		h->cluster->said_kernel_rr = true;
		cluster_logf(h->cluster, "reuseport: the kernel deals "
			     "connections round robin over the listening "
			     "slots (an eBPF program on each group)");
	}
	return 0;
}

static int map_put(int map, uint32_t key, const void *value)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = BPF_ANY;
	return bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? errno : 0;
}

static void map_remove(int map, uint32_t key)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map;
	a.key = (uint64_t)(uintptr_t)&key;
	(void)bpf(BPF_MAP_DELETE_ELEM, &a); /* ENOENT: empty already */
}

/* n = h->rr_n, the count started again (the counter goes with it). */
static void set_count(struct handle *h)
{
	struct rr_state st = { .counter = 0, .n = h->rr_n };

	(void)map_put(h->rr_map, 0, &st);
}

/* The key socket fd is at, or -1. */
static long key_of(const struct handle *h, int fd)
{
	unsigned k;

	for (k = 0; k < h->rr_n; k++)
		if (h->rr_key_fd[k] == fd)
			return k;
	return -1;
}

static bool key_room(struct handle *h)
{
	unsigned cap = h->rr_cap ? h->rr_cap * 2 : 8;
	int *keys;

	if (h->rr_n < h->rr_cap)
		return true;
	if (h->rr_cap >= RR_KEYS_MAX)
		return false;
	keys = realloc(h->rr_key_fd, cap * sizeof(*keys));
	if (!keys)
		return false;
	h->rr_key_fd = keys;
	h->rr_cap = cap;
	return true;
}

void reuseport_rr_select(struct handle *h, unsigned slot)
{
	uint32_t fd;
	int err;

	if (slot >= h->nslots || h->slot_fds[slot] < 0)
		return;
	fd = (uint32_t)h->slot_fds[slot];
	if (!h->kernel_rr) {
		if (h->cluster->no_kernel_rr)
			return;
		if ((err = rr_attach(h, (int)fd)) != 0) {
			h->cluster->no_kernel_rr = true; /* not per handle */
			say_hash(h->cluster, err);
			return;
		}
	}
	if (key_of(h, (int)fd) >= 0 || !key_room(h))
		return; /* selected already (a restarted listen), or full */
	if ((err = map_put(h->rr_socks, h->rr_n, &fd)) != 0) {
		cluster_logf(h->cluster, "reuseport: %s: slot %u is not in the "
			     "kernel's round robin (%s)", h->text, slot,
			     strerror(err));
		return;
	}
	h->rr_key_fd[h->rr_n++] = (int)fd;
	set_count(h);
}

bool reuseport_rr_deselect(struct handle *h, int sock)
{
	long k = h->kernel_rr && sock >= 0 ? key_of(h, sock) : -1;
	unsigned last;
	uint32_t fd;

	if (k < 0)
		return false;
	/* n first: the last key is dealt no more, the leaving one a few
	 * microseconds longer; then the last socket takes the leaving
	 * one's key (in one update: keys 0..n-1 are never empty).  A
	 * socket can be at one key only: it leaves its old one first. */
	last = --h->rr_n;
	set_count(h);
	map_remove(h->rr_socks, last);
	if ((unsigned)k != last) {
		h->rr_key_fd[k] = h->rr_key_fd[last];
		fd = (uint32_t)h->rr_key_fd[k];
		if (map_put(h->rr_socks, (uint32_t)k, &fd) != 0)
			map_remove(h->rr_socks, (uint32_t)k); /* the hash, then */
	}
	return true;
}

void reuseport_rr_free(struct handle *h)
{
	free(h->rr_key_fd);
	h->rr_key_fd = NULL;
	h->rr_n = h->rr_cap = 0;
	if (!h->kernel_rr)
		return;
	close_maps(h);
	h->kernel_rr = false;
}
