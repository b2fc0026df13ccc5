/* SPDX-License-Identifier: MIT */
/* Where cgroup v2 is mounted, and the hint doctor and run give for a
 * program LD_PRELOAD cannot reach.  Apart from cgroup.c so that doctor.c
 * (and its fuzzer) link without the BPF code. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
