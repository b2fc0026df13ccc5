/* SPDX-License-Identifier: MIT */
/* sockpeek PID: the kernel's view of every socket a running process holds,
 * read from outside it: each fd in /proc/PID/fd is duplicated into this
 * process with pidfd_getfd(2) (needs ptrace access: root, or the same user
 * without Yama restrictions) and read with getsockopt.  One line a socket:
 *
 *   fd=5 family=inet6 proto=tcp state=ESTABLISHED local=[::1]:8080
 *   remote=[::1]:41234 keepalive=1 idle=15 interval=15 count=9 user_timeout=150000
 *
 * Other sockets print family, type and keepalive only.  Exit 0 when the
 * process could be read, 1 otherwise (with the reason on stderr). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static const char *const tcp_states[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
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
		snprintf(out, size, "-");
	}
}

static void show(int target_fd, int fd)
{
	int family = opt(fd, SOL_SOCKET, SO_DOMAIN), type = opt(fd, SOL_SOCKET, SO_TYPE);
	int proto = opt(fd, SOL_SOCKET, SO_PROTOCOL), ka = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	struct sockaddr_storage local = { 0 }, remote = { 0 };
	socklen_t len = sizeof local;
	char l[80], r[80];
	struct tcp_info info;
	socklen_t ilen = sizeof info;
	const char *fam = family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" :
			  family == AF_UNIX ? "unix" : family == AF_NETLINK ? "netlink" : "other";

	if ((family != AF_INET && family != AF_INET6) || type != SOCK_STREAM ||
	    (proto != IPPROTO_TCP && proto != 262)) {
		printf("fd=%d family=%s type=%d proto=%d keepalive=%d\n", target_fd, fam, type,
		       proto, ka);
		return;
	}
	getsockname(fd, (struct sockaddr *)&local, &len);
	len = sizeof remote;
	getpeername(fd, (struct sockaddr *)&remote, &len);
	format_addr(&local, l, sizeof l);
	format_addr(&remote, r, sizeof r);
	memset(&info, 0, sizeof info);
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &ilen);
	printf("fd=%d family=%s proto=%s state=%s local=%s remote=%s keepalive=%d idle=%d "
	       "interval=%d count=%d user_timeout=%d\n",
	       target_fd, fam, proto == 262 ? "mptcp" : "tcp",
	       info.tcpi_state < sizeof tcp_states / sizeof tcp_states[0] ?
	       tcp_states[info.tcpi_state] : "?", l, r, ka,
	       opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), opt(fd, IPPROTO_TCP, TCP_KEEPINTVL),
	       opt(fd, IPPROTO_TCP, TCP_KEEPCNT), opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
}

int main(int argc, char **argv)
{
	char path[64], link[64];
	DIR *dir;
	struct dirent *d;
	int pidfd;
	long pid;

	if (argc != 2 || (pid = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sockpeek PID\n");
		return 2;
	}
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		fprintf(stderr, "sockpeek: pid %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	dir = opendir(path);
	if (!dir) {
		fprintf(stderr, "sockpeek: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((d = readdir(dir))) {
		char fdpath[320];
		ssize_t n;
		int target = atoi(d->d_name), fd;

		if (d->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof fdpath, "%s/%s", path, d->d_name);
		n = readlink(fdpath, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strncmp(link, "socket:", 7))
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
		if (fd < 0) {
			fprintf(stderr, "sockpeek: pid %ld fd %d: %s\n", pid, target,
				strerror(errno));
			closedir(dir);
			return 1;
		}
		show(target, fd);
		close(fd);
	}
	closedir(dir);
	return 0;
}
