/* SPDX-License-Identifier: MIT */
/* The cgroup mode's BPF side: the sock_ops program, assembled here, and its
 * maps.  cgroup.c holds the commands (attach, detach, status). */
#ifndef KASHIM_CGBPF_H
#define KASHIM_CGBPF_H

#include "../config.h"

#include <linux/bpf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#define CG_PROG_NAME "kashim_sockops"

/* Rules one attachment holds: the library's most, KASHIM_MAX_RULES ONLY
 * and as many SKIP. */
#define CG_RULES_MAX (2 * KASHIM_MAX_RULES)
/* Rules that may cover one address (the ranges a trie node holds): every
 * rule of one list can, and a list has at most KASHIM_MAX_RULES. */
#define CG_RANGES_MAX KASHIM_MAX_RULES
/* Counters for SKIP rules: twice the most one set can hold, so that a
 * replacement finds free ones while the old set's are in use. */
#define CG_RULE_SLOTS (2 * CG_RULES_MAX)

enum cg_list { CG_ONLY, CG_SKIP };

/* One rule as attach gives it and status reads it back. */
struct cg_rule {
	uint8_t list; /* enum cg_list */
	uint8_t reserved;
	uint16_t slot; /* its counter (SKIP rules) */
	struct kashim_rule rule;
};

/* What the program applies; one set, replaced whole. */
struct cg_policy {
	uint32_t idle_s, interval_s, count;
	uint32_t user_timeout_ms;   /* 0: leave the kernel's value alone */
	uint32_t user_timeout_auto; /* 1: computed from kashim's own timers */
	uint32_t force;             /* 0 respect, 1 force */
	uint32_t scope;             /* enum kashim_scope */
	uint32_t has_only;
	uint32_t n_rules;           /* in rules[] below, ONLY then SKIP */
	uint32_t reserved;
	uint64_t generation;        /* 1 at the first attach, +1 each replacement */
};

/* What the program counts; never written by attach, so no increment is
 * lost to a replacement. */
struct cg_counts {
	uint64_t connections;  /* connections the program saw */
	uint64_t refused;      /* bpf_setsockopt calls the kernel refused */
	int32_t last_error;    /* the last -errno of a refused bpf_setsockopt */
	uint32_t reserved;
	uint64_t out_of_scope; /* left alone by the scope */
	uint64_t not_only;     /* left alone: no ONLY rule matched */
	uint64_t unread;       /* respect mode: the kernel could not read the option */
};

/* An attachment of kashim found on a cgroup. */
struct cg_attached {
	int prog_fd;
	uint32_t prog_id;
	uint64_t run_cnt, run_time_ns;
	bool current;  /* this kashim's layout; else another version's program */
	int policy_fd; /* the outer map: its one slot holds the rules map */
	int counts_fd, slots_fd;
};

/* The policy in force on an attachment: its settings, rules and counts. */
struct cg_state {
	struct cg_policy policy;
	struct cg_counts counts;
	struct cg_rule rules[CG_RULES_MAX];
	uint64_t skipped[CG_RULES_MAX]; /* per rule */
};

int cgbpf_sys(enum bpf_cmd cmd, union bpf_attr *attr);
uint64_t cgbpf_ptr(const void *p);

/* Loads a sock_ops program; unless quiet, a refusal prints the verifier's
 * log. */
int cgbpf_load(const struct bpf_insn *insn, unsigned n, const char *name, bool quiet);

/* The kashim programs attached directly to the cgroup at cgroup_fd, up to
 * max; returns how many, or -1 (errno; EPERM when a program could not be
 * identified, which needs CAP_SYS_ADMIN).  cgbpf_release closes them. */
int cgbpf_find(int cgroup_fd, struct cg_attached *out, int max);
void cgbpf_release(struct cg_attached *a, int n);

/* A new program with its maps holding policy and rules (n of them, each
 * with list set), attached to cgroup_fd (replacing the program replace_fd
 * when >= 0).  false with a message printed. */
bool cgbpf_attach_new(int cgroup_fd, const char *path, const struct cg_policy *policy,
		      struct cg_rule *rules, unsigned n, int replace_fd);

/* The policy and rules of an attached kashim replaced at once: a
 * connection gets the whole old set or the whole new one. */
bool cgbpf_replace(const struct cg_attached *a, const struct cg_policy *policy,
		   struct cg_rule *rules, unsigned n);

/* Reads what an attachment holds; false with errno EAGAIN when its rules
 * were replaced while read, again and again (then read it later). */
bool cgbpf_read(const struct cg_attached *a, struct cg_state *st);

/* Does this kernel's bpf_getsockopt read SO_KEEPALIVE (measured: 6.1 and
 * later do, 5.10 and 5.15 do not)?  Asked
 * by running a probe program on one loopback connection made by a child in
 * a cgroup of its own below cgroup2_root.  1 yes, 0 no, -1 unknown. */
int cgbpf_can_read_keepalive(const char *cgroup2_root);

/* Removes the probe cgroups of attaches killed during their probe (whose
 * process is gone): every attach calls it, the probe before its own. */
void cgbpf_remove_stale_probes(const char *cgroup2_root);

#endif
