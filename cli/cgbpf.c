/* SPDX-License-Identifier: MIT */
/* The cgroup mode's BPF program and maps, without a BPF toolchain: the
 * program is an array of struct bpf_insn assembled here from
 * <linux/bpf.h>'s opcodes and loaded with the raw bpf(2) system call.
 *
 * Maps (all of them work on 5.10, the oldest kernel tested: docs/kernels.md):
 *
 *   kashim_policy  an array of maps with one slot, holding the rules map of
 *                  the set in force.  A replacement builds a whole new rules
 *                  map and swaps it into the slot in one update; the program
 *                  reads the slot once per connection, so each connection
 *                  gets the whole old set or the whole new one.
 *   rules map      an LPM trie (longest prefix match) holding the settings,
 *                  the rules as given (for status), and the address part of
 *                  the rules: one node per network named in a list, whose
 *                  value is the port range of every rule of that list that
 *                  covers it.  One lookup per list finds every rule that can
 *                  match an address, whatever the number of rules.
 *   kashim_counts  the counts (an array, one value): atomic adds only, never
 *                  written by attach, so a replacement loses no increment.
 *   kashim_slots   a counter per SKIP rule: a rule kept across replacements
 *                  keeps its counter.
 */
#define _GNU_SOURCE
#include "cgbpf.h"
#include "cli.h" /* cgroup_print_escaped, from files.c below */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLICY_MAP "kashim_policy"
#define RULES_MAP "kashim_rules"
#define COUNTS_MAP "kashim_counts"
#define SLOTS_MAP "kashim_slots"

/* ---- the rules map's layout ------------------------------------------- */

/* Key: the trie's prefix length, then kind, family, two zero bytes and the
 * address (16 bytes, an IPv4 one in the first 4), so that an address
 * starts 4-aligned and a network of n bits is a prefix of 32 + n. */
enum kind { KIND_ONLY = CG_ONLY, KIND_SKIP = CG_SKIP, KIND_SETTINGS, KIND_RULE };
#define FAMILY4 4
#define FAMILY6 6
#define KEY_BITS 160
struct rules_key {
	uint32_t prefixlen;
	uint8_t kind, family, zero[2];
	uint8_t addr[16];
};

struct port_range {
	uint16_t lo, hi, slot, reserved;
};

struct node {
	uint32_t n, reserved;
	struct port_range range[CG_RANGES_MAX];
};

union rules_value {
	struct node node;
	struct cg_policy policy;
	struct cg_rule rule;
};

/* entries: settings, rules as given, and per list a node per network plus
 * a root per family */
#define RULES_ENTRIES (1 + CG_RULES_MAX + 2 * (CG_RULES_MAX + 2))

/* ---- bpf(2) ---------------------------------------------------------- */

int cgbpf_sys(enum bpf_cmd cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

uint64_t cgbpf_ptr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static int map_create(enum bpf_map_type type, uint32_t key_size, uint32_t value_size,
		      uint32_t entries, uint32_t flags, int inner_fd, const char *name)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof attr);
	attr.map_type = type;
	attr.key_size = key_size;
	attr.value_size = value_size;
	attr.max_entries = entries;
	attr.map_flags = flags;
	attr.inner_map_fd = inner_fd >= 0 ? (uint32_t)inner_fd : 0;
	snprintf(attr.map_name, sizeof attr.map_name, "%s", name);
	return cgbpf_sys(BPF_MAP_CREATE, &attr);
}

static int map_op(int fd, enum bpf_cmd cmd, const void *key, void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof attr);
	attr.map_fd = (uint32_t)fd;
	attr.key = cgbpf_ptr(key);
	attr.value = cgbpf_ptr(value);
	attr.flags = cmd == BPF_MAP_UPDATE_ELEM ? BPF_ANY : 0;
	return cgbpf_sys(cmd, &attr);
}

static int map_by_id(uint32_t id)
{
	union bpf_attr a;

	memset(&a, 0, sizeof a);
	a.map_id = id;
	return cgbpf_sys(BPF_MAP_GET_FD_BY_ID, &a);
}

static bool map_info(int fd, struct bpf_map_info *info)
{
	union bpf_attr a;

	memset(info, 0, sizeof *info);
	memset(&a, 0, sizeof a);
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof *info;
	a.info.info = cgbpf_ptr(info);
	return cgbpf_sys(BPF_OBJ_GET_INFO_BY_FD, &a) == 0;
}

static int rules_map_create(void)
{
	return map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct rules_key), sizeof(union rules_value),
			  RULES_ENTRIES, BPF_F_NO_PREALLOC, -1, RULES_MAP);
}

/* ---- the assembler ----------------------------------------------------- */

/* The eBPF instruction macros the uapi headers leave out (<linux/filter.h>
 * has classic BPF only), named as in the kernel's own filter.h. */
#define INSN(CODE, DST, SRC, OFF, IMM) \
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), .off = (OFF), .imm = (IMM) })
#define BPF_MOV64_REG(DST, SRC) INSN(BPF_ALU64 | BPF_MOV | BPF_X, DST, SRC, 0, 0)
#define BPF_MOV64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_MOV | BPF_K, DST, 0, 0, IMM)
#define BPF_ADD64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_ADD | BPF_K, DST, 0, 0, IMM)
#define BPF_AND64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_AND | BPF_K, DST, 0, 0, IMM)
#define BPF_TO_BE16(DST) INSN(BPF_ALU | BPF_END | BPF_TO_BE, DST, 0, 0, 16)
#define BPF_LDX_W(DST, SRC, OFF) INSN(BPF_LDX | BPF_W | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_LDX_H(DST, SRC, OFF) INSN(BPF_LDX | BPF_H | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_STX_W(DST, SRC, OFF) INSN(BPF_STX | BPF_W | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_ST_W(DST, OFF, IMM) INSN(BPF_ST | BPF_W | BPF_MEM, DST, 0, OFF, IMM)
#define BPF_ST_B(DST, OFF, IMM) INSN(BPF_ST | BPF_B | BPF_MEM, DST, 0, OFF, IMM)
#define BPF_ATOMIC_ADD_DW(DST, SRC, OFF) INSN(BPF_STX | BPF_DW | BPF_ATOMIC, DST, SRC, OFF, BPF_ADD)
#define BPF_JMP_IMM(OP, DST, IMM) INSN(BPF_JMP | (OP) | BPF_K, DST, 0, 0, IMM)
#define BPF_JMP_REG(OP, DST, SRC) INSN(BPF_JMP | (OP) | BPF_X, DST, SRC, 0, 0)
#define BPF_JMP_A() INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define BPF_CALL_HELPER(FN) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, FN)
#define BPF_EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers: r1-r5 arguments, r0 the result, r6-r9 kept across calls,
 * r10 the frame pointer. */
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
#define CTX R6      /* struct bpf_sock_ops * */
#define SETTINGS R7 /* struct cg_policy * in the rules map */
#define COUNTS R8   /* struct cg_counts * */
#define RULES R9    /* the rules map of the set in force */

/* The stack: the option value, a map key, the connection's port and
 * direction, and the trie key. */
#define SCRATCH (-8)
#define KEY (-12)
#define PORT (-16)
#define SERVER (-20)
#define TKEY (-48) /* struct rules_key, 24 bytes, 8-aligned */
#define TKEY_AT(f) ((short)(TKEY + (int)offsetof(struct rules_key, f)))
#define POLICY(f) ((short)offsetof(struct cg_policy, f))
#define COUNT(f) ((short)offsetof(struct cg_counts, f))

/* The program is about 250 instructions plus 7 per range of each list's
 * node (unrolled: put_list_match), so about 3850 with CG_RANGES_MAX 256. */
#define PROG_MAX (256 + 2 * 8 * CG_RANGES_MAX)
#define LABELS_MAX (64 + 2 * CG_RANGES_MAX)
#define JUMPS_MAX (128 + 2 * 4 * CG_RANGES_MAX)
struct prog {
	struct bpf_insn insn[PROG_MAX];
	unsigned n, n_labels, n_jumps;
	int at[LABELS_MAX];
	struct { unsigned insn; int to; } jump[JUMPS_MAX];
};

static void put(struct prog *p, struct bpf_insn i)
{
	if (p->n < PROG_MAX)
		p->insn[p->n] = i;
	p->n++; /* an overflow is caught by prog_finish */
}

static int new_label(struct prog *p)
{
	if (p->n_labels < LABELS_MAX)
		p->at[p->n_labels] = -1;
	return (int)p->n_labels++;
}

/* A conditional or plain jump whose offset is filled in by prog_finish. */
static void jump(struct prog *p, struct bpf_insn i, int to)
{
	if (p->n_jumps < JUMPS_MAX) {
		p->jump[p->n_jumps].insn = p->n;
		p->jump[p->n_jumps].to = to;
	}
	p->n_jumps++;
	put(p, i);
}

static void label(struct prog *p, int l)
{
	if (l < LABELS_MAX)
		p->at[l] = (int)p->n;
}

static bool prog_finish(struct prog *p)
{
	unsigned k;

	if (p->n > PROG_MAX || p->n_jumps > JUMPS_MAX || p->n_labels > LABELS_MAX)
		return false;
	for (k = 0; k < p->n_jumps; k++) {
		if (p->at[p->jump[k].to] < 0)
			return false;
		p->insn[p->jump[k].insn].off =
			(short)(p->at[p->jump[k].to] - (int)p->jump[k].insn - 1);
	}
	return true;
}

/* r0 = lookup(map, fp + key); if r0 == NULL goto none; the map the one
 * of map_fd, or with map_fd < 0 the one in RULES. */
static void put_lookup(struct prog *p, int map_fd, short key, int none)
{
	if (map_fd < 0) {
		put(p, BPF_MOV64_REG(R1, RULES));
	} else {
		put(p, INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, map_fd));
		put(p, INSN(0, 0, 0, 0, 0));
	}
	put(p, BPF_MOV64_REG(R2, R10));
	put(p, BPF_ADD64_IMM(R2, key));
	put(p, BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem));
	/* if nothing there goto none */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R0, 0), none);
}

/* *(u64 *)(REG + OFF) += 1, atomically (REG a constant: a macro). */
#define put_count(P, REG, OFF) \
	do { \
		put(P, BPF_MOV64_IMM(R1, 1)); \
		put(P, BPF_ATOMIC_ADD_DW(REG, R1, OFF)); \
	} while (0)

/* helper(ctx, level, name, &scratch, 4): bpf_setsockopt or bpf_getsockopt. */
static void put_sockopt_call(struct prog *p, int helper, int level, int name)
{
	put(p, BPF_MOV64_REG(R1, CTX));
	put(p, BPF_MOV64_IMM(R2, level));
	put(p, BPF_MOV64_IMM(R3, name));
	put(p, BPF_MOV64_REG(R4, R10));
	put(p, BPF_ADD64_IMM(R4, SCRATCH));
	put(p, BPF_MOV64_IMM(R5, 4));
	put(p, BPF_CALL_HELPER(helper));
}

/* setsockopt(ctx, level, name, &value, 4), value a policy field or, with
 * field < 0, the constant 1; a refusal is counted and its errno kept. */
static void put_setsockopt(struct prog *p, int level, int name, short field)
{
	put(p, field < 0 ? BPF_MOV64_IMM(R1, 1) : BPF_LDX_W(R1, SETTINGS, field));
	put(p, BPF_STX_W(R10, R1, SCRATCH));
	put_sockopt_call(p, BPF_FUNC_setsockopt, level, name);
	/* if r0 >= 0 (accepted) skip the three that count the refusal */
	put(p, INSN(BPF_JMP | BPF_JSGE | BPF_K, R0, 0, 3, 0));
	put(p, BPF_STX_W(COUNTS, R0, COUNT(last_error)));
	put(p, BPF_MOV64_IMM(R1, 1));
	put(p, BPF_ATOMIC_ADD_DW(COUNTS, R1, COUNT(refused)));
}

/* Respect mode's question for one option: in force mode, or where the
 * kernel cannot read the option (5.10 and 5.15 as measured, counted
 * when count_unread), goto set; when the socket already has it, goto keep. */
static void put_unless_own(struct prog *p, int level, int name, int set, int keep,
			   bool count_unread)
{
	int unread = new_label(p);

	put(p, BPF_LDX_W(R1, SETTINGS, POLICY(force)));
	/* if force goto set */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), set);
	put(p, BPF_ST_W(R10, SCRATCH, 0));
	put_sockopt_call(p, BPF_FUNC_getsockopt, level, name);
	/* if the kernel cannot read it (r0 < 0) goto unread */
	jump(p, BPF_JMP_IMM(BPF_JSLT, R0, 0), unread);
	put(p, BPF_LDX_W(R1, R10, SCRATCH));
	/* if the program set it goto keep */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), keep);
	jump(p, BPF_JMP_A(), set);
	label(p, unread);
	if (count_unread)
		put_count(p, COUNTS, COUNT(unread));
	jump(p, BPF_JMP_A(), set);
}

/* The connection's address into the trie key, its port at PORT: for a
 * connection made, the peer's; for one accepted, the local one (as the
 * library matches them).  An IPv4-mapped IPv6 address is keyed as the
 * IPv4 address it is. */
static void put_address(struct prog *p, int none)
{
	int v6 = new_label(p), v4 = new_label(p), mapped = new_label(p), server = new_label(p),
	    done = new_label(p), k;
	short ip4_remote = (short)offsetof(struct bpf_sock_ops, remote_ip4);
	short ip4_local = (short)offsetof(struct bpf_sock_ops, local_ip4);
	short ip6_remote = (short)offsetof(struct bpf_sock_ops, remote_ip6);
	short ip6_local = (short)offsetof(struct bpf_sock_ops, local_ip6);

	for (k = 0; k < (int)sizeof(struct rules_key); k += 4)
		put(p, BPF_ST_W(R10, (short)(TKEY + k), 0));
	put(p, BPF_ST_W(R10, TKEY_AT(prefixlen), KEY_BITS));
	put(p, BPF_LDX_W(R2, R10, SERVER));
	put(p, BPF_LDX_W(R1, CTX, (short)offsetof(struct bpf_sock_ops, family)));
	/* if family == AF_INET6 goto v6 */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R1, AF_INET6), v6);
	/* if family != AF_INET goto none (not TCP/IP: left alone) */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, AF_INET), none);
	/* if server goto the local address */
	jump(p, BPF_JMP_IMM(BPF_JNE, R2, 0), server);
	put(p, BPF_LDX_W(R1, CTX, ip4_remote));
	jump(p, BPF_JMP_A(), v4);
	label(p, server);
	put(p, BPF_LDX_W(R1, CTX, ip4_local));
	label(p, v4);
	put(p, BPF_STX_W(R10, R1, TKEY_AT(addr)));
	put(p, BPF_ST_B(R10, TKEY_AT(family), FAMILY4));
	jump(p, BPF_JMP_A(), done);

	label(p, v6);
	/* r3 = the address's base offset: remote or local */
	for (k = 0; k < 4; k++) {
		int local = new_label(p), next = new_label(p);
		/* if server goto local */
		jump(p, BPF_JMP_IMM(BPF_JNE, R2, 0), local);
		put(p, BPF_LDX_W(R1, CTX, (short)(ip6_remote + 4 * k)));
		jump(p, BPF_JMP_A(), next);
		label(p, local);
		put(p, BPF_LDX_W(R1, CTX, (short)(ip6_local + 4 * k)));
		label(p, next);
		put(p, BPF_STX_W(R10, R1, (short)(TKEY_AT(addr) + 4 * k)));
	}
	put(p, BPF_ST_B(R10, TKEY_AT(family), FAMILY6));
	/* ::ffff:a.b.c.d: words 0 and 1 zero, word 2 0000ffff */
	put(p, BPF_LDX_W(R1, R10, TKEY_AT(addr)));
	/* if word 0 != 0 goto done */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), done);
	put(p, BPF_LDX_W(R1, R10, (short)(TKEY_AT(addr) + 4)));
	/* if word 1 != 0 goto done */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), done);
	put(p, BPF_LDX_W(R1, R10, (short)(TKEY_AT(addr) + 8)));
	/* if word 2 == ::ffff goto mapped (a 32-bit compare: the constant
	 * would be sign-extended in a 64-bit one) */
	jump(p, INSN(BPF_JMP32 | BPF_JEQ | BPF_K, R1, 0, 0, (int32_t)htonl(0xffff)), mapped);
	jump(p, BPF_JMP_A(), done);
	label(p, mapped);
	put(p, BPF_LDX_W(R1, R10, (short)(TKEY_AT(addr) + 12)));
	put(p, BPF_STX_W(R10, R1, TKEY_AT(addr)));
	put(p, BPF_ST_W(R10, (short)(TKEY_AT(addr) + 4), 0));
	put(p, BPF_ST_W(R10, (short)(TKEY_AT(addr) + 8), 0));
	put(p, BPF_ST_W(R10, (short)(TKEY_AT(addr) + 12), 0));
	put(p, BPF_ST_B(R10, TKEY_AT(family), FAMILY4));

	label(p, done);
	{
		int local = new_label(p), stored = new_label(p);
		/* if server goto local */
		jump(p, BPF_JMP_IMM(BPF_JNE, R2, 0), local);
		int low = new_label(p);
		/* remote_port: the port in network order, in the low half of the
		 * word or (kernels that shift it) the high half */
		put(p, BPF_LDX_W(R1, CTX, (short)offsetof(struct bpf_sock_ops, remote_port)));
		put(p, BPF_MOV64_REG(R3, R1));
		put(p, BPF_AND64_IMM(R3, 0xffff));
		/* if the low half holds it goto low */
		jump(p, BPF_JMP_IMM(BPF_JNE, R3, 0), low);
		put(p, INSN(BPF_ALU64 | BPF_RSH | BPF_K, R1, 0, 0, 16));
		label(p, low);
		put(p, BPF_TO_BE16(R1));
		jump(p, BPF_JMP_A(), stored);
		label(p, local);
		put(p, BPF_LDX_W(R1, CTX, (short)offsetof(struct bpf_sock_ops, local_port)));
		label(p, stored);
		put(p, BPF_AND64_IMM(R1, 0xffff));
		put(p, BPF_STX_W(R10, R1, PORT));
	}
}

/* Looks up the list's node for the address; when one of its ranges holds
 * the port, goto match with r3 the rule's counter slot; else goto miss. */
static void put_list_match(struct prog *p, int list, int match, int miss)
{
	int k;

	put(p, BPF_ST_B(R10, TKEY_AT(kind), list));
	put_lookup(p, -1, TKEY, miss);
	put(p, BPF_LDX_W(R4, R0, (short)offsetof(struct node, n)));
	put(p, BPF_LDX_W(R2, R10, PORT));
	for (k = 0; k < CG_RANGES_MAX; k++) {
		short at = (short)(offsetof(struct node, range) + (size_t)k * sizeof(struct port_range));
		int next = new_label(p);
		/* if n <= k goto miss */
		jump(p, BPF_JMP_IMM(BPF_JLE, R4, k), miss);
		put(p, BPF_LDX_H(R1, R0, (short)(at + (short)offsetof(struct port_range, lo))));
		/* if port < lo goto next */
		jump(p, BPF_JMP_REG(BPF_JLT, R2, R1), next);
		put(p, BPF_LDX_H(R1, R0, (short)(at + (short)offsetof(struct port_range, hi))));
		/* if port > hi goto next */
		jump(p, BPF_JMP_REG(BPF_JGT, R2, R1), next);
		put(p, BPF_LDX_H(R3, R0, (short)(at + (short)offsetof(struct port_range, slot))));
		jump(p, BPF_JMP_A(), match);
		label(p, next);
	}
	jump(p, BPF_JMP_A(), miss);
}

/* The sock_ops program: at TCP_CONNECT_CB (before the SYN, so the user
 * timeout bounds the handshake too) and PASSIVE_ESTABLISHED_CB (a
 * connection accepted), it takes the set in force, decides by scope, ONLY
 * and SKIP as the library does, and sets the options.  In respect mode, a
 * socket with keepalive already on keeps its timers (and gets no automatic
 * user timeout, which would cut them short) and a nonzero user timeout
 * stays; where the kernel cannot read them, kashim's values are set.
 * Always returns 1 (the return value of sock_ops only matters to a few
 * callbacks, none of these). */
static bool assemble(struct prog *p, int policy_fd, int counts_fd, int slots_fd)
{
	int cover = new_label(p), out = new_label(p), rules = new_label(p),
	    keepalive = new_label(p), own = new_label(p), user_timeout = new_label(p),
	    set_keepalive = new_label(p),
	    set_user_timeout = new_label(p), skip = new_label(p), not_skipped = new_label(p),
	    only_miss = new_label(p), server = new_label(p), scoped_out = new_label(p);

	put(p, BPF_MOV64_REG(CTX, R1));
	put(p, BPF_LDX_W(R2, CTX, (short)offsetof(struct bpf_sock_ops, op)));
	/* if op == PASSIVE_ESTABLISHED_CB goto server */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R2, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB), server);
	/* if op != TCP_CONNECT_CB goto out */
	jump(p, BPF_JMP_IMM(BPF_JNE, R2, BPF_SOCK_OPS_TCP_CONNECT_CB), out);
	put(p, BPF_ST_W(R10, SERVER, 0));
	jump(p, BPF_JMP_A(), cover);
	label(p, server);
	put(p, BPF_ST_W(R10, SERVER, 1));

	label(p, cover);
	put(p, BPF_ST_W(R10, KEY, 0));
	put_lookup(p, counts_fd, KEY, out);
	put(p, BPF_MOV64_REG(COUNTS, R0));
	put_count(p, COUNTS, COUNT(connections));
	/* the set in force: one read of the slot */
	put_lookup(p, policy_fd, KEY, out);
	put(p, BPF_MOV64_REG(RULES, R0));
	{
		int k;
		for (k = 0; k < (int)sizeof(struct rules_key); k += 4)
			put(p, BPF_ST_W(R10, (short)(TKEY + k), 0));
	}
	put(p, BPF_ST_W(R10, TKEY_AT(prefixlen), KEY_BITS));
	put(p, BPF_ST_B(R10, TKEY_AT(kind), KIND_SETTINGS));
	put_lookup(p, -1, TKEY, out);
	put(p, BPF_MOV64_REG(SETTINGS, R0));

	/* scope: client covers what is made, server what is accepted */
	put(p, BPF_LDX_W(R1, SETTINGS, POLICY(scope)));
	put(p, BPF_LDX_W(R2, R10, SERVER));
	/* if scope == all goto rules */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R1, KASHIM_SCOPE_ALL), rules);
	{
		int client = new_label(p);
		/* if scope == client goto client */
		jump(p, BPF_JMP_IMM(BPF_JEQ, R1, KASHIM_SCOPE_CLIENT), client);
		/* scope server: if accepted goto rules */
		jump(p, BPF_JMP_IMM(BPF_JNE, R2, 0), rules);
		jump(p, BPF_JMP_A(), scoped_out);
		label(p, client);
		/* scope client: if made goto rules */
		jump(p, BPF_JMP_IMM(BPF_JEQ, R2, 0), rules);
	}
	label(p, scoped_out);
	put_count(p, COUNTS, COUNT(out_of_scope));
	jump(p, BPF_JMP_A(), out);

	label(p, rules);
	put(p, BPF_LDX_W(R1, SETTINGS, POLICY(n_rules)));
	/* if no rules goto keepalive */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R1, 0), keepalive);
	put_address(p, out);
	{
		int only_done = new_label(p);
		put(p, BPF_LDX_W(R1, SETTINGS, POLICY(has_only)));
		/* if no ONLY list goto only_done */
		jump(p, BPF_JMP_IMM(BPF_JEQ, R1, 0), only_done);
		put_list_match(p, KIND_ONLY, only_done, only_miss);
		label(p, only_done);
	}
	put_list_match(p, KIND_SKIP, skip, not_skipped);

	label(p, only_miss);
	put_count(p, COUNTS, COUNT(not_only));
	jump(p, BPF_JMP_A(), out);

	label(p, skip);
	put(p, BPF_AND64_IMM(R3, CG_RULE_SLOTS - 1));
	put(p, BPF_STX_W(R10, R3, KEY));
	put_lookup(p, slots_fd, KEY, out);
	put_count(p, R0, 0);
	jump(p, BPF_JMP_A(), out);

	label(p, not_skipped);
	label(p, keepalive);
	/* a program's own keepalive keeps its timers */
	put_unless_own(p, SOL_SOCKET, SO_KEEPALIVE, set_keepalive, own, true);
	label(p, set_keepalive);
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPIDLE, POLICY(idle_s));
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPINTVL, POLICY(interval_s));
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPCNT, POLICY(count));
	put_setsockopt(p, SOL_SOCKET, SO_KEEPALIVE, -1);
	jump(p, BPF_JMP_A(), user_timeout);

	/* The program's own timers: an automatic user timeout, computed from
	 * kashim's timers, would cut them short; an operator's fixed one is
	 * still set. */
	label(p, own);
	put(p, BPF_LDX_W(R1, SETTINGS, POLICY(user_timeout_auto)));
	/* if the user timeout is automatic goto out */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), out);

	label(p, user_timeout);
	put(p, BPF_LDX_W(R1, SETTINGS, POLICY(user_timeout_ms)));
	/* if user_timeout == 0 (off) goto out */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R1, 0), out);
	/* a program's own user timeout stays */
	put_unless_own(p, IPPROTO_TCP, TCP_USER_TIMEOUT, set_user_timeout, out, false);
	label(p, set_user_timeout);
	put_setsockopt(p, IPPROTO_TCP, TCP_USER_TIMEOUT, POLICY(user_timeout_ms));

	label(p, out);
	put(p, BPF_MOV64_IMM(R0, 1));
	put(p, BPF_EXIT_INSN());
	return prog_finish(p);
}

static char verifier_log[1 << 20];

int cgbpf_load(const struct bpf_insn *insn, unsigned n, const char *name, bool quiet)
{
	union bpf_attr attr;
	int fd, saved;

	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_SOCK_OPS;
	attr.insns = cgbpf_ptr(insn);
	attr.insn_cnt = n;
	attr.license = cgbpf_ptr("Dual MIT/GPL");
	snprintf(attr.prog_name, sizeof attr.prog_name, "%s", name);
	fd = cgbpf_sys(BPF_PROG_LOAD, &attr);
	if (fd >= 0 || quiet || errno == EPERM)
		return fd;
	saved = errno;
	attr.log_level = 1;
	attr.log_buf = cgbpf_ptr(verifier_log);
	attr.log_size = sizeof verifier_log;
	verifier_log[0] = 0;
	if (cgbpf_sys(BPF_PROG_LOAD, &attr) < 0 && verifier_log[0])
		fprintf(stderr, "kashim: the kernel's verifier refused the program:\n%s", verifier_log);
	errno = saved;
	return -1;
}

/* ---- the rules map's content ------------------------------------------ */

static uint8_t family_code(int family)
{
	return family == AF_INET ? FAMILY4 : FAMILY6;
}

static bool prefix_covers(const uint8_t *net, unsigned bits, const uint8_t *addr)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(net, addr, full))
		return false;
	return !rest || !((net[full] ^ addr[full]) & (0xff << (8 - rest)));
}

static int put_entry(int fd, const struct rules_key *k, const union rules_value *v)
{
	return map_op(fd, BPF_MAP_UPDATE_ELEM, k, (void *)v);
}

/* The node of one list for one network: the port range of each rule of
 * the list that covers it, in rule order. */
static bool node_for(const struct cg_rule *rules, unsigned n, int list, uint8_t family,
		     unsigned prefix, const uint8_t *addr, struct node *out)
{
	unsigned i;

	memset(out, 0, sizeof *out);
	for (i = 0; i < n; i++) {
		const struct kashim_rule *r = &rules[i].rule;
		if (rules[i].list != list)
			continue;
		if (r->family && (family_code(r->family) != family || r->prefix > prefix ||
				  !prefix_covers(r->addr, r->prefix, addr)))
			continue;
		if (out->n == CG_RANGES_MAX)
			return false;
		out->range[out->n].lo = r->port_lo;
		out->range[out->n].hi = r->port_hi;
		out->range[out->n].slot = rules[i].slot;
		out->n++;
	}
	return true;
}

/* The networks a list names (each once), and a root per family when the
 * list has a rule for any address. */
static bool fill_list(int fd, const struct cg_rule *rules, unsigned n, int list)
{
	union rules_value v;
	struct rules_key k;
	unsigned i, j;
	bool any = false;

	for (i = 0; i < n; i++) {
		const struct kashim_rule *r = &rules[i].rule;
		if (rules[i].list != list)
			continue;
		if (!r->family) {
			any = true;
			continue;
		}
		for (j = 0; j < i; j++) /* the same network met before */
			if (rules[j].list == list && rules[j].rule.family == r->family &&
			    rules[j].rule.prefix == r->prefix &&
			    !memcmp(rules[j].rule.addr, r->addr, sizeof r->addr))
				break;
		if (j < i)
			continue;
		memset(&k, 0, sizeof k);
		memset(&v, 0, sizeof v);
		k.prefixlen = 32u + r->prefix;
		k.kind = (uint8_t)list;
		k.family = family_code(r->family);
		memcpy(k.addr, r->addr, sizeof k.addr);
		if (!node_for(rules, n, list, k.family, r->prefix, r->addr, &v.node)) {
			errno = E2BIG;
			return false;
		}
		if (put_entry(fd, &k, &v) < 0)
			return false;
	}
	for (i = 0; any && i < 2; i++) {
		memset(&k, 0, sizeof k);
		memset(&v, 0, sizeof v);
		k.prefixlen = 32;
		k.kind = (uint8_t)list;
		k.family = i ? FAMILY6 : FAMILY4;
		node_for(rules, n, list, k.family, 0, k.addr, &v.node);
		if (put_entry(fd, &k, &v) < 0)
			return false;
	}
	return true;
}

static void rule_key(struct rules_key *k, uint32_t index)
{
	memset(k, 0, sizeof *k);
	k->prefixlen = KEY_BITS;
	k->kind = KIND_RULE;
	memcpy(k->addr, &index, sizeof index);
}

static void settings_key(struct rules_key *k)
{
	memset(k, 0, sizeof *k);
	k->prefixlen = KEY_BITS;
	k->kind = KIND_SETTINGS;
}

/* A new rules map holding the policy and the rules; -1 with errno. */
static int rules_map_build(const struct cg_policy *policy, const struct cg_rule *rules, unsigned n)
{
	union rules_value v;
	struct rules_key k;
	unsigned i;
	int fd = rules_map_create(), saved;

	if (fd < 0)
		return -1;
	for (i = 0; i < n; i++) {
		rule_key(&k, i);
		memset(&v, 0, sizeof v);
		v.rule = rules[i];
		if (put_entry(fd, &k, &v) < 0)
			goto fail;
	}
	if (!fill_list(fd, rules, n, CG_ONLY) || !fill_list(fd, rules, n, CG_SKIP))
		goto fail;
	settings_key(&k);
	memset(&v, 0, sizeof v);
	v.policy = *policy;
	v.policy.n_rules = n;
	if (put_entry(fd, &k, &v) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The rules map in the policy slot, if it has this kashim's layout: the
 * kernel writes a whole value of the map's own size into the buffer a
 * lookup gives it, so a map made by another version (other sizes) is never
 * read into this one's structures. */
#define RULES_OPEN_TRIES 8
static int rules_map_current(int policy_fd)
{
	uint32_t key = 0, id = 0;
	struct bpf_map_info info;
	int fd = -1, tries;

	/* A replacement swaps the slot's map at any time, and the map whose
	 * id was read goes with its last reference (ENOENT): the id is read
	 * again, a bounded number of times (each needs another replacement);
	 * the map, once open, is never written, so what is read from it
	 * cannot tear.  EAGAIN when replaced that many times in a row. */
	for (tries = 0; fd < 0 && tries < RULES_OPEN_TRIES; tries++) {
		if (map_op(policy_fd, BPF_MAP_LOOKUP_ELEM, &key, &id) < 0)
			return -1;
		if ((fd = map_by_id(id)) < 0 && errno != ENOENT)
			return -1;
	}
	if (fd < 0) {
		errno = EAGAIN;
		return -1;
	}
	if (!map_info(fd, &info) || info.type != BPF_MAP_TYPE_LPM_TRIE ||
	    info.key_size != sizeof(struct rules_key) ||
	    info.value_size != sizeof(union rules_value) || info.max_entries != RULES_ENTRIES) {
		close(fd);
		errno = EPROTO;
		return -1;
	}
	return fd;
}

static bool rules_read(int rules_fd, struct cg_policy *policy, struct cg_rule *rules)
{
	union rules_value v;
	struct rules_key k;
	uint32_t i;

	settings_key(&k);
	if (map_op(rules_fd, BPF_MAP_LOOKUP_ELEM, &k, &v) < 0)
		return false;
	*policy = v.policy;
	if (policy->n_rules > CG_RULES_MAX)
		return false;
	for (i = 0; i < policy->n_rules; i++) {
		rule_key(&k, i);
		if (map_op(rules_fd, BPF_MAP_LOOKUP_ELEM, &k, &v) < 0)
			return false;
		rules[i] = v.rule;
	}
	return true;
}

static bool same_rule(const struct cg_rule *a, const struct cg_rule *b)
{
	return a->list == b->list && a->rule.family == b->rule.family &&
	       a->rule.prefix == b->rule.prefix && a->rule.port_lo == b->rule.port_lo &&
	       a->rule.port_hi == b->rule.port_hi &&
	       !memcmp(a->rule.addr, b->rule.addr, sizeof a->rule.addr);
}

/* Counter slots for the new rules: a rule the old set has keeps its slot
 * (and count); another takes a slot the old set does not use, zeroed. */
static bool assign_slots(int slots_fd, struct cg_rule *rules, unsigned n,
			 const struct cg_rule *old, unsigned n_old)
{
	static bool used[CG_RULE_SLOTS];
	unsigned i, j, next = 0;
	uint64_t zero = 0;

	memset(used, 0, sizeof used);
	for (j = 0; j < n_old; j++)
		used[old[j].slot % CG_RULE_SLOTS] = true;
	for (i = 0; i < n; i++) {
		for (j = 0; j < n_old && !same_rule(&rules[i], &old[j]); j++)
			;
		if (j < n_old) {
			rules[i].slot = old[j].slot;
			continue;
		}
		while (next < CG_RULE_SLOTS && used[next])
			next++;
		if (next == CG_RULE_SLOTS)
			return false;
		used[next] = true;
		rules[i].slot = (uint16_t)next;
		uint32_t key = next;
		if (map_op(slots_fd, BPF_MAP_UPDATE_ELEM, &key, &zero) < 0)
			return false;
	}
	return true;
}

/* ---- finding kashim on a cgroup ------------------------------------------ */

/* The maps of a program of this layout, by name. */
static bool our_maps(struct cg_attached *a, const uint32_t *ids, uint32_t n)
{
	uint32_t k;

	a->policy_fd = a->counts_fd = a->slots_fd = -1;
	for (k = 0; k < n; k++) {
		struct bpf_map_info info;
		int fd = map_by_id(ids[k]), *slot = NULL;
		if (fd < 0 || !map_info(fd, &info)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* Names and sizes both: a lookup fills value_size bytes. */
		if (!strcmp(info.name, POLICY_MAP) && info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS &&
		    info.key_size == 4 && info.value_size == 4)
			slot = &a->policy_fd;
		else if (!strcmp(info.name, COUNTS_MAP) && info.key_size == 4 &&
			 info.value_size == sizeof(struct cg_counts))
			slot = &a->counts_fd;
		else if (!strcmp(info.name, SLOTS_MAP) && info.max_entries == CG_RULE_SLOTS &&
			 info.key_size == 4 && info.value_size == sizeof(uint64_t))
			slot = &a->slots_fd;
		if (slot && *slot < 0)
			*slot = fd;
		else
			close(fd);
	}
	if (a->policy_fd >= 0 && a->counts_fd >= 0 && a->slots_fd >= 0) {
		/* A replacement must fit the policy slot's template, which
		 * was made with the rules map of the version that attached. */
		int rules_fd = rules_map_current(a->policy_fd);

		if (rules_fd >= 0) {
			close(rules_fd);
			return true;
		}
		if (errno == EAGAIN)
			return true; /* ours, being replaced: cgbpf_read says so */
	}
	if (a->policy_fd >= 0)
		close(a->policy_fd);
	if (a->counts_fd >= 0)
		close(a->counts_fd);
	if (a->slots_fd >= 0)
		close(a->slots_fd);
	a->policy_fd = a->counts_fd = a->slots_fd = -1;
	return false;
}

int cgbpf_find(int cgroup_fd, struct cg_attached *out, int max)
{
	uint32_t ids[64];
	union bpf_attr attr;
	unsigned k;
	int found = 0;
	bool denied = false;

	memset(&attr, 0, sizeof attr);
	attr.query.target_fd = (uint32_t)cgroup_fd;
	attr.query.attach_type = BPF_CGROUP_SOCK_OPS;
	attr.query.prog_ids = cgbpf_ptr(ids);
	attr.query.prog_cnt = sizeof ids / sizeof ids[0];
	if (cgbpf_sys(BPF_PROG_QUERY, &attr) < 0)
		return -1;
	for (k = 0; k < attr.query.prog_cnt && k < sizeof ids / sizeof ids[0]; k++) {
		struct bpf_prog_info info;
		uint32_t map_ids[8];
		union bpf_attr a;
		int fd;

		memset(&a, 0, sizeof a);
		a.prog_id = ids[k];
		if ((fd = cgbpf_sys(BPF_PROG_GET_FD_BY_ID, &a)) < 0) {
			denied |= errno == EPERM;
			continue; /* else detached meanwhile */
		}
		memset(&info, 0, sizeof info);
		info.nr_map_ids = sizeof map_ids / sizeof map_ids[0];
		info.map_ids = cgbpf_ptr(map_ids);
		memset(&a, 0, sizeof a);
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof info;
		a.info.info = cgbpf_ptr(&info);
		if (cgbpf_sys(BPF_OBJ_GET_INFO_BY_FD, &a) != 0 ||
		    strncmp(info.name, CG_PROG_NAME, sizeof info.name) || found == max) {
			close(fd);
			continue;
		}
		out[found].prog_fd = fd;
		out[found].prog_id = info.id;
		out[found].run_cnt = info.run_cnt;
		out[found].run_time_ns = info.run_time_ns;
		out[found].current = our_maps(&out[found], map_ids,
					      info.nr_map_ids < 8 ? info.nr_map_ids : 8);
		found++;
	}
	if (!found && denied) {
		errno = EPERM;
		return -1;
	}
	return found;
}

void cgbpf_release(struct cg_attached *a, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		close(a[i].prog_fd);
		if (a[i].current) {
			close(a[i].policy_fd);
			close(a[i].counts_fd);
			close(a[i].slots_fd);
		}
	}
}

/* ---- attach, replace, read -------------------------------------------- */

/* Attaches a sock_ops program to a cgroup, beside the others there
 * (systemd's, Cilium's stay: BPF_F_ALLOW_MULTI), in place of replace_fd's
 * when that is not -1. */
static int attach_sock_ops(int cgroup_fd, int prog_fd, int replace_fd)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_SOCK_OPS;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (replace_fd >= 0) {
		attr.attach_flags |= BPF_F_REPLACE;
		attr.replace_bpf_fd = (uint32_t)replace_fd;
	}
	return cgbpf_sys(BPF_PROG_ATTACH, &attr);
}

bool cgbpf_attach_new(int cgroup_fd, const char *path, const struct cg_policy *policy,
		      struct cg_rule *rules, unsigned n, int replace_fd)
{
	struct prog *p = calloc(1, sizeof *p);
	int rules_fd = -1, policy_fd = -1, counts_fd = -1, slots_fd = -1, prog_fd = -1;
	uint32_t key = 0;
	bool done = false;

	if (!p)
		goto out;
	if ((counts_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct cg_counts), 1, 0, -1,
				    COUNTS_MAP)) < 0 ||
	    (slots_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 8, CG_RULE_SLOTS, 0, -1, SLOTS_MAP)) < 0) {
		fprintf(stderr, "kashim attach: cannot create the counters: %s\n", strerror(errno));
		goto out;
	}
	if (!assign_slots(slots_fd, rules, n, NULL, 0) ||
	    (rules_fd = rules_map_build(policy, rules, n)) < 0) {
		fprintf(stderr, "kashim attach: cannot write the rules map: %s\n", strerror(errno));
		goto out;
	}
	if ((policy_fd = map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, 0, rules_fd,
				    POLICY_MAP)) < 0 ||
	    map_op(policy_fd, BPF_MAP_UPDATE_ELEM, &key, &rules_fd) < 0) {
		fprintf(stderr, "kashim attach: cannot create the policy map: %s\n", strerror(errno));
		goto out;
	}
	if (!assemble(p, policy_fd, counts_fd, slots_fd)) {
		fprintf(stderr, "kashim attach: the program does not fit (a bug)\n");
		goto out;
	}
	if ((prog_fd = cgbpf_load(p->insn, p->n, CG_PROG_NAME, false)) < 0) {
		fprintf(stderr, "kashim attach: cannot load the program: %s\n", strerror(errno));
		goto out;
	}
	if (attach_sock_ops(cgroup_fd, prog_fd, replace_fd) < 0) {
		fprintf(stderr, "kashim attach: cannot attach to ");
		cgroup_print_escaped(stderr, path);
		fprintf(stderr, ": %s\n", strerror(errno));
		goto out;
	}
	done = true;
out:
	if (prog_fd >= 0)
		close(prog_fd);
	if (policy_fd >= 0)
		close(policy_fd);
	if (rules_fd >= 0)
		close(rules_fd);
	if (counts_fd >= 0)
		close(counts_fd);
	if (slots_fd >= 0)
		close(slots_fd);
	free(p);
	return done;
}

bool cgbpf_replace(const struct cg_attached *a, const struct cg_policy *policy,
		   struct cg_rule *rules, unsigned n)
{
	static struct cg_rule old[CG_RULES_MAX];
	struct cg_policy old_policy, next = *policy;
	uint32_t key = 0;
	int old_fd = rules_map_current(a->policy_fd), fd;
	bool done = false;

	memset(&old_policy, 0, sizeof old_policy);
	if (old_fd < 0 || !rules_read(old_fd, &old_policy, old))
		old_policy.n_rules = 0;
	next.generation = old_policy.generation + 1;
	if (!assign_slots(a->slots_fd, rules, n, old, old_policy.n_rules) ||
	    (fd = rules_map_build(&next, rules, n)) < 0) {
		fprintf(stderr, "kashim attach: cannot write the new rules map: %s\n", strerror(errno));
		goto out;
	}
	/* The swap: one update of the slot, read once by each run. */
	if (map_op(a->policy_fd, BPF_MAP_UPDATE_ELEM, &key, &fd) == 0)
		done = true;
	else
		fprintf(stderr, "kashim attach: cannot replace the settings: %s\n", strerror(errno));
	close(fd);
out:
	if (old_fd >= 0)
		close(old_fd);
	return done;
}

bool cgbpf_read(const struct cg_attached *a, struct cg_state *st)
{
	uint32_t key = 0, i;
	int fd;
	bool ok;

	memset(st, 0, sizeof *st);
	if (!a->current || map_op(a->counts_fd, BPF_MAP_LOOKUP_ELEM, &key, &st->counts) < 0 ||
	    (fd = rules_map_current(a->policy_fd)) < 0)
		return false;
	ok = rules_read(fd, &st->policy, st->rules);
	close(fd);
	for (i = 0; ok && i < st->policy.n_rules; i++) {
		key = st->rules[i].slot;
		if (map_op(a->slots_fd, BPF_MAP_LOOKUP_ELEM, &key, &st->skipped[i]) < 0)
			st->skipped[i] = 0;
	}
	return ok;
}

/* ---- what the kernel can read ------------------------------------------ */

/* The probe: at TCP_CONNECT_CB, bpf_getsockopt(SO_KEEPALIVE) and the
 * answer into the map (1 refused, 2 read). */
static bool assemble_probe(struct prog *p, int map_fd)
{
	int out = new_label(p), refused = new_label(p), store = new_label(p);

	put(p, BPF_MOV64_REG(CTX, R1));
	put(p, BPF_LDX_W(R2, CTX, (short)offsetof(struct bpf_sock_ops, op)));
	/* if op != TCP_CONNECT_CB goto out */
	jump(p, BPF_JMP_IMM(BPF_JNE, R2, BPF_SOCK_OPS_TCP_CONNECT_CB), out);
	put(p, BPF_ST_W(R10, SCRATCH, 0));
	put_sockopt_call(p, BPF_FUNC_getsockopt, SOL_SOCKET, SO_KEEPALIVE);
	put(p, BPF_MOV64_IMM(R7, 2));
	/* if it could not read (r0 < 0) goto refused */
	jump(p, BPF_JMP_IMM(BPF_JSLT, R0, 0), refused);
	jump(p, BPF_JMP_A(), store);
	label(p, refused);
	put(p, BPF_MOV64_IMM(R7, 1));
	label(p, store);
	put(p, BPF_ST_W(R10, KEY, 0));
	put_lookup(p, map_fd, KEY, out);
	put(p, BPF_STX_W(R0, R7, 0));
	label(p, out);
	put(p, BPF_MOV64_IMM(R0, 1));
	put(p, BPF_EXIT_INSN());
	return prog_finish(p);
}

/* A child in the probe cgroup connects to the listener and exits. */
static void probe_child(const char *procs, const struct sockaddr_in *to)
{
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	int s;

	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(1);
	close(fd);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (const struct sockaddr *)to, sizeof *to) != 0)
		_exit(1);
	_exit(0);
}

#define PROBE_PREFIX "kashim-probe-"

/* A stale probe cgroup may still hold the probe's child, orphaned when
 * its kashim was killed: end it (cgroup.kill, Linux 5.14; else each pid
 * of cgroup.procs) and wait, bounded, for the cgroup to empty. */
static void remove_probe_dir(int dir_fd, const char *name)
{
	char file[512], buf[4096], *p, *end;
	ssize_t n;
	int fd, i;

	if (unlinkat(dir_fd, name, AT_REMOVEDIR) == 0 || errno != EBUSY)
		return;
	snprintf(file, sizeof file, "%s/cgroup.kill", name);
	if ((fd = openat(dir_fd, file, O_WRONLY | O_CLOEXEC)) >= 0) {
		n = write(fd, "1", 1);
		close(fd);
	} else {
		snprintf(file, sizeof file, "%s/cgroup.procs", name);
		fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		for (p = buf; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
	}
	(void)n;
	for (i = 0; i < 200 && unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 && errno == EBUSY; i++)
		usleep(10000);
}

/* The probe cgroups an attach killed mid-probe left behind
 * (kashim-probe-PID-TIME, PID gone), removed: SIGKILL cannot be caught, so
 * each probe cleans up after the ones before it, ending an orphaned probe
 * child still in one. */
void cgbpf_remove_stale_probes(const char *cgroup2_root)
{
	DIR *d = opendir(cgroup2_root);
	struct dirent *e;
	unsigned seen = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && seen++ < 100000) {
		const char *p = e->d_name + sizeof PROBE_PREFIX - 1;
		char *end;
		long pid;

		if (e->d_type != DT_DIR || strncmp(e->d_name, PROBE_PREFIX, sizeof PROBE_PREFIX - 1))
			continue;
		pid = strtol(p, &end, 10);
		if (end == p || *end != '-' || pid <= 0 || pid > 4194304 || !end[1] ||
		    strspn(end + 1, "0123456789") != strlen(end + 1))
			continue; /* not a name a probe makes */
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its kashim is still there (or its pid reused) */
		remove_probe_dir(dirfd(d), e->d_name);
	}
	closedir(d);
}

int cgbpf_can_read_keepalive(const char *cgroup2_root)
{
	struct prog *p = calloc(1, sizeof *p);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	char dir[4200], procs[4300];
	uint32_t key = 0, answer = 0;
	int map_fd = -1, prog_fd = -1, cg_fd = -1, lfd = -1, status, i, result = -1;
	bool made = false;
	pid_t pid = -1;
	sigset_t fatal, was;

	/* Ctrl-C, a hangup or a plain kill while the probe cgroup exists
	 * waits until it is gone (then acts as it would have) */
	sigemptyset(&fatal);
	sigaddset(&fatal, SIGINT);
	sigaddset(&fatal, SIGTERM);
	sigaddset(&fatal, SIGHUP);
	sigaddset(&fatal, SIGQUIT);
	sigprocmask(SIG_BLOCK, &fatal, &was);
	cgbpf_remove_stale_probes(cgroup2_root);
	snprintf(dir, sizeof dir, "%s/" PROBE_PREFIX "%ld-%ld",
		 strcmp(cgroup2_root, "/") ? cgroup2_root : "", (long)getpid(), (long)time(NULL));
	snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
	if (!p || (map_fd = map_create(BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, -1, "kashim_probe")) < 0 ||
	    !assemble_probe(p, map_fd) ||
	    (prog_fd = cgbpf_load(p->insn, p->n, "kashim_probe", true)) < 0)
		goto out;
	if (mkdir(dir, 0700) != 0)
		goto out;
	made = true;
	if ((cg_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto out;
	if (attach_sock_ops(cg_fd, prog_fd, -1) < 0)
		goto out;
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
		goto out;
	if ((pid = fork()) == 0)
		probe_child(procs, &a);
	if (pid < 0)
		goto out;
	for (i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	if (map_op(map_fd, BPF_MAP_LOOKUP_ELEM, &key, &answer) == 0 && answer)
		result = answer == 2;
out:
	if (lfd >= 0)
		close(lfd);
	if (cg_fd >= 0)
		close(cg_fd);
	if (made)
		for (i = 0; i < 100 && rmdir(dir) != 0 && errno == EBUSY; i++)
			usleep(10000); /* the attachment goes with the cgroup */
	if (prog_fd >= 0)
		close(prog_fd);
	if (map_fd >= 0)
		close(map_fd);
	free(p);
	sigprocmask(SIG_SETMASK, &was, NULL);
	return result;
}
