/* SPDX-License-Identifier: MIT */
/* kashim inspect PID: the keepalive state of every TCP socket of a running
 * process, read from the kernel.  Options come from getsockopt on a
 * duplicate of each descriptor (sockread.c); the time to the next probe
 * comes from sock_diag netlink, asked in the process's own network
 * namespace. */
#define _GNU_SOURCE
#include "cli.h"

#include "sockread.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static int by_inode(const void *a, const void *b)
{
	unsigned long x = ((const struct diag_entry *)a)->inode;
	unsigned long y = ((const struct diag_entry *)b)->inode;

	return x < y ? -1 : x > y;
}

/* Runs in the target's network namespace (netns_run). */
static void diag_dump(void *ctx)
{
	struct diag_table *t = ctx;
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (nl < 0)
		return;
	t->ok = diag_dump_family(nl, AF_INET, t) && diag_dump_family(nl, AF_INET6, t);
	close(nl);
}

static void diag_load(long pid, struct diag_table *t)
{
	memset(t, 0, sizeof *t);
	netns_run(pid, diag_dump, t);
	if (t->ok)
		qsort(t->e, t->n, sizeof *t->e, by_inode);
}

static const struct diag_entry *diag_find(const struct diag_table *t, unsigned long inode)
{
	struct diag_entry key = { .inode = inode };

	return t->n ? bsearch(&key, t->e, t->n, sizeof *t->e, by_inode) : NULL;
}

static void next_probe_text(const struct diag_entry *timer, bool diag_ok, char *out,
			    size_t size)
{
	if (!diag_ok)
		snprintf(out, size, "?");
	else if (!timer || timer->timer == TIMER_NONE)
		snprintf(out, size, "-");
	else if (timer->timer == TIMER_KEEPALIVE)
		snprintf(out, size, "in %.1fs (%u unanswered)", timer->expires_ms / 1000.0,
			 timer->probes);
	else if (timer->timer == TIMER_RETRANSMIT)
		snprintf(out, size, "retransmitting");
	else if (timer->timer == TIMER_ZERO_WINDOW)
		snprintf(out, size, "zero-window probing");
	else
		snprintf(out, size, "-");
}

static void print_text(const struct sock_info *s, const char *local, const char *remote,
		       const struct diag_entry *timer, bool diag_ok)
{
	const char *state = tcp_state_name(s->state);
	char next[64];

	next_probe_text(timer, diag_ok, next, sizeof next);
	if (s->keepalive == 1)
		printf("%-4d %-12s %-24s %-24s on  %6ds %6ds %5d %9dms %s\n", s->fd, state,
		       local, remote, s->idle, s->interval, s->count, s->user_timeout, next);
	else
		printf("%-4d %-12s %-24s %-24s off %7s %7s %5s %9dms %s\n", s->fd, state,
		       local, remote, "-", "-", "-", s->user_timeout, next);
}

static void print_json(const struct sock_info *s, const char *local, const char *remote,
		       const struct diag_entry *timer, bool diag_ok, bool first)
{
	printf("%s\n  {\"fd\": %d, \"state\": \"%s\", \"local\": \"%s\", \"remote\": \"%s\", "
	       "\"keepalive\": %s, \"idle_s\": %d, \"interval_s\": %d, \"count\": %d, "
	       "\"user_timeout_ms\": %d, \"timer\": ",
	       first ? "" : ",", s->fd, tcp_state_name(s->state), local, remote,
	       s->keepalive == 1 ? "true" : "false", s->idle, s->interval, s->count,
	       s->user_timeout);
	if (!diag_ok)
		printf("null, \"next_probe_ms\": null, \"unanswered_probes\": null}");
	else if (timer && timer->timer == TIMER_KEEPALIVE)
		printf("\"keepalive\", \"next_probe_ms\": %u, \"unanswered_probes\": %u}",
		       timer->expires_ms, timer->probes);
	else
		printf("\"%s\", \"next_probe_ms\": null, \"unanswered_probes\": null}",
		       !timer || timer->timer == TIMER_NONE ? "none" :
		       timer->timer == TIMER_RETRANSMIT ? "retransmit" :
		       timer->timer == TIMER_ZERO_WINDOW ? "zero-window" : "other");
}

static void print_header(bool json)
{
	if (json)
		printf("[");
	else
		printf("%-4s %-12s %-24s %-24s %-3s %7s %7s %5s %11s %s\n", "FD", "STATE", "LOCAL",
		       "REMOTE", "KA", "IDLE", "INTVL", "COUNT", "USER_TMOUT", "NEXT_PROBE");
}

struct inspect_ctx {
	bool json;
	int rows;
	struct diag_table diag;
};

static void inspect_visit(void *ctx, const struct sock_info *s)
{
	struct inspect_ctx *c = ctx;
	const struct diag_entry *timer = diag_find(&c->diag, s->inode);
	char local[64], remote[64];

	sockaddr_text(&s->local, local, sizeof local);
	sockaddr_text(&s->remote, remote, sizeof remote);
	if (c->rows == 0)
		print_header(c->json);
	if (c->json)
		print_json(s, local, remote, timer, c->diag.ok, c->rows == 0);
	else
		print_text(s, local, remote, timer, c->diag.ok);
	c->rows++;
}

static int usage(FILE *to, int status)
{
	fprintf(to, "usage: kashim inspect [--json] PID\n\n"
		"Shows every TCP socket of process PID as the kernel has it: fd,\n"
		"state, addresses, keepalive on/off, idle, interval, count, user\n"
		"timeout, and the time to the next keepalive probe.  Works on any\n"
		"process you may trace (root, or its owner where ptrace is allowed),\n"
		"started with kashim or not; never signals or stops it.  Exit status:\n"
		"0 read, 1 could not read the process or it exited while read (what\n"
		"was read is shown), 2 usage.\n");
	return status;
}

/* The one line on stderr for a read that failed or was cut short. */
static int read_failed(long pid, enum proc_read_status st, int err, int rows)
{
	switch (st) {
	case PROC_READ_OK:
		return EXIT_OK;
	case PROC_READ_NO_PROCESS:
		fprintf(stderr, "kashim inspect: no process %ld (%s)\n", pid, strerror(err));
		break;
	case PROC_READ_THREAD_ID:
		fprintf(stderr, "kashim inspect: no process %ld (a thread id, not a process id: "
			"see its Tgid in /proc/%ld/status)\n", pid, pid);
		break;
	case PROC_READ_DENIED:
		fprintf(stderr, "kashim inspect: cannot read the sockets of pid %ld: %s "
			"(run as root, or as its owner where kernel.yama.ptrace_scope "
			"allows)\n", pid, strerror(err));
		break;
	case PROC_READ_EXITED:
		if (rows)
			fprintf(stderr, "kashim inspect: pid %ld exited while it was read; "
				"the %d socket(s) shown are those read before\n", pid, rows);
		else
			fprintf(stderr, "kashim inspect: pid %ld has exited (a zombie not yet "
				"reaped, or it exited while it was read): no sockets\n", pid);
		break;
	case PROC_READ_KERNEL_THREAD:
		fprintf(stderr, "kashim inspect: pid %ld is a kernel thread: it has no "
			"sockets\n", pid);
		break;
	}
	return EXIT_PROBLEM;
}

int cmd_inspect(int argc, char **argv)
{
	struct inspect_ctx c = { 0 };
	enum proc_read_status st;
	const char *pid_arg = NULL;
	long pid;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			c.json = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return usage(stdout, EXIT_OK);
		else if (!pid_arg && argv[i][0] != '-')
			pid_arg = argv[i];
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (!pid_arg)
		return usage(stderr, EXIT_USAGE);
	if (!parse_pid(pid_arg, &pid)) {
		fprintf(stderr, "kashim inspect: \"%s\" is not a process id\n", pid_arg);
		return EXIT_USAGE;
	}
	diag_load(pid, &c.diag);
	st = proc_read_sockets(pid, inspect_visit, &c, &err);
	/* Sockets read before an exit are shown, with the exit said on stderr. */
	if (c.json)
		fputs(c.rows ? "\n]\n" : st == PROC_READ_OK || st == PROC_READ_EXITED ? "[]\n" : "", stdout);
	else if (!c.rows && st == PROC_READ_OK)
		fputs("(no TCP sockets)\n", stdout);
	free(c.diag.e);
	fflush(stdout);
	return read_failed(pid, st, err, c.rows);
}
