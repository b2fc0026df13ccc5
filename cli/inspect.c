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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void next_probe_text(const struct sock_info *s, const struct diag_entry *timer,
			    bool diag_ok, char *out, size_t size)
{
	if (s->mptcp)
		snprintf(out, size, "mptcp: per subflow (*)");
	else if (!diag_ok)
		snprintf(out, size, "?");
	else if (!timer || timer->timer == DIAG_TIMER_NONE)
		snprintf(out, size, "-");
	else if (timer->timer == DIAG_TIMER_KEEPALIVE)
		snprintf(out, size, "in %.1fs (%u unanswered)", timer->expires_ms / 1000.0,
			 timer->probes);
	else if (timer->timer == DIAG_TIMER_RETRANSMIT)
		snprintf(out, size, "retransmitting");
	else if (timer->timer == DIAG_TIMER_ZERO_WINDOW)
		snprintf(out, size, "zero-window probing");
	else
		snprintf(out, size, "-");
}

/* An option as read: "unknown" where the kernel refused the read. */
static const char *option_text(int v, const char *unit, char *out, size_t size)
{
	if (v < 0)
		snprintf(out, size, "unknown");
	else
		snprintf(out, size, "%d%s", v, unit);
	return out;
}

static void print_text(const struct sock_info *s, const char *local, const char *remote,
		       const struct diag_entry *timer, bool diag_ok)
{
	const char *state = tcp_state_name(s->state);
	char next[64], idle[16], intvl[16], count[16], ut[16];

	next_probe_text(s, timer, diag_ok, next, sizeof next);
	option_text(s->user_timeout, "ms", ut, sizeof ut);
	if (s->keepalive == 1)
		printf("%-4d %-12s %-24s %-24s on  %7s %7s %5s %11s %s\n", s->fd, state, local,
		       remote, option_text(s->idle, "s", idle, sizeof idle),
		       option_text(s->interval, "s", intvl, sizeof intvl),
		       option_text(s->count, "", count, sizeof count), ut, next);
	else
		printf("%-4d %-12s %-24s %-24s %-3s %7s %7s %5s %11s %s\n", s->fd, state, local,
		       remote, s->keepalive < 0 ? "?" : "off", "-", "-", "-", ut, next);
}

/* A number, or null where the kernel refused the read. */
static void json_int(const char *name, int v)
{
	if (v < 0)
		printf(", \"%s\": null", name);
	else
		printf(", \"%s\": %d", name, v);
}

static void print_json(const struct sock_info *s, const char *local, const char *remote,
		       const struct diag_entry *timer, bool diag_ok, bool first)
{
	printf("%s\n  {\"fd\": %d, \"protocol\": \"%s\", \"state\": \"%s\", \"local\": \"%s\", "
	       "\"remote\": \"%s\", \"keepalive\": %s", first ? "" : ",", s->fd,
	       s->mptcp ? "mptcp" : "tcp", tcp_state_name(s->state), local, remote,
	       s->keepalive < 0 ? "null" : s->keepalive == 1 ? "true" : "false");
	json_int("idle_s", s->idle);
	json_int("interval_s", s->interval);
	json_int("count", s->count);
	json_int("user_timeout_ms", s->user_timeout);
	printf(", \"timer\": ");
	if (s->mptcp)
		printf("\"mptcp-subflows\", \"next_probe_ms\": null, \"unanswered_probes\": null}");
	else if (!diag_ok)
		printf("null, \"next_probe_ms\": null, \"unanswered_probes\": null}");
	else if (timer && timer->timer == DIAG_TIMER_KEEPALIVE)
		printf("\"keepalive\", \"next_probe_ms\": %u, \"unanswered_probes\": %u}",
		       timer->expires_ms, timer->probes);
	else
		printf("\"%s\", \"next_probe_ms\": null, \"unanswered_probes\": null}",
		       !timer || timer->timer == DIAG_TIMER_NONE ? "none" :
		       timer->timer == DIAG_TIMER_RETRANSMIT ? "retransmit" :
		       timer->timer == DIAG_TIMER_ZERO_WINDOW ? "zero-window" : "other");
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
	int rows, mptcp;
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
	c->mptcp += s->mptcp;
}

static int usage(FILE *to, int status)
{
	fprintf(to, "usage: kashim inspect [--json] [--] PID\n\n"
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
		else if (!pid_arg && !strcmp(argv[i], "--") && i + 2 == argc)
			pid_arg = argv[++i]; /* "--" ends the options, as everywhere */
		else if (!pid_arg && argv[i][0] != '-')
			pid_arg = argv[i];
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (!pid_arg)
		return usage(stderr, EXIT_USAGE);
	if (!parse_pid(pid_arg, &pid)) {
		char shown[128];
		fprintf(stderr, "kashim inspect: \"%s\" is not a process id\n",
			escaped(pid_arg, shown, sizeof shown));
		return EXIT_USAGE;
	}
	diag_load(pid, &c.diag);
	st = proc_read_sockets(pid, inspect_visit, &c, &err);
	/* Sockets read before an exit are shown, with the exit said on stderr. */
	if (c.json)
		fputs(c.rows ? "\n]\n" : st == PROC_READ_OK || st == PROC_READ_EXITED ? "[]\n" : "", stdout);
	else if (!c.rows && st == PROC_READ_OK)
		fputs("(no TCP sockets)\n", stdout);
	else if (c.mptcp)
		fputs("\n(*) MPTCP: the options shown are those of its subflows (no user timeout:\n"
		      "    the kernel refuses one); a vanished peer ends a subflow, and the\n"
		      "    connection only net.mptcp.close_timeout later: kashim audit gives the bound\n",
		      stdout);
	free(c.diag.e);
	fflush(stdout);
	return read_failed(pid, st, err, c.rows);
}
