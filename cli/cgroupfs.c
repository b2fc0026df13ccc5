/* SPDX-License-Identifier: MIT */
/* Where cgroup v2 is mounted, and the hint doctor and run give for a
 * program LD_PRELOAD cannot reach.  Apart from cgroup.c so that doctor.c
 * (and its fuzzer) link without the BPF code. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MOUNTINFO_MAX (4u << 20)

/* Field n of a mountinfo line (4: the mount's root within its file
 * system, 5: the mount point), the kernel's octal escapes (\040 for a
 * space) undone. */
static void mount_field(const char *line, int n, char *out, size_t size)
{
	const char *field = line;
	size_t o = 0;
	int k;

	for (k = 1; k < n && field; k++)
		if ((field = strchr(field, ' ')))
			field++;
	for (; field && *field && *field != ' ' && o + 1 < size; field++) {
		if (field[0] == '\\' && field[1] >= '0' && field[1] <= '3' && field[2] >= '0' &&
		    field[2] <= '7' && field[3] >= '0' && field[3] <= '7') {
			out[o++] = (char)((field[1] - '0') * 64 + (field[2] - '0') * 8 + (field[3] - '0'));
			field += 3;
		} else {
			out[o++] = *field;
		}
	}
	out[o] = 0;
}

bool cgroup2_mount(char *out, size_t size)
{
	return cgroup2_mount_root(out, size, NULL, 0);
}

bool cgroup2_mount_root(char *out, size_t size, char *root, size_t root_size)
{
	return cgroup2_mount_of(NULL, out, size, root, root_size);
}

/* Is mount point m (its text) path itself or a directory above it? */
static bool mount_holds(const char *m, const char *path)
{
	size_t len = strlen(m);

	if (!strcmp(m, "/"))
		return path[0] == '/';
	return !strncmp(path, m, len) && (path[len] == '/' || !path[len]);
}

/* The cgroup2 mount that holds path (the deepest one whose mount point is
 * path or above it: a pod's own /sys/fs/cgroup and the host's bound at
 * /host/cgroup are two mounts of one tree), or with no path or none that
 * holds it, the first cgroup2 mount of /proc/self/mountinfo. */
bool cgroup2_mount_of(const char *path, char *out, size_t size, char *root, size_t root_size)
{
	char why[256], *buf, *line, *save = NULL;
	struct stat st;
	ssize_t n;
	size_t best = 0;
	bool found = false, held = false;
	int fd = open_regular("/proc/self/mountinfo", &st, why, sizeof why);

	if (fd < 0)
		return false;
	buf = malloc(MOUNTINFO_MAX + 1);
	n = buf ? read_at_most(fd, buf, MOUNTINFO_MAX, why, sizeof why) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return false;
	}
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sep = strstr(line, " - "), m[4096];
		bool holds;
		if (!sep || strncmp(sep, " - cgroup2 ", 11))
			continue;
		mount_field(line, 5, m, sizeof m);
		if (m[0] != '/')
			continue;
		holds = path && mount_holds(m, path);
		if (found && !(holds && (!held || strlen(m) > best)))
			continue;
		snprintf(out, size, "%s", m);
		if (root)
			mount_field(line, 4, root, root_size);
		found = true;
		held = holds;
		best = strlen(m);
		if (!path)
			break;
	}
	free(buf);
	return found;
}

const char *cgroup_hint(void)
{
	static char hint[8192 + 512];
	char root[4096];

	if (!cgroup2_mount(root, sizeof root))
		snprintf(root, sizeof root, "/sys/fs/cgroup");
	if (!strcmp(root, "/"))
		root[0] = 0;
	snprintf(hint, sizeof hint, "the cgroup mode reaches it: mkdir %s/NAME && kashim attach "
		 "%s/NAME, then start it in that cgroup (for a systemd service: kashim dropin "
		 "--cgroup)", root, root);
	return hint;
}

/* ---- how long an attachment lasts --------------------------------------- */

#define CONTAINER_ID_LEN 64

static bool lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Is the component name (len bytes) prefix, a container ID, suffix? */
static bool id_between(const char *name, size_t len, const char *prefix, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);

	return len == p + CONTAINER_ID_LEN + s && !strncmp(name, prefix, p) &&
	       lower_hex(name + p, CONTAINER_ID_LEN) && !strncmp(name + p + CONTAINER_ID_LEN, suffix, s);
}

static bool ends_with(const char *name, size_t len, const char *suffix)
{
	size_t s = strlen(suffix);

	return len > s && !strncmp(name + len - s, suffix, s);
}

/* The cgroups engines make per container and remove when it stops: with
 * the systemd driver a scope (docker-ID.scope, libpod-ID.scope,
 * crio-ID.scope, cri-containerd-ID.scope), with the cgroupfs driver a
 * directory (libpod-ID, crio-ID; docker's is the bare ID below docker/,
 * Kubernetes's below its pod's directory). */
static const struct {
	const char *prefix, *suffix, *engine;
	bool hook; /* the engine runs the OCI hooks of hooks.d */
} container_names[] = {
	{ "docker-", ".scope", "docker", false },
	{ "libpod-", ".scope", "podman", true },
	{ "libpod-", "", "podman", true },
	{ "crio-", ".scope", "CRI-O", true },
	{ "crio-", "", "CRI-O", true },
	{ "cri-containerd-", ".scope", "containerd", false },
};

/* The component at name (len bytes; its parent's at parent, plen) as a
 * container's cgroup: its engine ("" when the name does not tell), or
 * NULL. */
static const char *container_engine(const char *name, size_t len, const char *parent, size_t plen,
				    bool *hook)
{
	size_t k;

	*hook = false;
	for (k = 0; k < sizeof container_names / sizeof container_names[0]; k++)
		if (id_between(name, len, container_names[k].prefix, container_names[k].suffix)) {
			*hook = container_names[k].hook;
			return container_names[k].engine;
		}
	if (!id_between(name, len, "", ""))
		return NULL;
	/* a bare ID: docker's below docker/ or its --cgroup-parent,
	 * Kubernetes's (cgroupfs driver) below its pod's directory */
	if (plen == 6 && !strncmp(parent, "docker", 6))
		return "docker";
	if (plen > 3 && !strncmp(parent, "pod", 3))
		return "Kubernetes";
	return "";
}

/* A systemd unit's own cgroup, which systemd removes when the unit stops
 * and makes anew when it starts: every unit type with a cgroup but the
 * slice (and PID 1's init.scope, which never stops). */
static bool unit_cgroup(const char *name, size_t len)
{
	static const char *const kinds[] = { ".service", ".scope", ".socket", ".mount", ".swap" };
	size_t k;

	if (len == 10 && !strncmp(name, "init.scope", 10))
		return false;
	for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		if (ends_with(name, len, kinds[k]))
			return true;
	return false;
}

void cgroup_lifetime(const char *path, size_t below, struct cgroup_life *life)
{
	const char *p = path + below, *parent = "";
	size_t plen = 0;

	memset(life, 0, sizeof *life);
	life->kind = CG_LASTS;
	/* the innermost such cgroup decides: it is the first to go */
	while (*p) {
		size_t len = strcspn(p, "/");
		const char *engine;
		bool hook;

		if (!len) {
			p++;
			continue;
		}
		if ((engine = container_engine(p, len, parent, plen, &hook))) {
			life->kind = CG_CONTAINER;
			life->engine = engine;
			life->hook = hook;
			snprintf(life->name, sizeof life->name, "%.*s", (int)len, p);
			life->parent_len = (size_t)(p - path);
		} else if (unit_cgroup(p, len)) {
			life->kind = CG_UNIT;
			life->engine = NULL;
			snprintf(life->name, sizeof life->name, "%.*s", (int)len, p);
			life->parent_len = (size_t)(p - path);
		}
		parent = p;
		plen = len;
		p += len;
	}
	while (life->kind != CG_LASTS && life->parent_len > below && path[life->parent_len - 1] == '/')
		life->parent_len--;
}

/* ---- a container, from its engine ------------------------------------------ */

/* Is name an executable file in PATH? */
static bool in_path(const char *name)
{
	const char *path = getenv("PATH"), *p;
	char file[4096];

	for (p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");
		if (len && (size_t)snprintf(file, sizeof file, "%.*s/%s", (int)len, p, name) < sizeof file &&
		    access(file, X_OK) == 0)
			return true;
		p += len;
		p += *p == ':';
	}
	return false;
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* A child that has not ended by then is killed, its process group too. */
static int end_child(pid_t child, const struct timespec *deadline, int seconds, char *why, size_t why_size)
{
	int status;
	pid_t w;

	while ((w = waitpid(child, &status, WNOHANG)) == 0 && ms_left(deadline) > 0)
		usleep(10000);
	if (w == child)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	snprintf(why, why_size, "no answer within %d s", seconds);
	kill(-child, SIGKILL);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return -1;
}

/* argv run (no shell: execvp), its stdout and stderr together into out (at
 * most size - 1 bytes, then a NUL), for at most seconds; killed past either
 * bound.  Returns its exit status, or -1 with why. */
static int run_bounded(char *const argv[], char *out, size_t size, int seconds, char *why, size_t why_size)
{
	struct timespec deadline;
	size_t got = 0;
	int p[2], devnull;
	pid_t child;

	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(why, why_size, "%s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((child = fork()) < 0) {
		snprintf(why, why_size, "%s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (child == 0) {
		setpgid(0, 0); /* so that what it starts is killed with it */
		if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
			dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += seconds;
	while (got + 1 < size && ms_left(&deadline) > 0) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, (int)ms_left(&deadline)) <= 0)
			continue; /* EINTR, or the time is up */
		n = read(p[0], out + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* its output ended: now its status */
		got += (size_t)n;
	}
	close(p[0]);
	out[got] = 0;
	if (got + 1 >= size) {
		snprintf(why, why_size, "more than %zu bytes of output", size - 1);
		kill(-child, SIGKILL);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		return -1;
	}
	return end_child(child, &deadline, seconds, why, why_size);
}

/* The first line of text, as a message may quote it. */
static void first_line(const char *text, char *out, size_t size)
{
	char raw[512];

	while (*text == '\n' || *text == ' ')
		text++;
	snprintf(raw, sizeof raw, "%.*s", (int)strcspn(text, "\n"), text);
	escaped(raw, out, size);
}

/* The last line that is not empty (a warning the engine printed on
 * stderr comes before its answer). */
static const char *last_line(char *text)
{
	size_t len = strlen(text);
	char *nl;

	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = 0;
	nl = strrchr(text, '\n');
	return nl ? nl + 1 : text;
}

int container_inspect(const char *engine, const char *name, long *pid, char *id, size_t id_size,
		      char *why, size_t why_size)
{
	enum { INSPECT_SECONDS = 30, INSPECT_OUTPUT_MAX = 16384 };
	char *argv[] = { (char *)engine, "container", "inspect", "--format", "{{.State.Pid}} {{.Id}}",
			 "--", (char *)name, NULL };
	char *out = malloc(INSPECT_OUTPUT_MAX), line[1024], tail[2];
	int rc = CONTAINER_ENGINE_FAILED, status;
	long got;

	if (!in_path(engine)) {
		snprintf(why, why_size, "%s is not installed here (not in PATH)", engine);
		free(out);
		return CONTAINER_NO_ENGINE;
	}
	if (!out) {
		snprintf(why, why_size, "%s", strerror(errno));
		return CONTAINER_ENGINE_FAILED;
	}
	status = run_bounded(argv, out, INSPECT_OUTPUT_MAX, INSPECT_SECONDS, line, sizeof line);
	if (status < 0) {
		snprintf(why, why_size, "%s container inspect %s: %s", engine, name, line);
	} else if (status != 0) {
		first_line(out, line, sizeof line);
		snprintf(why, why_size, "%s container inspect: %s", engine, line[0] ? line : "failed, saying nothing");
	} else if (id_size <= CONTAINER_ID_LEN ||
		   sscanf(last_line(out), "%ld %64[0-9a-f]%1s", &got, id, tail) != 2 ||
		   strlen(id) != CONTAINER_ID_LEN) {
		first_line(out, line, sizeof line);
		snprintf(why, why_size, "%s container inspect answered \"%s\", not a pid and an ID", engine, line);
	} else if (got <= 0) {
		snprintf(why, why_size, "%s: the container %.12s is not running (it has no process)", engine, id);
		rc = CONTAINER_NOT_RUNNING;
	} else {
		*pid = got;
		rc = CONTAINER_FOUND;
	}
	free(out);
	return rc;
}

/* ---- the OCI runtime's state, given to a hook on its standard input --------- */

static const char *json_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Past a string (p at its quote); NULL when it does not end. */
static const char *json_skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && !*++p)
			return NULL;
	return *p ? p + 1 : NULL;
}

/* Past a value of any kind: nesting counted, strings skipped whole. */
static const char *json_skip_value(const char *p)
{
	size_t depth = 0;

	do {
		p = json_space(p);
		if (*p == '"') {
			if (!(p = json_skip_string(p)))
				return NULL;
		} else if (*p == '{' || *p == '[') {
			depth++;
			p++;
		} else if (*p == '}' || *p == ']') {
			if (!depth)
				return NULL;
			depth--;
			p++;
		} else if (*p == ',' || *p == ':') {
			if (!depth)
				return NULL;
			p++;
		} else if (*p) {
			while (*p && !strchr(" \t\r\n,:]}\"[{", *p))
				p++;
		} else {
			return NULL;
		}
	} while (depth);
	return p;
}

bool oci_state_pid(const char *json, long *pid, char *id, size_t id_size)
{
	const char *p = json_space(json), *key, *end;
	bool have_pid = false;

	*pid = 0;
	snprintf(id, id_size, "?");
	if (*p++ != '{')
		return false;
	for (p = json_space(p); *p == '"'; p = json_space(p + 1)) {
		key = p;
		if (!(end = json_skip_string(p)) || *(p = json_space(end)) != ':')
			return false;
		p = json_space(p + 1);
		if (end - key == 5 && !strncmp(key, "\"pid\"", 5)) {
			char *after;
			errno = 0;
			*pid = strtol(p, &after, 10);
			if (after == p || errno || *pid <= 0)
				return false;
			have_pid = true;
		} else if (end - key == 4 && !strncmp(key, "\"id\"", 4) && *p == '"') {
			size_t len = strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
			if (p[1 + len] == '"')
				snprintf(id, id_size, "%.*s", (int)(len < 64 ? len : 64), p + 1);
		}
		if (!(p = json_skip_value(p)) || *(p = json_space(p)) != ',')
			break;
	}
	return have_pid && *p == '}';
}
