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

int cmd_doctor(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* cgroup.c: the cgroup-wide mode (a BPF sock_ops program). */
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_dropin_cgroup(int argc, char **argv); /* kashim dropin --cgroup */
/* cgroupfs.c: the cgroup2 mount point (from /proc/self/mountinfo); the
 * hint for a program out of LD_PRELOAD's reach (a static string). */
bool cgroup2_mount(char *out, size_t size);
const char *cgroup_hint(void);

#endif
