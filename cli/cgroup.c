/* SPDX-License-Identifier: MIT */
/* kashim attach / detach / status: the cgroup-wide mode.  A
 * BPF_PROG_TYPE_SOCK_OPS program attached to a cgroup v2 directory sets the
 * keepalive options on every TCP connection made or accepted by any process
 * in that cgroup or below, in the kernel, with no help from the program:
 * static binaries, Go, setuid programs, raw system calls and io_uring alike.
 *
 * No BPF toolchain: the program is an array of struct bpf_insn assembled
 * here from <linux/bpf.h>'s opcodes and loaded with the raw bpf(2) system
 * call.  Its settings live in a one-entry array map that the program reads
 * on every connection, so attaching again to the same cgroup replaces the
 * settings in place, and status reads them back. */
#define _GNU_SOURCE
#include "cli.h"
#include "../config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PROG_NAME "kashim_sockops"
#define MAP_NAME "kashim_settings"

/* Kernels: bpf_setsockopt() takes SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT and
 * TCP_USER_TIMEOUT from Linux 5.9; bpf_getsockopt() reads SO_KEEPALIVE and
 * TCP_USER_TIMEOUT (what respect needs) from Linux 6.2. */
#define KERNEL_SET_MAJOR 5
#define KERNEL_SET_MINOR 9
#define KERNEL_GET_MAJOR 6
#define KERNEL_GET_MINOR 2

/* The map's one value.  The program reads the settings and counts what it
 * did; attach writes the settings (keeping the counts), status reads all. */
struct cgroup_settings {
	uint32_t idle_s, interval_s, count;
	uint32_t user_timeout_ms; /* 0: leave the kernel's value alone */
	uint32_t user_timeout_auto; /* 1: computed from kashim's own timers */
	uint32_t force;           /* 0 respect, 1 force */
	int32_t last_error;       /* the last -errno of a refused bpf_setsockopt */
	uint32_t reserved;
	uint64_t connections;     /* connections the program saw */
	uint64_t refused;         /* bpf_setsockopt calls the kernel refused */
};

/* ---- bpf(2) ---------------------------------------------------------- */

static int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

static uint64_t ptr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* The eBPF instruction macros the uapi headers leave out (<linux/filter.h>
 * has classic BPF only), named as in the kernel's own filter.h. */
#define INSN(CODE, DST, SRC, OFF, IMM) \
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), .off = (OFF), .imm = (IMM) })
#define BPF_MOV64_REG(DST, SRC) INSN(BPF_ALU64 | BPF_MOV | BPF_X, DST, SRC, 0, 0)
#define BPF_MOV64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_MOV | BPF_K, DST, 0, 0, IMM)
#define BPF_ADD64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_ADD | BPF_K, DST, 0, 0, IMM)
#define BPF_LDX_W(DST, SRC, OFF) INSN(BPF_LDX | BPF_W | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_STX_W(DST, SRC, OFF) INSN(BPF_STX | BPF_W | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_ST_W(DST, OFF, IMM) INSN(BPF_ST | BPF_W | BPF_MEM, DST, 0, OFF, IMM)
#define BPF_ATOMIC_ADD_DW(DST, SRC, OFF) INSN(BPF_STX | BPF_DW | BPF_ATOMIC, DST, SRC, OFF, BPF_ADD)
#define BPF_JMP_IMM(OP, DST, IMM) INSN(BPF_JMP | (OP) | BPF_K, DST, 0, 0, IMM)
#define BPF_JMP_A() INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define BPF_CALL_HELPER(FN) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, FN)
#define BPF_EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers: r1-r5 arguments, r0 the result, r6-r9 kept across calls,
 * r10 the frame pointer. */
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
#define CTX R6      /* struct bpf_sock_ops * */
#define SETTINGS R7 /* struct cgroup_settings * in the map */
#define SCRATCH (-8) /* a u32 on the stack for the option values */
#define KEY (-4)     /* the map key, 0 */
#define FIELD(f) ((short)offsetof(struct cgroup_settings, f))

/* A program being assembled, with forward jumps to named labels. */
enum label { L_COVER, L_OWN_KEEPALIVE, L_KEEPALIVE, L_USER_TIMEOUT, L_SET_USER_TIMEOUT, L_OUT,
	     L_COUNT };
#define PROG_MAX 128
struct prog {
	struct bpf_insn insn[PROG_MAX];
	unsigned n;
	int at[L_COUNT];
	struct { unsigned insn; enum label to; } jump[16];
	unsigned n_jumps;
};

static void put(struct prog *p, struct bpf_insn i)
{
	if (p->n < PROG_MAX)
		p->insn[p->n] = i;
	p->n++; /* an overflow is caught by prog_finish */
}

/* A conditional or plain jump whose offset is filled in by prog_finish. */
static void jump(struct prog *p, struct bpf_insn i, enum label to)
{
	if (p->n_jumps < sizeof p->jump / sizeof p->jump[0]) {
		p->jump[p->n_jumps].insn = p->n;
		p->jump[p->n_jumps].to = to;
	}
	p->n_jumps++;
	put(p, i);
}

static void label(struct prog *p, enum label l)
{
	p->at[l] = (int)p->n;
}

static bool prog_finish(struct prog *p)
{
	unsigned k;

	if (p->n > PROG_MAX || p->n_jumps > sizeof p->jump / sizeof p->jump[0])
		return false;
	for (k = 0; k < p->n_jumps; k++)
		p->insn[p->jump[k].insn].off =
			(short)(p->at[p->jump[k].to] - (int)p->jump[k].insn - 1);
	return true;
}

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

/* setsockopt(ctx, level, name, &value, 4), value a settings field or, with
 * field < 0, the constant 1; a refusal is counted and its errno kept. */
static void put_setsockopt(struct prog *p, int level, int name, short field)
{
	put(p, field < 0 ? BPF_MOV64_IMM(R1, 1) : BPF_LDX_W(R1, SETTINGS, field));
	put(p, BPF_STX_W(R10, R1, SCRATCH));
	put_sockopt_call(p, BPF_FUNC_setsockopt, level, name);
	/* if r0 >= 0 (accepted) skip the three that count the refusal */
	put(p, INSN(BPF_JMP | BPF_JSGE | BPF_K, R0, 0, 3, 0));
	put(p, BPF_STX_W(SETTINGS, R0, FIELD(last_error)));
	put(p, BPF_MOV64_IMM(R1, 1));
	put(p, BPF_ATOMIC_ADD_DW(SETTINGS, R1, FIELD(refused)));
}

/* Respect mode's question for one option: in force mode, or where the
 * kernel cannot read the option (bpf_getsockopt before Linux 6.2), goto
 * set; when the socket already has it (nonzero), goto keep. */
static void put_unless_own(struct prog *p, int level, int name, enum label set, enum label keep)
{
	put(p, BPF_LDX_W(R1, SETTINGS, FIELD(force)));
	/* if force goto set */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), set);
	put(p, BPF_ST_W(R10, SCRATCH, 0));
	put_sockopt_call(p, BPF_FUNC_getsockopt, level, name);
	/* if the kernel cannot read it (r0 < 0) goto set */
	jump(p, BPF_JMP_IMM(BPF_JSLT, R0, 0), set);
	put(p, BPF_LDX_W(R1, R10, SCRATCH));
	/* if the program set it goto keep */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), keep);
}

/* The sock_ops program: at TCP_CONNECT_CB (before the SYN, so the user
 * timeout bounds the handshake too) and PASSIVE_ESTABLISHED_CB (a
 * connection accepted), it sets the options from the map.  In respect
 * mode, a socket with keepalive already on keeps its timers (and gets no
 * automatic user timeout, which would cut them short) and a nonzero
 * user timeout stays; where the kernel cannot read them, kashim's values
 * are set.  Always returns 1 (the return value of sock_ops only matters to
 * a few callbacks, none of these). */
static bool assemble_keepalive(struct prog *p, int map_fd)
{
	memset(p, 0, sizeof *p);
	put(p, BPF_MOV64_REG(CTX, R1));
	put(p, BPF_LDX_W(R2, CTX, (short)offsetof(struct bpf_sock_ops, op)));
	/* if op == TCP_CONNECT_CB goto cover */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R2, BPF_SOCK_OPS_TCP_CONNECT_CB), L_COVER);
	/* if op == PASSIVE_ESTABLISHED_CB goto cover */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R2, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB), L_COVER);
	jump(p, BPF_JMP_A(), L_OUT);

	label(p, L_COVER);
	put(p, BPF_ST_W(R10, KEY, 0));
	put(p, BPF_MOV64_REG(R2, R10));
	put(p, BPF_ADD64_IMM(R2, KEY));
	put(p, INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, map_fd));
	put(p, INSN(0, 0, 0, 0, 0));
	put(p, BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem));
	/* if the map has no value (cannot happen for an array) goto out */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R0, 0), L_OUT);
	put(p, BPF_MOV64_REG(SETTINGS, R0));
	put(p, BPF_MOV64_IMM(R1, 1));
	put(p, BPF_ATOMIC_ADD_DW(SETTINGS, R1, FIELD(connections)));
	/* a program's own keepalive keeps its timers */
	put_unless_own(p, SOL_SOCKET, SO_KEEPALIVE, L_KEEPALIVE, L_OWN_KEEPALIVE);

	label(p, L_KEEPALIVE);
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPIDLE, FIELD(idle_s));
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPINTVL, FIELD(interval_s));
	put_setsockopt(p, IPPROTO_TCP, TCP_KEEPCNT, FIELD(count));
	put_setsockopt(p, SOL_SOCKET, SO_KEEPALIVE, -1);

	jump(p, BPF_JMP_A(), L_USER_TIMEOUT);

	/* The program's own timers: an automatic user timeout, computed from
	 * kashim's timers, would cut them short; an operator's fixed one is
	 * still set. */
	label(p, L_OWN_KEEPALIVE);
	put(p, BPF_LDX_W(R1, SETTINGS, FIELD(user_timeout_auto)));
	/* if the user timeout is automatic goto out */
	jump(p, BPF_JMP_IMM(BPF_JNE, R1, 0), L_OUT);

	label(p, L_USER_TIMEOUT);
	put(p, BPF_LDX_W(R1, SETTINGS, FIELD(user_timeout_ms)));
	/* if user_timeout == 0 (off) goto out */
	jump(p, BPF_JMP_IMM(BPF_JEQ, R1, 0), L_OUT);
	/* a program's own user timeout stays */
	put_unless_own(p, IPPROTO_TCP, TCP_USER_TIMEOUT, L_SET_USER_TIMEOUT, L_OUT);

	label(p, L_SET_USER_TIMEOUT);
	put_setsockopt(p, IPPROTO_TCP, TCP_USER_TIMEOUT, FIELD(user_timeout_ms));

	label(p, L_OUT);
	put(p, BPF_MOV64_IMM(R0, 1));
	put(p, BPF_EXIT_INSN());
	return prog_finish(p);
}

static char verifier_log[65536];

/* Loads a sock_ops program; on failure loads it again with the verifier's
 * log and prints that. */
static int load_program(const struct bpf_insn *insn, unsigned n, const char *name, bool quiet)
{
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof attr);
	attr.prog_type = BPF_PROG_TYPE_SOCK_OPS;
	attr.insns = ptr(insn);
	attr.insn_cnt = n;
	attr.license = ptr("Dual MIT/GPL");
	snprintf(attr.prog_name, sizeof attr.prog_name, "%s", name);
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0 || quiet || errno == EPERM)
		return fd;
	int saved = errno;
	attr.log_level = 1;
	attr.log_buf = ptr(verifier_log);
	attr.log_size = sizeof verifier_log;
	verifier_log[0] = 0;
	if (sys_bpf(BPF_PROG_LOAD, &attr) < 0 && verifier_log[0])
		fprintf(stderr, "kashim: the kernel's verifier refused the program:\n%s", verifier_log);
	errno = saved;
	return -1;
}

/* Can this kernel load a sock_ops program at all?  A trivial one, loaded
 * once and closed. */
static bool sock_ops_supported(void)
{
	static const struct bpf_insn trivial[] = { BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN() };
	int fd = load_program(trivial, 2, "kashim_probe", true);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int create_map(void)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = sizeof(uint32_t);
	attr.value_size = sizeof(struct cgroup_settings);
	attr.max_entries = 1;
	snprintf(attr.map_name, sizeof attr.map_name, "%s", MAP_NAME);
	return sys_bpf(BPF_MAP_CREATE, &attr);
}

static int map_access(int map_fd, enum bpf_cmd cmd, struct cgroup_settings *value)
{
	union bpf_attr attr;
	uint32_t key = 0;

	memset(&attr, 0, sizeof attr);
	attr.map_fd = (uint32_t)map_fd;
	attr.key = ptr(&key);
	attr.value = ptr(value);
	attr.flags = cmd == BPF_MAP_UPDATE_ELEM ? BPF_ANY : 0;
	return sys_bpf(cmd, &attr);
}

/* ---- finding kashim's program on a cgroup ----------------------------- */

/* Is this map a settings map of this kashim's layout?  (One of another
 * version would be read and written with the wrong size.) */
static bool settings_map(int map_fd)
{
	struct bpf_map_info info;
	union bpf_attr a;

	memset(&info, 0, sizeof info);
	memset(&a, 0, sizeof a);
	a.info.bpf_fd = (uint32_t)map_fd;
	a.info.info_len = sizeof info;
	a.info.info = ptr(&info);
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) == 0 &&
	    info.value_size == sizeof(struct cgroup_settings) && info.max_entries == 1)
		return true;
	close(map_fd);
	return false;
}

/* The fds of kashim's program attached directly to the cgroup open at
 * cgroup_fd, and of its settings map; false when there is none (errno 0)
 * or on an error (errno set; EPERM when a program there could not be
 * identified, which needs CAP_SYS_ADMIN). */
static bool find_attached(int cgroup_fd, int *prog_fd, int *map_fd,
			  struct bpf_prog_info *found)
{
	uint32_t ids[64];
	union bpf_attr attr;
	unsigned k;
	bool denied = false;

	memset(&attr, 0, sizeof attr);
	attr.query.target_fd = (uint32_t)cgroup_fd;
	attr.query.attach_type = BPF_CGROUP_SOCK_OPS;
	attr.query.prog_ids = ptr(ids);
	attr.query.prog_cnt = sizeof ids / sizeof ids[0];
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
		return false;
	for (k = 0; k < attr.query.prog_cnt && k < sizeof ids / sizeof ids[0]; k++) {
		struct bpf_prog_info info;
		union bpf_attr a;
		uint32_t map_id = 0;
		int fd;

		memset(&a, 0, sizeof a);
		a.prog_id = ids[k];
		if ((fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a)) < 0) {
			denied |= errno == EPERM;
			continue; /* else detached meanwhile */
		}
		memset(&info, 0, sizeof info);
		info.nr_map_ids = 1;
		info.map_ids = ptr(&map_id);
		memset(&a, 0, sizeof a);
		a.info.bpf_fd = (uint32_t)fd;
		a.info.info_len = sizeof info;
		a.info.info = ptr(&info);
		if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) == 0 &&
		    !strncmp(info.name, PROG_NAME, sizeof info.name) && info.nr_map_ids == 1) {
			memset(&a, 0, sizeof a);
			a.map_id = map_id;
			if ((*map_fd = sys_bpf(BPF_MAP_GET_FD_BY_ID, &a)) >= 0 &&
			    settings_map(*map_fd)) {
				*prog_fd = fd;
				if (found)
					*found = info;
				return true;
			}
		}
		close(fd);
	}
	errno = denied ? EPERM : 0;
	return false;
}

/* ---- checks made before anything is loaded ----------------------------- */

static bool have_capability(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

/* Attaching needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN, which
 * older kernels require for everything); finding an attachment by id
 * (replace, detach, status) needs CAP_SYS_ADMIN. */
static bool privileged(const char *cmd, bool need_sys_admin)
{
	struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	bool sys_admin, ok;

	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &head, data) != 0)
		return true; /* let the kernel decide */
	sys_admin = have_capability(data, CAP_SYS_ADMIN);
	ok = sys_admin || (!need_sys_admin && have_capability(data, CAP_BPF) &&
			   have_capability(data, CAP_NET_ADMIN));
	if (!ok)
		fprintf(stderr, "kashim %s: not permitted: %s (run it as root)\n", cmd,
			need_sys_admin ? "needs CAP_SYS_ADMIN to find kashim's BPF programs"
				       : "loading and attaching a BPF program needs CAP_BPF and "
					 "CAP_NET_ADMIN, or CAP_SYS_ADMIN");
	return ok;
}

static void kernel_version(int *major, int *minor, char *release, size_t size)
{
	struct utsname u;

	*major = *minor = 0;
	snprintf(release, size, "unknown");
	if (uname(&u) == 0) {
		snprintf(release, size, "%s", u.release);
		if (sscanf(u.release, "%d.%d", major, minor) != 2)
			*major = *minor = 0;
	}
}

static bool kernel_at_least(int major, int minor, int want_major, int want_minor)
{
	return major > want_major || (major == want_major && minor >= want_minor);
}

/* Opens CGROUP when it is an absolute path to a directory on a cgroup v2
 * mount; else says why and returns -1. */
static int open_cgroup(const char *cmd, const char *path)
{
	struct statfs sfs;
	struct stat st;
	int fd;

	if (path[0] != '/') {
		fprintf(stderr, "kashim %s: %s: not an absolute path (give a cgroup v2 directory, "
			"such as /sys/fs/cgroup/NAME)\n", cmd, path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		fprintf(stderr, "kashim %s: %s: %s\n", cmd, path,
			errno == ENOTDIR ? "not a directory" : strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sfs) != 0 || sfs.f_type != CGROUP2_SUPER_MAGIC || fstat(fd, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kashim %s: %s: not a cgroup v2 directory (see the cgroup2 line of "
			"/proc/self/mountinfo)\n", cmd, path);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the settings, from the library's own parser -------------------------- */

static void report_line(void *ctx, const char *line, size_t len)
{
	fprintf(stderr, "kashim %s: %.*s", (const char *)ctx, (int)len, line);
}

/* attach's and dropin --cgroup's words for a refusal. */
struct command {
	const char *name;    /* "attach" */
	const char *nothing; /* "nothing attached" */
};

/* The options of attach, as the library's variables, validated by
 * kashim_config_load_from so the grammar, ranges and messages are the
 * library's; --config FILE is KASHIM_CONFIG, so the file is read by the
 * library's own loader and the options win over it, as variables do in
 * the library.  Returns the index of the first operand, or -1. */
static int parse_options(int argc, char **argv, struct kashim_config *cfg, bool *help,
			 const struct command *cmd, bool policy)
{
	static const char *const opt[] = { "--idle", "--interval", "--count", "--user-timeout",
					   "--mode", "--config" };
	static const char *const var[] = { "KASHIM_IDLE", "KASHIM_INTERVAL", "KASHIM_COUNT",
					   "KASHIM_USER_TIMEOUT", "KASHIM_MODE", "KASHIM_CONFIG" };
	enum { N = sizeof opt / sizeof opt[0], FILE_OPT = N - 1 };
	struct kashim_source src = { NULL, NULL, false, NULL };
	char env_buf[N][4200];
	char *env[N + 1];
	const char *value[N] = { 0 };
	int i, n = 0;
	unsigned k;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *eq;
		size_t len;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			*help = true;
			return i;
		}
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (k = 0; k < N && (strlen(opt[k]) != len || strncmp(a, opt[k], len)); k++)
			;
		if (k == N || (k == FILE_OPT && !policy)) {
			fprintf(stderr, "kashim %s: unknown option %s\n", cmd->name, a);
			return -1;
		}
		if (!eq && i + 1 == argc) {
			fprintf(stderr, "kashim %s: %s needs a value\n", cmd->name, opt[k]);
			return -1;
		}
		value[k] = eq ? eq + 1 : argv[++i];
	}
	for (k = 0; k < N; k++)
		if (value[k]) {
			if (snprintf(env_buf[n], sizeof env_buf[n], "%s=%s", var[k], value[k]) >=
			    (int)sizeof env_buf[n]) {
				fprintf(stderr, "kashim %s: %s: the value is too long; %s\n",
					cmd->name, opt[k], cmd->nothing);
				return -1;
			}
			env[n] = env_buf[n];
			n++;
		}
	env[n] = NULL;
	src.envp = env;
	if (kashim_config_load_from(cfg, &src, report_line, (void *)cmd->name) != 0) {
		fprintf(stderr, "kashim %s: %s; correct the %s above\n", cmd->name, cmd->nothing,
			value[FILE_OPT] ? "setting" : "option");
		return -1;
	}
	if (!cfg->enabled) {
		fprintf(stderr, "kashim %s: the configuration file turns kashim off (kashim = off); "
			"%s\n", cmd->name, cmd->nothing);
		return -1;
	}
	return i;
}

/* dropin --cgroup's options: attach's, without those it cannot write
 * into the unit (--config). */
static int parse_attach(int argc, char **argv, struct kashim_config *cfg, bool *help,
			const struct command *cmd)
{
	return parse_options(argc, argv, cfg, help, cmd, false);
}

static void settings_from(const struct kashim_config *cfg, struct cgroup_settings *s)
{
	s->idle_s = (uint32_t)cfg->idle_s;
	s->interval_s = (uint32_t)cfg->interval_s;
	s->count = (uint32_t)cfg->count;
	s->user_timeout_ms = cfg->user_timeout_mode == KASHIM_UT_OFF ? 0 : cfg->user_timeout_ms;
	s->user_timeout_auto = cfg->user_timeout_mode == KASHIM_UT_AUTO;
	s->force = cfg->mode == KASHIM_MODE_FORCE;
}

/* With kernel.bpf_stats_enabled=1 the kernel times every run of the
 * program: ns_per_run is its cost in the kernel (two runs a connection
 * made and accepted inside the cgroup). */
static void print_settings(const char *path, const struct cgroup_settings *s,
			   const struct bpf_prog_info *info)
{
	printf("%s idle=%us interval=%us count=%u user_timeout=", path, s->idle_s, s->interval_s,
	       s->count);
	if (s->user_timeout_ms)
		printf("%ums", s->user_timeout_ms);
	else
		printf("off");
	printf(" mode=%s connections=%llu refused=%llu", s->force ? "force" : "respect",
	       (unsigned long long)s->connections, (unsigned long long)s->refused);
	if (s->refused)
		printf(" last_error=%s", strerror(-s->last_error));
	if (info->run_cnt)
		printf(" ns_per_run=%llu", (unsigned long long)(info->run_time_ns / info->run_cnt));
	printf("\n");
}

/* ---- attach ------------------------------------------------------------ */

static const char attach_usage[] =
	"usage: kashim attach [OPTIONS] CGROUP\n"
	"       kashim detach CGROUP\n"
	"       kashim status\n";

static int attach_help(void)
{
	printf("%s\n"
	       "attach sets TCP keepalive on every TCP connection made or accepted, from\n"
	       "now on, by any process in CGROUP (an absolute path to a cgroup v2\n"
	       "directory) or below: a BPF sock_ops program in the kernel, which reaches\n"
	       "what LD_PRELOAD cannot (static and Go programs, setuid programs, raw\n"
	       "system calls, io_uring).  Attaching again replaces the settings.  The\n"
	       "attachment stays after kashim exits, until detach or until the cgroup\n"
	       "is removed.  status lists every cgroup kashim is attached to.\n\n"
	       "options:\n"
	       "  --idle D            idle time before the first probe, 1s..32767s (15s)\n"
	       "  --interval D        time between probes, 1s..32767s (15s)\n"
	       "  --count N           unanswered probes before the drop, 1..127 (9)\n"
	       "  --user-timeout V    auto, off, or 1ms..2147483647ms (auto)\n"
	       "  --config FILE       the library's configuration file (/etc/kashim.conf):\n"
	       "                      its global settings; the options above win over it\n"
	       "  --mode M            respect (a program's own keepalive timers and user\n"
	       "                      timeout stay; with its own timers, an automatic user\n"
	       "                      timeout is not set) or force (kashim's values\n"
	       "                      stand) (respect)\n"
	       "Durations: 45, 45s, 2m, 1h (and 1500ms for the user timeout).\n\n"
	       "Needs Linux %d.%d or later (%d.%d for respect), CAP_BPF and CAP_NET_ADMIN\n"
	       "(CAP_SYS_ADMIN to replace, detach or list).\n"
	       "Exit status: 0 done, 1 refused or failed (nothing attached), 2 usage.\n",
	       attach_usage, KERNEL_SET_MAJOR, KERNEL_SET_MINOR, KERNEL_GET_MAJOR, KERNEL_GET_MINOR);
	return EXIT_OK;
}

/* Refuses a kernel whose bpf_setsockopt cannot set the options; in respect
 * mode on a kernel whose bpf_getsockopt cannot read them, says what
 * happens instead. */
static bool kernel_fits(const struct cgroup_settings *s)
{
	char release[128];
	int major, minor;

	kernel_version(&major, &minor, release, sizeof release);
	if (!kernel_at_least(major, minor, KERNEL_SET_MAJOR, KERNEL_SET_MINOR)) {
		fprintf(stderr, "kashim attach: this kernel (%s) cannot set keepalive options from "
			"BPF: bpf_setsockopt takes them from Linux %d.%d; nothing attached\n",
			release, KERNEL_SET_MAJOR, KERNEL_SET_MINOR);
		return false;
	}
	if (!sock_ops_supported()) {
		fprintf(stderr, "kashim attach: this kernel (%s) cannot load a BPF sock_ops "
			"program (%s); nothing attached\n", release, strerror(errno));
		return false;
	}
	if (!s->force && !kernel_at_least(major, minor, KERNEL_GET_MAJOR, KERNEL_GET_MINOR))
		fprintf(stderr, "kashim attach: this kernel (%s) cannot read a socket's own "
			"keepalive from BPF (Linux %d.%d can): --mode respect acts as force here\n",
			release, KERNEL_GET_MAJOR, KERNEL_GET_MINOR);
	return true;
}

/* A new program and map on the cgroup open at cgroup_fd. */
static bool attach_new(int cgroup_fd, const char *path, struct cgroup_settings *s)
{
	struct prog *p = calloc(1, sizeof *p);
	union bpf_attr attr;
	int map_fd = -1, prog_fd = -1;
	bool done = false;

	if (!p)
		goto out;
	if ((map_fd = create_map()) < 0) {
		fprintf(stderr, "kashim attach: cannot create the settings map: %s\n", strerror(errno));
		goto out;
	}
	if (map_access(map_fd, BPF_MAP_UPDATE_ELEM, s) < 0) {
		fprintf(stderr, "kashim attach: cannot write the settings: %s\n", strerror(errno));
		goto out;
	}
	if (!assemble_keepalive(p, map_fd)) {
		fprintf(stderr, "kashim attach: the program does not fit (a bug)\n");
		goto out;
	}
	if ((prog_fd = load_program(p->insn, p->n, PROG_NAME, false)) < 0) {
		fprintf(stderr, "kashim attach: cannot load the program: %s\n", strerror(errno));
		goto out;
	}
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_SOCK_OPS;
	/* Other sock_ops programs on this cgroup (systemd's, Cilium's) stay. */
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) {
		fprintf(stderr, "kashim attach: cannot attach to %s: %s%s\n", path, strerror(errno),
			errno == EPERM ? " (a program attached there without BPF_F_ALLOW_MULTI "
					 "allows no other)" : "");
		goto out;
	}
	done = true;
out:
	if (prog_fd >= 0)
		close(prog_fd);
	if (map_fd >= 0)
		close(map_fd);
	free(p);
	return done;
}

int cmd_attach(int argc, char **argv)
{
	struct kashim_config cfg;
	struct cgroup_settings s, old;
	bool help = false;
	int i, cgroup_fd, prog_fd, map_fd, status = EXIT_PROBLEM;

	i = parse_options(argc, argv, &cfg, &help, &(struct command){ "attach", "nothing attached" },
			  true);
	if (help)
		return attach_help();
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "%s", i == argc ? attach_usage : "kashim attach: one CGROUP only\n");
		return EXIT_USAGE;
	}
	if (cfg.scope != KASHIM_SCOPE_ALL || cfg.has_only || cfg.skip.n || cfg.program_filtered ||
	    cfg.debug)
		fprintf(stderr, "kashim attach: the file's scope, only, skip, debug and program "
			"settings are not applied in the cgroup mode; the others are\n");
	memset(&s, 0, sizeof s);
	settings_from(&cfg, &s);
	if ((cgroup_fd = open_cgroup("attach", argv[i])) < 0)
		return EXIT_PROBLEM;
	if (!privileged("attach", false) || !kernel_fits(&s))
		goto out;
	if (find_attached(cgroup_fd, &prog_fd, &map_fd, NULL)) {
		/* Already attached: the settings are replaced in place, the
		 * counts kept. */
		if (map_access(map_fd, BPF_MAP_LOOKUP_ELEM, &old) == 0) {
			s.connections = old.connections;
			s.refused = old.refused;
			s.last_error = old.last_error;
		}
		if (map_access(map_fd, BPF_MAP_UPDATE_ELEM, &s) == 0)
			status = EXIT_OK;
		else
			fprintf(stderr, "kashim attach: cannot replace the settings: %s\n",
				strerror(errno));
		close(prog_fd);
		close(map_fd);
	} else if (errno == EPERM) {
		/* Without CAP_SYS_ADMIN the programs there cannot be told
		 * apart: attaching could put a second kashim on the cgroup. */
		fprintf(stderr, "kashim attach: not permitted: %s has sock_ops programs that only "
			"CAP_SYS_ADMIN can identify (to replace kashim's); nothing attached\n", argv[i]);
	} else if (errno != 0) {
		fprintf(stderr, "kashim attach: cannot query %s: %s\n", argv[i], strerror(errno));
	} else if (attach_new(cgroup_fd, argv[i], &s)) {
		status = EXIT_OK;
	}
out:
	close(cgroup_fd);
	return status;
}

/* ---- detach ------------------------------------------------------------ */

int cmd_detach(int argc, char **argv)
{
	union bpf_attr attr;
	int cgroup_fd, prog_fd, map_fd, status = EXIT_PROBLEM;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return attach_help();
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: kashim detach CGROUP\n");
		return EXIT_USAGE;
	}
	if ((cgroup_fd = open_cgroup("detach", argv[1])) < 0)
		return EXIT_PROBLEM;
	if (!privileged("detach", true))
		goto out;
	if (!find_attached(cgroup_fd, &prog_fd, &map_fd, NULL)) {
		if (errno)
			fprintf(stderr, "kashim detach: cannot query %s: %s\n", argv[1], strerror(errno));
		else
			fprintf(stderr, "kashim detach: kashim is not attached to %s\n", argv[1]);
		goto out;
	}
	memset(&attr, 0, sizeof attr);
	attr.target_fd = (uint32_t)cgroup_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_SOCK_OPS;
	if (sys_bpf(BPF_PROG_DETACH, &attr) == 0)
		status = EXIT_OK;
	else
		fprintf(stderr, "kashim detach: %s: %s\n", argv[1], strerror(errno));
	close(prog_fd);
	close(map_fd);
out:
	close(cgroup_fd);
	return status;
}

/* ---- status ------------------------------------------------------------ */

#define WALK_DEPTH 32
#define WALK_MAX 100000

struct walk {
	unsigned visited, found;
	char path[4096];
};

/* Visits the cgroup open at fd (path in w->path) and its children, depth
 * first, bounded in depth and count. */
static void walk_cgroups(int fd, struct walk *w, int depth)
{
	struct bpf_prog_info info;
	struct cgroup_settings s;
	struct dirent *e;
	int prog_fd, map_fd;
	size_t len = strlen(w->path);
	DIR *d;

	if (++w->visited > WALK_MAX) {
		close(fd);
		return;
	}
	if (find_attached(fd, &prog_fd, &map_fd, &info)) {
		if (map_access(map_fd, BPF_MAP_LOOKUP_ELEM, &s) == 0) {
			print_settings(w->path, &s, &info);
			w->found++;
		}
		close(prog_fd);
		close(map_fd);
	}
	if (depth >= WALK_DEPTH || !(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		int child;

		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(w->path + len, sizeof w->path - len, "/%s", e->d_name) >=
		    (int)(sizeof w->path - len))
			continue;
		child = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (child >= 0)
			walk_cgroups(child, w, depth + 1);
		w->path[len] = 0;
	}
	closedir(d);
}

int cmd_status(int argc, char **argv)
{
	struct walk *w;
	int fd, status = EXIT_OK;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return attach_help();
	if (argc != 1) {
		fprintf(stderr, "usage: kashim status\n");
		return EXIT_USAGE;
	}
	if (!privileged("status", true))
		return EXIT_PROBLEM;
	if (!(w = calloc(1, sizeof *w)))
		return EXIT_PROBLEM;
	if (!cgroup2_mount(w->path, sizeof w->path)) {
		fprintf(stderr, "kashim status: no cgroup2 mount in /proc/self/mountinfo\n");
		status = EXIT_PROBLEM;
	} else if ((fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "kashim status: %s: %s\n", w->path, strerror(errno));
		status = EXIT_PROBLEM;
	} else {
		if (!strcmp(w->path, "/"))
			w->path[0] = 0;
		walk_cgroups(fd, w, 0);
		if (!w->found)
			printf("kashim is attached to no cgroup\n");
	}
	free(w);
	return status;
}

/* ---- dropin --cgroup ---------------------------------------------------- */

/* A systemd drop-in that attaches kashim to the service's own cgroup
 * before every start (and so after every restart: systemd makes the
 * cgroup anew each time, and the attachment goes with it at stop).  The
 * cgroup is read from /proc/self/cgroup by the ExecStartPre= process,
 * which runs in it; the options are written from the parsed values, so
 * nothing the operator typed reaches the unit file as is. */
int cmd_dropin_cgroup(int argc, char **argv)
{
	struct kashim_config cfg;
	char self[4096], root[4096];
	bool help = false;
	ssize_t n;
	int i;

	i = parse_attach(argc, argv, &cfg, &help, &(struct command){ "dropin", "nothing written" });
	if (help) {
		printf("usage: kashim dropin --cgroup [OPTIONS]\n\n"
		       "Prints a systemd drop-in that covers every TCP connection of a service\n"
		       "with kashim's cgroup mode (kashim attach on the service's cgroup before\n"
		       "each start), for programs LD_PRELOAD cannot reach:\n\n"
		       "  mkdir -p /etc/systemd/system/NAME.service.d\n"
		       "  kashim dropin --cgroup --idle 30s > /etc/systemd/system/NAME.service.d/kashim.conf\n"
		       "  systemctl daemon-reload && systemctl restart NAME\n\n"
		       "Options: those of kashim attach (kashim attach --help).\n");
		return EXIT_OK;
	}
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "kashim dropin: unexpected argument %s\n", argv[i]);
		return EXIT_USAGE;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0 || (size_t)n >= sizeof self - 1 || strpbrk(self, " '\"\\$%;")) {
		fprintf(stderr, "kashim dropin: cannot name this command's path in a unit file\n");
		return EXIT_PROBLEM;
	}
	self[n] = 0;
	if (!cgroup2_mount(root, sizeof root) || strpbrk(root, " '\"\\$%;")) {
		fprintf(stderr, "kashim dropin: no cgroup2 mount in /proc/self/mountinfo\n");
		return EXIT_PROBLEM;
	}
	if (!strcmp(root, "/"))
		root[0] = 0;
	printf("# Written by kashim dropin --cgroup: TCP keepalive for every connection of\n"
	       "# this service, by kashim's cgroup mode (a BPF program on the service's cgroup,\n"
	       "# attached before each start as root; it goes with the cgroup when the\n"
	       "# service stops).  Needs Linux %d.%d or later.\n"
	       "[Service]\n"
	       "ExecStartPre=+/bin/sh -c 'exec %s attach --idle %ds --interval %ds --count %d",
	       KERNEL_SET_MAJOR, KERNEL_SET_MINOR, self, cfg.idle_s, cfg.interval_s, cfg.count);
	if (cfg.user_timeout_mode == KASHIM_UT_OFF)
		printf(" --user-timeout off");
	else if (cfg.user_timeout_mode == KASHIM_UT_FIXED)
		printf(" --user-timeout %ums", cfg.user_timeout_ms);
	printf(" --mode %s \"%s$$(sed -n \"s/^0:://p\" /proc/self/cgroup)\"'\n",
	       cfg.mode == KASHIM_MODE_FORCE ? "force" : "respect", root);
	return EXIT_OK;
}
