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
 *          (retransmits_timed_out, tcp_retransmit_timer).
 *   MPTCP: the options are the subflows' (the kernel refuses a user
 *          timeout); a dead peer ends a subflow within the bounds above,
 *          and the connection net.mptcp.close_timeout later
 *          (mptcp_close_tout_expired).  Unknown ("not bounded") without
 *          that setting, and for the busy bound with more than one
 *          subflow (the data is sent again on another).
 *
 * A socket is counted once per program however many descriptors and
 * processes of the program hold it (inetd gives one on fds 0, 1 and 2);
 * an option the kernel refuses to read makes the bound unknown, never a
 * number. */
#define _GNU_SOURCE
#include "cli.h"
#include "sockread.h"
#include "../config.h"

#include <ctype.h>
#include <float.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h> /* INFINITY and isinf only: no libm */
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define RTO_MIN_MS 200u        /* TCP_RTO_MIN: the base of the kernel's model */
#define RETRIES2_DEFAULT 15    /* when the sysctl cannot be read */
#define MODEL_STEPS_MAX 100000 /* bounds the timer walk; far above any real one */
/* A /proc/PID/cgroup line longer than this is not a path the kernel
 * writes (it refuses paths past PATH_MAX): shown as too long, not read. */
#define CGROUP_LINE_MAX 16384
#define FDS_KEPT 16 /* the descriptor numbers listed per socket */
#define UNKNOWN NAN /* a bound that cannot be proved */
/* How long a path named by another mount namespace may take to resolve
 * here (a hung FUSE or NFS mount on the way): then it is not verified,
 * and no further path is tried. */
#define RESOLVE_TIMEOUT_MS 2000
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* What is appended to a program's path when it is not verified. */
enum exe_mark { EXE_VERIFIED, EXE_OTHER_NS, EXE_UNVERIFIED };
static const char *const exe_mark_text[] = { "", " (another mount namespace)", " (unverified)" };

/* One socket of one program (listeners too), however many of its
 * descriptors and processes hold it. */
struct connection {
	size_t program;
	long pid; /* the first process seen holding it */
	struct sock_info s;
	int retries2, close_timeout_s; /* of its network namespace; -1: none */
	unsigned nfds, nprocs;         /* descriptors in pid; processes of the program */
	int fds[FDS_KEPT];
	char *socket_cgroup; /* its own cgroup when not its process's, else NULL */
	double idle_ms, busy_ms; /* INFINITY: never; NAN: unknown */
};

struct program {
	char exe[PATH_MAX + 32]; /* as shown: the path, marked when not verified */
	char path[PATH_MAX];     /* the path /proc/PID/exe gives */
	bool verified;           /* the file at path here is the one running */
	enum exe_mark mark;      /* what exe adds to path */
	unsigned other_ns;       /* its processes in another mount namespace than the host's */
	long *other_ns_pids;
	size_t cap_other_ns;
	char unit[256];   /* the systemd unit (*.service, *.scope), or "" */
	char *cgroup;     /* the cgroup v2 path, whole */
	long *pids;
	size_t npids, cap_pids;
	unsigned connections, keepalive, user_timeout, listeners, listeners_keepalive;
	unsigned mptcp, unknown, other_cgroup;
	double worst_idle_ms, worst_busy_ms; /* over the bounds known */
	bool unknown_idle, unknown_busy;
};

struct netns_facts {
	unsigned long long id;
	int retries2, close_timeout_s;
	struct diag_table diag;
};

/* The kernel's own counters of one network namespace (TcpExt of
 * /proc/net/netstat there): what every program in it has done since the
 * namespace was made, not any one program's. */
struct netns_counters {
	unsigned long long id; /* netns_id */
	unsigned long inode;   /* shown as net:[INODE], as /proc/PID/ns/net reads */
	long long keepalive_probes; /* TCPKeepAlive: keepalive probes sent */
	long long timeout_aborts;   /* TCPAbortOnTimeout: connections ended by a timeout */
};

struct audit {
	struct program *programs;
	size_t nprograms, cap_programs;
	struct connection *conns; /* every socket of every program */
	size_t nconns, cap_conns;
	struct netns_facts *netns;
	size_t nnetns, cap_netns;
	unsigned read, unreadable, exited, total_connections, mptcp, other_cgroup;
	bool resolve_timed_out; /* a path did not resolve in time: try no more */
	struct stat host_ns; /* the mount namespace whose paths are the host's; st_ino 0: unknown */
	int host_root;       /* its root, when it is not audit's namespace; else -1 */
	struct netns_counters *counters; /* of each network namespace read */
	size_t ncounters, cap_counters;
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

static double tcp_idle_bound_ms(const struct sock_info *s)
{
	long long idle = s->idle * 1000LL, interval = s->interval * 1000LL, k;

	if (s->keepalive < 0)
		return UNKNOWN;
	if (s->keepalive != 1)
		return INFINITY;
	if (s->idle < 0 || s->interval < 0 || s->count < 0 || s->user_timeout < 0)
		return UNKNOWN;
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

static double tcp_busy_bound_ms(const struct sock_info *s, int retries2)
{
	double rto = s->rto_ms ? s->rto_ms : RTO_MIN_MS, step = rto, elapsed = 0, limit;
	int i;

	if (s->user_timeout < 0)
		return UNKNOWN;
	if (s->user_timeout > 0)
		return 2 * rto + s->user_timeout;
	limit = model_timeout_ms(retries2 < 0 ? 0 : retries2 > 30 ? 30 : retries2, s->rto_max_ms);
	for (i = 0; elapsed < limit && i < MODEL_STEPS_MAX; i++) {
		step = step * 2 < s->rto_max_ms ? step * 2 : s->rto_max_ms;
		elapsed += step;
	}
	return 2 * rto + elapsed;
}

/* An MPTCP connection: its subflow's bound (the kernel refuses a user
 * timeout, so a subflow has none), then the close timeout. */
static void bounds(struct connection *c)
{
	struct sock_info sub = c->s;

	if (!c->s.mptcp) {
		c->idle_ms = tcp_idle_bound_ms(&c->s);
		c->busy_ms = tcp_busy_bound_ms(&c->s, c->retries2);
		return;
	}
	sub.user_timeout = 0;
	c->idle_ms = tcp_idle_bound_ms(&sub);
	c->busy_ms = tcp_busy_bound_ms(&sub, c->retries2);
	if (c->close_timeout_s < 0) { /* no make-after-break timeout known */
		c->idle_ms = isinf(c->idle_ms) ? INFINITY : UNKNOWN;
		c->busy_ms = UNKNOWN;
		return;
	}
	c->idle_ms += c->close_timeout_s * 1000.0; /* never stays never */
	c->busy_ms = c->s.mptcp_subflows == 0 ? c->busy_ms + c->close_timeout_s * 1000.0 : UNKNOWN;
}

/* --- reading -------------------------------------------------------- */

static int read_number(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[32] = { 0 }, *end;
	long v = -1;

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof buf - 1) > 0) {
		v = strtol(buf, &end, 10);
		if (end == buf || v < 0 || v > INT_MAX)
			v = -1;
	}
	close(fd);
	return (int)v;
}

static void read_retries2(void *ctx)
{
	int *v = ctx, got = read_number("/proc/sys/net/ipv4/tcp_retries2");

	if (got >= 0)
		*v = got;
}

/* Run in a process's network namespace: the settings bounds need. */
static void read_netns_facts(void *ctx)
{
	struct netns_facts *f = ctx;

	f->retries2 = read_number("/proc/sys/net/ipv4/tcp_retries2");
	f->close_timeout_s = read_number("/proc/sys/net/mptcp/close_timeout");
}

/* The facts of pid's network namespace, read there once. */
static const struct netns_facts *netns_of(struct audit *a, long pid)
{
	struct netns_facts f = { .retries2 = -1, .close_timeout_s = -1 };
	size_t i;

	if (!netns_id(pid, &f.id))
		f.id = 0;
	for (i = 0; i < a->nnetns; i++)
		if (a->netns[i].id == f.id)
			return &a->netns[i];
	if (!f.id || !netns_run(pid, read_netns_facts, &f) || f.retries2 < 0) {
		read_retries2(&f.retries2); /* ours, when theirs cannot be entered */
		f.close_timeout_s = -1;
	}
	if (f.retries2 < 0)
		f.retries2 = RETRIES2_DEFAULT;
	if (f.id)
		diag_load(pid, &f.diag);
	a->netns = grow(a->netns, &a->cap_netns, a->nnetns, sizeof *a->netns);
	a->netns[a->nnetns] = f;
	return &a->netns[a->nnetns++];
}

/* The unit from a cgroup path: its first component ending in .service or
 * .scope, the one the system's manager made.  Below it the names are the
 * unit's own (a delegated subtree): a process there may call its cgroup
 * sshd.service, and is still in the unit above. */
static void unit_of(const char *cgroup, char *unit, size_t size)
{
	const char *p = cgroup;

	unit[0] = 0;
	while (*p) {
		size_t len;
		p += strspn(p, "/");
		len = strcspn(p, "/");
		if ((len > 8 && !strncmp(p + len - 8, ".service", 8)) ||
		    (len > 6 && !strncmp(p + len - 6, ".scope", 6))) {
			if (len < size)
				snprintf(unit, size, "%.*s", (int)len, p);
			return;
		}
		p += len;
	}
}

/* pid's cgroup v2 path, from whole lines of /proc/PID/cgroup (any length:
 * a cut line must not pass its remainder off as the next one); malloc'd. */
static char *cgroup_of(long pid)
{
	char path[64], *line = NULL, *found = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/cgroup", pid);
	f = fopen(path, "re");
	if (f) {
		while ((n = getline(&line, &cap, f)) > 0) {
			if (strncmp(line, "0::", 3)) /* the cgroup v2 hierarchy only */
				continue;
			free(found);
			if (n > CGROUP_LINE_MAX) {
				found = strdup("?(a cgroup path too long to read)");
				continue;
			}
			line[strcspn(line, "\n")] = 0;
			found = strdup(line + 3);
		}
		fclose(f);
	}
	free(line);
	if (!found)
		found = strdup("?");
	if (!found) {
		fputs("kashim audit: out of memory\n", stderr);
		exit(EXIT_PROBLEM);
	}
	return found;
}

static bool same_file(const struct stat *x, const struct stat *y)
{
	return x->st_dev == y->st_dev && x->st_ino == y->st_ino;
}

/* The mount namespace in which a path names the host's file: PID 1's (the
 * host's, or the container's that audit runs in).  audit may run in a
 * namespace of its own: systemd makes one for kashim-audit.service
 * (PrivateTmp=, ProtectSystem=...), where /tmp and /var/tmp are its
 * own, and a host program started from there is not found.  Paths are then looked up from PID 1's root.  audit's own
 * namespace when PID 1's cannot be read (not root). */
static void host_view_open(struct audit *a)
{
	struct stat ours;

	a->host_root = -1;
	if (stat("/proc/self/ns/mnt", &ours))
		ours.st_ino = 0;
	if (stat("/proc/1/ns/mnt", &a->host_ns) || same_file(&a->host_ns, &ours) ||
	    (a->host_root = open("/proc/1/root", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		a->host_ns = ours;
}

/* Whether pid is in the host's mount namespace: 1 yes, 0 no, -1 unknown. */
static int same_mount_ns(const struct audit *a, long pid)
{
	struct stat theirs;
	char path[64];

	snprintf(path, sizeof path, "/proc/%ld/ns/mnt", pid);
	if (!a->host_ns.st_ino || stat(path, &theirs))
		return -1;
	return same_file(&theirs, &a->host_ns);
}

/* stat(path) as the host's namespace resolves it: from its root, its
 * absolute links too (openat2, Linux 5.6; before, those resolve here). */
static int stat_host(const struct audit *a, const char *path, struct stat *st)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int fd, r;

	if (a->host_root < 0)
		return stat(path, st);
	fd = (int)syscall(SYS_openat2, a->host_root, path, &how, sizeof how);
	if (fd < 0)
		return errno == ENOSYS ? fstatat(a->host_root, path + strspn(path, "/"), st, 0) : -1;
	r = fstat(fd, st);
	close(fd);
	return r;
}

/* stat_host(path), in a child killed after RESOLVE_TIMEOUT_MS: the path
 * comes from another mount namespace, and its owner may have made a
 * FUSE mount on the way that never answers.  False when it does not
 * name a file here, in time. */
static bool stat_bounded(struct audit *a, const char *path, struct stat *st)
{
	struct pollfd pfd = { .events = POLLIN };
	int fds[2], status;
	bool got = false;
	pid_t child;

	if (a->resolve_timed_out || pipe2(fds, O_CLOEXEC))
		return false;
	child = fork();
	if (child < 0) {
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	if (child == 0) {
		struct stat here;
		close(fds[0]);
		if (!stat_host(a, path, &here) && write(fds[1], &here, sizeof here) != sizeof here)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	if (poll(&pfd, 1, RESOLVE_TIMEOUT_MS) == 1)
		got = read(fds[0], st, sizeof *st) == (ssize_t)sizeof *st;
	else
		a->resolve_timed_out = true;
	close(fds[0]);
	kill(child, SIGKILL); /* gone already, or stuck: it must not outlive us long */
	if (waitpid(child, &status, a->resolve_timed_out ? WNOHANG : 0) < 0)
		got = false;
	return got;
}

/* The name of pid's program, and whether it can be trusted.  readlink of
 * /proc/PID/exe gives the path in the process's own mount namespace:
 * there, its owner may have mounted any file of its own over
 * /usr/sbin/sshd (unshare -Urm, no privilege needed).  In the host's
 * mount namespace (host_view_open) the path is the host's; in another
 * one it is verified only when the same path there names the very file
 * running (same device and inode: a sandboxed service, a container
 * sharing the host's file).  Both namespace and file are read before and
 * after the name, so that an exec or unshare between the reads is not
 * missed. */
static bool exe_of(struct audit *a, long pid, char *exe, size_t size, int *ns)
{
	struct stat before, after, here;
	char link[64];
	ssize_t n;
	int ns_after;

	snprintf(link, sizeof link, "/proc/%ld/exe", pid);
	*ns = same_mount_ns(a, pid);
	if (stat(link, &before))
		before.st_ino = 0;
	n = readlink(link, exe, size - 1);
	exe[n > 0 ? n : 0] = 0;
	if (n <= 0) {
		snprintf(exe, size, "?");
		return false;
	}
	ns_after = same_mount_ns(a, pid);
	if (stat(link, &after) || !before.st_ino || !same_file(&before, &after) || ns_after != *ns)
		return false; /* it ran exec or changed namespace while read */
	if (*ns == 1)
		return true; /* the kernel's path here; " (deleted)" is its own mark */
	return stat_bounded(a, exe, &here) && same_file(&here, &after);
}

/* The row of pid's program, read through task (a live thread of pid);
 * *own_id: pid's own cgroup (a row holds the processes of a unit, in its
 * sub-cgroups too, and its cgroup is its first process's). */
static size_t program_of(struct audit *a, long pid, long task, unsigned long long *own_id)
{
	char path[PATH_MAX], exe[PATH_MAX + 32], unit[256], *cgroup;
	struct program *p;
	enum exe_mark mark;
	bool verified;
	int ns;
	size_t i;

	verified = exe_of(a, task, path, sizeof path, &ns);
	mark = verified || !strcmp(path, "?") ? EXE_VERIFIED : ns == 0 ? EXE_OTHER_NS : EXE_UNVERIFIED;
	snprintf(exe, sizeof exe, "%s%s", path, exe_mark_text[mark]);
	cgroup = cgroup_of(task);
	*own_id = cgroup_id_of_path(cgroup);
	unit_of(cgroup, unit, sizeof unit);
	for (i = 0; i < a->nprograms; i++) {
		p = &a->programs[i];
		/* one row per program and unit; outside units, per cgroup; a
		 * name not verified is never the verified one's row */
		if (!strcmp(p->exe, exe) && p->verified == verified && p->mark == mark &&
		    (*unit ? !strcmp(p->unit, unit) : !*p->unit && !strcmp(p->cgroup, cgroup)))
			break;
	}
	if (i == a->nprograms) {
		a->programs = grow(a->programs, &a->cap_programs, a->nprograms, sizeof *a->programs);
		p = &a->programs[a->nprograms++];
		memset(p, 0, sizeof *p);
		snprintf(p->exe, sizeof p->exe, "%s", exe);
		snprintf(p->path, sizeof p->path, "%s", path);
		p->verified = verified;
		p->mark = mark;
		snprintf(p->unit, sizeof p->unit, "%s", unit);
		p->cgroup = cgroup;
	} else {
		free(cgroup);
	}
	p = &a->programs[i];
	p->pids = grow(p->pids, &p->cap_pids, p->npids, sizeof *p->pids);
	p->pids[p->npids++] = pid;
	if (ns == 0) {
		p->other_ns_pids = grow(p->other_ns_pids, &p->cap_other_ns, p->other_ns,
					sizeof *p->other_ns_pids);
		p->other_ns_pids[p->other_ns++] = pid;
	}
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

static int by_inode(const void *x, const void *y)
{
	const struct sock_info *p = x, *q = y;

	if (p->inode != q->inode)
		return p->inode < q->inode ? -1 : 1;
	return (p->fd > q->fd) - (p->fd < q->fd);
}

/* The socket's own cgroup, when sock_diag knows it and it is not the
 * cgroup of the process holding it (accepted on a listener made
 * elsewhere), own_id. */
static char *other_cgroup(const struct netns_facts *nf, const struct sock_info *s,
			  unsigned long long own_id)
{
	const struct diag_entry *d = diag_find(&nf->diag, s->inode);
	char path[PATH_MAX], *out;

	if (!d || !d->cgroup_id || !own_id || d->cgroup_id == own_id)
		return NULL;
	if (!cgroup_path_of_id(d->cgroup_id, path, sizeof path))
		snprintf(path, sizeof path, "?(cgroup id %llu)", d->cgroup_id);
	out = strdup(path);
	return out;
}

/* The sockets of one process, read whole: one entry per socket (inode),
 * with the descriptors that hold it; its /proc files read through task. */
static void add_process(struct audit *a, long pid, long task)
{
	unsigned long long own_id; /* pid's own cgroup, not its row's first process's */
	size_t program = program_of(a, pid, task, &own_id), i, k;
	const struct netns_facts *nf = netns_of(a, task);

	qsort(a->pending, a->npending, sizeof *a->pending, by_inode);
	for (i = 0; i < a->npending; i = k) {
		struct connection *c;
		a->conns = grow(a->conns, &a->cap_conns, a->nconns, sizeof *a->conns);
		c = &a->conns[a->nconns++];
		memset(c, 0, sizeof *c);
		*c = (struct connection){ .program = program, .pid = pid, .s = a->pending[i],
					  .retries2 = nf->retries2,
					  .close_timeout_s = nf->close_timeout_s, .nprocs = 1 };
		for (k = i; k < a->npending && a->pending[k].inode == a->pending[i].inode; k++)
			if (c->nfds < FDS_KEPT)
				c->fds[c->nfds++] = a->pending[k].fd;
			else
				c->nfds++;
		c->socket_cgroup = other_cgroup(nf, &c->s, own_id);
		bounds(c);
	}
}

static int by_program_inode(const void *x, const void *y)
{
	const struct connection *p = x, *q = y;

	if (p->program != q->program)
		return p->program < q->program ? -1 : 1;
	if (p->s.inode != q->s.inode)
		return p->s.inode < q->s.inode ? -1 : 1;
	return (p->pid > q->pid) - (p->pid < q->pid);
}

/* A socket held by several processes of one program (a forking server, a
 * shell and its child) is one: the first process's entry is kept. */
static void merge_shared(struct audit *a)
{
	size_t i, o = 0;

	qsort(a->conns, a->nconns, sizeof *a->conns, by_program_inode);
	for (i = 0; i < a->nconns; i++) {
		if (o && a->conns[o - 1].program == a->conns[i].program &&
		    a->conns[o - 1].s.inode == a->conns[i].s.inode) {
			struct connection *kept = &a->conns[o - 1];
			kept->nprocs++;
			/* in the cgroup of one of its processes: the cgroup
			 * mode there reaches it */
			if (!a->conns[i].socket_cgroup) {
				free(kept->socket_cgroup);
				kept->socket_cgroup = NULL;
			}
			free(a->conns[i].socket_cgroup);
			continue;
		}
		a->conns[o++] = a->conns[i];
	}
	a->nconns = o;
}

static void worst(double *w, bool *unknown, double ms)
{
	if (isnan(ms))
		*unknown = true;
	else if (ms > *w)
		*w = ms;
}

static int by_inode_only(const void *x, const void *y)
{
	unsigned long p = *(const unsigned long *)x, q = *(const unsigned long *)y;

	return (p > q) - (p < q);
}

static void account(struct audit *a)
{
	unsigned long *inodes = malloc(a->nconns * sizeof *inodes + 1);
	size_t i, n = 0;

	for (i = 0; i < a->nconns; i++) {
		const struct connection *c = &a->conns[i];
		struct program *p = &a->programs[c->program];
		if (c->s.state == TCP_LISTEN) {
			p->listeners++;
			p->listeners_keepalive += c->s.keepalive == 1;
			continue;
		}
		p->connections++;
		p->keepalive += c->s.keepalive == 1;
		p->user_timeout += c->s.user_timeout > 0;
		p->mptcp += c->s.mptcp;
		p->unknown += isnan(c->idle_ms) || isnan(c->busy_ms);
		p->other_cgroup += c->socket_cgroup != NULL;
		a->mptcp += c->s.mptcp;
		a->other_cgroup += c->socket_cgroup != NULL;
		worst(&p->worst_idle_ms, &p->unknown_idle, c->idle_ms);
		worst(&p->worst_busy_ms, &p->unknown_busy, c->busy_ms);
		if (inodes)
			inodes[n++] = c->s.inode;
	}
	/* the host's total: a socket two programs hold is one connection */
	if (inodes) {
		qsort(inodes, n, sizeof *inodes, by_inode_only);
		for (i = 0; i < n; i++)
			a->total_connections += !i || inodes[i] != inodes[i - 1];
	}
	free(inodes);
}

/* --- the kernel's counters, per network namespace ------------------- */

#define NETSTAT_MAX 65536 /* /proc/net/netstat is some 4 KiB */

/* The value of field name on the TcpExt: value line, whose header line
 * (TcpExt: Name Name...) comes just before it; -1 if not there. */
static long long tcpext_field(const char *netstat, const char *name)
{
	/* whole lines only: MPTcpExt: ends in the same text */
	const char *head = strncmp(netstat, "TcpExt: ", 8) ? strstr(netstat, "\nTcpExt: ") : netstat;
	const char *vals, *h, *v;
	size_t len = strlen(name);

	if (!head || !(vals = strstr(head + 9, "\nTcpExt: ")))
		return -1;
	head += *head == '\n';
	for (h = head + 8, v = vals + 9; *h && *h != '\n' && *v && *v != '\n';) {
		size_t hl = strcspn(h, " \n"), vl = strcspn(v, " \n");
		if (hl == len && !strncmp(h, name, len)) {
			char *end;
			long long n = strtoll(v, &end, 10);
			return end == v + vl && n >= 0 ? n : -1;
		}
		h += hl + (h[hl] == ' ');
		v += vl + (v[vl] == ' ');
	}
	return -1;
}

/* pid's network namespace's counters, through /proc/PID/net/netstat (its
 * namespace's view, read without entering it). */
static bool read_counters(long pid, struct netns_counters *c)
{
	static char buf[NETSTAT_MAX];
	char path[64], why[128];

	snprintf(path, sizeof path, "/proc/%ld/net/netstat", pid);
	if (read_text(path, buf, sizeof buf, why, sizeof why) <= 0)
		return false;
	c->keepalive_probes = tcpext_field(buf, "TCPKeepAlive");
	c->timeout_aborts = tcpext_field(buf, "TCPAbortOnTimeout");
	return c->keepalive_probes >= 0 && c->timeout_aborts >= 0;
}

/* The counters of pid's network namespace, once per namespace. */
static void note_counters(struct audit *a, long pid)
{
	struct netns_counters c = { 0 };
	char path[64];
	struct stat st;
	size_t i;

	snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
	if (!netns_id(pid, &c.id) || stat(path, &st))
		return;
	for (i = 0; i < a->ncounters; i++)
		if (a->counters[i].id == c.id)
			return;
	c.inode = (unsigned long)st.st_ino;
	if (!read_counters(pid, &c))
		return;
	a->counters = grow(a->counters, &a->cap_counters, a->ncounters, sizeof *a->counters);
	a->counters[a->ncounters++] = c;
}

static void print_counters_text(const struct audit *a)
{
	size_t i;

	if (a->ncounters)
		printf("the kernel's counters, per network namespace (all its programs, since it was made):\n");
	for (i = 0; i < a->ncounters; i++)
		printf("  net:[%lu]  %lld keepalive probes sent (TCPKeepAlive), %lld connections "
		       "ended by a timeout (TCPAbortOnTimeout)\n", a->counters[i].inode,
		       a->counters[i].keepalive_probes, a->counters[i].timeout_aborts);
}

static void print_counters_json(const struct audit *a)
{
	size_t i;

	printf(",\n  \"network_namespaces\": [");
	for (i = 0; i < a->ncounters; i++)
		printf("%s\n    {\"netns\": \"net:[%lu]\", \"tcp_keepalive_probes\": %lld, "
		       "\"tcp_abort_on_timeout\": %lld}", i ? "," : "", a->counters[i].inode,
		       a->counters[i].keepalive_probes, a->counters[i].timeout_aborts);
	printf("%s]", a->ncounters ? "\n  " : "");
}

static void print_counters_prometheus(const struct audit *a)
{
	static const char *const family[][2] = {
		{ "kashim_audit_tcp_keepalive_probes_total",
		  "Keepalive probes the kernel sent (TcpExt TCPKeepAlive of /proc/net/netstat) "
		  "in the network namespace, by every program in it since it was made: per "
		  "network namespace, not per program." },
		{ "kashim_audit_tcp_abort_on_timeout_total",
		  "Connections the kernel ended because the peer stopped answering (TcpExt "
		  "TCPAbortOnTimeout: keepalive probes unanswered, retransmissions or "
		  "TCP_USER_TIMEOUT exhausted) in the network namespace, by every program in it "
		  "since it was made: per network namespace, not per program." },
	};
	size_t f, i;

	for (f = 0; f < 2; f++) {
		printf("# HELP %s %s\n# TYPE %s counter\n", family[f][0], family[f][1], family[f][0]);
		for (i = 0; i < a->ncounters; i++)
			printf("%s{netns=\"net:[%lu]\"} %lld\n", family[f][0], a->counters[i].inode,
			       f ? a->counters[i].timeout_aborts : a->counters[i].keepalive_probes);
	}
}

static void audit_process(struct audit *a, long pid)
{
	long task;
	int err;

	a->npending = 0;
	switch (proc_read_sockets(pid, audit_visit, a, &err)) {
	case PROC_READ_OK:
		a->read++;
		/* its exe and namespaces: a main thread that exited has none */
		task = proc_live_task(pid);
		note_counters(a, task);
		if (a->npending)
			add_process(a, pid, task);
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
	if (isnan(ms))
		snprintf(out, size, "unknown");
	else if (isinf(ms))
		snprintf(out, size, "never");
	else if (ms == (double)((long long)ms / 1000 * 1000))
		snprintf(out, size, "%.0fs", ms / 1000);
	else
		snprintf(out, size, "%.1fs", ms / 1000);
}

/* A program's worst case: never if one connection never notices, else
 * unknown if one cannot be proved, else the longest known. */
static double program_worst(const struct program *p, bool busy)
{
	double w = busy ? p->worst_busy_ms : p->worst_idle_ms;

	if (!isinf(w) && (busy ? p->unknown_busy : p->unknown_idle))
		return UNKNOWN;
	return w;
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

/* The widths of the program and unit columns: the longest value shown,
 * so that a long path never shifts the numbers out of their columns. */
static void column_widths(const struct audit *a, bool listeners, int *wexe, int *wlabel)
{
	size_t i;

	*wexe = listeners ? 17 : 7; /* "LISTENING PROGRAM", "PROGRAM" */
	*wlabel = 11;               /* "UNIT/CGROUP" */
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		int le = table_text_width(p->exe), ll = table_text_width(label_of(p));
		if (!(listeners ? p->listeners : p->connections))
			continue;
		if (le > *wexe)
			*wexe = le > PATH_MAX ? PATH_MAX : le;
		if (ll > *wlabel)
			*wlabel = ll > PATH_MAX ? PATH_MAX : ll;
	}
}

/* PROGRAM and UNIT/CGROUP, each padded to its column. */
static void print_names(const struct program *p, int we, int wl)
{
	put_table_text(stdout, p->exe, we);
	fputs("  ", stdout);
	put_table_text(stdout, label_of(p), wl);
	fputs("  ", stdout);
}

/* Why a program is marked: its path is its own mount namespace's. */
static void print_marked_note(const struct audit *a)
{
	unsigned other = 0, unverified = 0;
	size_t i;

	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		other += p->mark == EXE_OTHER_NS;
		unverified += p->mark == EXE_UNVERIFIED;
	}
	if (other)
		printf("%u program(s) marked \"%s\" run a file that is not the one\n"
		       "at that path here: the path is the one their own mount namespace gives (a\n"
		       "container, a sandbox, or a namespace any user may make), not this host's\n"
		       "file; UNIT/CGROUP says where they run\n", other, exe_mark_text[EXE_OTHER_NS] + 1);
	if (unverified)
		printf("%u program(s) marked \"%s\": the file running could not be\n"
		       "compared with the one at that path here (it changed while read, or its\n"
		       "namespace could not be read)\n", unverified, exe_mark_text[EXE_UNVERIFIED] + 1);
}

static void print_text(const struct audit *a, int retries2)
{
	char pids[40], idle[24], busy[24];
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
		seconds_text(program_worst(p, false), idle, sizeof idle);
		seconds_text(program_worst(p, true), busy, sizeof busy);
		print_names(p, we, wl);
		printf("%-16s %5u %9u %12u %10s %10s\n", pids, p->connections, p->keepalive,
		       p->user_timeout, idle, busy);
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
		print_names(p, we, wl);
		printf("%-16s %9u %9u\n", pids, p->listeners, p->listeners_keepalive);
	}
	printf("\n%u processes read, %u TCP connections; net.ipv4.tcp_retries2=%d here", a->read,
	       a->total_connections, retries2);
	if (a->unreadable)
		printf("; could not read %u processes (%s)", a->unreadable,
		       geteuid() ? "not ours: run as root to read all" : "permission denied");
	if (a->exited)
		printf("; %u exited while read", a->exited);
	printf("\n");
	if (a->mptcp)
		printf("%u MPTCP connection(s): a dead peer ends a subflow within its keepalive or\n"
		       "retransmission bound, and the connection net.mptcp.close_timeout later; the\n"
		       "bounds shown include it, or are unknown where it cannot be read or where\n"
		       "data in flight may move to another subflow\n", a->mptcp);
	if (a->other_cgroup)
		printf("%u connection(s) belong to another cgroup than their process's (accepted\n"
		       "on a listener created there: inherited, socket activation, inetd, or a\n"
		       "process moved): the cgroup mode of the process's cgroup does not reach\n"
		       "them; --json shows each one's socket_cgroup\n", a->other_cgroup);
	print_marked_note(a);
	print_counters_text(a);
}

static void json_seconds(double ms)
{
	if (isinf(ms) || isnan(ms))
		printf("null");
	else
		printf("%.3f", ms / 1000);
}

/* The note beside a bound that is null: why. */
static const char *bound_note(const struct connection *c)
{
	if (!isnan(c->idle_ms) && !isnan(c->busy_ms))
		return NULL;
	if (c->s.mptcp)
		return c->close_timeout_s < 0 ? "mptcp: not bounded (net.mptcp.close_timeout unreadable)"
					      : "mptcp: not bounded with data in flight (more than one subflow)";
	return "unknown: the kernel refused an option read";
}

static void json_int(const char *name, int v)
{
	if (v < 0)
		printf(", \"%s\": null", name);
	else
		printf(", \"%s\": %d", name, v);
}

static void json_connection(const struct connection *c, bool first)
{
	char local[64], remote[64];
	const char *note = bound_note(c);
	unsigned k;

	sockaddr_text(&c->s.local, local, sizeof local);
	sockaddr_text(&c->s.remote, remote, sizeof remote);
	printf("%s\n      {\"pid\": %ld, \"fd\": %d, \"fds\": [", first ? "" : ",", c->pid,
	       c->fds[0]);
	for (k = 0; k < c->nfds && k < FDS_KEPT; k++)
		printf("%s%d", k ? ", " : "", c->fds[k]);
	printf("], \"descriptors\": %u, \"processes\": %u, \"inode\": %lu, \"protocol\": \"%s\", "
	       "\"state\": \"%s\", \"local\": \"%s\", \"remote\": \"%s\", \"keepalive\": %s",
	       c->nfds, c->nprocs, c->s.inode, c->s.mptcp ? "mptcp" : "tcp",
	       tcp_state_name(c->s.state), local, remote,
	       c->s.keepalive < 0 ? "null" : c->s.keepalive == 1 ? "true" : "false");
	json_int("idle_s", c->s.idle);
	json_int("interval_s", c->s.interval);
	json_int("count", c->s.count);
	json_int("user_timeout_ms", c->s.user_timeout);
	printf(", \"rto_ms\": %u, \"rto_max_ms\": %u, \"tcp_retries2\": %d", c->s.rto_ms,
	       c->s.rto_max_ms, c->retries2);
	if (c->s.mptcp) {
		json_int("mptcp_close_timeout_s", c->close_timeout_s);
		json_int("mptcp_extra_subflows", c->s.mptcp_subflows);
	}
	printf(", \"idle_bound_s\": ");
	json_seconds(c->idle_ms);
	printf(", \"busy_bound_s\": ");
	json_seconds(c->busy_ms);
	printf(", \"bound_note\": ");
	if (note)
		put_json_string(stdout, note);
	else
		printf("null");
	printf(", \"socket_cgroup\": ");
	if (c->socket_cgroup)
		put_json_string(stdout, c->socket_cgroup);
	else
		printf("null");
	printf("}");
}

static void json_program(const struct audit *a, size_t i)
{
	const struct program *p = &a->programs[i];
	size_t k;
	bool first = true;

	printf("\n    {\"program\": ");
	put_json_string(stdout, p->exe);
	printf(", \"exe\": ");
	put_json_string(stdout, p->path);
	printf(", \"exe_verified\": %s, \"pids_other_mount_namespace\": [",
	       p->verified ? "true" : "false");
	for (k = 0; k < p->other_ns; k++)
		printf("%s%ld", k ? ", " : "", p->other_ns_pids[k]);
	printf("]");
	printf(", \"unit\": ");
	if (*p->unit)
		put_json_string(stdout, p->unit);
	else
		printf("null");
	printf(", \"cgroup\": ");
	put_json_string(stdout, p->cgroup);
	printf(", \"pids\": [");
	for (k = 0; k < p->npids; k++)
		printf("%s%ld", k ? ", " : "", p->pids[k]);
	printf("], \"connections\": %u, \"keepalive\": %u, \"user_timeout\": %u, "
	       "\"mptcp\": %u, \"unknown_bounds\": %u, \"other_cgroup\": %u, \"worst_idle_s\": ",
	       p->connections, p->keepalive, p->user_timeout, p->mptcp, p->unknown,
	       p->other_cgroup);
	/* without connections there is no worst case: null, as for never */
	json_seconds(p->connections ? program_worst(p, false) : INFINITY);
	printf(", \"worst_busy_s\": ");
	json_seconds(p->connections ? program_worst(p, true) : INFINITY);
	printf(", \"listeners\": %u, \"listeners_keepalive\": %u, \"sockets\": [",
	       p->listeners, p->listeners_keepalive);
	for (k = 0; k < a->nconns; k++)
		if (a->conns[k].program == i && a->conns[k].s.state != TCP_LISTEN) {
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
	printf("%s]", a->nprograms ? "\n  " : "");
	print_counters_json(a);
	printf("}\n");
}

/* A label in the Prometheus text format: valid UTF-8 (bytes that are not
 * become the text \xHH), \\, \" and \n escaped. */
static void prom_label(const char *name, const char *v, bool last)
{
	printf("%s=\"", name);
	put_prom_label_value(stdout, v);
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

enum prom_field { PF_CONNS, PF_KEEPALIVE, PF_USER_TIMEOUT, PF_LISTENERS, PF_LISTENERS_KA,
		  PF_MPTCP, PF_OTHER_CGROUP };

static void prom_family(const struct audit *a, const char *name, const char *help,
			enum prom_field f)
{
	size_t i;

	printf("# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		unsigned v = f == PF_CONNS ? p->connections : f == PF_KEEPALIVE ? p->keepalive :
			     f == PF_USER_TIMEOUT ? p->user_timeout :
			     f == PF_LISTENERS ? p->listeners :
			     f == PF_MPTCP ? p->mptcp :
			     f == PF_OTHER_CGROUP ? p->other_cgroup : p->listeners_keepalive;
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
		    "TCP connections of the program (sockets, however many descriptors hold "
		    "each), listeners excluded; program: the executable, marked (another mount "
		    "namespace) when that path here is not the file running.", PF_CONNS);
	prom_family(a, "kashim_audit_connections_keepalive",
		    "Connections with SO_KEEPALIVE on.", PF_KEEPALIVE);
	prom_family(a, "kashim_audit_connections_user_timeout",
		    "Connections with a TCP_USER_TIMEOUT.", PF_USER_TIMEOUT);
	prom_family(a, "kashim_audit_connections_mptcp",
		    "MPTCP connections (bounds through their subflows and net.mptcp.close_timeout).",
		    PF_MPTCP);
	prom_family(a, "kashim_audit_connections_other_cgroup",
		    "Connections whose socket belongs to another cgroup than the process "
		    "(accepted on a listener created elsewhere).", PF_OTHER_CGROUP);
	prom_family(a, "kashim_audit_listeners", "Listening TCP sockets of the program.",
		    PF_LISTENERS);
	prom_family(a, "kashim_audit_listeners_keepalive",
		    "Listening sockets with SO_KEEPALIVE on (inherited by accepted connections).",
		    PF_LISTENERS_KA);
	printf("# HELP kashim_audit_worst_case_seconds Worst-case time for the program's "
	       "connections to notice a dead peer, idle or with data in flight; +Inf: never; "
	       "NaN: unknown.\n"
	       "# TYPE kashim_audit_worst_case_seconds gauge\n");
	for (i = 0; i < a->nprograms; i++)
		for (b = 0; b < 2 && a->programs[i].connections; b++) {
			double ms = program_worst(&a->programs[i], b);
			fputs("kashim_audit_worst_case_seconds", stdout);
			prom_labels(&a->programs[i], bound[b]);
			if (isnan(ms))
				printf(" NaN\n");
			else if (isinf(ms))
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
	print_counters_prometheus(a);
}

/* --- the command ---------------------------------------------------- */

/* For sorting: never, then unknown, then the longest. */
static double sort_key(const struct program *p, bool busy)
{
	double w = program_worst(p, busy);

	return isnan(w) ? DBL_MAX : w;
}

/* The worst programs first: those that never notice, then the slowest. */
static int by_worst(const void *x, const void *y, void *programs)
{
	const struct program *p = (const struct program *)programs + *(const size_t *)x;
	const struct program *q = (const struct program *)programs + *(const size_t *)y;
	double pi = sort_key(p, false), qi = sort_key(q, false);
	double pb = sort_key(p, true), qb = sort_key(q, true);

	if (pi != qi)
		return pi < qi ? 1 : -1;
	if (pb != qb)
		return pb < qb ? 1 : -1;
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
/* A bound that is not proved within max_ms: over it, unknown too. */
static bool over(double ms, double max_ms)
{
	return isnan(ms) || ms > max_ms;
}

/* Counts the connections whose worst case exceeds max_ms and says so. */
static unsigned over_bound(const struct audit *a, double max_ms, const char *text)
{
	static char exe[ESCAPED_PATH_MAX], label[ESCAPED_PATH_MAX];
	char idle[24], busy[24], shown[160];
	unsigned total = 0, n;
	size_t i, k;

	for (i = 0; i < a->nprograms; i++) {
		const struct program *p = &a->programs[i];
		double wi = program_worst(p, false), wb = program_worst(p, true);
		if (!p->connections || (!over(wi, max_ms) && !over(wb, max_ms)))
			continue;
		for (n = 0, k = 0; k < a->nconns; k++)
			n += a->conns[k].program == i && a->conns[k].s.state != TCP_LISTEN &&
			     (over(a->conns[k].idle_ms, max_ms) || over(a->conns[k].busy_ms, max_ms));
		seconds_text(wi, idle, sizeof idle);
		seconds_text(wb, busy, sizeof busy);
		fprintf(stderr, "kashim audit: %s (%s, pid %ld): %u connection(s) over --max-bound "
			"%s: worst case idle %s, busy %s\n", escaped(p->exe, exe, sizeof exe),
			escaped(label_of(p), label, sizeof label), p->pids[0], n,
			escaped(text, shown, sizeof shown), idle, busy);
		total += n;
	}
	return total;
}

static void audit_free(struct audit *a)
{
	size_t i;

	for (i = 0; i < a->nprograms; i++) {
		free(a->programs[i].pids);
		free(a->programs[i].other_ns_pids);
		free(a->programs[i].cgroup);
	}
	for (i = 0; i < a->nconns; i++)
		free(a->conns[i].socket_cgroup);
	for (i = 0; i < a->nnetns; i++)
		free(a->netns[i].diag.e);
	free(a->programs);
	free(a->conns);
	free(a->netns);
	free(a->pending);
	free(a->counters);
	if (a->host_root >= 0)
		close(a->host_root);
}

static int usage(FILE *to, int status)
{
	fprintf(to, "usage: kashim audit [--json | --prometheus] [--max-bound D] [--output FILE]\n\n"
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
		"                  (45, 45s, 2m, 1h, 1500ms)\n"
		"  --output FILE   write FILE whole or not at all (a temporary file\n"
		"                  beside it, then renamed), for node_exporter; only\n"
		"                  a regular file is replaced, never a device, FIFO,\n"
		"                  socket, directory or symbolic link\n\n"
		"Exit status: 0 done, 1 a worst case exceeds --max-bound, 2 usage.\n");
	return status;
}

int cmd_audit(int argc, char **argv)
{
	struct audit a = { .host_root = -1 };
	struct stdout_file out;
	const char *bound_text = NULL, *output = NULL;
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
		else if (!strcmp(argv[i], "--output") && i + 1 < argc)
			output = argv[++i];
		else if (!strncmp(argv[i], "--output=", 9))
			output = argv[i] + 9;
		else
			return usage(stderr, EXIT_USAGE);
	}
	if (json && prometheus) {
		fputs("kashim audit: --json and --prometheus are exclusive\n", stderr);
		return EXIT_USAGE;
	}
	if (bound_text && !parse_bound(bound_text, &max_ms)) {
		char shown[160];
		fprintf(stderr, "kashim audit: --max-bound \"%s\" is not a duration; accepted: "
			"1ms to 2147483647ms, as 45, 45s, 2m, 1h or 1500ms\n",
			escaped(bound_text, shown, sizeof shown));
		return EXIT_USAGE;
	}
	host_view_open(&a);
	audit_host(&a);
	merge_shared(&a);
	account(&a);
	read_retries2(&retries2);
	sort_programs(&a);
	if (output && !stdout_file_begin(&out, output)) {
		audit_free(&a);
		return EXIT_PROBLEM;
	}
	if (json)
		print_json(&a, retries2);
	else if (prometheus)
		print_prometheus(&a);
	else
		print_text(&a, retries2);
	fflush(stdout);
	if (output && !stdout_file_commit(&out, true)) {
		audit_free(&a);
		return EXIT_PROBLEM;
	}
	status = bound_text && over_bound(&a, max_ms, bound_text) ? EXIT_PROBLEM : EXIT_OK;
	audit_free(&a);
	return status;
}
