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
#include "cgbpf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Kernels, as the kernel matrix measured them (tests/t_kernels.sh,
 * docs/kernels.md): the oldest tested is 5.10, where the cgroup mode works;
 * older ones are refused.  Whether bpf_getsockopt reads a socket's own
 * keepalive (what respect needs) is asked of the kernel by a probe, not
 * read from its version: 5.10 and 5.15 cannot, Debian 12's 6.1 and later
 * can. */
#define KERNEL_OLDEST_MAJOR 5
#define KERNEL_OLDEST_MINOR 10

static int load_program(const struct bpf_insn *insn, unsigned n, const char *name, bool quiet)
{
	return cgbpf_load(insn, n, name, quiet);
}

#define R0 BPF_REG_0
#define INSN(CODE, DST, SRC, OFF, IMM) \
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), .off = (OFF), .imm = (IMM) })
#define BPF_MOV64_IMM(DST, IMM) INSN(BPF_ALU64 | BPF_MOV | BPF_K, DST, 0, 0, IMM)
#define BPF_EXIT_INSN() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* A "Name:\tvalue" line of /proc/self/status, or -1. */
static long status_field(const char *name)
{
	char buf[8192], why[128], *p;
	size_t len = strlen(name);

	if (read_text("/proc/self/status", buf, sizeof buf, why, sizeof why) <= 0)
		return -1;
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ':')
			return strtol(p + len + 1, NULL, 10);
	return -1;
}

/* Is this process in a user namespace other than the initial one?  Its
 * capabilities then do not count for bpf(2). */
static bool in_user_namespace(void)
{
	char buf[256], why[128];
	unsigned long inside, outside, count;

	if (read_text("/proc/self/uid_map", buf, sizeof buf, why, sizeof why) <= 0)
		return false;
	return sscanf(buf, "%lu %lu %lu", &inside, &outside, &count) != 3 || inside != 0 ||
	       outside != 0 || count != 4294967295ul;
}

/* Kernels before 5.11 charge BPF programs and maps to RLIMIT_MEMLOCK
 * (measured: 5.10 does, with a 64 KiB default, 5.15 does not; 5.11 moved
 * the charge to the memory cgroup).  Attach raises the limit before it
 * loads anything; where it cannot (no CAP_SYS_RESOURCE, as in many
 * containers), only to the hard limit. */
static void raise_memlock(void)
{
	struct rlimit r = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MEMLOCK, &r) == 0 || getrlimit(RLIMIT_MEMLOCK, &r) != 0)
		return;
	r.rlim_cur = r.rlim_max;
	setrlimit(RLIMIT_MEMLOCK, &r);
}

/* After bpf(2) answered EPERM: on a kernel that charges BPF memory to a
 * locked-memory limit this process could not lift, that limit is the
 * likely cause; one line says so, with its value. */
static bool memlock_refusal(const char *release)
{
	struct rlimit r;
	int major, minor;

	if (sscanf(release, "%d.%d", &major, &minor) != 2 || major > 5 || (major == 5 && minor >= 11) ||
	    getrlimit(RLIMIT_MEMLOCK, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
		return false;
	fprintf(stderr, "kashim attach: bpf(2) was refused (%s): this kernel (%s) charges BPF "
		"programs and maps to the locked-memory limit (RLIMIT_MEMLOCK), which is %llu "
		"KiB here and this process cannot raise (it lacks CAP_SYS_RESOURCE): raise it "
		"(ulimit -l unlimited, LimitMEMLOCK=infinity, a container's --ulimit "
		"memlock=-1); nothing attached\n", strerror(EPERM), release,
		(unsigned long long)(r.rlim_cur / 1024));
	return true;
}

/* Can this kernel load a sock_ops program at all?  A trivial one, loaded
 * once and closed.  When it cannot, one line says whose refusal it is: the
 * kernel's (no BPF, no sock_ops), or this process's conditions (a seccomp
 * filter, a user namespace, a missing capability, a security module). */
static bool sock_ops_supported(const char *release)
{
	static const struct bpf_insn trivial[] = { BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN() };
	int fd = load_program(trivial, 2, "kashim_probe", true), err = errno;
	bool filtered;

	if (fd >= 0) {
		close(fd);
		return true;
	}
	filtered = status_field("Seccomp") == 2;
	if ((err == EPERM || err == EACCES) && filtered)
		fprintf(stderr, "kashim attach: bpf(2) was refused (%s) and this process runs "
			"under a seccomp filter, the likely cause (a container's, or a unit's "
			"SystemCallFilter=): let bpf through it; nothing attached\n", strerror(err));
	else if ((err == EPERM || err == EACCES) && in_user_namespace())
		fprintf(stderr, "kashim attach: bpf(2) was refused (%s): this process is in a user "
			"namespace, whose capabilities do not count for BPF; run it from the "
			"host; nothing attached\n", strerror(err));
	else if (err == EPERM && memlock_refusal(release))
		;
	else if (err == EPERM || err == EACCES)
		fprintf(stderr, "kashim attach: bpf(2) was refused (%s): not permitted here (a "
			"capability dropped from the bounding set, a security module, or kernel "
			"lockdown), not a kernel limit; nothing attached\n", strerror(err));
	else if (err == ENOSYS)
		fprintf(stderr, "kashim attach: bpf(2) does not exist here (%s): %s; nothing "
			"attached\n", strerror(err), filtered ? "a seccomp filter answers ENOSYS for it, "
			"or the kernel was built without CONFIG_BPF_SYSCALL" :
			"the kernel was built without CONFIG_BPF_SYSCALL");
	else
		fprintf(stderr, "kashim attach: this kernel (%s) cannot load a BPF sock_ops "
			"program (%s); nothing attached\n", release, strerror(err));
	errno = err;
	return false;
}

#define print_escaped(S) cgroup_print_escaped(stdout, S)

/* "kashim CMD: BEFORE" PATH (escaped) and the rest, one line on stderr. */
__attribute__((format(printf, 4, 5)))
static void say(const char *cmd, const char *before, const char *path, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "kashim %s: %s", cmd, before);
	cgroup_print_escaped(stderr, path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* attach's, detach's and dropin --cgroup's words for a refusal. */
struct command {
	const char *name;    /* "attach" */
	const char *nothing; /* "nothing attached" */
};

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
		fprintf(stderr, "kashim %s: not permitted: %s (%s)\n", cmd,
			need_sys_admin ? "needs CAP_SYS_ADMIN to find kashim's BPF programs"
				       : "loading and attaching a BPF program needs CAP_BPF and "
					 "CAP_NET_ADMIN, or CAP_SYS_ADMIN",
			in_user_namespace() ? "in the initial user namespace: run it from the host"
					    : "run it as root");
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

/* The cgroup this process runs in (the 0:: line of /proc/self/cgroup),
 * relative to the cgroup2 mount, into out; false (with the reason in why)
 * when there is none or it lies outside this cgroup namespace. */
static bool proc_cgroup(const char *file, char *out, size_t size, char *why, size_t why_size)
{
	enum { CGROUP_FILE_MAX = 1 << 20 }; /* bounded: a path is at most a few KiB */
	struct stat st;
	char *buf = NULL, *line, *save = NULL;
	bool found = false;
	ssize_t n;
	int fd = open_regular(file, &st, why, why_size);

	if (fd < 0)
		return false;
	if (!(buf = malloc(CGROUP_FILE_MAX + 1))) {
		snprintf(why, why_size, "%s", strerror(errno));
		goto out;
	}
	if ((n = read_at_most(fd, buf, CGROUP_FILE_MAX, why, why_size)) < 0)
		goto out;
	buf[n] = 0;
	snprintf(why, why_size, "no cgroup v2 line (0::) in %s", file);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::", 3))
			continue;
		line += 3;
		if (line[0] != '/' || !strncmp(line, "/..", 3)) {
			snprintf(why, why_size, "%s: the cgroup is outside this cgroup namespace", file);
			break;
		}
		if (strlen(line) >= size) {
			snprintf(why, why_size, "its cgroup's path is too long");
			break;
		}
		snprintf(out, size, "%s", line);
		found = true;
		break;
	}
out:
	free(buf);
	close(fd);
	return found;
}

/* A path below the mount must stay below it. */
static bool climbs_out(const char *path)
{
	const char *p = path;

	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += len;
		p += strspn(p, "/");
	}
	return false;
}

/* Is this process in a cgroup namespace other than the initial one?  The
 * initial one's inode number is fixed (PROC_CGROUP_INIT_INO). */
static bool in_cgroup_namespace(void)
{
	struct stat st;

	return stat("/proc/self/ns/cgroup", &st) == 0 && st.st_ino != 0xeffffffbu;
}

/* The directory CGROUP names, resolved where kashim runs (so that one
 * drop-in or unit works on every host, whatever its cgroup layout):
 *   /ABSOLUTE   that directory;
 *   self        the cgroup this process runs in (for ExecStartPre=, the
 *               service's own; a delegated unit's control processes run in
 *               its .control subgroup, so that one level is dropped);
 *   RELATIVE    that path below the cgroup2 mount of /proc/self/mountinfo
 *               (system.slice, kubepods.slice; ./self for one named self).
 * The mount point itself is in root (its text, "" for "/").  False, with
 * one line on stderr, when it cannot be resolved. */
static bool resolve_cgroup(const struct command *cmd, const char *operand, char *out, size_t size,
			   char *root, size_t root_size)
{
	char rel[4096], why[256], mount_root[4096];
	const char *below = operand;
	size_t len;
	bool mounted = cgroup2_mount_root(root, root_size, mount_root, sizeof mount_root);

	if (mounted && !strcmp(root, "/"))
		root[0] = 0;
	if (!mounted)
		root[0] = 0;
	if (!operand[0]) {
		fprintf(stderr, "kashim %s: the CGROUP is empty (an unset variable?): name a cgroup; "
			"%s\n", cmd->name, cmd->nothing);
		return false;
	}
	if (operand[0] == '/') {
		if ((size_t)snprintf(out, size, "%s", operand) >= size) {
			fprintf(stderr, "kashim %s: the cgroup's path is too long\n", cmd->name);
			return false;
		}
		return true;
	}
	if (!mounted) {
		say(cmd->name, "", operand, ": no cgroup2 mount in /proc/self/mountinfo to find it "
		    "below\n");
		return false;
	}
	if (!strcmp(operand, "self")) {
		if (!proc_cgroup("/proc/self/cgroup", rel, sizeof rel, why, sizeof why)) {
			fprintf(stderr, "kashim %s: self: %s\n", cmd->name, why);
			return false;
		}
		/* In a cgroup namespace, /proc/self/cgroup names the cgroup
		 * from the namespace's root, which is below the root of a
		 * mount made outside it (its field 4 then is not "/"). */
		if (in_cgroup_namespace() && strcmp(mount_root, "/")) {
			fprintf(stderr, "kashim %s: self: this process is in a cgroup namespace of its "
				"own (unshare -C, a container): /proc/self/cgroup shows its cgroup as "
				"%s, a path from the namespace's root, which is not the root of the "
				"cgroup2 mount at %s; name the cgroup by its path; %s\n", cmd->name,
				rel, root[0] ? root : "/", cmd->nothing);
			return false;
		}
		len = strlen(rel);
		if (len > 9 && !strcmp(rel + len - 9, "/.control"))
			rel[len - 9] = 0;
		if (!strcmp(rel, "/")) {
			fprintf(stderr, "kashim %s: self: this process is in the root cgroup%s (name %s "
				"to mean the whole %s); %s\n", cmd->name,
				in_cgroup_namespace() ? " of its cgroup namespace" : "",
				root[0] ? root : "/", in_cgroup_namespace() ? "namespace" : "machine",
				cmd->nothing);
			return false;
		}
		below = rel + 1;
	} else if (climbs_out(operand)) {
		say(cmd->name, "", operand, ": a path below the cgroup2 mount cannot hold \"..\"\n");
		return false;
	} else {
		/* "./self", "./-x": the template unit's form of a path that
		 * could be read as the word self or as an option */
		while (below[0] == '.' && below[1] == '/' && below[2])
			below += 2 + strspn(below + 2, "/");
	}
	if ((size_t)snprintf(out, size, "%s/%s", root, below) >= size) {
		fprintf(stderr, "kashim %s: the cgroup's path is too long\n", cmd->name);
		return false;
	}
	return true;
}

/* Does path name the directory root by its own text (trailing slashes
 * aside)? */
static bool names_mount(const char *path, const char *root)
{
	size_t len = strlen(path), rlen = strlen(root);

	while (len > 1 && path[len - 1] == '/')
		len--;
	if (!rlen)
		return len == 1 && path[0] == '/';
	return len == rlen && !strncmp(path, root, rlen);
}

/* Where the cgroup open at fd is in the tree of the cgroup2 mount at root
 * (its text, "" for "/"), whatever path reached it (a symlink, a bind
 * mount, /proc/PID/root/...): the kernel's file handle for it (the cgroup's
 * id) opened again on that mount, and the path of that.  The parents
 * attach checks are this path's. */
/* The path of the directory open at fd (its /proc/self/fd link), when it
 * is below the mount at root and names that very directory. */
static bool fd_path_below(int fd, const char *root, char *out, size_t size)
{
	struct stat want, got;
	char link[64];
	ssize_t n;
	size_t rlen = strlen(root);

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if (fstat(fd, &want) != 0 || (n = readlink(link, out, size)) <= 0 || (size_t)n >= size)
		return false;
	out[n] = 0;
	/* below the mount, by the text: a cgroup outside its view has none */
	if (!(rlen ? !strncmp(out, root, rlen) && (out[rlen] == '/' || !out[rlen]) : out[0] == '/'))
		return false;
	return stat(out, &got) == 0 && got.st_dev == want.st_dev && got.st_ino == want.st_ino;
}

static bool locate_cgroup(int fd, const char *root, char *out, size_t size)
{
	struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
	int root_fd = -1, again = -1, mount_id;
	bool ok = false;

	if (fh) {
		fh->handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) == 0 &&
		    (root_fd = open(root[0] ? root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
		    (again = open_by_handle_at(root_fd, fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
			ok = fd_path_below(again, root, out, size);
	}
	/* without handles (a seccomp filter refusing them): the path the
	 * kernel resolved, which a symlink does not hide */
	if (!ok)
		ok = fd_path_below(fd, root, out, size);
	if (again >= 0)
		close(again);
	if (root_fd >= 0)
		close(root_fd);
	free(fh);
	return ok;
}

/* A cgroup opened for attach or detach: its directory, and its real path
 * (see locate_cgroup; located false when it could not be found, and path
 * is then the one given). */
/* A cgroup not in the tree of the first cgroup2 mount, looked for in the
 * tree of the mount that holds path (the deepest cgroup2 mount point above
 * it): a pod sees its own cgroup namespace's mount first and the host's,
 * bound at /host/cgroup, after it.  On success root is that mount. */
static bool locate_on_holder(int fd, const char *path, char *root, size_t root_size, char *out,
			     size_t size)
{
	char holder[4096], *real = realpath(path, NULL);
	bool found = cgroup2_mount_of(real ? real : path, holder, sizeof holder, NULL, 0);

	free(real);
	if (!found || !strcmp(holder, "/") || !strcmp(holder, root) ||
	    !locate_cgroup(fd, holder, out, size))
		return false;
	snprintf(root, root_size, "%s", holder);
	return true;
}

struct target {
	int fd;
	bool located;
	char path[8192];
	char root[4096]; /* the cgroup2 mount it is on ("" for "/") */
};

/* Opens the cgroup CGROUP names (see resolve_cgroup) when it is a
 * directory on a cgroup v2 mount; else says why and returns false.  The
 * root cgroup (every process of the machine) only when named as the mount
 * point itself: ".", "" or a path that leads there by a detour is a
 * mistake more often than a wish. */
static bool open_cgroup(const struct command *cmd, const char *operand, struct target *t)
{
	char path[8192], root[4096];
	struct statfs sfs;
	struct stat st, top;
	int fd;

	if (!resolve_cgroup(cmd, operand, path, sizeof path, root, sizeof root))
		return false;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		say(cmd->name, "", path, ": %s\n", errno == ENOTDIR ? "not a directory" : strerror(errno));
		return false;
	}
	if (fstatfs(fd, &sfs) != 0 || sfs.f_type != CGROUP2_SUPER_MAGIC || fstat(fd, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		say(cmd->name, "", path, ": not a cgroup v2 directory (see the cgroup2 line of "
		    "/proc/self/mountinfo)\n");
		close(fd);
		return false;
	}
	t->fd = fd;
	t->located = locate_cgroup(fd, root, t->path, sizeof t->path);
	if (!t->located && operand[0] == '/')
		t->located = locate_on_holder(fd, path, root, sizeof root, t->path, sizeof t->path);
	snprintf(t->root, sizeof t->root, "%s", root);
	if (!t->located)
		snprintf(t->path, sizeof t->path, "%s", path);
	if (stat(root[0] ? root : "/", &top) == 0 && top.st_dev == st.st_dev &&
	    top.st_ino == st.st_ino && !names_mount(operand, root)) {
		say(cmd->name, "", operand, " is the root cgroup, every process of the machine: to "
		    "mean that, name it as %s; %s\n", root[0] ? root : "/", cmd->nothing);
		close(fd);
		return false;
	}
	return true;
}

/* ---- the settings, from the library's own parser -------------------------- */

static void report_line(void *ctx, const char *line, size_t len)
{
	fprintf(stderr, "kashim %s: %.*s", (const char *)ctx, (int)len, line);
}

/* The configuration of src as the cgroup mode takes it: the library's own
 * loader, without a program name, so that each setting only the preload
 * can apply ([program] sections, programs and skip_programs, debug) is
 * passed to unapplied, one line each, and the rest is applied.  attach and
 * kashim check both read a configuration through here.  Returns the number
 * of problems (reported to report; attach refuses a configuration with
 * any). */
static unsigned cgroup_config_load(struct kashim_config *cfg, const struct kashim_source *src,
				   kashim_report_fn *report, kashim_report_fn *unapplied, void *ctx)
{
	static const char debug_line[] =
		"kashim: debug not applied (the cgroup mode writes no debug lines: kashim status "
		"shows what it did); the other settings are applied\n";
	unsigned problems;

	problems = kashim_config_load_unnamed(cfg, src, report, unapplied,
					      "the cgroup mode does not know which program a "
					      "connection belongs to; the other settings are applied",
					      ctx);
	if (cfg->enabled && cfg->debug && unapplied)
		unapplied(ctx, debug_line, sizeof debug_line - 1);
	return problems;
}

/* The options of attach, as the library's variables, validated by
 * kashim_config_load_from so the grammar, ranges and messages are the
 * library's; --config FILE is KASHIM_CONFIG, so the file is read by the
 * library's own loader and the options win over it, as variables do in
 * the library.  Returns the index of the first operand, or -1. */
/* attach's own options (dropin --cgroup has none of them). */
struct attach_flags {
	bool override;         /* --override-inherited */
	bool lasting;          /* --lasting */
	bool oci_hook;         /* --oci-hook */
	const char *container; /* --container NAME */
	const char *engine;    /* --engine docker|podman */
};

/* Takes one of attach's own options at argv[*i] (and its value); false
 * when it is none of them, *bad when it lacks its value. */
static bool attach_flag(int argc, char **argv, int *i, struct attach_flags *f, bool *bad)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const char **value = len == 11 && !strncmp(a, "--container", 11) ? &f->container :
			     len == 8 && !strncmp(a, "--engine", 8) ? &f->engine : NULL;

	if (value && eq) /* --container=NAME, as --idle=30s */
		*value = eq + 1;
	else if (eq)
		return false;
	else if (!strcmp(a, "--override-inherited"))
		f->override = true;
	else if (!strcmp(a, "--lasting"))
		f->lasting = true;
	else if (!strcmp(a, "--oci-hook"))
		f->oci_hook = true;
	else if (!value)
		return false;
	else if (*i + 1 == argc || !argv[*i + 1][0])
		*bad = true;
	else
		*value = argv[++*i];
	return true;
}

static int parse_options(int argc, char **argv, struct kashim_config *cfg, bool *help,
			 const struct command *cmd, struct attach_flags *flags)
{
	static const char *const opt[] = { "--idle", "--interval", "--count", "--user-timeout",
					   "--mode", "--config", "--scope", "--only", "--skip" };
	static const char *const var[] = { "KASHIM_IDLE", "KASHIM_INTERVAL", "KASHIM_COUNT",
					   "KASHIM_USER_TIMEOUT", "KASHIM_MODE", "KASHIM_CONFIG",
					   "KASHIM_SCOPE", "KASHIM_ONLY", "KASHIM_SKIP" };
	enum { N = sizeof opt / sizeof opt[0], FILE_OPT = 5 };
	struct kashim_source src = { NULL, NULL, false, NULL };
	char *env[N + 1] = { 0 };
	const char *value[N] = { 0 };
	int i, n = 0, first = -1;
	bool bad = false;
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
		if (flags && attach_flag(argc, argv, &i, flags, &bad)) {
			if (!bad)
				continue;
			fprintf(stderr, "kashim %s: %s needs a value\n", cmd->name, a);
			return -1;
		}
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (k = 0; k < N && (strlen(opt[k]) != len || strncmp(a, opt[k], len)); k++)
			;
		if (k == N || (k == FILE_OPT && !flags)) {
			fprintf(stderr, "kashim %s: unknown option %s\n", cmd->name, a);
			return -1;
		}
		if (!eq && i + 1 == argc) {
			fprintf(stderr, "kashim %s: %s needs a value\n", cmd->name, opt[k]);
			return -1;
		}
		value[k] = eq ? eq + 1 : argv[++i];
	}
	/* As long as the command line allows: the library's own limits
	 * (KASHIM_MAX_RULES rules a list) are the only ones. */
	for (k = 0; k < N; k++)
		if (value[k] && asprintf(&env[n++], "%s=%s", var[k], value[k]) < 0) {
			env[--n] = NULL;
			fprintf(stderr, "kashim %s: %s: %s; %s\n", cmd->name, opt[k], strerror(errno),
				cmd->nothing);
			goto out;
		}
	src.envp = env;
	if (cgroup_config_load(cfg, &src, report_line, report_line, (void *)cmd->name) != 0) {
		fprintf(stderr, "kashim %s: %s; correct the %s above\n", cmd->name, cmd->nothing,
			value[FILE_OPT] ? "setting" : "option");
		goto out;
	}
	if (!cfg->enabled) {
		fprintf(stderr, "kashim %s: the configuration file turns kashim off (kashim = off); "
			"%s\n", cmd->name, cmd->nothing);
		goto out;
	}
	first = i;
out:
	while (n)
		free(env[--n]);
	return first;
}

/* dropin --cgroup's options: attach's, without --config (the unit would
 * depend on a file read at each start) and --override-inherited. */
static int parse_attach(int argc, char **argv, struct kashim_config *cfg, bool *help,
			const struct command *cmd)
{
	return parse_options(argc, argv, cfg, help, cmd, NULL);
}

/* The configuration as the program's policy, and its rules in order (ONLY,
 * then SKIP). */
static unsigned policy_from(const struct kashim_config *cfg, struct cg_policy *p,
			    struct cg_rule *rules)
{
	unsigned n = 0;
	int i;

	memset(p, 0, sizeof *p);
	p->idle_s = (uint32_t)cfg->idle_s;
	p->interval_s = (uint32_t)cfg->interval_s;
	p->count = (uint32_t)cfg->count;
	p->user_timeout_ms = cfg->user_timeout_mode == KASHIM_UT_OFF ? 0 : cfg->user_timeout_ms;
	p->user_timeout_auto = cfg->user_timeout_mode == KASHIM_UT_AUTO;
	p->force = cfg->mode == KASHIM_MODE_FORCE;
	p->scope = (uint32_t)cfg->scope;
	p->has_only = cfg->has_only;
	for (i = 0; cfg->has_only && i < cfg->only.n; i++, n++)
		rules[n] = (struct cg_rule){ .list = CG_ONLY, .rule = cfg->only.rule[i] };
	for (i = 0; i < cfg->skip.n; i++, n++)
		rules[n] = (struct cg_rule){ .list = CG_SKIP, .rule = cfg->skip.rule[i] };
	return n;
}

/* A rule as the grammar writes it, as config.c does: 10.0.0.0/8,
 * [fd00::/8]:443, :5432, :1-65535. */
static void print_rule(const struct kashim_rule *r)
{
	struct kashim_line l;

	kashim_line_start(&l);
	kashim_line_put_rule(&l, r);
	fwrite(l.buf, 1, l.len, stdout);
}

/* " --only 10.0.0.0/8,:5432": a list as the grammar writes it, with no
 * byte systemd's command line would read as a quote, specifier or
 * variable. */
static void print_rule_list(const char *option, const struct kashim_rules *list)
{
	int i;

	printf("%s", option);
	for (i = 0; i < list->n; i++) {
		if (i)
			printf(",");
		print_rule(&list->rule[i]);
	}
}

static const char *scope_word(uint32_t scope)
{
	return scope == KASHIM_SCOPE_CLIENT ? "client" : scope == KASHIM_SCOPE_SERVER ? "server" : "all";
}

/* "idle=37s interval=11s count=4 user_timeout=81000ms mode=respect": the
 * settings as status and check show them. */
static void print_settings(const struct cg_policy *p)
{
	printf("idle=%us interval=%us count=%u user_timeout=", p->idle_s, p->interval_s, p->count);
	if (p->user_timeout_ms)
		printf("%ums", p->user_timeout_ms);
	else
		printf("off");
	printf(" mode=%s", p->force ? "force" : "respect");
}

/* A line per rule, "  skip 10.0.0.0/8", with its count when skipped is
 * given. */
static void print_rules(const struct cg_policy *p, const struct cg_rule *rules,
			const uint64_t *skipped)
{
	uint32_t i;

	for (i = 0; i < p->n_rules && i < CG_RULES_MAX; i++) {
		printf("  %s ", rules[i].list == CG_ONLY ? "only" : "skip");
		print_rule(&rules[i].rule);
		if (skipped && rules[i].list == CG_SKIP)
			printf(" skipped=%llu", (unsigned long long)skipped[i]);
		printf("\n");
	}
}

/* One attachment: a line of settings and counts, then a line per rule.
 * With kernel.bpf_stats_enabled=1 the kernel times every run of the
 * program: ns_per_run is its cost in the kernel (two runs a connection
 * made and accepted inside the cgroup). */
static void print_attachment(const char *path, const struct cg_attached *a, const struct cg_state *st)
{
	const struct cg_policy *p = &st->policy;
	const struct cg_counts *c = &st->counts;

	print_escaped(path);
	printf(" ");
	print_settings(p);
	printf(" connections=%llu refused=%llu",
	       (unsigned long long)c->connections, (unsigned long long)c->refused);
	if (c->refused)
		printf(" last_error=%s", strerror(-c->last_error));
	if (p->scope != KASHIM_SCOPE_ALL)
		printf(" scope=%s out_of_scope=%llu", scope_word(p->scope),
		       (unsigned long long)c->out_of_scope);
	if (a->run_cnt)
		printf(" ns_per_run=%llu", (unsigned long long)(a->run_time_ns / a->run_cnt));
	printf("\n");
	print_rules(p, st->rules, st->skipped);
	if (p->has_only)
		printf("  only: no rule matched, skipped=%llu\n", (unsigned long long)c->not_only);
	if (c->unread)
		printf("  respect acted as force on %llu connections: this kernel's bpf_getsockopt "
		       "cannot read a socket's keepalive\n", (unsigned long long)c->unread);
}

/* ---- kashim check: what the cgroup mode makes of a configuration -------- */

/* The lines of what the cgroup mode does not apply, kept to be shown after
 * its settings. */
struct unapplied_lines {
	char *text;
	size_t len;
};

static void keep_unapplied(void *ctx, const char *line, size_t len)
{
	struct unapplied_lines *u = ctx;
	char *grown = realloc(u->text, u->len + len + 1);

	if (!grown)
		return;
	memcpy(grown + u->len, line, len);
	u->text = grown;
	u->len += len;
	u->text[u->len] = 0;
}

void cgroup_check(const struct kashim_source *src)
{
	static struct cg_rule rules[CG_RULES_MAX];
	struct kashim_config cfg;
	struct kashim_source unnamed = *src;
	struct unapplied_lines u = { NULL, 0 };
	struct cg_policy policy;
	unsigned problems;

	unnamed.program_names = NULL;
	printf("\ncgroup mode (kashim attach, the same settings given as its options and "
	       "--config):\n");
	problems = cgroup_config_load(&cfg, &unnamed, NULL, keep_unapplied, &u);
	if (problems) {
		printf("refused: kashim attach attaches nothing while a setting is bad (the "
		       "preload uses the default instead); correct the %s above\n",
		       problems == 1 ? "problem" : "problems");
	} else if (!cfg.enabled) {
		printf("off: kashim attach refuses a configuration that turns kashim off\n");
	} else {
		policy.n_rules = policy_from(&cfg, &policy, rules);
		print_settings(&policy);
		if (policy.scope != KASHIM_SCOPE_ALL)
			printf(" scope=%s", scope_word(policy.scope));
		printf("\n");
		print_rules(&policy, rules, NULL);
		if (u.text)
			printf("%s", u.text);
	}
	free(u.text);
}

/* ---- attach ------------------------------------------------------------ */

static const char attach_usage[] =
	"usage: kashim attach [OPTIONS] [--] CGROUP\n"
	"       kashim attach [OPTIONS] --container NAME|ID [--engine docker|podman]\n"
	"       kashim attach [OPTIONS] --oci-hook\n"
	"       kashim detach [--] CGROUP\n"
	"       kashim status\n";

static int attach_help(void)
{
	printf("%s\n"
	       "attach sets TCP keepalive on every TCP connection that a process in CGROUP\n"
	       "or below makes from now on, and on every one accepted from now on on a\n"
	       "listener created in CGROUP or below, whenever the listener was created\n"
	       "(before the attach too: the kernel runs the program at each accept; not\n"
	       "a listener created in another cgroup).  CGROUP is a cgroup v2 directory:\n"
	       "an absolute path, a path below the cgroup2 mount such as system.slice,\n"
	       "or self, the cgroup kashim runs in; ./self is one named self, and --\n"
	       "before CGROUP ends the options.  A BPF sock_ops program in the kernel,\n"
	       "which reaches what LD_PRELOAD cannot (static and Go programs, setuid\n"
	       "programs, raw system calls, io_uring).\n"
	       "Attaching again replaces the settings and rules\n"
	       "at once.  The attachment stays after kashim exits, until detach or until\n"
	       "the cgroup is removed.  status lists every cgroup kashim is attached to,\n"
	       "with its rules and what each skipped.\n\n"
	       "A cgroup its manager removes and makes anew (a container's own cgroup,\n"
	       "a systemd unit's own cgroup but a slice's) keeps the attachment only\n"
	       "until that container or unit stops or restarts: attach says so, and\n"
	       "what lasts instead (the engine's parent cgroup or the slice; for a\n"
	       "service kashim dropin --cgroup, for podman and CRI-O the OCI hook).\n\n"
	       "options:\n"
	       "  --idle D            idle time before the first probe, 1s..32767s (15s)\n"
	       "  --interval D        time between probes, 1s..32767s (15s)\n"
	       "  --count N           unanswered probes before the drop, 1..127 (9)\n"
	       "  --user-timeout V    auto, off, or 1ms..2147483647ms (auto)\n"
	       "  --mode M            respect (a program's own keepalive timers and user\n"
	       "                      timeout stay; with its own timers, an automatic user\n"
	       "                      timeout is not set) or force (kashim's values\n"
	       "                      stand) (respect)\n"
	       "  --scope S           client (connections made), server (accepted), or\n"
	       "                      all, also written both (all)\n"
	       "  --only RULES        only connections matching a rule (KASHIM_ONLY's form)\n"
	       "  --skip RULES        not connections matching a rule (KASHIM_SKIP's form):\n"
	       "                      10.0.0.0/8, ::1, :5432, :8000-8999, 10.1.2.3:5432,\n"
	       "                      [fd00::/8]:443; a connection made is matched on its\n"
	       "                      peer, one accepted on its local address and port\n"
	       "  --config FILE       the library's configuration file (/etc/kashim.conf):\n"
	       "                      its global settings and rules; the options above win\n"
	       "                      over it; [program] sections and program filters\n"
	       "                      cannot apply here (each is named)\n"
	       "  --override-inherited  attach even where it switches off a sock_ops program\n"
	       "                      a parent cgroup attached with BPF_F_ALLOW_OVERRIDE\n"
	       "  --lasting           refuse a cgroup that goes when its container or unit\n"
	       "                      stops or restarts (status 2, nothing attached)\n"
	       "  --container NAME    the cgroup of that running container (name or ID),\n"
	       "                      found by its engine's inspect (its main process)\n"
	       "  --engine E          docker or podman (default: docker, then podman)\n"
	       "  --oci-hook          as an OCI hook (createRuntime or prestart): the cgroup\n"
	       "                      of the container whose state is on standard input;\n"
	       "                      fails open (status 0, the container starts uncovered)\n"
	       "Durations: 45, 45s, 2m, 1h (and 1500ms for the user timeout).\n\n"
	       "Needs Linux %d.%d or later, CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN to\n"
	       "replace, detach or list).  respect keeps a program's own settings on 6.1 and\n"
	       "later; where the kernel cannot read them (5.10, 5.15) it acts as force, and\n"
	       "says so (docs/kernels.md).\n"
	       "Exit status: 0 done, 1 refused or failed (nothing attached), 2 usage or a\n"
	       "cgroup --lasting refuses.\n",
	       attach_usage, KERNEL_OLDEST_MAJOR, KERNEL_OLDEST_MINOR);
	return EXIT_OK;
}

/* Refuses a kernel whose bpf_setsockopt cannot set the options; in respect
 * mode, asks the kernel (a probe program on one loopback connection)
 * whether bpf_getsockopt can read a socket's own keepalive, and says what
 * happens when it cannot. */
static bool kernel_fits(const struct cg_policy *p)
{
	char release[128], root[4096];
	int major, minor, can;

	kernel_version(&major, &minor, release, sizeof release);
	if (!kernel_at_least(major, minor, KERNEL_OLDEST_MAJOR, KERNEL_OLDEST_MINOR)) {
		fprintf(stderr, "kashim attach: this kernel (%s) is older than Linux %d.%d, the "
			"oldest the cgroup mode is tested on; nothing attached\n",
			release, KERNEL_OLDEST_MAJOR, KERNEL_OLDEST_MINOR);
		return false;
	}
	if (!sock_ops_supported(release))
		return false;
	if (p->force) {
		if (cgroup2_mount(root, sizeof root))
			cgbpf_remove_stale_probes(root);
		return true;
	}
	can = cgroup2_mount(root, sizeof root) ? cgbpf_can_read_keepalive(root) : -1;
	if (can == 0)
		fprintf(stderr, "kashim attach: this kernel (%s) cannot read a socket's own "
			"keepalive from BPF (bpf_getsockopt refused it): --mode respect acts as "
			"force here\n", release);
	else if (can < 0)
		fprintf(stderr, "kashim attach: could not ask this kernel whether BPF can read a "
			"socket's own keepalive; where it cannot, respect acts as force (kashim "
			"status counts it)\n");
	return true;
}

/* Serializes attach and detach on one cgroup: an exclusive lock on its
 * directory, waited for up to 30 s. */
static bool lock_cgroup(const char *cmd, int fd, const char *path)
{
	int i;

	for (i = 0; i < 3000; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			say(cmd, "cannot lock ", path, ": %s\n", strerror(errno));
			return false;
		}
		usleep(10000);
	}
	say(cmd, "another kashim attach or detach has held ", path, " for 30 s; nothing changed\n");
	return false;
}

/* The sock_ops programs attached directly to a cgroup, and their flags. */
struct level {
	uint32_t flags, n;
	uint32_t ids[64];
};

static bool query_level(const char *path, struct level *l)
{
	union bpf_attr attr;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	memset(l, 0, sizeof *l);
	if (fd < 0)
		return false;
	memset(&attr, 0, sizeof attr);
	attr.query.target_fd = (uint32_t)fd;
	attr.query.attach_type = BPF_CGROUP_SOCK_OPS;
	attr.query.prog_ids = cgbpf_ptr(l->ids);
	attr.query.prog_cnt = sizeof l->ids / sizeof l->ids[0];
	if (cgbpf_sys(BPF_PROG_QUERY, &attr) == 0) {
		l->flags = attr.query.attach_flags;
		l->n = attr.query.prog_cnt < 64 ? attr.query.prog_cnt : 64;
	}
	close(fd);
	return true;
}

/* "program 42 (name)", or "program 42" when its name cannot be read. */
static void program_text(uint32_t id, char *out, size_t size)
{
	struct bpf_prog_info info;
	union bpf_attr a;
	int fd;

	snprintf(out, size, "program %u", id);
	memset(&a, 0, sizeof a);
	a.prog_id = id;
	if ((fd = cgbpf_sys(BPF_PROG_GET_FD_BY_ID, &a)) < 0)
		return;
	memset(&info, 0, sizeof info);
	memset(&a, 0, sizeof a);
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = sizeof info;
	a.info.info = cgbpf_ptr(&info);
	if (cgbpf_sys(BPF_OBJ_GET_INFO_BY_FD, &a) == 0 && info.name[0])
		snprintf(out, size, "program %u (%.16s)", id, info.name);
	close(fd);
}

/* Before a new attachment: the kernel's rules for programs inherited from
 * parent cgroups.  A parent's program attached with neither
 * BPF_F_ALLOW_MULTI nor BPF_F_ALLOW_OVERRIDE allows none below (the
 * kernel refuses: say which parent); one attached with
 * BPF_F_ALLOW_OVERRIDE is switched off for the cgroup by any program
 * attached to it, so kashim would silently stop someone else's program
 * there: refused unless the operator asks for it. */
static bool parents_allow(const struct target *t, bool override)
{
	const char *path = t->path;
	char root[4096], *up = strdup(path), *slash, what[64];
	struct level self, l;
	unsigned effective_below;
	size_t rlen;
	bool ok = true, blocked_checked = false;

	if (!t->located && !override) {
		say("attach", "cannot find ", path, " in the tree of the cgroup2 mount, so its "
		    "parents' sock_ops programs cannot be checked; nothing attached "
		    "(--override-inherited attaches anyway)\n");
		free(up);
		return false;
	}
	if (!up)
		return true; /* the kernel decides */
	snprintf(root, sizeof root, "%s", t->root); /* the mount that holds it */
	rlen = strlen(root);
	query_level(path, &self);
	if (self.n && !(self.flags & BPF_F_ALLOW_MULTI)) {
		program_text(self.ids[0], what, sizeof what);
		say("attach", "", path, " has %s attached %s, which allows no other; nothing "
		    "attached\n", what, self.flags & BPF_F_ALLOW_OVERRIDE ? "with BPF_F_ALLOW_OVERRIDE" :
			"without BPF_F_ALLOW_MULTI");
		free(up);
		return false;
	}
	effective_below = self.n;
	while (ok && (slash = strrchr(up, '/')) && (size_t)(slash - up) >= rlen) {
		*slash = 0;
		if (!query_level(*up ? up : "/", &l))
			break;
		if (!l.n)
			continue;
		if (!blocked_checked && !(l.flags & (BPF_F_ALLOW_MULTI | BPF_F_ALLOW_OVERRIDE))) {
			program_text(l.ids[0], what, sizeof what);
			say("attach", "the parent cgroup ", *up ? up : "/", " has %s attached without "
			    "BPF_F_ALLOW_MULTI or BPF_F_ALLOW_OVERRIDE, which allows no program "
			    "below it; nothing attached\n", what);
			ok = false;
			break;
		}
		blocked_checked = true; /* the kernel looks up to the first level with programs */
		if (l.flags & BPF_F_ALLOW_MULTI) {
			effective_below += l.n;
			continue;
		}
		if (!effective_below && !override) {
			program_text(l.ids[0], what, sizeof what);
			say("attach", "the parent cgroup ", *up ? up : "/", " runs %s for ", what);
			cgroup_print_escaped(stderr, path);
			fprintf(stderr, ", attached with BPF_F_ALLOW_OVERRIDE: a program attached "
				"below replaces it, so kashim would switch it off there; nothing "
				"attached (--override-inherited attaches anyway)\n");
			ok = false;
		}
		effective_below += l.n;
	}
	free(up);
	return ok;
}

/* Removes kashim programs from the cgroup; returns how many. */
static int detach_all(const char *cmd, int cgroup_fd, const char *path, struct cg_attached *a,
		      int n, int keep)
{
	union bpf_attr attr;
	int i, done = 0;

	for (i = 0; i < n; i++) {
		if (i == keep)
			continue;
		memset(&attr, 0, sizeof attr);
		attr.target_fd = (uint32_t)cgroup_fd;
		attr.attach_bpf_fd = (uint32_t)a[i].prog_fd;
		attr.attach_type = BPF_CGROUP_SOCK_OPS;
		if (cgbpf_sys(BPF_PROG_DETACH, &attr) == 0)
			done++;
		else
			say(cmd, "", path, ": cannot detach program %u: %s\n", a[i].prog_id,
			    strerror(errno));
	}
	return done;
}

#define FOUND_MAX 16

/* One CGROUP, or none with --container or --oci-hook; --engine only with
 * --container. */
static bool operands_fit(const struct attach_flags *f, int operands)
{
	const char *problem = NULL;

	if (f->container && f->oci_hook)
		problem = "--container and --oci-hook each name the cgroup: one of them";
	else if ((f->container || f->oci_hook) && operands)
		problem = f->container ? "--container names the cgroup: no CGROUP with it" :
					 "--oci-hook names the cgroup: no CGROUP with it";
	else if (f->engine && !f->container)
		problem = "--engine goes with --container";
	else if (f->engine && strcmp(f->engine, "docker") && strcmp(f->engine, "podman"))
		problem = "--engine: docker or podman";
	else if (f->container && f->container[0] == '-')
		problem = "--container: a name or ID does not start with -";
	else if (!f->container && !f->oci_hook && operands > 1)
		problem = "one CGROUP only";
	if (problem)
		fprintf(stderr, "kashim attach: %s\n", problem);
	else if (!f->container && !f->oci_hook && !operands)
		fprintf(stderr, "%s", attach_usage);
	return !problem && (f->container || f->oci_hook || operands == 1);
}

/* ---- how long it lasts --------------------------------------------------- */

/* The container's short ID (its first 12 hex digits) in a cgroup's name. */
static void short_id(const char *name, char *out, size_t size)
{
	const char *p;

	for (p = name; *p; p++)
		if (strspn(p, "0123456789abcdef") >= 64)
			break;
	snprintf(out, size, "%.12s", *p ? p : name);
}

/* What covers the cgroup life describes at every start: one clause. */
static void lasting_route(const struct target *t, const struct cgroup_life *life)
{
	size_t len = strlen(life->name);
	char parent[8192];

	snprintf(parent, sizeof parent, "%.*s", (int)life->parent_len, t->path);
	if (life->kind == CG_UNIT && len > 8 && !strcmp(life->name + len - 8, ".service"))
		fprintf(stderr, "use kashim dropin --cgroup (it attaches at each start) or attach to "
			"its slice ");
	else if (life->kind == CG_UNIT && len > 7 && !strcmp(life->name + len - 7, ".socket"))
		fprintf(stderr, "use kashim dropin --cgroup --socket (it attaches at each start) or "
			"attach to its slice ");
	else if (life->kind == CG_UNIT)
		fprintf(stderr, "attach to its slice ");
	else if (life->engine[0])
		fprintf(stderr, "attach to %s's parent cgroup ", life->engine);
	else
		fprintf(stderr, "attach to its engine's parent cgroup ");
	cgroup_print_escaped(stderr, parent[0] ? parent : "/");
	if (life->kind == CG_CONTAINER) {
		size_t plen = strlen(parent);
		/* the systemd driver's parent is a slice that holds other
		 * units too (system.slice: every system service) */
		bool slice = plen > 6 && !strcmp(parent + plen - 6, ".slice");

		fprintf(stderr, " (every container started there, restarts included%s)%s",
			slice ? ", and every other service of that slice" : "",
			life->hook ? ", or use kashim's OCI hook, which attaches to each container as "
				     "it starts (kashim(1))" : "");
	}
}

/* The cgroup t is (in) one that its manager removes when a container or a
 * unit stops or restarts, and kashim's program with it.  With --lasting a
 * refusal; else a note, the attachment made. */
static void lasting_message(const struct target *t, const struct cgroup_life *life, bool refused)
{
	const char *manager = life->kind != CG_CONTAINER ? "systemd" :
			      life->engine[0] ? life->engine : "its engine";
	char id[16];
	size_t len = strlen(t->path);
	bool below = life->parent_len + 1 + strlen(life->name) < len;

	fflush(stdout);
	fprintf(stderr, "kashim attach: %s", refused ? "--lasting: " : "");
	cgroup_print_escaped(stderr, t->path);
	fprintf(stderr, " is %sthe cgroup of ", below ? "in " : "");
	if (life->kind == CG_CONTAINER) {
		short_id(life->name, id, sizeof id);
		fprintf(stderr, "%s%scontainer %s", life->engine, life->engine[0] ? " " : "", id);
	} else {
		cgroup_print_escaped(stderr, life->name);
	}
	if (refused)
		fprintf(stderr, ", which %s removes when it stops or restarts; for coverage that "
			"lasts, ", manager);
	else
		fprintf(stderr, ": covered until it stops or restarts (%s removes that cgroup, and "
			"kashim with it); for coverage that lasts, ", manager);
	lasting_route(t, life);
	fprintf(stderr, "%s\n", refused ? "; nothing attached" : "");
}

/* ---- a container's cgroup, from its engine or its runtime ------------------ */

/* The cgroup of process pid, as attach's operand (its path below the
 * cgroup2 mount, "./" before it so that no name is read as self). */
static bool pid_cgroup(const char *what, long pid, char *out, size_t size)
{
	char file[64], rel[4096], why[512], root[4096], mount_root[4096];

	snprintf(file, sizeof file, "/proc/%ld/cgroup", pid);
	if (!proc_cgroup(file, rel, sizeof rel, why, sizeof why)) {
		fprintf(stderr, "kashim attach: %s: %s; nothing attached\n", what, why);
		return false;
	}
	if (cgroup2_mount_root(root, sizeof root, mount_root, sizeof mount_root) &&
	    in_cgroup_namespace() && strcmp(mount_root, "/")) {
		fprintf(stderr, "kashim attach: %s: this process is in a cgroup namespace of its own, "
			"which names cgroups from another root than the cgroup2 mount at %s; run it "
			"where the container's engine runs; nothing attached\n", what, root);
		return false;
	}
	if (!strcmp(rel, "/")) {
		fprintf(stderr, "kashim attach: %s: its process %ld is in the root cgroup, every "
			"process of the machine; nothing attached\n", what, pid);
		return false;
	}
	if ((size_t)snprintf(out, size, ".%s", rel) >= size) {
		fprintf(stderr, "kashim attach: %s: its cgroup's path is too long\n", what);
		return false;
	}
	return true;
}

/* The container's own cgroup in path (".", then the path below the
 * cgroup2 mount): the innermost component named after its ID ("ID",
 * "docker-ID.scope", "libpod-ID", "crio-ID.scope"...), the path cut after
 * it, since the process may sit below it (docker:dind's init, a systemd
 * inside the container).  No such component: the process is not in a
 * cgroup of the container's own (a rootless one, --cgroups=disabled), and
 * attaching there would cover more than the container. */
static bool cut_at_container(char *path, const char *id)
{
	size_t n = strlen(id);
	char *c, *best = NULL;

	if (n < 12) /* too short to tell a container's name from another's */
		return false;
	for (c = path; (c = strstr(c, id)) != NULL; c++) {
		char before = c == path ? '/' : c[-1], *after = c + n;
		if ((before == '/' || before == '-') &&
		    (!*after || *after == '/' || !strncmp(after, ".scope", 6)))
			best = c;
	}
	if (!best)
		return false;
	best = strchr(best, '/');
	if (best)
		*best = 0;
	return true;
}

static bool container_own(const char *what, const char *id, char *out)
{
	if (cut_at_container(out, id))
		return true;
	fprintf(stderr, "kashim attach: %s: its process is in %s, a cgroup that is not the "
		"container's own (a rootless container, or one run with --cgroups=disabled, stays in "
		"the cgroup of whoever started it): attaching there would cover more than the "
		"container; nothing attached\n", what, out + 1);
	return false;
}

/* --container NAME: its engine (--engine, or docker then podman) asked for
 * its main process, whose cgroup is the container's when its name holds
 * the container's ID (a rootless container shares its caller's). */
static bool container_cgroup(const struct attach_flags *f, char *out, size_t size)
{
	static const char *const engines[] = { "docker", "podman" };
	char id[CONTAINER_ID_LEN_MAX], why[2][1024], what[1200], shown[1024];
	long pid = 0;
	int k, rc = CONTAINER_NO_ENGINE, tried = 0;

	for (k = 0; k < 2; k++) {
		if (f->engine && strcmp(f->engine, engines[k]))
			continue;
		rc = container_inspect(engines[k], f->container, &pid, id, sizeof id, why[tried],
				       sizeof why[tried]);
		tried++;
		if (rc == CONTAINER_FOUND || rc == CONTAINER_NOT_RUNNING)
			break;
	}
	escaped(f->container, shown, sizeof shown);
	if (rc != CONTAINER_FOUND) {
		if (tried == 2 && rc != CONTAINER_NOT_RUNNING)
			fprintf(stderr, "kashim attach: --container %s: %s; %s; nothing attached\n",
				shown, why[0], why[1]);
		else
			fprintf(stderr, "kashim attach: --container %s: %s; nothing attached\n", shown,
				why[tried - 1]);
		return false;
	}
	snprintf(what, sizeof what, "--container %s (%s, pid %ld)", shown, engines[k], pid);
	if (!pid_cgroup(what, pid, out, size))
		return false;
	return container_own(what, id, out);
}

/* --oci-hook: the runtime's state on the standard input (bounded), its
 * pid's cgroup. */
static bool hook_cgroup(char *out, size_t size)
{
	enum { STATE_MAX = 1 << 20, STATE_SECONDS = 10 };
	char *state = malloc(STATE_MAX + 1), id[80], what[128];
	size_t got = 0;
	long pid;
	bool ok = false;
	time_t end = time(NULL) + STATE_SECONDS;

	while (state && got < STATE_MAX && time(NULL) < end) {
		struct pollfd pfd = { 0, POLLIN, 0 };
		ssize_t n;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if ((n = read(0, state + got, STATE_MAX - got)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (state) {
		state[got] = 0;
		ok = oci_state_pid(state, &pid, id, sizeof id);
	}
	if (!ok)
		fprintf(stderr, "kashim attach: --oci-hook: no \"pid\" in the container state on the "
			"standard input (%zu bytes; an OCI runtime gives it to its hooks); nothing "
			"attached\n", got);
	free(state);
	if (!ok)
		return false;
	snprintf(what, sizeof what, "--oci-hook: container %s (pid %ld)", id, pid);
	return pid_cgroup(what, pid, out, size) && container_own(what, id, out);
}


static int attach_run(int argc, char **argv)
{
	static struct cg_rule rules[CG_RULES_MAX];
	struct cg_attached found[FOUND_MAX];
	struct kashim_config cfg;
	struct cg_policy policy;
	bool help = false, each_start;
	static const struct command attach = { "attach", "nothing attached" };
	struct attach_flags flags = { 0 };
	struct cgroup_life life;
	struct target t;
	char found_cgroup[4096];
	const char *operand;
	int i, k, n, current = -1, status = EXIT_PROBLEM;
	unsigned n_rules;

	i = parse_options(argc, argv, &cfg, &help, &attach, &flags);
	if (help)
		return attach_help();
	if (i < 0 || !operands_fit(&flags, argc - i))
		return EXIT_USAGE;
	if (flags.container && !container_cgroup(&flags, found_cgroup, sizeof found_cgroup))
		return EXIT_PROBLEM;
	if (flags.oci_hook && !hook_cgroup(found_cgroup, sizeof found_cgroup))
		return EXIT_PROBLEM;
	operand = flags.container || flags.oci_hook ? found_cgroup : argv[i];
	n_rules = policy_from(&cfg, &policy, rules);
	if (!open_cgroup(&attach, operand, &t))
		return EXIT_PROBLEM;
	/* Attached again at each start: by the OCI hook, or by the unit
	 * itself (systemd runs a unit's commands with INVOCATION_ID set;
	 * kashim dropin --cgroup's ExecStartPre= names self). */
	each_start = flags.oci_hook || (!strcmp(operand, "self") && getenv("INVOCATION_ID"));
	cgroup_lifetime(t.path, strncmp(t.path, t.root, strlen(t.root)) ? 0 : strlen(t.root), &life);
	if (life.kind != CG_LASTS && !each_start && flags.lasting) {
		lasting_message(&t, &life, true);
		close(t.fd);
		return EXIT_USAGE;
	}
	/* before anything is loaded: the probes too count against it */
	raise_memlock();
	if (!privileged("attach", false) || !kernel_fits(&policy) ||
	    !lock_cgroup("attach", t.fd, t.path))
		goto out;
	if ((n = cgbpf_find(t.fd, found, FOUND_MAX)) < 0) {
		if (errno == EPERM)
			/* Without CAP_SYS_ADMIN the programs there cannot be
			 * told apart: attaching could put a second kashim on
			 * the cgroup. */
			say("attach", "not permitted: ", t.path, " has sock_ops programs that only "
			    "CAP_SYS_ADMIN can identify (to replace kashim's); nothing attached\n");
		else
			say("attach", "cannot query ", t.path, ": %s\n", strerror(errno));
		goto out;
	}
	for (k = 0; k < n && current < 0; k++)
		if (found[k].current)
			current = k;
	if (current >= 0) {
		/* Already attached: the whole set replaced at once, the counts
		 * kept; any other kashim program there (another version's)
		 * removed. */
		if (cgbpf_replace(&found[current], &policy, rules, n_rules)) {
			status = EXIT_OK;
			detach_all("attach", t.fd, t.path, found, n, current);
		}
	} else if (parents_allow(&t, flags.override) &&
		   cgbpf_attach_new(t.fd, t.path, &policy, rules, n_rules,
				    n ? found[0].prog_fd : -1)) {
		/* found[0], another version's, was replaced in the attach */
		status = EXIT_OK;
		if (n > 1)
			detach_all("attach", t.fd, t.path, found, n, 0);
	}
	if (status != EXIT_OK && errno == EPERM) {
		char release[128];
		int major, minor;

		kernel_version(&major, &minor, release, sizeof release);
		memlock_refusal(release); /* a map or the program past the limit */
	}
	cgbpf_release(found, n);
	if (status == EXIT_OK && life.kind != CG_LASTS && !each_start)
		lasting_message(&t, &life, false);
out:
	close(t.fd); /* and the lock with it */
	return status;
}

/* As an OCI hook, kashim fails open: a hook that fails stops the
 * container from starting, and one bad /etc/kashim.conf (or a kernel that
 * refuses BPF) would then stop every container of the host.  The reason
 * is on stderr (the runtime's debug log) and in the system log; the
 * container starts uncovered, which kashim audit reports. */
int cmd_attach(int argc, char **argv)
{
	bool hook = false;
	int i, status;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--oci-hook"))
			hook = true;
	status = attach_run(argc, argv);
	if (!hook || status == EXIT_OK)
		return status;
	fprintf(stderr, "kashim attach: --oci-hook: the container starts without kashim\n");
	openlog("kashim", LOG_PID, LOG_DAEMON);
	syslog(LOG_WARNING, "kashim attach --oci-hook: nothing attached (status %d); the container "
	       "starts without kashim: run kashim attach --container ID to see why", status);
	closelog();
	return EXIT_OK;
}

/* ---- detach ------------------------------------------------------------ */

int cmd_detach(int argc, char **argv)
{
	static const struct command detach = { "detach", "nothing detached" };
	struct cg_attached found[FOUND_MAX];
	struct target t;
	int n, status = EXIT_PROBLEM;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return attach_help();
	/* "--" ends the options, as in attach: a cgroup may be named -x */
	if (argc == 3 && !strcmp(argv[1], "--"))
		argc--, argv++;
	else if (argc == 2 && argv[1][0] == '-')
		argc = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: kashim detach [--] CGROUP\n");
		return EXIT_USAGE;
	}
	if (!open_cgroup(&detach, argv[1], &t))
		return EXIT_PROBLEM;
	if (!privileged("detach", true) || !lock_cgroup("detach", t.fd, t.path))
		goto out;
	if ((n = cgbpf_find(t.fd, found, FOUND_MAX)) <= 0) {
		if (n < 0)
			say("detach", "cannot query ", t.path, ": %s\n", strerror(errno));
		else
			say("detach", "kashim is not attached to ", t.path, "\n");
		goto out;
	}
	/* every kashim program found, whatever its version */
	if (detach_all("detach", t.fd, t.path, found, n, -1) == n)
		status = EXIT_OK;
	cgbpf_release(found, n);
out:
	close(t.fd);
	return status;
}

/* ---- status ------------------------------------------------------------ */

/* The walk: depth first, with a stack of open directories on the heap (no
 * recursion, no depth limit), bounded in cgroups visited and in time. */
#define WALK_MAX 200000
#define WALK_SECONDS 60

struct frame {
	DIR *dir;
	size_t len; /* of the path, at this directory */
};

struct walk {
	char *path;
	size_t size;
	struct frame *stack;
	size_t depth, cap;
	unsigned visited, found, unopened, torn;
	int first_errno;
	struct timespec start;
	struct cg_state st;
};

static bool path_append(struct walk *w, size_t at, const char *name)
{
	size_t need = at + 1 + strlen(name) + 1;

	if (need > w->size) {
		char *grown = realloc(w->path, need * 2);
		if (!grown)
			return false;
		w->path = grown;
		w->size = need * 2;
	}
	w->path[at] = '/';
	strcpy(w->path + at + 1, name);
	return true;
}

static void visit(int fd, struct walk *w)
{
	struct cg_attached found[FOUND_MAX];
	int n = cgbpf_find(fd, found, FOUND_MAX), k;

	for (k = 0; k < n; k++) {
		if (found[k].current && cgbpf_read(&found[k], &w->st)) {
			print_attachment(*w->path ? w->path : "/", &found[k], &w->st);
		} else if (found[k].current && errno == EAGAIN) {
			say("status", "", *w->path ? w->path : "/", ": kashim program %u was replaced "
			    "while read, again and again; run kashim status again\n", found[k].prog_id);
			w->torn++;
		} else {
			print_escaped(*w->path ? w->path : "/");
			printf(" kashim program %u of another version (kashim attach replaces it, "
			       "kashim detach removes it)\n", found[k].prog_id);
		}
		w->found++;
	}
	if (n > 0)
		cgbpf_release(found, n);
}

static bool out_of_time(const struct walk *w)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - w->start.tv_sec >= WALK_SECONDS;
}

static bool push(struct walk *w, int fd)
{
	DIR *d;

	if (w->depth == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct frame *grown = realloc(w->stack, cap * sizeof *grown);
		if (!grown) {
			close(fd);
			return false;
		}
		w->stack = grown;
		w->cap = cap;
	}
	if (!(d = fdopendir(fd))) {
		close(fd);
		return false;
	}
	w->stack[w->depth].dir = d;
	w->stack[w->depth].len = strlen(w->path);
	w->depth++;
	return true;
}

/* Returns false when cut short (count or time). */
static bool walk_cgroups(int root_fd, struct walk *w)
{
	bool complete = true;

	w->visited = 1;
	visit(root_fd, w);
	if (!push(w, root_fd))
		return true;
	while (w->depth) {
		struct frame *f = &w->stack[w->depth - 1];
		struct dirent *e = readdir(f->dir);
		int child;

		if (!e) {
			closedir(f->dir);
			w->depth--;
			continue;
		}
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (++w->visited > WALK_MAX || out_of_time(w)) {
			complete = false;
			break;
		}
		if (!path_append(w, f->len, e->d_name))
			continue;
		child = openat(dirfd(f->dir), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (child < 0) {
			/* ENOENT: removed since readdir saw it (cgroups come and
			 * go: a unit stopped, an attach's probe): nothing is
			 * missing from the list.  Only one that is there and
			 * cannot be read is. */
			if (errno != ENOENT && !w->unopened++)
				w->first_errno = errno;
			w->path[f->len] = 0;
			continue;
		}
		visit(child, w);
		if (!push(w, child))
			w->path[f->len] = 0;
	}
	while (w->depth)
		closedir(w->stack[--w->depth].dir);
	return complete;
}

int cmd_status(int argc, char **argv)
{
	struct rlimit files;
	struct walk *w;
	int fd, status = EXIT_OK;
	char root[4096];

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
	/* a directory open per level of the tree */
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		setrlimit(RLIMIT_NOFILE, &files);
	}
	clock_gettime(CLOCK_MONOTONIC, &w->start);
	if (!cgroup2_mount(root, sizeof root)) {
		fprintf(stderr, "kashim status: no cgroup2 mount in /proc/self/mountinfo\n");
		status = EXIT_PROBLEM;
	} else if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "kashim status: %s: %s\n", root, strerror(errno));
		status = EXIT_PROBLEM;
	} else if (!(w->path = strdup(strcmp(root, "/") ? root : ""))) {
		close(fd);
		status = EXIT_PROBLEM;
	} else {
		w->size = strlen(w->path) + 1;
		if (!walk_cgroups(fd, w)) {
			fflush(stdout);
			fprintf(stderr, "kashim status: stopped after %u cgroups or %d s; the list "
				"may be incomplete\n", w->visited - 1, WALK_SECONDS);
			status = EXIT_PROBLEM;
		}
		if (w->unopened) {
			fflush(stdout);
			fprintf(stderr, "kashim status: %u cgroups could not be opened (%s); the "
				"list may be incomplete\n", w->unopened, strerror(w->first_errno));
			status = EXIT_PROBLEM;
		}
		if (w->torn)
			status = EXIT_PROBLEM; /* each said so */
		if (!w->found)
			printf("kashim is attached to no cgroup\n");
	}
	free(w->path);
	free(w->stack);
	free(w);
	return status;
}

/* ---- dropin --cgroup ---------------------------------------------------- */

/* Takes FLAG out of dropin --cgroup's arguments (the rest are attach's);
 * true when it was there. */
static bool take_flag(int *argc, char **argv, const char *flag)
{
	bool found = false;
	int i, o = 1;

	for (i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], flag))
			found = true;
		else
			argv[o++] = argv[i];
	}
	argv[o] = NULL;
	*argc = o;
	return found;
}

/* A systemd drop-in that attaches kashim to the service's own cgroup
 * before every start (and so after every restart: systemd makes the
 * cgroup anew each time, and the attachment goes with it at stop).  The
 * cgroup and the cgroup2 mount are found by kashim attach when it runs
 * (CGROUP "self": the ExecStartPre= process runs in the service's cgroup),
 * so that one drop-in, made once, works on every host of a fleet whatever
 * its cgroup layout.  A refused attach ("-": its status is ignored) leaves
 * its one line in the journal and the service starts uncovered; with
 * --strict it does not start.  With --socket, for a socket unit: the
 * kernel ties an accepted connection to the cgroup of its listener's
 * creator, not of the process that accepts it, and systemd makes a socket
 * unit's listeners in that unit's own cgroup (a helper forked there, when
 * PID 1 can use BPF; measured with systemd 252 on both layouts), so the
 * attach goes there, before the listeners are made.  The options are
 * written from the parsed values, so nothing the operator typed reaches
 * the unit file as is. */
int cmd_dropin_cgroup(int argc, char **argv)
{
	struct kashim_config cfg;
	char self[4096];
	bool help = false, strict = take_flag(&argc, argv, "--strict");
	bool socket = take_flag(&argc, argv, "--socket");
	ssize_t n;
	int i;

	i = parse_attach(argc, argv, &cfg, &help, &(struct command){ "dropin", "nothing written" });
	if (help) {
		printf("usage: kashim dropin --cgroup [--strict] [--socket] [OPTIONS]\n\n"
		       "Prints a systemd drop-in that covers every TCP connection of a service\n"
		       "with kashim's cgroup mode (kashim attach on the service's cgroup before\n"
		       "each start), for programs LD_PRELOAD cannot reach:\n\n"
		       "  mkdir -p /etc/systemd/system/NAME.service.d\n"
		       "  kashim dropin --cgroup --idle 30s > /etc/systemd/system/NAME.service.d/kashim.conf\n"
		       "  systemctl daemon-reload && systemctl restart NAME\n\n"
		       "The cgroup is found when the service starts, on the host it runs on:\n"
		       "one drop-in serves every host.  When the attach is refused (no BPF, a\n"
		       "seccomp filter, missing capabilities) the service starts uncovered and\n"
		       "the journal has kashim's line saying why; with --strict it does not\n"
		       "start.\n\n"
		       "A socket-activated service's accepted connections belong to the socket\n"
		       "unit's cgroup, where systemd made the listener: cover them with\n"
		       "  kashim dropin --cgroup --socket > /etc/systemd/system/NAME.socket.d/kashim.conf\n"
		       "  systemctl daemon-reload && systemctl restart NAME.socket\n\n"
		       "Options: those of kashim attach (kashim attach --help) but --config and\n"
		       "--override-inherited: --idle, --interval, --count, --user-timeout,\n"
		       "--mode, --scope, --only, --skip (written into the unit as parsed), and\n"
		       "  --strict            a refused attach stops the unit from starting\n"
		       "  --socket            a drop-in for a socket unit (NAME.socket.d)\n");
		return EXIT_OK;
	}
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "kashim dropin: unexpected argument %s\n", argv[i]);
		return EXIT_USAGE;
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0 || (size_t)n >= sizeof self - 1) {
		fprintf(stderr, "kashim dropin: cannot read this command's path\n");
		return EXIT_PROBLEM;
	}
	self[n] = 0;
	if (strpbrk(self, " \t\n'\"\\$%;") || self[0] != '/') {
		fprintf(stderr, "kashim dropin: cannot name this command's path in a unit file "
			"(a space, quote, backslash, $, %% or ;); install kashim in a plain path\n");
		return EXIT_PROBLEM;
	}
	printf("# Written by kashim dropin --cgroup: TCP keepalive for every connection of\n"
	       "# this unit, by kashim's cgroup mode (a BPF program on the unit's own cgroup,\n"
	       "# found when it starts, on whatever host it runs; attached before each start\n"
	       "# as root; it goes with the cgroup when the unit stops).  Needs Linux %d.%d.\n",
	       KERNEL_OLDEST_MAJOR, KERNEL_OLDEST_MINOR);
	if (strict)
		printf("# --strict: a refused attach stops the unit from starting.\n");
	else
		printf("# A refused attach is one journal line saying why, and the unit starts\n"
		       "# uncovered (kashim dropin --cgroup --strict: it does not start).\n");
	if (socket)
		printf("# For a socket unit: the connections accepted on its listeners belong to\n"
		       "# its cgroup (systemd makes them there), whoever accepts them.\n");
	printf("[%s]\n"
	       "ExecStartPre=%s+%s attach --idle %ds --interval %ds --count %d", socket ? "Socket" : "Service",
	       strict ? "" : "-", self, cfg.idle_s, cfg.interval_s, cfg.count);
	if (cfg.user_timeout_mode == KASHIM_UT_OFF)
		printf(" --user-timeout off");
	else if (cfg.user_timeout_mode == KASHIM_UT_FIXED)
		printf(" --user-timeout %ums", cfg.user_timeout_ms);
	printf(" --mode %s", cfg.mode == KASHIM_MODE_FORCE ? "force" : "respect");
	if (cfg.scope != KASHIM_SCOPE_ALL)
		printf(" --scope %s", scope_word((uint32_t)cfg.scope));
	if (cfg.has_only && cfg.only.n)
		print_rule_list(" --only ", &cfg.only);
	if (cfg.skip.n)
		print_rule_list(" --skip ", &cfg.skip);
	printf(" -- self\n"); /* "--": nothing before self is read as the cgroup */
	return EXIT_OK;
}
