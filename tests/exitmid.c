/* SPDX-License-Identifier: MIT */
/* Preloaded into kashim inspect or kashim audit by the tests: right after
 * the EXITMID_AFTER-th pidfd_getfd(2) on process EXITMID_PID returns, that
 * process is killed and this waits (up to 5 s) until it has exited, so the
 * process exits in the middle of the read, at the same point every run. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "syscall_args.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* The process a pidfd of ours refers to (its fdinfo "Pid:" line). */
static long pid_of_pidfd(long pidfd)
{
	char path[64], line[128];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/fdinfo/%ld", pidfd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	fclose(f);
	return pid;
}

static void kill_and_wait(syscall_fn *real, long pid)
{
	struct pollfd p = { .fd = (int)real(SYS_pidfd_open, pid, 0), .events = POLLIN };

	kill((pid_t)pid, SIGKILL);
	if (p.fd >= 0) {
		poll(&p, 1, 5000);
		close(p.fd);
	}
}

long syscall(long n, ...)
{
	syscall_fn *real = next_syscall();
	static long calls;
	const char *victim = getenv("EXITMID_PID"), *after = getenv("EXITMID_AFTER");
	long a[6], r;

	SYSCALL_ARGS(n, a);
	r = real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (n == SYS_pidfd_getfd && victim && after && r >= 0 &&
	    pid_of_pidfd(a[0]) == atol(victim) && ++calls == atol(after))
		kill_and_wait(real, atol(victim));
	return r;
}
