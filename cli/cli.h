/* The kashim command: shared declarations. */
#ifndef KASHIM_CLI_H
#define KASHIM_CLI_H

#include <stdbool.h>
#include <stddef.h>

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

int cmd_doctor(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_audit(int argc, char **argv);

#endif
