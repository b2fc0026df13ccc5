/* SPDX-License-Identifier: MIT */
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

enum kashim_scope {
	KASHIM_SCOPE_ALL,
	KASHIM_SCOPE_CLIENT, /* connections the program makes */
	KASHIM_SCOPE_SERVER, /* connections it accepts */
};

enum kashim_mode {
	KASHIM_MODE_RESPECT, /* the program's explicit settings win */
	KASHIM_MODE_FORCE,   /* kashim's values stand */
};

/* One KASHIM_ONLY / KASHIM_SKIP rule: an address or network, a port range,
 * or both.  family 0 matches any address. */
struct kashim_rule {
	unsigned char family; /* 0, AF_INET or AF_INET6 */
	unsigned char prefix; /* network bits */
	unsigned char addr[16];
	unsigned short port_lo, port_hi;
};

/* Rules per list (KASHIM_ONLY, KASHIM_SKIP), in both modes: real rule sets
 * (a fleet's database and cache hosts, a site's networks) run to a few
 * hundred.  They live in the configuration struct (static in the library),
 * never on a stack; matching is a linear scan at connect and accept. */
#ifndef KASHIM_MAX_RULES /* settable only to build another layout (t_cgroup_policy.sh) */
#define KASHIM_MAX_RULES 256
#endif
struct kashim_rules {
	int n;
	struct kashim_rule rule[KASHIM_MAX_RULES];
};

struct kashim_config {
	bool enabled;
	bool debug;
	int idle_s;
	int interval_s;
	int count;
	enum kashim_user_timeout_mode user_timeout_mode;
	unsigned user_timeout_ms; /* effective value; 0 when the mode is OFF */
	enum kashim_scope scope;
	enum kashim_mode mode;
	bool has_only; /* KASHIM_ONLY given: only matching connections */
	bool program_filtered; /* KASHIM_PROGRAMS or KASHIM_SKIP_PROGRAMS given */
	bool deferred;         /* kashim_config_deferred(), computed once */
	struct kashim_rules only, skip;
};

/* Receives one finished line (ending in '\n') per problem found. */
typedef void kashim_report_fn(void *ctx, const char *line, size_t len);

/* Where the configuration comes from, besides defaults. */
struct kashim_source {
	char *const *envp;
	/* The program's names (executable and argv[0] base names), matched
	 * against KASHIM_PROGRAMS, KASHIM_SKIP_PROGRAMS and [program] sections;
	 * NULL-terminated, may be NULL. */
	const char *const *program_names;
	bool secure; /* setuid/setgid: ignore the environment and files */
	/* The file read when no KASHIM_* variable is set (the host-wide
	 * /etc/ld.so.preload case); NULL for none. */
	const char *default_file;
};


void kashim_config_defaults(struct kashim_config *cfg);

/* Fills cfg from envp (NULL-terminated "NAME=value" strings).  Each bad or
 * unknown KASHIM_* variable produces exactly one report and leaves its
 * setting at the default.  With secure set (a setuid/setgid process), the
 * environment is not read at all.  report may be NULL.  Returns the number of
 * problems reported. */
unsigned kashim_config_load(struct kashim_config *cfg, char *const *envp,
			    bool secure, kashim_report_fn *report, void *ctx);

/* The same, with a configuration file (KASHIM_CONFIG, or default_file) and
 * program filters.  Precedence, highest first: KASHIM_* variables, the
 * variables of libkeepalive and libdontdie, the file's matching [program]
 * sections (the last one wins), the file's global settings, defaults. */
unsigned kashim_config_load_from(struct kashim_config *cfg, const struct kashim_source *src,
				 kashim_report_fn *report, void *ctx);

/* The same for kashim check: KASHIM=off in the environment still wins,
 * but the file and the other variables are read and reported (the
 * library skips them silently where kashim is off). */
unsigned kashim_config_check_from(struct kashim_config *cfg, const struct kashim_source *src,
				  kashim_report_fn *report, void *ctx);

/* The same where no program is known (the cgroup mode: the kernel's
 * callbacks do not say which program a connection belongs to): each
 * setting of a [program] section and each program filter is passed to
 * unapplied, one line each ending with "(WHY)", instead of being matched,
 * and a program filter does not turn kashim off.  Such lines are not
 * counted as problems. */
unsigned kashim_config_load_unnamed(struct kashim_config *cfg, const struct kashim_source *src,
				    kashim_report_fn *report, kashim_report_fn *unapplied,
				    const char *why, void *ctx);

/* Does a connection to or from this address match one of the rules?
 * addr is 4 (AF_INET) or 16 (AF_INET6) bytes in network order; an
 * IPv4-mapped IPv6 address matches IPv4 rules.  Async-signal-safe. */
bool kashim_rules_match(const struct kashim_rules *rules, int family,
			const unsigned char *addr, unsigned port);

/* Should kashim cover a connection?  (scope, KASHIM_ONLY, KASHIM_SKIP) */
bool kashim_config_covers(const struct kashim_config *cfg, bool server, int family,
			  const unsigned char *addr, unsigned port);

/* True when the decision needs the connection's addresses, so it waits
 * for connect() or accept() instead of being made at socket(). */
bool kashim_config_deferred(const struct kashim_config *cfg);

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
/* len bytes of s escaped as a value is (no quotes), cut with "..." past max. */
void kashim_line_put_escaped(struct kashim_line *l, const char *s, size_t len, size_t max);
/* A rule as the grammar writes it (10.0.0.0/8, [fd00::/8]:443, :5432,
 * :1-65535): text that parses back to the same rule. */
void kashim_line_put_rule(struct kashim_line *l, const struct kashim_rule *r);
/* Terminates with '\n' and returns the length. */
size_t kashim_line_end(struct kashim_line *l);

#endif
