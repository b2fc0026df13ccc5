/* SPDX-License-Identifier: MIT */
/* The kashim command: shared declarations. */
#ifndef KASHIM_CLI_H
#define KASHIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Exit statuses, as documented in kashim(1). */
enum {
	EXIT_OK = 0,
	EXIT_PROBLEM = 1, /* check found a problem, doctor says unreachable, inspect failed */
	EXIT_USAGE = 2,
	EXIT_RUN_FAILED = 125, /* kashim run could not start the program */
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

struct doctor_verdict {
	bool reachable;
	bool musl;          /* linked against musl: needs libkashim-musl.so */
	char path[4096];    /* the file examined (after PATH search) */
	char reason[8192];  /* one sentence: why, and what to do instead */
};

/* Examines PROGRAM (a path, or a name looked up in PATH) without running
 * it.  Returns false with reason filled when it cannot even be read. */
bool doctor_examine(const char *program, struct doctor_verdict *v);

/* What doctor reads from an ELF file held in memory (the fuzzer's entry
 * point): every offset and size is checked against the buffer, and every
 * loop is bounded.  Strings point into the buffer, NUL-terminated there. */
enum elf_state { ELF_OK, ELF_TRUNCATED, ELF_MALFORMED, ELF_FOREIGN };
#define ELF_NEEDED_MAX 64
struct elf_facts {
	enum elf_state state;
	const char *problem;  /* static text: what is truncated or malformed */
	const char *interp;   /* PT_INTERP; NULL for a static binary */
	bool go;              /* Go's build-info sections */
	bool imports_socket;  /* imports socket/connect/accept/accept4 */
	unsigned n_needed;
	const char *needed[ELF_NEEDED_MAX]; /* DT_NEEDED */
};
void elf_read_facts(const unsigned char *data, size_t size, struct elf_facts *out);

/* files.c: PATH opened without blocking, a regular file only (else -1 and
 * why, "not a regular file (a FIFO)"); at most max bytes read from it. */
int open_regular(const char *path, struct stat *st, char *why, size_t why_size);
ssize_t read_at_most(int fd, void *buf, size_t max, char *why, size_t why_size);
/* The regular file PATH as text in BUF (at most SIZE - 1 bytes, then a
 * NUL): its length, or -1 with WHY. */
ssize_t read_text(const char *path, char *buf, size_t size, char *why, size_t why_size);

/* files.c: text from the system (paths, cgroup names, arguments) on its
 * way out.  escaped: as the library's messages escape it (config.c: bytes
 * outside printable ASCII, the quote and the backslash as \xHH), into out,
 * cut with "..." when it does not fit; escaped_n: the first n bytes of s.
 * The machine formats keep well-formed UTF-8 and write each byte that is
 * not UTF-8 as the text \xHH: put_json_string (quoted, control characters
 * as \u00XX), put_prom_label_value (control characters as the text \xHH,
 * \n as the format wants).  put_table_text: a column of a table, padded to
 * width characters, control characters and bytes that are not UTF-8 as
 * '?'; table_text_width: the characters it takes. */
#include <stdio.h>
const char *escaped(const char *s, char *out, size_t size);
const char *escaped_n(const char *s, size_t n, char *out, size_t size);
void put_json_string(FILE *f, const char *s);
void put_prom_label_value(FILE *f, const char *s);
void put_table_text(FILE *f, const char *s, int width);
int table_text_width(const char *s);
/* A cgroup's path (any text from the system) as status and every message
 * of the cgroup mode show it: control bytes, C1 controls, space, backslash
 * and bytes that are not UTF-8 as \xHH (files.c, below cgroup.c and
 * cgbpf.c both). */
void cgroup_print_escaped(FILE *f, const char *s);
/* A buffer for escaped(): 4 bytes out per byte in, for a path. */
#define ESCAPED_PATH_MAX (4 * 4096 + 4)

/* outfile.c: standard output into PATH, replaced whole or not at all (a
 * temporary file beside it, renamed over it by commit when keep is true,
 * removed otherwise).  Each says why in one "kashim:" line when it fails. */
#include <limits.h>
struct stdout_file {
	const char *path;
	char tmp[PATH_MAX];
	int saved; /* the standard output before */
};
bool stdout_file_begin(struct stdout_file *o, const char *path);
bool stdout_file_commit(struct stdout_file *o, bool keep);

int cmd_doctor(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* cgroup.c: the cgroup-wide mode (a BPF sock_ops program). */
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_dropin_cgroup(int argc, char **argv); /* kashim dropin --cgroup */
/* kashim check's cgroup mode part: what attach makes of the configuration
 * of src (its settings and rules, and a line per setting only the preload
 * applies), on stdout. */
struct kashim_source;
void cgroup_check(const struct kashim_source *src);
/* cgroupfs.c: the cgroup2 mount point (from /proc/self/mountinfo); the
 * hint for a program out of LD_PRELOAD's reach (a static string). */
bool cgroup2_mount(char *out, size_t size);
/* ... and the cgroup within the file system it shows (mountinfo's field
 * 4: "/" for a mount of this cgroup namespace's root, "/.." seen from a
 * namespace below it). */
bool cgroup2_mount_root(char *out, size_t size, char *root, size_t root_size);
/* The same for the cgroup2 mount that holds path (see cgroupfs.c). */
bool cgroup2_mount_of(const char *path, char *out, size_t size, char *root, size_t root_size);
const char *cgroup_hint(void);

/* cgroupfs.c: how long an attachment to the cgroup at path lasts, read
 * from the names of the cgroups from path + below (the part under the
 * cgroup2 mount) down: until a container stops (a cgroup its engine made
 * for it), until a systemd unit stops (its own cgroup; not a slice), or
 * as long as the cgroup is there (CG_LASTS).  The innermost decides; its
 * name and, as path's first parent_len bytes, the parent to attach to
 * instead. */
enum cgroup_lasting { CG_LASTS, CG_UNIT, CG_CONTAINER };
struct cgroup_life {
	enum cgroup_lasting kind;
	const char *engine; /* CG_CONTAINER: "docker", "podman", "CRI-O"... or "" */
	bool hook;          /* that engine runs the OCI hooks of hooks.d */
	char name[256];     /* the unit, or the container's cgroup */
	size_t parent_len;
};
void cgroup_lifetime(const char *path, size_t below, struct cgroup_life *life);
/* The pid of a running container, asked of its engine's command (engine
 * container inspect, run without a shell, bounded in time and output),
 * and its 64-hex ID; else why, in one sentence. */
#define CONTAINER_ID_LEN_MAX 80
enum { CONTAINER_FOUND, CONTAINER_NO_ENGINE, CONTAINER_ENGINE_FAILED, CONTAINER_NOT_RUNNING };
int container_inspect(const char *engine, const char *name, long *pid, char *id, size_t id_size,
		      char *why, size_t why_size);
/* The pid and id of the OCI runtime's state (the JSON a hook reads on its
 * standard input); false when it has no pid. */
bool oci_state_pid(const char *json, long *pid, char *id, size_t id_size);

#endif
