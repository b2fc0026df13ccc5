/* SPDX-License-Identifier: MIT */
/* Preloaded into kashim status by t_cgroup_policy.sh: opens the window
 * between reading a map id out of a map slot and opening the map by that
 * id.  When a bpf(2) BPF_MAP_GET_FD_BY_ID asks for the id the lookup just
 * before it returned (kashim reading its rules map's id from the policy
 * slot), the TEAR_AT-th time it happens (a comma-separated list of counts)
 * the command TEAR_CMD runs first, to the end (sh -c, without this
 * preload): a replacement (kashim attach again) swaps the slot, and the map
 * whose id was read is gone, at the same point every run. */
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syscall_args.h"

/* Is count in the comma-separated list? */
static int listed(const char *list, long count)
{
	char *end;

	while (list && *list) {
		if (strtol(list, &end, 10) == count && end != list)
			return 1;
		list = strchr(end, ',');
		if (list)
			list++;
	}
	return 0;
}

static void run_command(const char *cmd)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		unsetenv("LD_PRELOAD");
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

long syscall(long n, ...)
{
	syscall_fn *real = next_syscall();
	static long windows;
	static int last_cmd = -1;
	static uint32_t last_value;
	union bpf_attr *attr;
	long a[6], r;

	SYSCALL_ARGS(n, a);
	attr = (union bpf_attr *)a[1];
	if (n == SYS_bpf && a[0] == BPF_MAP_GET_FD_BY_ID && last_cmd == BPF_MAP_LOOKUP_ELEM &&
	    attr->map_id == last_value && listed(getenv("TEAR_AT"), ++windows) && getenv("TEAR_CMD"))
		run_command(getenv("TEAR_CMD"));
	r = real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (n == SYS_bpf) {
		last_cmd = (int)a[0];
		if (a[0] == BPF_MAP_LOOKUP_ELEM && r == 0)
			memcpy(&last_value, (void *)(uintptr_t)attr->value, sizeof last_value);
	}
	return r;
}
