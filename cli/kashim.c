/* SPDX-License-Identifier: MIT */
/* kashim: run programs with libkashim.so, check a configuration, inspect a
 * running process, tell whether a program can be reached.  Values are
 * validated by config.c, the same parser the library uses. */
#define _GNU_SOURCE
#include "cli.h"
#include "../config.h"

#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KASHIM_VERSION
#define KASHIM_VERSION "0.0.0"
#endif
#ifndef KASHIM_LIBDIR
#define KASHIM_LIBDIR "/usr/local/lib"
#endif
#ifndef KASHIM_MUSL_LIBDIR
#define KASHIM_MUSL_LIBDIR KASHIM_LIBDIR
#endif

extern char **environ;

static const char main_usage[] =
	"usage: kashim COMMAND [ARGS...]\n"
	"\n"
	"TCP keepalive for unmodified programs, by LD_PRELOAD of libkashim.so.\n"
	"\n"
	"commands:\n"
	"  run [OPTIONS] [--] PROGRAM [ARGS...]  run PROGRAM with kashim\n"
	"  check [--env-file FILE]               validate a configuration, show its effect\n"
	"  inspect [--json] PID                  keepalive state of a process's TCP sockets\n"
	"  audit [--json|--prometheus]           which programs' connections would miss a dead peer\n"
	"  doctor PROGRAM                        can kashim reach PROGRAM at all?\n"
	"  dropin [OPTIONS]                      print a systemd drop-in that enables kashim\n"
	"  attach [OPTIONS] CGROUP               keepalive for every TCP connection in a cgroup (BPF)\n"
	"  detach CGROUP                         stop that for new connections\n"
	"  status                                the cgroups kashim is attached to\n"
	"\n"
	"kashim COMMAND --help tells more; kashim --version prints the version.\n"
	"Exit status: 0 success, 1 a problem found, 2 usage; kashim run returns the\n"
	"program's own status, or 125 (kashim failed), 126 (cannot execute), 127 (not found).\n";

static const char settings_usage[] =
	"  --idle D            idle time before the first probe (KASHIM_IDLE), 1s..32767s\n"
	"  --interval D        time between probes (KASHIM_INTERVAL), 1s..32767s\n"
	"  --count N           unanswered probes before the drop (KASHIM_COUNT), 1..127\n"
	"  --user-timeout V    auto, off, or 1ms..2147483647ms (KASHIM_USER_TIMEOUT)\n"
	"  --debug             one line on stderr per decision (KASHIM_DEBUG=1)\n"
	"  --library PATH      the libkashim.so to use (default: found beside this\n"
	"                      command, or in " KASHIM_LIBDIR ")\n"
	"Durations: 45, 45s, 2m, 1h (and 1500ms for the user timeout).\n";

/* Settings given as options, one per variable in the order first given;
 * a repeated option replaces the value (the last one wins). */
struct settings {
	const char *name[8];
	const char *value[8];
	int n;
	const char *library;
};

static void settings_put(struct settings *s, const char *name, const char *value)
{
	int k;

	for (k = 0; k < s->n && strcmp(s->name[k], name); k++)
		;
	if (k == s->n) {
		if (s->n == (int)(sizeof s->name / sizeof s->name[0]))
			return; /* cannot happen: fewer variables than slots */
		s->name[s->n++] = name;
	}
	s->value[k] = value;
}

static void report_stderr(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	fwrite(line, 1, len, stderr);
}

/* Parses the settings options from argv[*i]; stops at the first other
 * argument.  Returns false (message given) on a malformed option. */
static bool parse_settings(int argc, char **argv, int *i, struct settings *s, bool *help,
			   bool *force)
{
	static char shown[ESCAPED_PATH_MAX];
	static const struct { const char *opt, *var; } map[] = {
		{ "--idle", "KASHIM_IDLE" }, { "--interval", "KASHIM_INTERVAL" },
		{ "--count", "KASHIM_COUNT" }, { "--user-timeout", "KASHIM_USER_TIMEOUT" },
	};

	for (; *i < argc; (*i)++) {
		const char *a = argv[*i];
		size_t k, len;
		bool matched = false;

		if (!strcmp(a, "--")) {
			(*i)++;
			return true;
		}
		if (a[0] != '-')
			return true;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			*help = true;
			return true;
		}
		if (!strcmp(a, "--debug")) {
			settings_put(s, "KASHIM_DEBUG", "1");
			continue;
		}
		if (force && !strcmp(a, "--force")) {
			*force = true;
			continue;
		}
		for (k = 0; k < sizeof map / sizeof map[0] + 1 && !matched; k++) {
			const char *opt = k < sizeof map / sizeof map[0] ? map[k].opt : "--library";
			const char *value;
			len = strlen(opt);
			if (strncmp(a, opt, len) || (a[len] != 0 && a[len] != '='))
				continue;
			if (a[len] == '=') {
				value = a + len + 1;
			} else if (*i + 1 < argc) {
				value = argv[++*i];
			} else {
				fprintf(stderr, "kashim: %s needs a value\n", opt); /* ours */
				return false;
			}
			if (k == sizeof map / sizeof map[0])
				s->library = value;
			else
				settings_put(s, map[k].var, value);
			matched = true;
		}
		if (!matched) {
			fprintf(stderr, "kashim: unknown option %s\n", escaped(a, shown, sizeof shown));
			return false;
		}
	}
	return true;
}

/* Validates the option values with the library's own parser; the messages
 * name the variable each option sets. */
static bool settings_valid(const struct settings *s)
{
	char *env[9], buf[8][256];
	struct kashim_config cfg;
	int k;

	for (k = 0; k < s->n; k++) {
		snprintf(buf[k], sizeof buf[k], "%s=%s", s->name[k], s->value[k]);
		env[k] = buf[k];
	}
	env[s->n] = NULL;
	return kashim_config_load(&cfg, env, false, report_stderr, NULL) == 0;
}

/* A readable regular file that starts as a 64-bit shared object (a FIFO
 * there would hang the loader; a directory or text file would be skipped
 * with the program run without kashim). */
static bool usable(const char *path, char *out, size_t size)
{
	char real[PATH_MAX], why[256];
	unsigned char head[EI_NIDENT + 4];
	struct stat st;
	int fd;
	bool elf;

	if (!realpath(path, real) || (fd = open_regular(real, &st, why, sizeof why)) < 0)
		return false;
	elf = read_at_most(fd, head, sizeof head, why, sizeof why) == (ssize_t)sizeof head &&
	      !memcmp(head, ELFMAG, SELFMAG) && head[EI_CLASS] == ELFCLASS64 &&
	      head[EI_NIDENT] == ET_DYN && head[EI_NIDENT + 1] == 0;
	close(fd);
	if (!elf)
		return false;
	/* The path as given, when absolute and without the loader's separators,
	 * still works where the resolved one has a space or a colon. */
	snprintf(out, size, "%s", path[0] == '/' && !path[strcspn(path, ": ")] &&
		 real[strcspn(real, ": ")] ? path : real);
	return true;
}

/* The loader splits LD_PRELOAD at spaces and colons (and systemd's
 * Environment= would not help): such a path cannot be preloaded. */
static bool preloadable(const char *lib, const char *cmd)
{
	static char shown[ESCAPED_PATH_MAX];

	if (!lib[strcspn(lib, ": ")])
		return true;
	fprintf(stderr, "kashim %s: cannot preload %s: the loader splits LD_PRELOAD at "
		"spaces and colons; put the library at a path without them (--library PATH)\n",
		cmd, escaped(lib, shown, sizeof shown));
	return false;
}

/* The library (NAME: libkashim.so, or libkashim-musl.so for musl
 * programs) beside this command in a build tree, else the installed one. */
static bool find_named_library(const struct settings *s, const char *name, char *out,
			       size_t size)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n;

	if (s->library)
		return usable(s->library, out, size);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(path, sizeof path, "%s/%s", dirname(exe), name);
		if (usable(path, out, size))
			return true;
		snprintf(path, sizeof path, "%s/../lib/%s", exe, name);
		if (usable(path, out, size))
			return true;
	}
	/* The Debian package keeps the musl build out of glibc's linker path. */
	snprintf(path, sizeof path, "%s/%s",
		 strcmp(name, "libkashim-musl.so") ? KASHIM_LIBDIR : KASHIM_MUSL_LIBDIR, name);
	return usable(path, out, size);
}

static bool find_library(const struct settings *s, char *out, size_t size)
{
	return find_named_library(s, "libkashim.so", out, size);
}

/* An LD_PRELOAD entry naming a libkashim.so path that is gone (or is not
 * a regular file): said, and to be dropped. */
static bool stale_entry(const char *p, size_t n)
{
	static char shown[ESCAPED_PATH_MAX];
	char entry[PATH_MAX];
	struct stat st;
	int err;

	if (n >= sizeof entry || !memchr(p, '/', n))
		return false; /* a bare name: the loader searches for it */
	snprintf(entry, sizeof entry, "%.*s", (int)n, p);
	err = stat(entry, &st) != 0 ? errno : 0;
	if (!err && S_ISREG(st.st_mode))
		return false;
	fprintf(stderr, "kashim run: dropping %s from LD_PRELOAD: %s\n",
		escaped(entry, shown, sizeof shown),
		err ? strerror(err) : "not a regular file");
	return true;
}

/* An LD_PRELOAD entry that names libkashim.so without a directory: the
 * loader looks for it in its search path, and in a setuid program (secure
 * execution), where only the system's directories count and a library
 * needs the setuid bit, it prints an error line for it; an entry with a
 * '/' it drops there silently. */
static bool bare_name(const char *p, size_t n)
{
	return !memchr(p, '/', n);
}

/* LD_PRELOAD with lib appended, unless a libkashim.so that is there is
 * already named (one named without a directory is replaced by lib, the
 * full path: see bare_name).  Entries are split as the loader splits them, at spaces
 * and colons; one naming a libkashim.so path that is gone (or is not a
 * regular file) is dropped with a message: it would only make the loader
 * complain, and must not stop the real one from being added. */
static char *preload_with(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	const char *p;
	char *out;
	size_t len = 0, cap, n;
	bool present = false;

	if (!old)
		old = "";
	cap = 2 * (strlen(old) + strlen(lib) + 2); /* room for lib twice, in place and appended */
	out = malloc(cap);
	if (!out)
		return NULL;
	out[0] = 0;
	for (p = old + strspn(old, ": "); *p; p += n + strspn(p + n, ": ")) {
		bool ours;
		n = strcspn(p, ": ");
		ours = n >= 12 && !strncmp(p + n - 12, "libkashim.so", 12) &&
		       (n == 12 || p[n - 13] == '/');
		if (ours && stale_entry(p, n))
			continue;
		present |= ours;
		if (ours && bare_name(p, n))
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ":" : "", lib);
		else
			len += (size_t)snprintf(out + len, cap - len, "%s%.*s", len ? ":" : "", (int)n, p);
	}
	if (!present)
		snprintf(out + len, cap - len, "%s%s", len ? ":" : "", lib);
	return out;
}

static int cmd_run(int argc, char **argv)
{
	struct settings s = { 0 };
	static char shown[ESCAPED_PATH_MAX];
	struct doctor_verdict v;
	bool help = false, force = false;
	char lib[PATH_MAX];
	char *preload;
	int i = 1, k;

	if (!parse_settings(argc, argv, &i, &s, &help, &force))
		return EXIT_USAGE;
	if (help) {
		printf("usage: kashim run [OPTIONS] [--] PROGRAM [ARGS...]\n\n"
		       "Runs PROGRAM with libkashim.so preloaded (added once to LD_PRELOAD,\n"
		       "after what is there) and the given settings, by exec: the same pid,\n"
		       "signals and exit status, fit for a container's PID 1 and for systemd.\n"
		       "Refuses a program kashim cannot reach (see kashim doctor), and a\n"
		       "library path with a space or colon (the loader splits LD_PRELOAD\n"
		       "at both: use a path without them, a symlink will do).  Drops an\n"
		       "LD_PRELOAD entry naming a libkashim.so that is gone, and replaces one\n"
		       "naming it without a directory by its full path (by name, every setuid\n"
		       "program started below would print an ld.so error line).  Repeated\n"
		       "options: the last one wins.\n\n"
		       "options:\n%s"
		       "  --force             run PROGRAM even if kashim cannot reach it\n\n"
		       "Exit status: PROGRAM's own; 2 usage; 125 kashim failed or refused;\n"
		       "126 PROGRAM cannot be executed; 127 PROGRAM not found.\n",
		       settings_usage);
		return EXIT_OK;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: kashim run [OPTIONS] [--] PROGRAM [ARGS...]\n");
		return EXIT_USAGE;
	}
	if (!settings_valid(&s)) {
		fprintf(stderr, "kashim run: nothing started; correct the option above\n");
		return EXIT_USAGE;
	}
	if (!doctor_examine(argv[i], &v)) {
		fprintf(stderr, "kashim run: %s\n", v.reason);
		return errno == ENOENT || strstr(v.reason, "not found") ? EXIT_NOT_FOUND
									: EXIT_CANNOT_EXEC;
	}
	if (!v.reachable && !force) {
		fprintf(stderr, "kashim run: refusing %s: %s (--force runs it anyway; %s)\n",
			escaped(v.path, shown, sizeof shown), v.reason, cgroup_hint());
		return EXIT_RUN_FAILED;
	}
	if (!find_named_library(&s, v.musl ? "libkashim-musl.so" : "libkashim.so", lib, sizeof lib)) {
		fprintf(stderr, "kashim run: cannot find %s%s%s (use --library PATH)\n",
			v.musl ? "libkashim-musl.so, the build for musl programs" : "libkashim.so",
			s.library ? " at " : "", s.library ? escaped(s.library, shown, sizeof shown) : "");
		return EXIT_RUN_FAILED;
	}
	if (!preloadable(lib, "run"))
		return EXIT_RUN_FAILED;
	preload = preload_with(lib);
	if (!preload || setenv("LD_PRELOAD", preload, 1) != 0) {
		perror("kashim run: LD_PRELOAD");
		return EXIT_RUN_FAILED;
	}
	for (k = 0; k < s.n; k++)
		if (setenv(s.name[k], s.value[k], 1) != 0) {
			perror("kashim run: setenv");
			return EXIT_RUN_FAILED;
		}
	execvp(argv[i], argv + i);
	k = errno;
	fprintf(stderr, "kashim run: %s: %s\n", escaped(argv[i], shown, sizeof shown), strerror(k));
	return k == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

/* ---- check ---------------------------------------------------------- */

struct env_file {
	char **vars;
	size_t n;
	unsigned problems;
};

static bool valid_key(const char *s, size_t len)
{
	size_t i;

	if (!len || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < len; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/* An environment file is a few lines; anything much larger is a mistake
 * (a device, a log), not a configuration. */
#define ENV_FILE_MAX (1024 * 1024)

/* The whole of a regular file of at most ENV_FILE_MAX bytes, NUL-ended
 * (its own NULs are kept: lines holding one are refused), or NULL. */
static char *slurp_env_file(const char *path, size_t *size)
{
	static char shown[ESCAPED_PATH_MAX];
	char why[256], *buf;
	struct stat st;
	ssize_t len;
	int fd = open_regular(path, &st, why, sizeof why);

	if (fd < 0) {
		fprintf(stderr, "kashim: cannot read %s: %s\n", escaped(path, shown, sizeof shown), why);
		return NULL;
	}
	buf = malloc(ENV_FILE_MAX + 2);
	len = buf ? read_at_most(fd, buf, ENV_FILE_MAX + 1, why, sizeof why) : -1;
	close(fd);
	if (len < 0 || len > ENV_FILE_MAX) {
		fprintf(stderr, "kashim: cannot read %s: %s\n", escaped(path, shown, sizeof shown),
			!buf ? strerror(ENOMEM) : len < 0 ? why : "larger than 1 MiB, not an environment file");
		free(buf);
		return NULL;
	}
	buf[len] = 0;
	*size = (size_t)len;
	return buf;
}

/* KEY=VALUE lines as systemd's EnvironmentFile= and docker's --env-file
 * take them: blank lines and #/; comments skipped, matching quotes around
 * the value removed. */
static bool read_env_file(const char *path, struct env_file *out)
{
	static char shown[ESCAPED_PATH_MAX];
	size_t size, start, end;
	char *text = slurp_env_file(path, &size);
	unsigned lineno = 0;

	memset(out, 0, sizeof *out);
	if (!text)
		return false;
	out->vars = calloc(1, sizeof *out->vars);
	for (start = 0; out->vars && start < size; start = end + 1) {
		char *s = text + start, *eq, *value, **grown, *nl = memchr(s, '\n', size - start);
		size_t len, vlen;

		end = nl ? (size_t)(nl - text) : size;
		len = end - start;
		text[end] = 0;
		lineno++;
		eq = memchr(s, 0, len) ? NULL : s; /* a NUL inside: not a line of text */
		while (len > 0 && s[len - 1] == '\r')
			s[--len] = 0;
		s += strspn(s, " \t");
		if (eq && (!*s || *s == '#' || *s == ';'))
			continue;
		eq = eq ? strchr(s, '=') : NULL;
		if (!eq || !valid_key(s, (size_t)(eq - s))) {
			fprintf(stderr, "kashim: %s:%u: not a KEY=VALUE line\n",
				escaped(path, shown, sizeof shown), lineno);
			out->problems++;
			continue;
		}
		value = eq + 1;
		vlen = strlen(value);
		if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
			memmove(value, value + 1, vlen - 2);
			value[vlen - 2] = 0;
		}
		grown = realloc(out->vars, (out->n + 2) * sizeof *grown);
		if (!grown)
			break;
		out->vars = grown;
		out->vars[out->n++] = strdup(s);
		out->vars[out->n] = NULL;
	}
	free(text);
	return out->vars != NULL;
}

static void show_rules(const char *name, const struct kashim_rules *rules)
{
	int i;

	printf("%-20s ", name);
	for (i = 0; i < rules->n; i++) {
		const struct kashim_rule *r = &rules->rule[i];
		char host[INET6_ADDRSTRLEN];
		bool any_port = r->port_lo == 1 && r->port_hi == 65535;
		if (r->family) {
			inet_ntop(r->family, r->addr, host, sizeof host);
			printf(r->family == AF_INET6 && !any_port ? "[%s/%u]" : "%s/%u", host,
			       r->prefix);
		}
		if (!any_port)
			printf(r->port_lo == r->port_hi ? ":%u" : ":%u-%u", r->port_lo, r->port_hi);
		printf(i + 1 < rules->n ? "," : "");
	}
	printf("\n");
}

static void show_settings(const struct kashim_config *c)
{
	unsigned long idle_bound = (unsigned long)c->idle_s +
				   (unsigned long)c->interval_s * (unsigned long)c->count;

	printf("KASHIM               on\n");
	printf("KASHIM_IDLE          %ds\n", c->idle_s);
	printf("KASHIM_INTERVAL      %ds\n", c->interval_s);
	printf("KASHIM_COUNT         %d\n", c->count);
	if (c->user_timeout_mode == KASHIM_UT_OFF)
		printf("KASHIM_USER_TIMEOUT  off (the kernel's, normally none)\n");
	else
		printf("KASHIM_USER_TIMEOUT  %ums%s\n", c->user_timeout_ms,
		       c->user_timeout_mode == KASHIM_UT_AUTO ? " (auto: idle + interval x count)" : "");
	printf("KASHIM_DEBUG         %s\n", c->debug ? "on" : "off");
	printf("KASHIM_SCOPE         %s\n", c->scope == KASHIM_SCOPE_CLIENT ? "client" :
	       c->scope == KASHIM_SCOPE_SERVER ? "server" : "all");
	if (c->has_only)
		show_rules("KASHIM_ONLY", &c->only);
	if (c->skip.n)
		show_rules("KASHIM_SKIP", &c->skip);
	printf("KASHIM_MODE          %s\n", c->mode == KASHIM_MODE_FORCE ? "force" : "respect");
	printf("\nworst case to notice a dead peer:\n");
	if (c->user_timeout_mode == KASHIM_UT_OFF || c->user_timeout_ms / 1000 >= idle_bound)
		printf("  idle connection:   %lu s (%d s idle + %d probes x %d s)\n", idle_bound,
		       c->idle_s, c->count, c->interval_s);
	else
		printf("  idle connection:   %g s (the user timeout ends it before the last of "
		       "%d probes)\n", c->user_timeout_ms / 1000.0, c->count);
	if (c->user_timeout_mode == KASHIM_UT_OFF)
		printf("  data in flight:    the kernel's retransmission limit (about 15 minutes "
		       "with net.ipv4.tcp_retries2=15)\n");
	else
		printf("  data in flight:    %g s (user timeout, from the first retransmission)\n",
		       c->user_timeout_ms / 1000.0);
	printf("  connect() to a host that never answers: %s\n",
	       c->user_timeout_mode == KASHIM_UT_OFF ? "the kernel's SYN retries (about 130 s)"
						     : "the user timeout");
}

/* Does LD_PRELOAD name libkashim.so without a directory (bare_name)? */
static bool names_bare_library(const char *pre)
{
	const char *p;
	size_t n;

	for (p = pre + strspn(pre, ": "); *p; p += n + strspn(p + n, ": ")) {
		n = strcspn(p, ": ");
		if (n == 12 && !strncmp(p, "libkashim.so", 12))
			return true;
	}
	return false;
}

/* envp with KASHIM_CONFIG=file in place of any KASHIM_CONFIG it has
 * (check --config); NULL when out of memory. */
static char **with_config(char *const *envp, const char *file)
{
	size_t n = 0, k = 0;
	char **out;

	while (envp && envp[n])
		n++;
	out = calloc(n + 2, sizeof *out);
	if (!out || asprintf(&out[0], "KASHIM_CONFIG=%s", file) < 0) {
		free(out);
		return NULL;
	}
	for (k = 1; n--; envp++)
		if (strncmp(*envp, "KASHIM_CONFIG=", 14))
			out[k++] = *envp;
	return out;
}

static void ignore_line(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	(void)line;
	(void)len;
}

/* --config FILE is the check of a file both modes read (the Ansible
 * role's validate: before it puts /etc/kashim.conf in place, where
 * kashim-attach@ reads it): FILE alone, as kashim attach --config reads
 * it, whatever this environment says.  A file attach refuses fails the
 * check too, so a file the check passes is taken by both.  Its bad
 * settings were reported by the first load (kashim_config_check_from
 * reads it even under KASHIM=off), and counted; what is left
 * is the file that turns kashim off, which the preload takes (it does
 * nothing) and attach refuses.  Returns the problems it adds. */
static unsigned check_file_for_attach(const struct kashim_source *alone, const char *config,
				      unsigned reported)
{
	static char shown[ESCAPED_PATH_MAX];
	struct kashim_source src = *alone;
	struct kashim_config cfg;
	unsigned problems;

	src.program_names = NULL;
	/* unapplied given, so that a program filter does not turn kashim
	 * off, as in attach; cgroup_check has shown those lines */
	problems = kashim_config_load_unnamed(&cfg, &src, reported ? NULL : report_stderr,
					      ignore_line, "", NULL);
	if (problems)
		return reported ? 0 : problems;
	if (cfg.enabled)
		return 0;
	fprintf(stderr, "kashim: %s turns kashim off (kashim = off): kashim attach refuses it "
		"and the preload does nothing with it; to take kashim away, remove the file or "
		"the package (the Ansible role: kashim_state: absent)\n",
		escaped(config, shown, sizeof shown));
	return 1;
}

static const char check_usage[] =
	"usage: kashim check [--env-file FILE] [--config FILE] [--program NAME]\n";

static int cmd_check(int argc, char **argv)
{
	struct kashim_config cfg;
	struct env_file file = { 0 };
	const char *path = NULL, *config = NULL, *names[2] = { NULL, NULL };
	char *const *envp = environ;
	struct kashim_source src;
	char *alone_env[2] = { NULL, NULL };
	struct kashim_source alone = { alone_env, names, false, NULL };
	static char shown[ESCAPED_PATH_MAX];
	unsigned problems;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("%s\n"
			       "Validates the KASHIM_* variables of this environment, or of FILE\n"
			       "(KEY=VALUE lines, as systemd's EnvironmentFile= and docker's\n"
			       "--env-file), and the configuration file they name (KASHIM_CONFIG,\n"
			       "--config FILE, or /etc/kashim.conf when no KASHIM_* variable is\n"
			       "set), with the messages the library would give; shows the effective\n"
			       "settings and the worst-case time to notice a dead peer.  --program\n"
			       "NAME shows them for the program NAME ([program] sections,\n"
			       "KASHIM_PROGRAMS).  Then what the cgroup mode (kashim attach) makes\n"
			       "of the same configuration: its settings and rules, one line per\n"
			       "setting only the preload applies, or why attach would refuse it.\n"
			       "--config FILE checks FILE for both modes: a file kashim attach\n"
			       "--config refuses (a bad setting, kashim = off) is a problem.\n"
			       "Exit status: 0 all well, 1 a problem, 2 usage.\n", check_usage);
			return EXIT_OK;
		}
		if (!strcmp(argv[i], "--program") && i + 1 < argc)
			names[0] = argv[++i];
		else if (!strncmp(argv[i], "--program=", 10))
			names[0] = argv[i] + 10;
		else if (!strcmp(argv[i], "--env-file") && i + 1 < argc)
			path = argv[++i];
		else if (!strncmp(argv[i], "--env-file=", 11))
			path = argv[i] + 11;
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strncmp(argv[i], "--config=", 9))
			config = argv[i] + 9;
		else {
			fputs(check_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (path) {
		if (!read_env_file(path, &file))
			return EXIT_PROBLEM;
		envp = file.vars;
	}
	if (config && !(envp = with_config(envp, config))) {
		perror("kashim check");
		return EXIT_PROBLEM;
	}
	/* kashim attach --config FILE reads FILE alone, whatever this
	 * environment's KASHIM_* say: that is what its checks read too */
	if (config && asprintf(&alone_env[0], "KASHIM_CONFIG=%s", config) < 0) {
		perror("kashim check");
		return EXIT_PROBLEM;
	}
	src = (struct kashim_source){ envp, names, false, "/etc/kashim.conf" };
	problems = kashim_config_check_from(&cfg, &src, report_stderr, NULL) + file.problems;
	if (config)
		problems += check_file_for_attach(&alone, config, problems);
	if (cfg.program_filtered && !names[0]) {
		printf("note: KASHIM_PROGRAMS or KASHIM_SKIP_PROGRAMS decide per program: add "
		       "--program NAME to see one\n");
		names[0] = "";
	}
	if (names[0])
		printf("program              %s\n", escaped(names[0], shown, sizeof shown));
	if (!cfg.enabled) {
		printf("KASHIM               off: kashim does nothing%s; programs run unchanged\n",
		       cfg.program_filtered && names[0] ? " for this program" : "");
	} else {
		show_settings(&cfg);
	}
	cgroup_check(config ? &alone : &src);
	free(alone_env[0]);
	if (!path) {
		const char *pre = getenv("LD_PRELOAD");
		if (!pre || !strstr(pre, "libkashim.so"))
			printf("\nnote: LD_PRELOAD does not name libkashim.so here; these settings "
			       "apply where it is preloaded (kashim run does that)\n");
		else if (names_bare_library(pre))
			printf("\nnote: LD_PRELOAD names libkashim.so without a directory: every "
			       "setuid program started from here prints an ld.so error line for it "
			       "(in a setuid program the loader drops an entry with a '/' silently); "
			       "name its full path, as kashim run and kashim dropin write it\n");
	}
	if (problems)
		fprintf(stderr, "kashim check: %u problem%s\n", problems, problems == 1 ? "" : "s");
	return problems ? EXIT_PROBLEM : EXIT_OK;
}

/* ---- dropin --------------------------------------------------------- */

/* One Environment= line, as systemd.syntax(7) reads it back: bare when the
 * value has only plain characters, else double-quoted with backslash
 * escapes, and % doubled in both (it starts a specifier). */
static void print_environment(const char *name, const char *value)
{
	const unsigned char *p;
	bool plain = true;

	for (p = (const unsigned char *)value; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			(*p >= '0' && *p <= '9') || strchr("/._+,:@=-", *p);
	if (plain) {
		printf("Environment=%s=%s\n", name, value);
		return;
	}
	printf("Environment=\"%s=", name);
	for (p = (const unsigned char *)value; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p == '%')
			printf("%%%%");
		else if (*p == '\n')
			printf("\\n");
		else if (*p == '\t')
			printf("\\t");
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	printf("\"\n");
}

static int cmd_dropin(int argc, char **argv)
{
	struct settings s = { 0 };
	bool help = false;
	char lib[PATH_MAX];
	int i = 1, k;

	if (argc > 1 && !strcmp(argv[1], "--cgroup")) /* the cgroup mode: cgroup.c */
		return cmd_dropin_cgroup(argc - 1, argv + 1);
	if (!parse_settings(argc, argv, &i, &s, &help, NULL))
		return EXIT_USAGE;
	if (help) {
		printf("usage: kashim dropin [OPTIONS]\n\n"
		       "Prints a systemd drop-in that runs a service with kashim:\n\n"
		       "  mkdir -p /etc/systemd/system/NAME.service.d\n"
		       "  kashim dropin --idle 30s > /etc/systemd/system/NAME.service.d/kashim.conf\n"
		       "  systemctl daemon-reload && systemctl restart NAME\n\n"
		       "kashim dropin --cgroup [OPTIONS] covers it by its cgroup instead (BPF).\n\n"
		       "options:\n%s", settings_usage);
		return EXIT_OK;
	}
	if (i < argc) {
		char shown[ESCAPED_PATH_MAX];
		fprintf(stderr, "kashim dropin: unexpected argument %s\n",
			escaped(argv[i], shown, sizeof shown));
		return EXIT_USAGE;
	}
	if (!settings_valid(&s)) {
		fprintf(stderr, "kashim dropin: nothing written; correct the option above\n");
		return EXIT_USAGE;
	}
	if (!find_library(&s, lib, sizeof lib)) {
		fprintf(stderr, "kashim dropin: cannot find libkashim.so (use --library PATH)\n");
		return EXIT_PROBLEM;
	}
	if (!preloadable(lib, "dropin"))
		return EXIT_PROBLEM;
	printf("# Written by kashim dropin: TCP keepalive for this service.\n"
	       "# Replaces any LD_PRELOAD the unit sets; add its libraries here if it has some.\n"
	       "[Service]\n");
	print_environment("LD_PRELOAD", lib);
	for (k = 0; k < s.n; k++)
		print_environment(s.name[k], s.value[k]);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(main_usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(main_usage, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kashim %s\n", KASHIM_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(argv[1], "audit"))
		return cmd_audit(argc - 1, argv + 1);
	if (!strcmp(argv[1], "doctor"))
		return cmd_doctor(argc - 1, argv + 1);
	if (!strcmp(argv[1], "dropin"))
		return cmd_dropin(argc - 1, argv + 1);
	if (!strcmp(argv[1], "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "detach"))
		return cmd_detach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	static char shown[ESCAPED_PATH_MAX];
	fprintf(stderr, "kashim: unknown command %s\n%s", escaped(argv[1], shown, sizeof shown),
		main_usage);
	return EXIT_USAGE;
}
