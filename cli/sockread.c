/* SPDX-License-Identifier: MIT */
/* The TCP sockets of a running process, read from outside it.  Each
 * descriptor listed in /proc/PID/fd that is a socket is duplicated into
 * this process with pidfd_getfd(2) (which needs the right to ptrace the
 * process) and read with getsockopt; the process is never signalled or
 * stopped.  The pidfd also tells whether the process exited meanwhile, so
 * a read cut short by an exit, or a process id reused, is reported. */
#define _GNU_SOURCE
#include "sockread.h"
#include "cli.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44 /* Linux 6.15: the per-socket cap of the backoff */
#endif

#define PF_KTHREAD_FLAG 0x00200000u /* include/linux/sched.h */
#define RTO_MAX_DEFAULT_MS 120000u  /* TCP_RTO_MAX before it could be set */
#define PID_MAX 4194304L            /* PID_MAX_LIMIT on 64-bit kernels */
/* How long to wait for an exit to complete when a descriptor vanished
 * mid-read: a process's descriptors are released a moment before its
 * pidfd reports the exit. */
#define EXIT_SETTLE_MS 100

static const char *const tcp_states[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

const char *tcp_state_name(unsigned state)
{
	return state < sizeof tcp_states / sizeof tcp_states[0] ? tcp_states[state] : "?";
}

void sockaddr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(out, size, "%s:%u", host, ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(out, size, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, size, "*");
	}
}

/* A decimal number of digits only (no sign, space or base prefix) up to max. */
static bool parse_digits(const char *s, long max, long *v)
{
	*v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || *v > (max - (*s - '0')) / 10)
			return false;
		*v = *v * 10 + (*s - '0');
	}
	return true;
}

bool parse_pid(const char *s, long *pid)
{
	return parse_digits(s, PID_MAX, pid) && *pid > 0;
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

static bool is_tcp(int fd)
{
	int family = opt(fd, SOL_SOCKET, SO_DOMAIN), proto;

	if ((family != AF_INET && family != AF_INET6) || opt(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM)
		return false;
	proto = opt(fd, SOL_SOCKET, SO_PROTOCOL);
	return proto == IPPROTO_TCP || proto == IPPROTO_MPTCP;
}

static void fill_info(int fd, int target_fd, struct sock_info *s)
{
	socklen_t len = sizeof s->local;
	struct tcp_info info;
	struct stat st;
	int rto_max;

	memset(s, 0, sizeof *s);
	s->fd = target_fd;
	getsockname(fd, (struct sockaddr *)&s->local, &len);
	len = sizeof s->remote;
	getpeername(fd, (struct sockaddr *)&s->remote, &len);
	memset(&info, 0, sizeof info);
	len = sizeof info;
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
	s->state = info.tcpi_state;
	/* tcpi_rto is the current timeout, doubled once per backoff step */
	s->rto_ms = (info.tcpi_rto >> (info.tcpi_backoff < 31 ? info.tcpi_backoff : 31)) / 1000;
	s->keepalive = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	s->idle = opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	s->interval = opt(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	s->count = opt(fd, IPPROTO_TCP, TCP_KEEPCNT);
	s->user_timeout = opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
	rto_max = opt(fd, IPPROTO_TCP, TCP_RTO_MAX_MS);
	s->rto_max_ms = rto_max > 0 ? (unsigned)rto_max : RTO_MAX_DEFAULT_MS;
	if (fstat(fd, &st) == 0)
		s->inode = (unsigned long)st.st_ino;
}

static bool exited(int pidfd, int wait_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, wait_ms) > 0 && (p.revents & (POLLIN | POLLHUP));
}

static bool is_kernel_thread(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long flags = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p)
		return false;
	for (field = 2; field < 9 && p; field++) /* flags is field 9 */
		p = strchr(p + 1, ' ');
	if (p)
		flags = strtoul(p + 1, NULL, 10);
	return flags & PF_KTHREAD_FLAG;
}

/* /proc/ID answers for a thread too, though /proc does not list it; its
 * Tgid is then its process's id. */
static bool is_thread_id(long id)
{
	char path[64], line[128];
	long tgid = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", id);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Tgid:", 5))
			tgid = strtol(line + 5, NULL, 10);
	fclose(f);
	return tgid > 0 && tgid != id;
}

enum fd_result { FD_DONE, FD_VANISHED, FD_DENIED };

/* Reads descriptor name of the target if it is a TCP socket. */
static enum fd_result read_fd(int pidfd, int fddir, const char *name, sock_visit_fn *visit,
			      void *ctx, int *err)
{
	char link[32];
	struct sock_info s;
	ssize_t n;
	long target;
	int fd;

	if (!parse_digits(name, INT_MAX, &target))
		return FD_DONE; /* "." and ".." */
	n = readlinkat(fddir, name, link, sizeof link - 1);
	if (n < 0)
		return FD_VANISHED;
	link[n] = 0;
	if (strncmp(link, "socket:", 7))
		return FD_DONE;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)target, 0);
	if (fd < 0) {
		if (errno == EBADF || errno == ESRCH)
			return FD_VANISHED; /* closed meanwhile, or the process exited */
		*err = errno;
		return FD_DENIED;
	}
	if (is_tcp(fd)) {
		fill_info(fd, (int)target, &s);
		visit(ctx, &s);
	}
	close(fd);
	return FD_DONE;
}

enum proc_read_status proc_read_sockets(long pid, sock_visit_fn *visit, void *ctx, int *err)
{
	enum proc_read_status status = PROC_READ_OK;
	bool vanished = false;
	char path[64];
	struct dirent *d;
	DIR *dir;
	int pidfd;

	*err = 0;
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		*err = errno;
		if (errno == EPERM || errno == EACCES)
			return PROC_READ_DENIED;
		return is_thread_id(pid) ? PROC_READ_THREAD_ID : PROC_READ_NO_PROCESS;
	}
	if (exited(pidfd, 0)) {
		status = PROC_READ_EXITED; /* a zombie */
		goto out;
	}
	if (is_kernel_thread(pid)) {
		status = PROC_READ_KERNEL_THREAD;
		goto out;
	}
	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	dir = opendir(path);
	if (!dir) {
		*err = errno;
		status = errno == ENOENT ? PROC_READ_EXITED : PROC_READ_DENIED;
		goto out;
	}
	while (status == PROC_READ_OK && (d = readdir(dir))) {
		switch (read_fd(pidfd, dirfd(dir), d->d_name, visit, ctx, err)) {
		case FD_VANISHED: vanished = true; break;
		case FD_DENIED: status = PROC_READ_DENIED; break;
		case FD_DONE: break;
		}
	}
	closedir(dir);
	/* Also catches a process id reused during the read: the listing was
	 * another process's, but the pidfd is the one we opened. */
	if (exited(pidfd, vanished || status != PROC_READ_OK ? EXIT_SETTLE_MS : 0))
		status = PROC_READ_EXITED;
out:
	close(pidfd);
	return status;
}

bool netns_id(long pid, unsigned long long *id)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
	if (stat(path, &st) != 0)
		return false;
	*id = ((unsigned long long)st.st_dev << 32) ^ (unsigned long long)st.st_ino;
	return true;
}

bool netns_run(long pid, void (*fn)(void *ctx), void *ctx)
{
	unsigned long long mine, theirs;
	char path[64];
	int own = -1, target = -1;
	bool ran = false;

	if (!netns_id((long)getpid(), &mine) || !netns_id(pid, &theirs))
		return false;
	if (mine == theirs) {
		fn(ctx);
		return true;
	}
	snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
	own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (own >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0) {
		fn(ctx);
		ran = true;
		if (setns(own, CLONE_NEWNET) != 0) {
			perror("kashim: cannot return to our network namespace");
			exit(EXIT_PROBLEM);
		}
	}
	if (own >= 0)
		close(own);
	if (target >= 0)
		close(target);
	return ran;
}
