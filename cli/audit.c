/* SPDX-License-Identifier: MIT */
/* kashim audit: which connections on this host would never notice a dead
 * peer?  Every TCP socket of every process it may read (all as root, its
 * own otherwise), read with the same kernel reads as kashim inspect
 * (sockread.c), grouped by program: executable and systemd unit or
 * cgroup.  For each connection, the worst-case time to notice a vanished
 * peer is computed as the kernel would reach it:
 *
 *   idle:  never without SO_KEEPALIVE; idle + interval x count without a
 *          user timeout; with one, the kernel ignores the count and drops
 *          the connection at the first probe time (idle + k x interval,
 *          k >= 1) at which the user timeout has passed
 *          (net/ipv4/tcp_timer.c, tcp_keepalive_timer).
 *   busy:  data in flight.  The first retransmission comes at most two
 *          RTOs after the send (a tail-loss probe, due within one RTO, then
 *          the retransmission timeout: tcp_schedule_loss_probe); from then
 *          the user timeout counts, or without one the
 *          kernel's model of net.ipv4.tcp_retries2 retransmissions
 *          (tcp_model_timeout: 200 ms doubling up to the RTO cap),
 *          checked each time the retransmission timer fires, and that
 *          timer runs on the connection's own RTO, doubling up to the cap
 *          (retransmits_timed_out, tcp_retransmit_timer). */
#define _GNU_SOURCE
#include "cli.h"
#include "sockread.h"
#include "../config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h> /* INFINITY and isinf only: no libm */
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RTO_MIN_MS 200u        /* TCP_RTO_MIN: the base of the kernel's model */
#define RETRIES2_DEFAULT 15    /* when the sysctl cannot be read */
#define MODEL_STEPS_MAX 100000 /* bounds the timer walk; far above any real one */

struct connection {
	size_t program;
	long pid;
	struct sock_info s;
	int retries2;
	double idle_ms, busy_ms; /* INFINITY: never */
};

struct program {
	char exe[PATH_MAX];
	char unit[256];   /* the systemd unit (*.service), or "" */
	char cgroup[1024]; /* the cgroup v2 path */
	long *pids;
	size_t npids, cap_pids;
	unsigned connections, keepalive, user_timeout, listeners, listeners_keepalive;
	double worst_idle_ms, worst_busy_ms;
};

struct netns_retries {
	unsigned long long id;
	int retries2;
};

struct audit {
	struct program *programs;
	size_t nprograms, cap_programs;
	struct connection *conns; /* kept for --json only */
	size_t nconns, cap_conns;
	bool keep_conns;
	struct netns_retries *netns;
	size_t nnetns;
	unsigned read, unreadable, exited, total_connections;
	/* the sockets of the process being read, counted once it was read
	 * whole: a process that exits mid-read has no connections left */
	struct sock_info *pending;
	size_t npending, cap_pending;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap * 2 : 16;
	void *q;

	if (n < *cap)
		return p;
	q = realloc(p, c * size);
	if (!q) {
		fputs("kashim audit: out of memory\n", stderr);
		exit(EXIT_PROBLEM);
	}
	*cap = c;
	return q;
}

/* --- the worst-case bounds ------------------------------------------ */

static double idle_bound_ms(const struct sock_info *s)
{
	long long idle = s->idle * 1000LL, interval = s->interval * 1000LL, k;

	if (s->keepalive != 1)
		return INFINITY;
	if (s->user_timeout <= 0 || interval <= 0)
		return (double)(idle + interval * s->count);
	k = (s->user_timeout - idle + interval - 1) / interval; /* rounded up */
	return (double)(idle + interval * (k < 1 ? 1 : k));
}

static int ilog2u(unsigned v)
{
	int r = -1;

	for (; v; v >>= 1)
		r++;
	return r;
}

/* tcp_model_timeout(): how long retries2 retransmissions would take from a
 * 200 ms timeout doubling up to the cap. */
static double model_timeout_ms(int boundary, unsigned rto_max_ms)
{
	int thresh = ilog2u(rto_max_ms / RTO_MIN_MS);

	if (boundary <= thresh)
		return ((2.0 * (1u << boundary)) - 1) * RTO_MIN_MS;
	return ((2.0 * (1u << thresh)) - 1) * RTO_MIN_MS + (double)(boundary - thresh) * rto_max_ms;
}

static double busy_bound_ms(const struct sock_info *s, int retries2)
{
	double rto = s->rto_ms ? s->rto_ms : RTO_MIN_MS, step = rto, elapsed = 0, limit;
	int i;

	if (s->user_timeout > 0)
		return 2 * rto + s->user_timeout;
	limit = model_timeout_ms(retries2 < 0 ? 0 : retries2 > 30 ? 30 : retries2, s->rto_max_ms);
	for (i = 0; elapsed < limit && i < MODEL_STEPS_MAX; i++) {
		step = step * 2 < s->rto_max_ms ? step * 2 : s->rto_max_ms;
		elapsed += step;
	}
	return 2 * rto + elapsed;
}

/* --- reading -------------------------------------------------------- */

static void read_retries2(void *ctx)
{
	int *v = ctx, fd = open("/proc/sys/net/ipv4/tcp_retries2", O_RDONLY | O_CLOEXEC);
	char buf[32] = { 0 };

	if (fd < 0)
		return;
	if (read(fd, buf, sizeof buf - 1) > 0)
		*v = atoi(buf);
	close(fd);
}

/* net.ipv4.tcp_retries2 of pid's network namespace, read there once. */
static int retries2_of(struct audit *a, long pid)
{
	unsigned long long id = 0;
	int v = -1;
	size_t i;

	if (!netns_id(pid, &id))
		id = 0;
	for (i = 0; i < a->nnetns; i++)
		if (a->netns[i].id == id)
			return a->netns[i].retries2;
	if (!id || !netns_run(pid, read_retries2, &v) || v < 0)
		read_retries2(&v); /* ours, when theirs cannot be entered */
	if (v < 0)
		v = RETRIES2_DEFAULT;
	a->netns = realloc(a->netns, (a->nnetns + 1) * sizeof *a->netns);
	if (a->netns)
		a->netns[a->nnetns++] = (struct netns_retries){ id, v };
	else
		a->nnetns = 0;
	return v;
}

/* The unit from a cgroup path: its last component ending in .service. */
static void unit_of(const char *cgroup, char *unit, size_t size)
{
	const char *p = cgroup, *best = NULL, *end;

	unit[0] = 0;
	while (p && *p) {
		const char *next = strchr(p + 1, '/');
		size_t len = next ? (size_t)(next - p - 1) : strlen(p + 1);
		if (len > 8 && !strncmp(p + 1 + len - 8, ".service", 8))
			best = p + 1;
		p = next;
	}
	if (!best)
		return;
	end = strchr(best, '/');
	snprintf(unit, size, "%.*s", (int)(end ? end - best : (long)strlen(best)), best);
}

static void cgroup_of(long pid, char *out, size_t size)
{
	char path[64], line[1024];
	FILE *f;

	snprintf(out, size, "?");
	snprintf(path, sizeof path, "/proc/%ld/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "0::", 3)) { /* the cgroup v2 hierarchy */
			line[strcspn(line, "\n")] = 0;
			snprintf(out, size, "%s", line + 3);
		}
	fclose(f);
}

static size_t program_of(struct audit *a, long pid)
{
	char exe[PATH_MAX], cgroup[1024], unit[256], path[64];
	struct program *p;
	ssize_t n;
	size_t i;

	snprintf(path, sizeof path, "/proc/%ld/exe", pid);
	n = readlink(path, exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	if (n <= 0)
		snprintf(exe, sizeof exe, "?");
	cgroup_of(pid, cgroup, sizeof cgroup);
	unit_of(cgroup, unit, sizeof unit);
	for (i = 0; i < a->nprograms; i++) {
		p = &a->programs[i];
		/* one row per program and unit; outside units, per cgroup */
		if (!strcmp(p->exe, exe) &&
		    (*unit ? !strcmp(p->unit, unit) : !*p->unit && !strcmp(p->cgroup, cgroup)))
			break;
	}
	if (i == a->nprograms) {
		a->programs = grow(a->programs, &a->cap_programs, a->nprograms, sizeof *a->programs);
		p = &a->programs[a->nprograms++];
		memset(p, 0, sizeof *p);
		snprintf(p->exe, sizeof p->exe, "%s", exe);
		snprintf(p->unit, sizeof p->unit, "%s", unit);
		snprintf(p->cgroup, sizeof p->cgroup, "%s", cgroup);
	}
	p = &a->programs[i];
	p->pids = grow(p->pids, &p->cap_pids, p->npids, sizeof *p->pids);
	p->pids[p->npids++] = pid;
	return i;
}

static void audit_visit(void *ctx, const struct sock_info *s)
{
	struct audit *a = ctx;

	if (s->state == TCP_CLOSE || s->state == TCP_TIME_WAIT)
		return; /* unconnected, or already closed: no peer to lose */
	a->pending = grow(a->pending, &a->cap_pending, a->npending, sizeof *a->pending);
	a->pending[a->npending++] = *s;
}

static void account(struct audit *a, size_t program, long pid, int retries2,
		    const struct sock_info *s)
{
	struct program *p = &a->programs[program];
	struct connection c;

	if (s->state == TCP_LISTEN) {
		p->listeners++;
		p->listeners_keepalive += s->keepalive == 1;
		return;
	}
	c = (struct connection){ program, pid, *s, retries2, idle_bound_ms(s),
				 busy_bound_ms(s, retries2) };
	p->connections++;
	p->keepalive += s->keepalive == 1;
	p->user_timeout += s->user_timeout > 0;
	if (c.idle_ms > p->worst_idle_ms)
		p->worst_idle_ms = c.idle_ms;
	if (c.busy_ms > p->worst_busy_ms)
		p->worst_busy_ms = c.busy_ms;
	a->total_connections++;
	if (a->keep_conns) {
		a->conns = grow(a->conns, &a->cap_conns, a->nconns, sizeof *a->conns);
		a->conns[a->nconns++] = c;
	}
}

static void audit_process(struct audit *a, long pid)
{
	size_t program, i;
	int err, retries2;

	a->npending = 0;
	switch (proc_read_sockets(pid, audit_visit, a, &err)) {
	case PROC_READ_OK:
		a->read++;
		if (!a->npending)
			break;
		program = program_of(a, pid);
		retries2 = retries2_of(a, pid);
		for (i = 0; i < a->npending; i++)
			account(a, program, pid, retries2, &a->pending[i]);
		break;
	case PROC_READ_DENIED: a->unreadable++; break;
	case PROC_READ_EXITED: a->exited++; break;
	case PROC_READ_NO_PROCESS: /* gone before we got to it */
	case PROC_READ_THREAD_ID:
	case PROC_READ_KERNEL_THREAD: break;
	}
}

static void audit_host(struct audit *a)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;
	long pid, self = (long)getpid();

	if (!proc) {
		perror("kashim audit: /proc");
		exit(EXIT_PROBLEM);
	}
	while ((d = readdir(proc)))
		if (parse_pid(d->d_name, &pid) && pid != self)
			audit_process(a, pid);
	closedir(proc);
}

/* --- output --------------------------------------------------------- */

static void seconds_text(double ms, char *out, size_t size)
{
	if (isinf(ms))
		snprintf(out, size, "never");
	else if (ms == (double)((long long)ms / 1000 * 1000))
		snprintf(out, size, "%.0fs", ms / 1000);
	else
		snprintf(out, size, "%.1fs", ms / 1000);
}

static void pids_text(const struct program *p, char *out, size_t size)
{
	size_t i, len = 0;

	out[0] = 0;
	for (i = 0; i < p->npids && len + 24 < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%ld", i ? "," : "", p->pids[i]);
	if (i < p->npids)
		snprintf(out + len, size - len, ",+%zu", p->npids - i);
}

static const char *label_of(const struct program *p)
{
	return *p->unit ? p->unit : p->cgroup;
}

/* s for a table row or a message: control characters (a newline in a
 * cgroup name) become '?', so that one program stays one line. */
static const char *printable(const char *s, char *out, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = 0;
	return out;
}

/* The widths of the program and unit columns: the longest value shown,
 * so that a long path never shifts the numbers out of their columns. */
static void column_widths(const struct audit *a, bool listeners, int *wexe, int *wlabel)
{
	size_t i;

	*wexe = listeners ? 17 : 7; /* "LISTENING PROGRAM", "PROGRAM" */
	*wlabel = 11;               /* "UNIT/CGROUP" */
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		size_t le = strlen(p->exe), ll = strlen(label_of(p));
		if (!(listeners ? p->listeners : p->connections))
			continue;
		if (le > (size_t)*wexe)
			*wexe = le > PATH_MAX ? PATH_MAX : (int)le;
		if (ll > (size_t)*wlabel)
			*wlabel = ll > 1023 ? 1023 : (int)ll;
	}
}

static void print_text(const struct audit *a, int retries2)
{
	char pids[40], idle[24], busy[24], exe[PATH_MAX], label[1024];
	size_t i;
	bool any = false;
	int we, wl;

	column_widths(a, false, &we, &wl);
	printf("%-*s  %-*s  %-16s %5s %9s %12s %10s %10s\n", we, "PROGRAM", wl, "UNIT/CGROUP",
	       "PIDS", "CONNS", "KEEPALIVE", "USER_TIMEOUT", "WORST_IDLE", "WORST_BUSY");
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		if (!p->connections)
			continue;
		pids_text(p, pids, sizeof pids);
		seconds_text(p->worst_idle_ms, idle, sizeof idle);
		seconds_text(p->worst_busy_ms, busy, sizeof busy);
		printf("%-*s  %-*s  %-16s %5u %9u %12u %10s %10s\n",
		       we, printable(p->exe, exe, sizeof exe),
		       wl, printable(label_of(p), label, sizeof label), pids,
		       p->connections, p->keepalive, p->user_timeout, idle, busy);
	}
	column_widths(a, true, &we, &wl);
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		if (!p->listeners)
			continue;
		if (!any)
			printf("\n%-*s  %-*s  %-16s %9s %9s\n", we, "LISTENING PROGRAM", wl,
			       "UNIT/CGROUP", "PIDS", "LISTENERS", "KEEPALIVE");
		any = true;
		pids_text(p, pids, sizeof pids);
		printf("%-*s  %-*s  %-16s %9u %9u\n", we, printable(p->exe, exe, sizeof exe),
		       wl, printable(label_of(p), label, sizeof label), pids, p->listeners,
		       p->listeners_keepalive);
	}
	printf("\n%u processes read, %u TCP connections; net.ipv4.tcp_retries2=%d here", a->read,
	       a->total_connections, retries2);
	if (a->unreadable)
		printf("; could not read %u processes (%s)", a->unreadable,
		       geteuid() ? "not ours: run as root to read all" : "permission denied");
	if (a->exited)
		printf("; %u exited while read", a->exited);
	printf("\n");
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_seconds(double ms)
{
	if (isinf(ms))
		printf("null");
	else
		printf("%.3f", ms / 1000);
}

static void json_connection(const struct connection *c, bool first)
{
	char local[64], remote[64];

	sockaddr_text(&c->s.local, local, sizeof local);
	sockaddr_text(&c->s.remote, remote, sizeof remote);
	printf("%s\n      {\"pid\": %ld, \"fd\": %d, \"state\": \"%s\", \"local\": \"%s\", "
	       "\"remote\": \"%s\", \"keepalive\": %s, \"idle_s\": %d, \"interval_s\": %d, "
	       "\"count\": %d, \"user_timeout_ms\": %d, \"rto_ms\": %u, \"rto_max_ms\": %u, "
	       "\"tcp_retries2\": %d, \"idle_bound_s\": ",
	       first ? "" : ",", c->pid, c->s.fd, tcp_state_name(c->s.state), local, remote,
	       c->s.keepalive == 1 ? "true" : "false", c->s.idle, c->s.interval, c->s.count,
	       c->s.user_timeout, c->s.rto_ms, c->s.rto_max_ms, c->retries2);
	json_seconds(c->idle_ms);
	printf(", \"busy_bound_s\": ");
	json_seconds(c->busy_ms);
	printf("}");
}

static void json_program(const struct audit *a, size_t i)
{
	const struct program *p = &a->programs[i];
	size_t k;
	bool first = true;

	printf("\n    {\"program\": ");
	json_string(p->exe);
	printf(", \"unit\": ");
	if (*p->unit)
		json_string(p->unit);
	else
		printf("null");
	printf(", \"cgroup\": ");
	json_string(p->cgroup);
	printf(", \"pids\": [");
	for (k = 0; k < p->npids; k++)
		printf("%s%ld", k ? ", " : "", p->pids[k]);
	printf("], \"connections\": %u, \"keepalive\": %u, \"user_timeout\": %u, "
	       "\"worst_idle_s\": ", p->connections, p->keepalive, p->user_timeout);
	/* without connections there is no worst case: null, as for never */
	json_seconds(p->connections ? p->worst_idle_ms : INFINITY);
	printf(", \"worst_busy_s\": ");
	json_seconds(p->connections ? p->worst_busy_ms : INFINITY);
	printf(", \"listeners\": %u, \"listeners_keepalive\": %u, \"sockets\": [",
	       p->listeners, p->listeners_keepalive);
	for (k = 0; k < a->nconns; k++)
		if (a->conns[k].program == i) {
			json_connection(&a->conns[k], first);
			first = false;
		}
	printf("%s]}", first ? "" : "\n    ");
}

static void print_json(const struct audit *a, int retries2)
{
	size_t i;

	printf("{\"processes_read\": %u, \"processes_unreadable\": %u, \"processes_exited\": %u, "
	       "\"connections\": %u, \"tcp_retries2\": %d,\n  \"programs\": [",
	       a->read, a->unreadable, a->exited, a->total_connections, retries2);
	for (i = 0; i < a->nprograms; i++) {
		if (i)
			putchar(',');
		json_program(a, i);
	}
	printf("%s]}\n", a->nprograms ? "\n  " : "");
}

/* A label value in the Prometheus text format: \\, \" and \n escaped. */
static void prom_label(const char *name, const char *v, bool last)
{
	printf("%s=\"", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			printf("\\%c", *v);
		else if (*v == '\n')
			printf("\\n");
		else
			putchar(*v);
	}
	printf("\"%s", last ? "" : ",");
}

/* A program's labels, and bound="..." when bound is given. */
static void prom_labels(const struct program *p, const char *bound)
{
	putchar('{');
	prom_label("program", p->exe, false);
	prom_label("unit", p->unit, false);
	prom_label("cgroup", p->cgroup, !bound);
	if (bound)
		prom_label("bound", bound, true);
	putchar('}');
}

enum prom_field { PF_CONNS, PF_KEEPALIVE, PF_USER_TIMEOUT, PF_LISTENERS, PF_LISTENERS_KA };

static void prom_family(const struct audit *a, const char *name, const char *help,
			enum prom_field f)
{
	size_t i;

	printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		unsigned v = f == PF_CONNS ? p->connections : f == PF_KEEPALIVE ? p->keepalive :
			     f == PF_USER_TIMEOUT ? p->user_timeout :
			     f == PF_LISTENERS ? p->listeners : p->listeners_keepalive;
		fputs(name, stdout);
		prom_labels(p, NULL);
		printf(" %u\n", v);
	}
}

static void print_prometheus(const struct audit *a)
{
	static const char *const bound[] = { "idle", "busy" };
	size_t i, b;

	prom_family(a, "kashim_audit_connections",
		    "TCP connections of the program, listeners excluded.", PF_CONNS);
	prom_family(a, "kashim_audit_connections_keepalive",
		    "Connections with SO_KEEPALIVE on.", PF_KEEPALIVE);
	prom_family(a, "kashim_audit_connections_user_timeout",
		    "Connections with a TCP_USER_TIMEOUT.", PF_USER_TIMEOUT);
	prom_family(a, "kashim_audit_listeners", "Listening TCP sockets of the program.",
		    PF_LISTENERS);
	prom_family(a, "kashim_audit_listeners_keepalive",
		    "Listening sockets with SO_KEEPALIVE on (inherited by accepted connections).",
		    PF_LISTENERS_KA);
	printf("# HELP kashim_audit_worst_case_seconds Worst-case time for the program's "
	       "connections to notice a dead peer, idle or with data in flight; +Inf: never.\n"
	       "# TYPE kashim_audit_worst_case_seconds gauge\n");
	for (i = 0; i < a->nprograms; i++)
		for (b = 0; b < 2 && a->programs[i].connections; b++) {
			double ms = b ? a->programs[i].worst_busy_ms : a->programs[i].worst_idle_ms;
			fputs("kashim_audit_worst_case_seconds", stdout);
			prom_labels(&a->programs[i], bound[b]);
			if (isinf(ms))
				printf(" +Inf\n");
			else
				printf(" %.3f\n", ms / 1000);
		}
	printf("# HELP kashim_audit_processes Processes by the outcome of the read.\n"
	       "# TYPE kashim_audit_processes gauge\n"
	       "kashim_audit_processes{outcome=\"read\"} %u\n"
	       "kashim_audit_processes{outcome=\"unreadable\"} %u\n"
	       "kashim_audit_processes{outcome=\"exited\"} %u\n",
	       a->read, a->unreadable, a->exited);
}

/* --- the command ---------------------------------------------------- */

/* The worst programs first: those that never notice, then the slowest. */
static int by_worst(const void *x, const void *y, void *programs)
{
	const struct program *p = (const struct program *)programs + *(const size_t *)x;
	const struct program *q = (const struct program *)programs + *(const size_t *)y;

	if (p->worst_idle_ms != q->worst_idle_ms)
		return p->worst_idle_ms < q->worst_idle_ms ? 1 : -1;
	if (p->worst_busy_ms != q->worst_busy_ms)
		return p->worst_busy_ms < q->worst_busy_ms ? 1 : -1;
	return strcmp(p->exe, q->exe);
}

static void sort_programs(struct audit *a)
{
	size_t *order = malloc(a->nprograms * sizeof *order + 1);
	size_t *rank = malloc(a->nprograms * sizeof *rank + 1);
	struct program *sorted = malloc(a->nprograms * sizeof *sorted + 1);
	size_t i;

	if (!order || !rank || !sorted)
		goto out; /* unsorted is still right */
	for (i = 0; i < a->nprograms; i++)
		order[i] = i;
	qsort_r(order, a->nprograms, sizeof *order, by_worst, a->programs);
	for (i = 0; i < a->nprograms; i++) {
		sorted[i] = a->programs[order[i]];
		rank[order[i]] = i;
	}
	for (i = 0; i < a->nconns; i++)
		a->conns[i].program = rank[a->conns[i].program];
	free(a->programs);
	a->programs = sorted;
	sorted = NULL;
out:
	free(order);
	free(rank);
	free(sorted);
}

/* --max-bound takes the durations of KASHIM_USER_TIMEOUT: the library's
 * own parser, through its public interface. */
static bool parse_bound(const char *text, double *ms)
{
	char var[128];
	char *env[] = { var, NULL };
	struct kashim_config cfg;

	if (snprintf(var, sizeof var, "KASHIM_USER_TIMEOUT=%s", text) >= (int)sizeof var)
		return false;
	if (kashim_config_load(&cfg, env, false, NULL, NULL) || cfg.user_timeout_mode != KASHIM_UT_FIXED)
		return false;
	*ms = cfg.user_timeout_ms;
	return true;
}

/* Counts the connections whose worst case exceeds max_ms and says so. */
static unsigned over_bound(const struct audit *a, double max_ms, const char *text)
{
	char idle[24], busy[24], exe[PATH_MAX], label[1024];
	unsigned over = 0, n;
	size_t i;

	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		if (!p->connections || (p->worst_idle_ms <= max_ms && p->worst_busy_ms <= max_ms))
			continue;
		n = p->connections; /* an upper figure unless the sockets were kept */
		if (a->keep_conns) {
			size_t k;
			for (n = 0, k = 0; k < a->nconns; k++)
				n += a->conns[k].program == i &&
				     (a->conns[k].idle_ms > max_ms || a->conns[k].busy_ms > max_ms);
		}
		seconds_text(p->worst_idle_ms, idle, sizeof idle);
		seconds_text(p->worst_busy_ms, busy, sizeof busy);
		fprintf(stderr, "kashim audit: %s (%s, pid %ld): %u connection(s) over --max-bound "
			"%s: worst case idle %s, busy %s\n", printable(p->exe, exe, sizeof exe),
			printable(label_of(p), label, sizeof label), p->pids[0], n,
			text, idle, busy);
		over += n;
	}
	return over;
}

static void audit_free(struct audit *a)
{
	size_t i;

	for (i = 0; i < a->nprograms; i++)
		free(a->programs[i].pids);
	free(a->programs);
	free(a->conns);
	free(a->netns);
	free(a->pending);
}

static int usage(FILE *to, int status)
{
	fprintf(to, "usage: kashim audit [--json | --prometheus] [--max-bound D]\n\n"
		"Reads every TCP socket of every process it may (all as root, its own\n"
		"otherwise) and prints one row per program (executable, systemd unit or\n"
		"cgroup, pids): connections, how many have keepalive and a user timeout,\n"
		"and the worst-case time to notice a dead peer, idle and with data in\n"
		"flight (never without keepalive; without a user timeout, the kernel's\n"
		"retransmission limit from net.ipv4.tcp_retries2 and the connection's\n"
		"RTO).  Listeners are listed apart.  Never signals or stops a process.\n\n"
		"  --json          for scripts, with every connection\n"
		"  --prometheus    node_exporter textfile collector format\n"
		"  --max-bound D   exit 1 when a connection's worst case exceeds D\n"
		"                  (45, 45s, 2m, 1h, 1500ms)\n\n"
		"Exit status: 0 done, 1 a worst case exceeds --max-bound, 2 usage.\n");
	return status;
}

int cmd_audit(int argc, char **argv)
{
	struct audit a = { 0 };
	const char *bound_text = NULL;
	bool json = false, prometheus = false;
	double max_ms = INFINITY;
	int i, status, retries2 = -1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--prometheus"))
			prometheus = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return usage(stdout, EXIT_OK);
		else if (!strcmp(argv[i], "--max-bound") && i + 1 < argc)
			bound_text = argv[++i];
		else if (!strncmp(argv[i], "--max-bound=", 12))
			bound_text = argv[i] + 12;
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (json && prometheus) {
		fputs("kashim audit: --json and --prometheus are exclusive\n", stderr);
		return EXIT_USAGE;
	}
	if (bound_text && !parse_bound(bound_text, &max_ms)) {
		fprintf(stderr, "kashim audit: --max-bound \"%s\" is not a duration; accepted: "
			"1ms to 2147483647ms, as 45, 45s, 2m, 1h or 1500ms\n", bound_text);
		return EXIT_USAGE;
	}
	a.keep_conns = json || bound_text;
	audit_host(&a);
	read_retries2(&retries2);
	sort_programs(&a);
	if (json)
		print_json(&a, retries2);
	else if (prometheus)
		print_prometheus(&a);
	else
		print_text(&a, retries2);
	fflush(stdout);
	status = bound_text && over_bound(&a, max_ms, bound_text) ? EXIT_PROBLEM : EXIT_OK;
	audit_free(&a);
	return status;
}
