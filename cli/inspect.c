/* kashim inspect PID: the keepalive state of every TCP socket of a running
 * process, read from the kernel.  Options come from getsockopt on a
 * duplicate of each descriptor (pidfd_getfd(2), which needs the right to
 * ptrace the process); the time to the next probe comes from sock_diag
 * netlink, asked in the process's own network namespace. */
#define _GNU_SOURCE
#include "cli.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* inet_diag idiag_timer values */
enum { TIMER_NONE, TIMER_RETRANSMIT, TIMER_KEEPALIVE, TIMER_TIME_WAIT, TIMER_ZERO_WINDOW };

struct diag_entry {
	unsigned long inode;
	unsigned char timer;
	unsigned expires_ms;
	unsigned char probes;
};

struct diag_table {
	struct diag_entry *e;
	size_t n, cap;
	bool ok; /* false: no timer information could be had */
};

static const char *const tcp_states[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

static void diag_add(struct diag_table *t, const struct inet_diag_msg *m)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct diag_entry *e = realloc(t->e, cap * sizeof *e);
		if (!e)
			return;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n++] = (struct diag_entry){ m->idiag_inode, m->idiag_timer, m->idiag_expires,
					    m->idiag_retrans };
}

static bool diag_dump_family(int nl, int family, struct diag_table *t)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof msg, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = (unsigned char)family, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = ~0u },
	};
	static char buf[32768];

	if (send(nl, &msg, sizeof msg, 0) != (ssize_t)sizeof msg)
		return false;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof buf, 0);
		struct nlmsghdr *h;
		if (n <= 0)
			return false;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return true;
			if (h->nlmsg_type == NLMSG_ERROR)
				return false;
			diag_add(t, NLMSG_DATA(h));
		}
	}
}

/* A sock_diag socket in pid's network namespace (entering it needs
 * CAP_SYS_ADMIN when it is not ours), or -1. */
static int diag_socket(long pid)
{
	char path[64];
	struct stat mine, theirs;
	int own = -1, target = -1, nl = -1;

	snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
	if (stat("/proc/self/ns/net", &mine) != 0 || stat(path, &theirs) != 0)
		return -1;
	if (mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev)
		return socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (own >= 0 && target >= 0 && setns(target, CLONE_NEWNET) == 0) {
		nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (setns(own, CLONE_NEWNET) != 0) {
			perror("kashim inspect: cannot return to our network namespace");
			exit(EXIT_PROBLEM);
		}
	}
	if (own >= 0)
		close(own);
	if (target >= 0)
		close(target);
	return nl;
}

static void diag_load(long pid, struct diag_table *t)
{
	int nl = diag_socket(pid);

	memset(t, 0, sizeof *t);
	if (nl < 0)
		return;
	t->ok = diag_dump_family(nl, AF_INET, t) && diag_dump_family(nl, AF_INET6, t);
	close(nl);
}

static const struct diag_entry *diag_find(const struct diag_table *t, unsigned long inode)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->e[i].inode == inode)
			return &t->e[i];
	return NULL;
}

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
		snprintf(out, size, "*");
	}
}

struct tcp_row {
	int fd;
	const char *state;
	char local[64], remote[64];
	int keepalive, idle, interval, count, user_timeout;
	const struct diag_entry *timer;
};

/* Fills row from a duplicate of the target's fd; false if not TCP. */
static bool read_row(int fd, int target_fd, const struct diag_table *diag,
		     struct tcp_row *row)
{
	int family = opt(fd, SOL_SOCKET, SO_DOMAIN), type = opt(fd, SOL_SOCKET, SO_TYPE);
	int proto = opt(fd, SOL_SOCKET, SO_PROTOCOL);
	struct sockaddr_storage local = { 0 }, remote = { 0 };
	socklen_t len = sizeof local;
	struct tcp_info info;
	socklen_t ilen = sizeof info;
	struct stat st;

	if ((family != AF_INET && family != AF_INET6) || type != SOCK_STREAM ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_MPTCP))
		return false;
	memset(row, 0, sizeof *row);
	row->fd = target_fd;
	getsockname(fd, (struct sockaddr *)&local, &len);
	len = sizeof remote;
	getpeername(fd, (struct sockaddr *)&remote, &len);
	format_addr(&local, row->local, sizeof row->local);
	format_addr(&remote, row->remote, sizeof row->remote);
	memset(&info, 0, sizeof info);
	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &ilen);
	row->state = info.tcpi_state < sizeof tcp_states / sizeof tcp_states[0] ?
		     tcp_states[info.tcpi_state] : "?";
	row->keepalive = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	row->idle = opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	row->interval = opt(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	row->count = opt(fd, IPPROTO_TCP, TCP_KEEPCNT);
	row->user_timeout = opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
	row->timer = fstat(fd, &st) == 0 ? diag_find(diag, (unsigned long)st.st_ino) : NULL;
	return true;
}

static void next_probe_text(const struct tcp_row *r, bool diag_ok, char *out, size_t size)
{
	if (!diag_ok)
		snprintf(out, size, "?");
	else if (!r->timer || r->timer->timer == TIMER_NONE)
		snprintf(out, size, "-");
	else if (r->timer->timer == TIMER_KEEPALIVE)
		snprintf(out, size, "in %.1fs (%u unanswered)", r->timer->expires_ms / 1000.0,
			 r->timer->probes);
	else if (r->timer->timer == TIMER_RETRANSMIT)
		snprintf(out, size, "retransmitting");
	else if (r->timer->timer == TIMER_ZERO_WINDOW)
		snprintf(out, size, "zero-window probing");
	else
		snprintf(out, size, "-");
}

static void print_text(const struct tcp_row *r, bool diag_ok)
{
	char next[64];

	next_probe_text(r, diag_ok, next, sizeof next);
	if (r->keepalive == 1)
		printf("%-4d %-12s %-24s %-24s on  %6ds %6ds %5d %9dms %s\n", r->fd, r->state,
		       r->local, r->remote, r->idle, r->interval, r->count, r->user_timeout, next);
	else
		printf("%-4d %-12s %-24s %-24s off %7s %7s %5s %9dms %s\n", r->fd, r->state,
		       r->local, r->remote, "-", "-", "-", r->user_timeout, next);
}

static void print_json(const struct tcp_row *r, bool diag_ok, bool first)
{
	printf("%s\n  {\"fd\": %d, \"state\": \"%s\", \"local\": \"%s\", \"remote\": \"%s\", "
	       "\"keepalive\": %s, \"idle_s\": %d, \"interval_s\": %d, \"count\": %d, "
	       "\"user_timeout_ms\": %d, \"timer\": ",
	       first ? "" : ",", r->fd, r->state, r->local, r->remote,
	       r->keepalive == 1 ? "true" : "false", r->idle, r->interval, r->count,
	       r->user_timeout);
	if (!diag_ok)
		printf("null, \"next_probe_ms\": null, \"unanswered_probes\": null}");
	else if (r->timer && r->timer->timer == TIMER_KEEPALIVE)
		printf("\"keepalive\", \"next_probe_ms\": %u, \"unanswered_probes\": %u}",
		       r->timer->expires_ms, r->timer->probes);
	else
		printf("\"%s\", \"next_probe_ms\": null, \"unanswered_probes\": null}",
		       !r->timer || r->timer->timer == TIMER_NONE ? "none" :
		       r->timer->timer == TIMER_RETRANSMIT ? "retransmit" :
		       r->timer->timer == TIMER_ZERO_WINDOW ? "zero-window" : "other");
}

static int usage(FILE *to, int status)
{
	fprintf(to, "usage: kashim inspect [--json] PID\n\n"
		"Shows every TCP socket of process PID as the kernel has it: fd,\n"
		"state, addresses, keepalive on/off, idle, interval, count, user\n"
		"timeout, and the time to the next keepalive probe.  Works on any\n"
		"process you may trace (root, or its owner where ptrace is allowed),\n"
		"started with kashim or not.  Exit status: 0 read, 1 could not read\n"
		"the process, 2 usage.\n");
	return status;
}

int cmd_inspect(int argc, char **argv)
{
	bool json = false, first = true;
	const char *pid_arg = NULL;
	char path[64], link[64], *end;
	struct diag_table diag;
	struct dirent *d;
	DIR *dir;
	long pid;
	int i, pidfd, rows = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return usage(stdout, EXIT_OK);
		else if (!pid_arg && argv[i][0] != '-')
			pid_arg = argv[i];
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (!pid_arg)
		return usage(stderr, EXIT_USAGE);
	errno = 0;
	pid = strtol(pid_arg, &end, 10);
	if (errno || *end || pid <= 0 || pid > 4194304) {
		fprintf(stderr, "kashim inspect: \"%s\" is not a process id\n", pid_arg);
		return EXIT_USAGE;
	}
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		fprintf(stderr, "kashim inspect: no process %ld (%s)\n", pid, strerror(errno));
		return EXIT_PROBLEM;
	}
	snprintf(path, sizeof path, "/proc/%ld/fd", pid);
	dir = opendir(path);
	if (!dir) {
		fprintf(stderr, "kashim inspect: cannot list the descriptors of pid %ld: %s "
			"(run as root or as the process's owner)\n", pid, strerror(errno));
		return EXIT_PROBLEM;
	}
	diag_load(pid, &diag);
	if (json)
		printf("[");
	else
		printf("%-4s %-12s %-24s %-24s %-3s %7s %7s %5s %11s %s\n", "FD", "STATE", "LOCAL",
		       "REMOTE", "KA", "IDLE", "INTVL", "COUNT", "USER_TMOUT", "NEXT_PROBE");
	while ((d = readdir(dir))) {
		char fdpath[320];
		struct tcp_row row;
		ssize_t n;
		int fd, target;

		if (d->d_name[0] == '.')
			continue;
		target = atoi(d->d_name);
		snprintf(fdpath, sizeof fdpath, "%s/%s", path, d->d_name);
		n = readlink(fdpath, link, sizeof link - 1);
		if (n <= 0 || strncmp(link, "socket:", 7))
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
		if (fd < 0) {
			if (errno == EBADF)
				continue; /* closed meanwhile */
			fprintf(stderr, "kashim inspect: cannot read the sockets of pid %ld: %s "
				"(run as root, or as its owner where kernel.yama.ptrace_scope "
				"allows)\n", pid, strerror(errno));
			closedir(dir);
			if (json)
				printf("]\n");
			return EXIT_PROBLEM;
		}
		if (read_row(fd, target, &diag, &row)) {
			if (json)
				print_json(&row, diag.ok, first);
			else
				print_text(&row, diag.ok);
			first = false;
			rows++;
		}
		close(fd);
	}
	closedir(dir);
	if (json)
		printf("%s]\n", first ? "" : "\n");
	else if (!rows)
		printf("(no TCP sockets)\n");
	free(diag.e);
	return EXIT_OK;
}
