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
#include <linux/inet_diag.h>
#include <linux/mptcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
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
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd of one thread */
#endif
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44 /* Linux 6.15: the per-socket cap of the backoff */
#endif

#define PF_KTHREAD_FLAG 0x00200000u /* include/linux/sched.h */
#define PF_EXITING_FLAG 0x00000004u /* include/linux/sched.h: set at the start of do_exit() */
#define RTO_MAX_DEFAULT_MS 120000u  /* TCP_RTO_MAX before it could be set */
#define PID_MAX 4194304L            /* PID_MAX_LIMIT on 64-bit kernels */
/* How long to wait for an exit to complete when a descriptor vanished
 * mid-read: a process's descriptors are released a moment before its
 * pidfd reports the exit. */
#define EXIT_SETTLE_MS 100
/* How many threads one read may go through when those it reads through
 * exit under it (threads that keep replacing each other). */
#define TASK_SWITCHES_MAX 256
#define TASK_LOOKS_MAX 25 /* 200 us apart: 5 ms for a live thread to show */

static const char *const tcp_states[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

const char *tcp_state_name(unsigned state)
{
	return state < sizeof tcp_states / sizeof tcp_states[0] ? tcp_states[state] : "?";
}

void sockaddr_text(const union sock_addr *a, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->v4.sin_addr, host, sizeof host);
		snprintf(out, size, "%s:%u", host, ntohs(a->v4.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->v6.sin6_addr, host, sizeof host);
		snprintf(out, size, "[%s]:%u", host, ntohs(a->v6.sin6_port));
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
	struct mptcp_info mi;
	struct stat st;
	int rto_max;

	memset(s, 0, sizeof *s);
	s->fd = target_fd;
	s->mptcp = opt(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP;
	s->mptcp_subflows = -1;
	if (s->mptcp) {
		memset(&mi, 0, sizeof mi);
		len = sizeof mi;
		if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &mi, &len) == 0 && len > 0)
			s->mptcp_subflows = mi.mptcpi_subflows;
		len = sizeof s->local;
	}
	getsockname(fd, &s->local.sa, &len);
	len = sizeof s->remote;
	getpeername(fd, &s->remote.sa, &len);
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

/* A task's state letter ('R', 'S', 'Z'...) and flags (field 9) from its
 * stat file; false when it cannot be read. */
static bool stat_state_flags(const char *path, char *state, unsigned long *flags)
{
	char buf[1024], *p;
	ssize_t n;
	int fd, field;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p || p[1] != ' ')
		return false;
	*state = p[2];
	for (field = 2; field < 9 && p; field++) /* flags is field 9 */
		p = strchr(p + 1, ' ');
	*flags = p ? strtoul(p + 1, NULL, 10) : 0;
	return true;
}

static bool is_kernel_thread(long pid)
{
	char path[64], state;
	unsigned long flags;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	return stat_state_flags(path, &state, &flags) && (flags & PF_KTHREAD_FLAG);
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

/* Whether task tid of process pid still holds the process's descriptors:
 * not a zombie, and not exiting either.  A thread that exits drops them
 * (exit_files) well before /proc shows it as a zombie, and its /proc fd
 * directory then lists nothing and reads nothing; PF_EXITING is set
 * before that, at the start of its exit. */
static bool task_alive(long pid, long tid)
{
	char path[64], state;
	unsigned long flags;

	snprintf(path, sizeof path, "/proc/%ld/task/%ld/stat", pid, tid);
	return stat_state_flags(path, &state, &flags) && state != 'Z' && state != 'X' &&
	       !(flags & PF_EXITING_FLAG);
}

long proc_live_task(long pid)
{
	struct dirent *d;
	char path[64];
	long tid, found = pid;
	DIR *dir;

	if (task_alive(pid, pid))
		return pid;
	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	dir = opendir(path);
	if (!dir)
		return pid;
	while (found == pid && (d = readdir(dir)))
		if (parse_pid(d->d_name, &tid) && tid != pid && task_alive(pid, tid))
			found = tid;
	closedir(dir);
	return found;
}

/* A pidfd through which the descriptors of pid can be taken: pidfd
 * itself, or one of task, a live thread, when the main thread has exited
 * (the process's own pidfd then reaches no descriptor).  -1 with *err. */
static int getfd_pidfd(int pidfd, long pid, long task, int *err)
{
	int fd;

	if (task == pid)
		return pidfd;
	fd = (int)syscall(SYS_pidfd_open, (pid_t)task, PIDFD_THREAD);
	if (fd < 0) /* EINVAL: a kernel before 6.9, without thread pidfds */
		*err = errno == EINVAL ? EOPNOTSUPP : errno;
	return fd;
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
	if (n < 0 && (errno == EACCES || errno == EPERM)) {
		/* no right to ptrace it (CAP_SYS_PTRACE): listed, never read */
		*err = errno;
		return FD_DENIED;
	}
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

/* Where a read of one process's descriptors stands. */
struct fd_walk {
	int pidfd; /* the process's */
	long pid, task; /* task: the thread read through */
	long next_fd;   /* the lowest descriptor number not yet read */
	bool vanished;  /* a descriptor was closed under the read */
	bool task_gone; /* task exited under the read: go on through another */
};

/* Whether the read through w->task was cut short by that thread's exit
 * rather than by a closed descriptor (the main thread's is the process's
 * exit, which the caller's pidfd tells). */
static bool cut_by_thread_exit(struct fd_walk *w)
{
	if (w->task != w->pid && !task_alive(w->pid, w->task))
		w->task_gone = true;
	return w->task_gone;
}

/* Reads the descriptors from w->next_fd on through thread w->task.  /proc
 * lists them in increasing order, so a read cut short by the thread's
 * exit goes on through another from where it stopped, none read twice. */
static enum proc_read_status read_through_task(struct fd_walk *w, sock_visit_fn *visit, void *ctx,
						int *err)
{
	enum proc_read_status status = PROC_READ_OK;
	int taskfd = getfd_pidfd(w->pidfd, w->pid, w->task, err);
	char path[64];
	struct dirent *d;
	long fd;
	DIR *dir;

	if (taskfd < 0)
		return *err == ESRCH && cut_by_thread_exit(w) ? PROC_READ_OK : PROC_READ_DENIED;
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/fd", w->pid, w->task);
	dir = opendir(path);
	if (!dir) {
		*err = errno;
		if (!cut_by_thread_exit(w))
			status = errno == ENOENT ? PROC_READ_EXITED : PROC_READ_DENIED;
		goto out;
	}
	while (status == PROC_READ_OK && (d = readdir(dir))) {
		if (!parse_digits(d->d_name, INT_MAX, &fd) || fd < w->next_fd)
			continue; /* "." and "..", or read through a thread before */
		switch (read_fd(taskfd, dirfd(dir), d->d_name, visit, ctx, err)) {
		case FD_VANISHED:
			if (cut_by_thread_exit(w))
				goto done;
			w->vanished = true;
			break;
		case FD_DENIED: status = PROC_READ_DENIED; break;
		case FD_DONE: break;
		}
		w->next_fd = fd + 1;
	}
	if (status == PROC_READ_OK)
		cut_by_thread_exit(w); /* a listing that ended early */
done:
	closedir(dir);
out:
	if (taskfd != w->pidfd)
		close(taskfd);
	return status;
}

/* The live thread to go on through after w->task exited.  Threads that
 * each start the next and exit may all be exiting at one instant, the
 * next not yet listed: looked for again, for a few milliseconds at most,
 * before the read is said to be outrun (w->pid returned). */
static long next_live_task(const struct fd_walk *w)
{
	long task = w->pid;
	int tries;

	for (tries = 0; tries < TASK_LOOKS_MAX; tries++) {
		task = proc_live_task(w->pid);
		if (task != w->pid || task_alive(w->pid, w->pid) || exited(w->pidfd, 0))
			break;
		usleep(200);
	}
	return task;
}

enum proc_read_status proc_read_sockets(long pid, sock_visit_fn *visit, void *ctx, int *err)
{
	enum proc_read_status status = PROC_READ_OK;
	struct fd_walk w = { .pid = pid };
	int switches;

	*err = 0;
	w.pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (w.pidfd < 0) {
		*err = errno;
		if (errno == EPERM || errno == EACCES)
			return PROC_READ_DENIED;
		return is_thread_id(pid) ? PROC_READ_THREAD_ID : PROC_READ_NO_PROCESS;
	}
	if (exited(w.pidfd, 0)) {
		status = PROC_READ_EXITED; /* a zombie */
		goto out;
	}
	if (is_kernel_thread(pid)) {
		status = PROC_READ_KERNEL_THREAD;
		goto out;
	}
	/* A process whose main thread has exited (pthread_exit in main) lists
	 * no descriptor under /proc/PID/fd: its live threads still hold them,
	 * and may exit and be replaced while they are read. */
	w.task = next_live_task(&w);
	if (w.task == pid && !task_alive(pid, pid) && !exited(w.pidfd, 0)) {
		/* its threads replace each other faster than one can be
		 * found: nothing read, and said (never "no sockets") */
		*err = EAGAIN;
		status = PROC_READ_DENIED;
	}
	for (switches = 0; status == PROC_READ_OK; switches++) {
		w.task_gone = false;
		status = read_through_task(&w, visit, ctx, err);
		if (status != PROC_READ_OK || !w.task_gone)
			break;
		w.task = next_live_task(&w);
		if (switches == TASK_SWITCHES_MAX || w.task == pid) {
			/* threads that outrun the read: not read whole, and said */
			*err = EAGAIN;
			status = PROC_READ_DENIED;
		}
	}
	/* Also catches a process id reused during the read: the listing was
	 * another process's, but the pidfd is the one we opened.  (A process
	 * that exits ends its threads: EXITED, not DENIED.) */
	if (exited(w.pidfd, w.vanished || w.task_gone || status != PROC_READ_OK ? EXIT_SETTLE_MS : 0))
		status = PROC_READ_EXITED;
out:
	close(w.pidfd);
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

/* --- sock_diag -------------------------------------------------------- */

static void diag_add(struct diag_table *t, const struct nlmsghdr *h)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	unsigned long long cgroup_id = 0;
	size_t off, end = h->nlmsg_len;

	if (end < NLMSG_LENGTH(sizeof *m))
		return;
	/* the attributes after the message, each checked to lie inside it */
	for (off = NLMSG_SPACE(sizeof *m); off + sizeof(struct rtattr) <= end;) {
		const struct rtattr *a = (const void *)((const char *)h + off);
		if (a->rta_len < sizeof *a || a->rta_len > end - off)
			break;
		if (a->rta_type == INET_DIAG_CGROUP_ID && a->rta_len >= RTA_LENGTH(sizeof cgroup_id))
			memcpy(&cgroup_id, RTA_DATA(a), sizeof cgroup_id);
		off += RTA_ALIGN(a->rta_len);
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct diag_entry *e = realloc(t->e, cap * sizeof *e);
		if (!e)
			return;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n++] = (struct diag_entry){ m->idiag_inode, m->idiag_timer, m->idiag_expires,
					    m->idiag_retrans, cgroup_id };
}

static bool diag_dump_family(int nl, int family, int protocol, struct diag_table *t)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof msg, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = (unsigned char)family, .sdiag_protocol = (unsigned char)protocol,
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
			diag_add(t, h);
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
	t->ok = diag_dump_family(nl, AF_INET, IPPROTO_TCP, t) &&
		diag_dump_family(nl, AF_INET6, IPPROTO_TCP, t);
	/* MPTCP sockets, where the kernel has its diag module (IPv4 and IPv6
	 * alike): their cgroups; a refusal leaves them out, nothing else. */
	if (t->ok)
		diag_dump_family(nl, AF_INET, IPPROTO_MPTCP, t);
	close(nl);
}

void diag_load(long pid, struct diag_table *t)
{
	memset(t, 0, sizeof *t);
	netns_run(proc_live_task(pid), diag_dump, t); /* a main thread gone has no namespace */
	if (t->ok)
		qsort(t->e, t->n, sizeof *t->e, by_inode);
}

const struct diag_entry *diag_find(const struct diag_table *t, unsigned long inode)
{
	struct diag_entry key = { .inode = inode };

	return t->n ? bsearch(&key, t->e, t->n, sizeof *t->e, by_inode) : NULL;
}

/* --- cgroups by id ------------------------------------------------------ */

#define FILEID_KERNFS 0xfe /* include/linux/exportfs.h: a cgroup's id */

bool cgroup_path_of_id(unsigned long long id, char *out, size_t size)
{
	union {
		struct file_handle fh;
		char room[sizeof(struct file_handle) + sizeof(unsigned long long)];
	} h;
	char mount[PATH_MAX], link[64], path[PATH_MAX];
	size_t mlen;
	ssize_t n;
	int mfd, fd;

	if (!id || !cgroup2_mount(mount, sizeof mount))
		return false;
	mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return false;
	h.fh.handle_bytes = sizeof id;
	h.fh.handle_type = FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof id);
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		return false;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	close(fd);
	if (n <= 0)
		return false;
	path[n] = 0;
	mlen = strlen(mount);
	if (strncmp(path, mount, mlen) || (path[mlen] && path[mlen] != '/'))
		return false; /* outside the mount we know */
	snprintf(out, size, "%s", path[mlen] ? path + mlen : "/");
	return true;
}

unsigned long long cgroup_id_of_path(const char *path)
{
	char mount[PATH_MAX], *full;
	struct stat st;
	bool ok;

	if (path[0] != '/' || !cgroup2_mount(mount, sizeof mount) ||
	    asprintf(&full, "%s%s", mount, path) < 0)
		return 0;
	ok = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
	free(full);
	return ok ? (unsigned long long)st.st_ino : 0;
}
