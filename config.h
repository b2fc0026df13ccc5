/* kashim configuration: turns an environment into an immutable settings
 * struct plus one message line per problem.  Knows nothing of sockets or
 * dlsym, so it is unit tested without preloading anything, and so a future
 * command-line tool can share the one parser with the library. */
#ifndef KASHIM_CONFIG_H
#define KASHIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KASHIM_IDLE_DEFAULT_S      15
#define KASHIM_INTERVAL_DEFAULT_S  15
#define KASHIM_COUNT_DEFAULT       9
#define KASHIM_SECONDS_MIN         1
#define KASHIM_SECONDS_MAX         32767      /* the kernel's MAX_TCP_KEEPIDLE/INTVL */
#define KASHIM_COUNT_MIN           1
#define KASHIM_COUNT_MAX           127        /* the kernel's MAX_TCP_KEEPCNT */
#define KASHIM_USER_TIMEOUT_MIN_MS 1u
#define KASHIM_USER_TIMEOUT_MAX_MS 2147483647u /* the kernel refuses negative ints */

enum kashim_user_timeout_mode {
	KASHIM_UT_AUTO,  /* idle + interval x count */
	KASHIM_UT_OFF,   /* leave the kernel's value alone */
	KASHIM_UT_FIXED, /* the operator's value */
};

struct kashim_config {
	bool enabled;
	bool debug;
	int idle_s;
	int interval_s;
	int count;
	enum kashim_user_timeout_mode user_timeout_mode;
	unsigned user_timeout_ms; /* effective value; 0 when the mode is OFF */
};

/* Receives one finished line (ending in '\n') per problem found. */
typedef void kashim_report_fn(void *ctx, const char *line, size_t len);

void kashim_config_defaults(struct kashim_config *cfg);

/* Fills cfg from envp (NULL-terminated "NAME=value" strings).  Each bad or
 * unknown KASHIM_* variable produces exactly one report and leaves its
 * setting at the default.  With secure set (a setuid/setgid process), the
 * environment is not read at all.  report may be NULL.  Returns the number of
 * problems reported. */
unsigned kashim_config_load(struct kashim_config *cfg, char *const *envp,
			    bool secure, kashim_report_fn *report, void *ctx);

/* systemd socket activation: how many inherited listeners start at fd 3,
 * from LISTEN_FDS, when LISTEN_PID is absent or names pid; 0 otherwise. */
int kashim_listen_fds(char *const *envp, long pid);

/* A fixed-size line builder that never allocates and is async-signal-safe,
 * shared by the configuration messages and the library's debug output.
 * Text that does not fit is cut; the line always ends in '\n'. */
#define KASHIM_LINE_MAX 512
struct kashim_line {
	size_t len;
	char buf[KASHIM_LINE_MAX];
};

void kashim_line_start(struct kashim_line *l);
void kashim_line_put(struct kashim_line *l, const char *s);
void kashim_line_put_uint(struct kashim_line *l, unsigned long v);
/* The value as an operator typed it: quoted, bytes outside printable ASCII
 * as \xHH, cut with "..." past 40 bytes. */
void kashim_line_put_value(struct kashim_line *l, const char *v);
/* Terminates with '\n' and returns the length. */
size_t kashim_line_end(struct kashim_line *l);

#endif
