/* SPDX-License-Identifier: MIT */
/* A probe run under LD_PRELOAD=libkashim.so.  It makes sockets through the
 * ordinary libc calls and reads the kernel's view back with getsockopt.
 *
 *   probe CASE IDLE INTERVAL COUNT USER_TIMEOUT_MS
 *
 * prints one "ok - ..." / "not ok - ..." / "skip - ..." line per check.
 * Sockets "from elsewhere" are made with syscall(), which no preload sees. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

struct expect {
	int idle, interval, count, user_timeout;
};

static struct expect want;
static const char *case_name;
static int failures;

static void report(int ok, const char *what, const char *detail)
{
	if (ok) {
		printf("ok - probe %s: %s\n", case_name, what);
	} else {
		printf("not ok - probe %s: %s: %s\n", case_name, what, detail);
		failures++;
	}
	fflush(stdout);
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	if (getsockopt(fd, level, name, &v, &len) != 0)
		return -1000 - errno;
	return v;
}

/* Empty string when fd carries exactly the expected keepalive settings;
 * otherwise what it carries. */
static const char *mismatch(int fd, int on, const struct expect *e)
{
	static __thread char buf[160];
	int ka = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	int idle = opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	int intvl = opt(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	int cnt = opt(fd, IPPROTO_TCP, TCP_KEEPCNT);
	int ut = opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);

	if (ka == on && idle == e->idle && intvl == e->interval && cnt == e->count &&
	    ut == e->user_timeout)
		return "";
	snprintf(buf, sizeof buf, "keepalive=%d idle=%d interval=%d count=%d user_timeout=%d",
		 ka, idle, intvl, cnt, ut);
	return buf;
}

static void expect_configured(int fd, const char *what)
{
	const char *m = mismatch(fd, 1, &want);
	report(!*m, what, m);
}

static int listener(int family, int raw)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = raw ? (int)syscall(SYS_socket, family, SOCK_STREAM, 0)
		     : socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if ((family == AF_INET ? bind(fd, (struct sockaddr *)&a4, sizeof a4)
			       : bind(fd, (struct sockaddr *)&a6, sizeof a6)) != 0 ||
	    listen(fd, 128) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_to(int fd, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(lfd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return connect(fd, (struct sockaddr *)&ss, len);
}

static void case_tcp(void)
{
	static const int families[] = { AF_INET, AF_INET6 };
	static const int flags[] = { 0, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK | SOCK_CLOEXEC };
	static const int protos[] = { 0, IPPROTO_TCP };
	char what[160];
	size_t f, g, p;

	for (f = 0; f < 2; f++)
		for (g = 0; g < 4; g++)
			for (p = 0; p < 2; p++) {
				int fd = socket(families[f], SOCK_STREAM | flags[g], protos[p]);
				int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
				snprintf(what, sizeof what, "socket(%s, SOCK_STREAM|%#x, %d)",
					 families[f] == AF_INET ? "AF_INET" : "AF_INET6",
					 (unsigned)flags[g], protos[p]);
				expect_configured(fd, what);
				report(!!(fl & O_NONBLOCK) == !!(flags[g] & SOCK_NONBLOCK) &&
				       !!(fdfl & FD_CLOEXEC) == !!(flags[g] & SOCK_CLOEXEC),
				       strcat(what, " keeps its flags"), "flags changed");
				close(fd);
			}
}

static void case_nontcp(void)
{
	static const struct { int family, type, proto; const char *name; } kinds[] = {
		{ AF_INET, SOCK_DGRAM, 0, "UDP over IPv4" },
		{ AF_INET6, SOCK_DGRAM, 0, "UDP over IPv6" },
		{ AF_UNIX, SOCK_STREAM, 0, "AF_UNIX stream" },
		{ AF_UNIX, SOCK_DGRAM, 0, "AF_UNIX datagram" },
		{ AF_UNIX, SOCK_SEQPACKET, 0, "AF_UNIX seqpacket" },
		{ AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "netlink" },
		{ AF_INET, SOCK_RAW, IPPROTO_TCP, "raw IPPROTO_TCP (root)" },
		{ AF_INET6, SOCK_RAW, IPPROTO_TCP, "raw IPv6 IPPROTO_TCP (root)" },
	};
	size_t i;
	int pair[2];

	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		int fd = socket(kinds[i].family, kinds[i].type, kinds[i].proto);
		int ka;
		char detail[64];
		if (fd < 0) {
			printf("skip - probe nontcp: %s: cannot create (errno %d)\n",
			       kinds[i].name, errno);
			continue;
		}
		ka = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
		snprintf(detail, sizeof detail, "SO_KEEPALIVE=%d", ka);
		report(ka == 0, kinds[i].name, detail);
		close(fd);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0) {
		report(opt(pair[0], SOL_SOCKET, SO_KEEPALIVE) == 0 &&
		       opt(pair[1], SOL_SOCKET, SO_KEEPALIVE) == 0,
		       "socketpair", "keepalive on");
		close(pair[0]);
		close(pair[1]);
	}
}

static void case_errno(void)
{
	struct sockaddr_in closed = { .sin_family = AF_INET, .sin_port = htons(1),
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd, rc, e, lfd;
	char detail[96];

	errno = EXDEV;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	report(fd >= 0 && errno == EXDEV, "a successful socket() leaves errno as it was",
	       "errno changed");

	errno = 0;
	rc = socket(AF_INET, 12345, 0);
	e = errno;
	snprintf(detail, sizeof detail, "rc=%d errno=%d", rc, e);
	report(rc == -1 && e == EINVAL, "a failing socket() returns -1/EINVAL as libc", detail);

	rc = socket(AF_INET, SOCK_STREAM, IPPROTO_UDP);
	e = errno;
	report(rc == -1 && e == EPROTONOSUPPORT,
	       "socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) fails with EPROTONOSUPPORT", "differs");

	rc = connect(fd, (struct sockaddr *)&closed, sizeof closed);
	e = errno;
	snprintf(detail, sizeof detail, "rc=%d errno=%d", rc, e);
	report(rc == -1 && e == ECONNREFUSED, "connect() to a closed port gives ECONNREFUSED",
	       detail);
	close(fd);

	lfd = listener(AF_INET, 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	errno = 0;
	rc = connect_to(fd, lfd);
	e = errno;
	report(rc == 0 || (rc == -1 && e == EINPROGRESS),
	       "a non-blocking connect() gives 0 or EINPROGRESS", "other");
	close(fd);

	errno = EXDEV;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect_to(fd, lfd);
	report(rc == 0 && errno == EXDEV, "a successful connect() leaves errno as it was",
	       "errno changed");
	close(fd);

	rc = accept(fd, NULL, NULL);
	e = errno;
	report(rc == -1 && e == EBADF, "accept() on a closed fd gives EBADF", "other");
	rc = accept4(-1, NULL, NULL, 0);
	e = errno;
	report(rc == -1 && e == EBADF, "accept4(-1) gives EBADF", "other");
	rc = connect(-1, (struct sockaddr *)&closed, sizeof closed);
	e = errno;
	report(rc == -1 && e == EBADF, "connect(-1) gives EBADF", "other");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = accept(fd, NULL, NULL);
	e = errno;
	report(rc == -1 && e == EINVAL, "accept() on a socket not listening gives EINVAL",
	       "other");
	rc = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &rc, 1);
	e = errno;
	report(rc == -1 && e == EINVAL, "a bad setsockopt() passes its EINVAL through", "other");
	close(fd);
	close(lfd);
}

static void accept_check(int lfd, int use_accept4, int on, const char *what)
{
	int c = socket(AF_INET, SOCK_STREAM, 0), a;

	connect_to(c, lfd);
	a = use_accept4 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : accept(lfd, NULL, NULL);
	if (on) {
		expect_configured(a, what);
	} else {
		int ka = opt(a, SOL_SOCKET, SO_KEEPALIVE);
		report(ka == 0, what, "keepalive turned on");
	}
	close(a);
	close(c);
}

static void case_accept(void)
{
	int zero = 0, lfd = listener(AF_INET, 0);

	accept_check(lfd, 0, 1, "accept() from our listener");
	accept_check(lfd, 1, 1, "accept4() from our listener");
	close(lfd);

	lfd = listener(AF_INET, 1);
	report(opt(lfd, SOL_SOCKET, SO_KEEPALIVE) == 0, "a foreign listener has keepalive off",
	       "on");
	accept_check(lfd, 0, 1, "accept() from a listener made elsewhere");
	accept_check(lfd, 1, 1, "accept4() from a listener made elsewhere");
	close(lfd);

	lfd = listener(AF_INET, 0);
	setsockopt(lfd, SOL_SOCKET, SO_KEEPALIVE, &zero, sizeof zero);
	accept_check(lfd, 1, 0, "the program turned keepalive off on its listener: left off");
	close(lfd);
}

static void case_connect(void)
{
	int lfd = listener(AF_INET6, 0), fd, v;
	const char *m;
	struct expect custom = { 77, 7, 3, 0 };

	fd = (int)syscall(SYS_socket, AF_INET6, SOCK_STREAM, 0);
	report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, "a socket made elsewhere starts off", "on");
	connect_to(fd, lfd);
	expect_configured(fd, "connect() on a socket made elsewhere configures it");
	close(fd);

	fd = (int)syscall(SYS_socket, AF_INET6, SOCK_STREAM, 0);
	v = 1;
	syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
	v = 77;
	syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v);
	v = 7;
	syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v);
	v = 3;
	syscall(SYS_setsockopt, fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v);
	connect_to(fd, lfd);
	m = mismatch(fd, 1, &custom);
	report(!*m, "a socket that already had keepalive on is left as it is", m);
	close(fd);

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	v = 0;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
	connect_to(fd, lfd);
	report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0,
	       "the program turned keepalive off after socket(): connect() leaves it off", "on");
	close(fd);

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	v = 100;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v);
	v = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof v);
	connect_to(fd, lfd);
	report(opt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 100 &&
	       opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0 &&
	       opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 1,
	       "the program's own idle and user timeout stand after connect()", "overridden");
	close(fd);

	/* The program turns keepalive off, then on again: ours apply again
	 * on a later foreign connect, and the bit does not stick. */
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	v = 0;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
	v = 1;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
	connect_to(fd, lfd);
	expect_configured(fd, "keepalive switched off then on by the program keeps our timers");
	close(fd);
	close(lfd);
}

/* Threads making sockets at once: each makes `sockets` TCP sockets (and as
 * many UDP ones if udp), connects every accept_every-th one to the shared
 * listener, and switches keepalive off and on again on every 7th if toggle. */
struct worker {
	int lfd, sockets, accept_every;
	bool udp, toggle;
	int bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int i, zero = 0, one = 1;

	for (i = 0; i < w->sockets; i++) {
		int fd = socket(i % 2 ? AF_INET : AF_INET6,
				SOCK_STREAM | (i % 3 ? SOCK_CLOEXEC : 0), 0);
		if (fd < 0 || *mismatch(fd, 1, &want))
			w->bad++;
		if (w->udp) {
			int u = socket(AF_INET, SOCK_DGRAM, 0);
			if (u < 0 || opt(u, SOL_SOCKET, SO_KEEPALIVE) != 0)
				w->bad++;
			close(u);
		}
		if (w->toggle && i % 7 == 0) {
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &zero, sizeof zero);
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
		}
		if (i % w->accept_every == 0 && fd >= 0 && i % 2) {
			int a;
			connect_to(fd, w->lfd);
			a = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (a < 0 || *mismatch(a, 1, &want))
				w->bad++;
			close(a);
		}
		close(fd);
	}
	return NULL;
}

static void run_threads(int threads, struct worker proto, const char *what)
{
	pthread_t t[16];
	struct worker w[16];
	int i, bad = 0;
	char detail[64];

	proto.lfd = listener(AF_INET, 0);
	for (i = 0; i < threads && i < 16; i++) {
		w[i] = proto;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < threads && i < 16; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	snprintf(detail, sizeof detail, "%d of %d sockets wrong", bad, threads * proto.sockets);
	report(bad == 0, what, detail);
	close(proto.lfd);
}

static void case_threads(void)
{
	run_threads(8, (struct worker){ .sockets = 400, .accept_every = 10, .udp = true },
		    "8 threads x 400 TCP+UDP sockets at once, every one right");
}

static void case_stress(void)
{
	run_threads(16, (struct worker){ .sockets = 2000, .accept_every = 25, .toggle = true },
		    "16 threads x 2000 sockets, connections and keepalive toggles");
}

static void case_fork(const char *self, char **argv)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		_exit(*mismatch(fd, 1, &want) ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	report(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "a forked child's sockets are configured", "child saw other values");

	pid = fork();
	if (pid == 0) {
		char *args[] = { (char *)self, "tcp", argv[2], argv[3], argv[4], argv[5], NULL };
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execv(self, args);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	report(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "a child after fork+exec is configured", "exec'd probe failed");
}

static void case_mptcp(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	int ka;

	if (fd < 0) {
		report(errno == EPROTONOSUPPORT || errno == EINVAL || errno == ENOPROTOOPT,
		       "MPTCP unsupported here: socket() fails as libc would", "odd errno");
		return;
	}
	ka = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
	report(ka == 1, "an MPTCP socket gets SO_KEEPALIVE", "keepalive off");
	close(fd);
}

static void case_untouched(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), lfd = listener(AF_INET, 0), a;
	char detail[64];

	snprintf(detail, sizeof detail, "SO_KEEPALIVE=%d TCP_USER_TIMEOUT=%d",
		 opt(fd, SOL_SOCKET, SO_KEEPALIVE), opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
	report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0 &&
	       opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0, "socket() left as the kernel made it",
	       detail);
	connect_to(fd, lfd);
	a = accept(lfd, NULL, NULL);
	report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0 && opt(a, SOL_SOCKET, SO_KEEPALIVE) == 0,
	       "connect() and accept() leave keepalive off", "turned on");
	close(a);
	close(fd);
	close(lfd);
}

/* A signal handler makes sockets while the interrupted code is inside
 * socket() itself, thousands of times. */
static volatile sig_atomic_t handler_runs, handler_bad;

static void on_alarm(int sig)
{
	int saved = errno, fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)sig;
	handler_runs++;
	if (fd < 0 || *mismatch(fd, 1, &want))
		handler_bad++;
	close(fd);
	errno = saved;
}

static void case_signals(void)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval every = { { 0, 50 }, { 0, 50 } }, stop = { { 0, 0 }, { 0, 0 } };
	int i, bad = 0;
	char detail[96];

	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &every, NULL);
	for (i = 0; i < 50000; i++) {
		int fd = socket(AF_INET6, SOCK_STREAM, 0);
		if (fd < 0 || *mismatch(fd, 1, &want))
			bad++;
		close(fd);
	}
	setitimer(ITIMER_REAL, &stop, NULL);
	snprintf(detail, sizeof detail, "%d main / %d handler sockets wrong, %d handler runs",
		 bad, (int)handler_bad, (int)handler_runs);
	report(bad == 0 && handler_bad == 0 && handler_runs > 100,
	       "signal handlers making sockets in the middle of socket()", detail);
	printf("# %d signal-handler sockets\n", (int)handler_runs);
}

/* The highest descriptors the limit allows: above 65535 where the hard
 * limit can be raised that far (it needs CAP_SYS_RESOURCE past the current
 * hard limit), and above the 2^20 descriptors kashim keeps marks for. */
static void case_highfd(void)
{
	struct rlimit rl;
	int fd, lfd, i, base, top, v = 0;
	char what[96];

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max = 1100000;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		rl.rlim_cur = rl.rlim_max = 70000;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
			printf("# RLIMIT_NOFILE cannot be raised here (no CAP_SYS_RESOURCE): "
			       "testing up to %lu\n", (unsigned long)rl.rlim_max);
		}
	}
	top = (int)(rl.rlim_cur > 66100 ? 66000 : rl.rlim_cur - 100);
	base = open("/dev/null", O_RDONLY);
	for (i = base + 1; i < top; i++)
		if (fcntl(base, F_DUPFD, i) < 0)
			break;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	snprintf(what, sizeof what, "socket() at fd %d (limit %lu) is configured", fd,
		 (unsigned long)rl.rlim_cur);
	report(fd >= top - 1, "socket() gets one of the highest descriptors", "low fd");
	expect_configured(fd, what);
	lfd = listener(AF_INET, 0);
	accept_check(lfd, 1, 1, "accept4() at the highest descriptors");
	if (rl.rlim_cur > 1049000) {
		int high = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
		dup2(high, 1049000);
		close(high);
		setsockopt(1049000, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
		connect_to(1049000, lfd);
		report(opt(1049000, SOL_SOCKET, SO_KEEPALIVE) == 1,
		       "fd 1049000 (past the tracked marks): connect() configures it", "off");
	}
	for (i = base; i < top; i++)
		close(i);
	close(fd);
	close(lfd);
}

static void case_forkstorm(const char *self)
{
	int i, bad = 0, status;
	pid_t pids[64];

	for (i = 0; i < 64; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			int k, wrong = 0;
			for (k = 0; k < 50; k++) {
				int fd = socket(AF_INET, SOCK_STREAM, 0);
				wrong += fd < 0 || *mismatch(fd, 1, &want);
				close(fd);
			}
			_exit(wrong ? 1 : 0);
		}
	}
	for (i = 0; i < 64; i++) {
		waitpid(pids[i], &status, 0);
		bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	report(bad == 0, "64 forked children x 50 sockets", "a child saw wrong values");

	/* An exec chain: each link execs the next, the last checks. */
	{
		char depth[8], *args[] = { (char *)self, "chain", depth, "11", "4", "81000", NULL };
		pid_t pid = fork();
		if (pid == 0) {
			snprintf(depth, sizeof depth, "%d", want.idle);
			execv(self, args);
			_exit(127);
		}
		waitpid(pid, &status, 0);
		report(WIFEXITED(status) && WEXITSTATUS(status) == 0, "an exec chain of 10 programs",
		       "the end of the chain saw wrong values");
	}
}

/* probe chain N ...: exec itself until N reaches 0, then check a socket. */
static int case_chain(const char *self, char **argv)
{
	int left = atoi(argv[2]) - 1;
	char next[16];
	char *args[] = { (char *)self, "chain", next, argv[3], argv[4], argv[5], NULL };
	int fd;

	if (left > 27) /* started with the idle value: run 10 links */
		left = 10;
	if (left > 0) {
		snprintf(next, sizeof next, "%d", left);
		execv(self, args);
		return 127;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	want = (struct expect){ 37, 11, 4, 81000 };
	return *mismatch(fd, 1, &want) ? 1 : 0;
}

static void case_vfork(const char *self, char **argv)
{
	char *args[] = { (char *)self, "tcp", argv[2], argv[3], argv[4], argv[5], NULL };
	int status, devnull = open("/dev/null", O_WRONLY), saved = dup(1);
	pid_t pid;

	dup2(devnull, 1);
	pid = vfork();
	if (pid == 0) {
		execv(self, args);
		_exit(127);
	}
	dup2(saved, 1);
	waitpid(pid, &status, 0);
	report(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child started by vfork+exec",
	       "its sockets were wrong");
}

/* A seccomp filter makes setsockopt fail with EPERM: the program's
 * socket() still succeeds, errno is untouched, the socket is plain. */
static void case_seccomp(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setsockopt, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof filter / sizeof filter[0], filter };
	int fd, lfd, c, a;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		printf("skip - probe seccomp: cannot install a filter (errno %d)\n", errno);
		return;
	}
	errno = EXDEV;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	report(fd >= 0 && errno == EXDEV, "socket() succeeds, errno untouched, though setsockopt fails",
	       "failed or errno changed");
	report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, "the socket is left as the kernel made it", "on");
	lfd = listener(AF_INET, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	errno = EXDEV;
	report(connect_to(c, lfd) == 0 && errno == EXDEV, "connect() succeeds, errno untouched",
	       "failed");
	a = accept(lfd, NULL, NULL);
	report(a >= 0 && errno == EXDEV, "accept() succeeds, errno untouched", "failed");
	close(a);
	close(c);
	close(lfd);
	close(fd);
}

/* The address of a listener, for a call that takes one. */
static socklen_t address_of(int lfd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof *ss;

	return getsockname(lfd, (struct sockaddr *)ss, &len) == 0 ? len : 0;
}

#ifndef TCPI_OPT_SYN_DATA
#define TCPI_OPT_SYN_DATA 32 /* musl's netinet/tcp.h lacks it */
#endif

/* Whether fd's connection carried data in its SYN, once established
 * (waited for, 30 s at most). */
static bool syn_carried_data(int fd)
{
	struct tcp_info ti;
	socklen_t len;
	int i;

	for (i = 0; i < 3000; i++) {
		len = sizeof ti;
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
			return false;
		if (ti.tcpi_state == TCP_ESTABLISHED)
			return ti.tcpi_options & TCPI_OPT_SYN_DATA;
		usleep(10000);
	}
	return false;
}

/* One Fast Open send of one byte to lfd through api, never connect(). */
static long fastopen_send(int fd, int lfd, const char *api)
{
	struct sockaddr_storage ss;
	socklen_t len = address_of(lfd, &ss);
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	struct mmsghdr mm = { .msg_hdr = { .msg_name = &ss, .msg_namelen = len,
					   .msg_iov = &iov, .msg_iovlen = 1 } };

	if (!strcmp(api, "sendto"))
		return sendto(fd, &byte, 1, MSG_FASTOPEN, (struct sockaddr *)&ss, len);
	if (!strcmp(api, "sendmsg"))
		return sendmsg(fd, &mm.msg_hdr, MSG_FASTOPEN);
	return sendmmsg(fd, &mm, 1, MSG_FASTOPEN);
}

/* TCP Fast Open (run in a network namespace with net.ipv4.tcp_fastopen=3,
 * under filters that cover 127.0.0.1): connections opened by sendto(),
 * sendmsg() and sendmmsg() with MSG_FASTOPEN, blocking or not, never
 * connect(), are configured, and each call answers as libc does. */
static void case_fastopen(void)
{
	static const char *const apis[] = { "sendto", "sendmsg", "sendmmsg" };
	int lfd = listener(AF_INET, 0), qlen = 16, round, nb, fd, a, e;
	size_t i;
	long rc;
	char what[128], detail[64];

	if (lfd < 0 || setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen) != 0) {
		printf("skip - probe fastopen: no Fast Open listener (errno %d)\n", errno);
		return;
	}
	/* The first round gets the cookie; the second sends data in the SYN. */
	for (round = 0; round < 2; round++)
		for (i = 0; i < sizeof apis / sizeof apis[0]; i++)
			for (nb = 0; nb < 2; nb++) {
				char call[64];
				fd = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
				errno = EXDEV;
				rc = fastopen_send(fd, lfd, apis[i]);
				e = errno;
				snprintf(call, sizeof call, "%s%s with MSG_FASTOPEN, round %d", apis[i],
					 nb ? " (non-blocking)" : "", round + 1);
				snprintf(what, sizeof what, "%s: answers as libc", call);
				snprintf(detail, sizeof detail, "rc=%ld errno=%d", rc, e);
				report((rc == 1 && e == EXDEV) ||
				       (nb && rc == -1 && e == EINPROGRESS), what, detail);
				snprintf(what, sizeof what, "%s: configured", call);
				expect_configured(fd, what);
				a = accept(lfd, NULL, NULL);
				if (round == 1) {
					snprintf(what, sizeof what,
						 "the scene: %s carried its data in the SYN", call);
					report(syn_carried_data(fd), what,
					       "no: the kernel did not use Fast Open");
				}
				close(a);
				close(fd);
			}
	/* On a connected socket the kernel refuses Fast Open: EISCONN, as
	 * without kashim. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	connect_to(fd, lfd);
	for (i = 0; i < sizeof apis / sizeof apis[0]; i++) {
		rc = fastopen_send(fd, lfd, apis[i]);
		e = errno;
		snprintf(what, sizeof what, "%s with MSG_FASTOPEN on a connected socket gives EISCONN",
			 apis[i]);
		snprintf(detail, sizeof detail, "rc=%ld errno=%d", rc, e);
		report(rc == -1 && e == EISCONN, what, detail);
	}
	a = accept(lfd, NULL, NULL);
	close(a);
	close(fd);
	/* UDP takes the flag and ignores it: the datagram goes, nothing set. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	for (i = 0; i < sizeof apis / sizeof apis[0]; i++) {
		errno = EXDEV;
		rc = fastopen_send(fd, lfd, apis[i]);
		snprintf(what, sizeof what, "UDP %s with MSG_FASTOPEN: sent, keepalive left off",
			 apis[i]);
		snprintf(detail, sizeof detail, "rc=%ld errno=%d SO_KEEPALIVE=%d", rc, errno,
			 opt(fd, SOL_SOCKET, SO_KEEPALIVE));
		report(rc == 1 && errno == EXDEV && opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, what,
		       detail);
	}
	close(fd);
	close(lfd);
}

/* For case_stale: is a connection made (or accepted) covered under the
 * KASHIM_SCOPE this probe runs with?  Its other filters cover 127.0.0.1. */
static bool scope_covers(bool accepted)
{
	const char *scope = getenv("KASHIM_SCOPE");

	if (!scope)
		return true;
	return accepted ? strcmp(scope, "client") != 0 : strcmp(scope, "server") != 0;
}

/* fd, on the number `want` (the stale one), gets its verdict at connect()
 * (or, for an accepted connection, at accept()). */
static void expect_judged(int fd, int number, bool accepted, const char *what)
{
	char line[160], detail[32];

	if (fd != number) {
		snprintf(detail, sizeof detail, "got fd %d, not %d", fd, number);
		report(0, "the scene: the TCP socket did not land on the stale number", detail);
		return;
	}
	if (scope_covers(accepted)) {
		snprintf(line, sizeof line, "%s: configured", what);
		expect_configured(fd, line);
	} else {
		snprintf(line, sizeof line, "%s: outside KASHIM_SCOPE, left off", what);
		report(opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, line, "keepalive on");
	}
}

/* fd connected to lfd must get its verdict on the stale number; then closed. */
static void connect_judged(int fd, int number, int lfd, const char *what)
{
	connect_to(fd, lfd);
	expect_judged(fd, number, false, what);
	close(fd);
}

/* A socket kashim saw made that is not TCP: its number then carries kashim's
 * not-TCP mark.  The kinds take turns. */
static int non_tcp_socket(int turn)
{
	static const int kinds[][3] = {
		{ AF_INET, SOCK_DGRAM, 0 },
		{ AF_UNIX, SOCK_STREAM, 0 },
		{ AF_NETLINK, SOCK_RAW, NETLINK_ROUTE },
	};
	const int *k = kinds[turn % 3];

	return socket(k[0], k[1], k[2]);
}

static int raw_tcp_socket(int flags)
{
	return (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | flags, 0);
}

/* Passes fd over the socketpair sp with SCM_RIGHTS, and closes the pair;
 * returns the number the kernel gave the received copy. */
static int pass_fd(int fd, const int sp[2])
{
	int got = -1;
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *c;

	memset(ctl.buf, 0, sizeof ctl.buf); /* the header's padding too */
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	if (sendmsg(sp[0], &m, 0) == 1) {
		m.msg_controllen = sizeof ctl.buf;
		if (recvmsg(sp[1], &m, 0) == 1 && (c = CMSG_FIRSTHDR(&m)) &&
		    c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof got);
	}
	close(sp[0]);
	close(sp[1]);
	return got;
}

/* A number whose TCP socket the program switched keepalive off on: that
 * choice is the socket's, not the number's.  Every socket here is made
 * with syscall(), so no number carries kashim's own mark (a number kashim
 * configured at socket() and a socket from elsewhere later on it, before
 * its connect(), is a limit: docs/sockets.md). */
static void stale_app_off(void)
{
	int lfd = listener(AF_INET, 1), n, fd, c;

	n = raw_tcp_socket(0);
	setsockopt(n, SOL_SOCKET, SO_KEEPALIVE, &(int){ 0 }, sizeof(int));
	close(n);
	fd = raw_tcp_socket(0);
	connect_judged(fd, n, lfd,
		       "another socket from syscall() where the program had switched keepalive off");
	c = raw_tcp_socket(0);
	setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &(int){ 0 }, sizeof(int));
	connect_to(c, lfd);
	if (getenv("KASHIM_MODE") && !strcmp(getenv("KASHIM_MODE"), "force"))
		expect_judged(c, c, false, "force mode: the program's off is not kept");
	else
		report(opt(c, SOL_SOCKET, SO_KEEPALIVE) == 0,
		       "and the program's own choice still holds on its own socket", "keepalive on");
	close(c);
	close(lfd);
	n = raw_tcp_socket(0);
	setsockopt(n, SOL_SOCKET, SO_KEEPALIVE, &(int){ 0 }, sizeof(int));
	close(n);
	lfd = listener(AF_INET, 1);
	c = raw_tcp_socket(0);
	connect_to(c, lfd);
	fd = accept(lfd, NULL, NULL);
	report(lfd == n, "the scene: the listener is on the number", "elsewhere");
	expect_judged(fd, fd, true,
		      "accepted from a listener on a number where the program had switched keepalive off");
	close(fd);
	close(c);
	close(lfd);
}

/* A number whose socket kashim configured at socket(), closed (or
 * overwritten), now held by a TCP socket kashim did not see made: without
 * filters connect() must not take it for the configured one (issue 21). */
static void stale_ours(int lfd)
{
	int n, t, fd, sp[2];

	n = socket(AF_INET, SOCK_STREAM, 0);
	close(n);
	connect_judged(raw_tcp_socket(0), n, lfd,
		       "kashim's socket closed, then a socket from syscall() on its number");

	n = socket(AF_INET, SOCK_STREAM, 0);
	t = raw_tcp_socket(0);
	dup2(t, n);
	close(t);
	connect_judged(n, n, lfd, "a socket from syscall() dup2()ed onto kashim's socket");

	n = socket(AF_INET, SOCK_STREAM, 0);
	t = raw_tcp_socket(0);
	dup3(t, n, O_CLOEXEC);
	close(t);
	connect_judged(n, n, lfd, "a socket from syscall() dup3()ed onto kashim's socket");

	t = raw_tcp_socket(0);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	n = socket(AF_INET, SOCK_STREAM, 0);
	close(n);
	fd = pass_fd(t, sp);
	close(t);
	connect_judged(fd, n, lfd, "kashim's socket closed, then one received with SCM_RIGHTS");
#ifdef __GLIBC__
	n = socket(AF_INET, SOCK_STREAM, 0);
	close_range((unsigned)n, (unsigned)n, 0);
	connect_judged(raw_tcp_socket(0), n, lfd,
		       "kashim's socket closed by close_range(), then a socket from syscall()");

	n = socket(AF_INET, SOCK_STREAM, 0);
	if (n < lfd) {
		report(0, "the scene: closefrom() would close the listener", "a free number below it");
		close(n);
		return;
	}
	closefrom(n);
	connect_judged(raw_tcp_socket(0), n, lfd,
		       "kashim's socket closed by closefrom(), then a socket from syscall()");
#endif
}

/* A number once held by a socket that is not TCP, now held by a TCP socket
 * that came by a route no wrapper sees: the mark kashim gave the first
 * must not decide for the second (issue 21).  Run without filters and
 * under filters that cover 127.0.0.1. */
static void case_stale(void)
{
	int lfd, n, t, fd, c, turn = 0, nb, sp[2];

	stale_app_off();
	lfd = listener(AF_INET, 0);
	stale_ours(lfd);

	for (nb = 0; nb < 2; nb++) {
		int flag = nb ? SOCK_NONBLOCK : 0;
		char what[96];

		n = non_tcp_socket(turn++);
		close(n);
		snprintf(what, sizeof what, "close(), then a socket from syscall()%s",
			 nb ? " (non-blocking)" : "");
		connect_judged(raw_tcp_socket(flag), n, lfd, what);

		n = non_tcp_socket(turn++);
		t = socket(AF_INET, SOCK_STREAM | flag, 0);
		dup2(t, n);
		close(t);
		snprintf(what, sizeof what, "the program's own TCP socket dup2()ed onto it%s",
			 nb ? " (non-blocking)" : "");
		connect_judged(n, n, lfd, what);
	}

	n = non_tcp_socket(turn++);
	t = raw_tcp_socket(0);
	dup2(t, n);
	close(t);
	connect_judged(n, n, lfd, "a socket from syscall() dup2()ed onto it");

	n = non_tcp_socket(turn++);
	t = raw_tcp_socket(0);
	dup3(t, n, O_CLOEXEC);
	close(t);
	connect_judged(n, n, lfd, "dup3()");

	t = raw_tcp_socket(0);
	n = non_tcp_socket(turn++);
	close(n);
	fd = fcntl(t, F_DUPFD, n);
	close(t);
	connect_judged(fd, n, lfd, "fcntl(F_DUPFD)");

	t = raw_tcp_socket(0);
	syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sp);
	n = non_tcp_socket(turn++);
	close(n);
	fd = pass_fd(t, sp);
	close(t);
	connect_judged(fd, n, lfd, "received with SCM_RIGHTS");

	n = non_tcp_socket(turn++);
	syscall(SYS_close_range, n, n, 0);
	fd = raw_tcp_socket(0);
	connect_judged(fd, n, lfd, "close_range(), then a socket from syscall()");

	/* A listener on such a number: its connections are judged at accept(). */
	close(lfd);
	n = non_tcp_socket(turn++);
	close(n);
	lfd = listener(AF_INET, 1);
	c = socket(AF_INET, SOCK_STREAM, 0);
	connect_to(c, lfd);
	fd = accept(lfd, NULL, NULL);
	report(lfd == n, "the scene: the listener is on the stale number", "elsewhere");
	expect_judged(fd, fd, true, "accepted from a listener on the number");
	close(fd);
	close(c);

	/* And a socket that is not TCP is still left alone at connect(). */
	n = socket(AF_INET, SOCK_DGRAM, 0);
	connect_to(n, lfd);
	report(opt(n, SOL_SOCKET, SO_KEEPALIVE) == 0, "connect() on a UDP socket leaves it alone",
	       "keepalive on");
	close(n);
	close(lfd);
}

/* Holds a listener, a connection and its accepted end open for 30 s, for
 * reading from outside (sockpeek, kashim inspect). */
static void case_hold(void)
{
	int lfd = listener(AF_INET, 0), c = socket(AF_INET, SOCK_STREAM, 0), a;

	connect_to(c, lfd);
	a = accept(lfd, NULL, NULL);
	report(a >= 0, "holding a connection", "accept failed");
	sleep(30);
	close(a);
	close(c);
	close(lfd);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: probe CASE IDLE INTERVAL COUNT USER_TIMEOUT_MS\n");
		return 2;
	}
	case_name = argv[1];
	want = (struct expect){ atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]) };
	if (!strcmp(case_name, "tcp"))
		case_tcp();
	else if (!strcmp(case_name, "nontcp"))
		case_nontcp();
	else if (!strcmp(case_name, "errno"))
		case_errno();
	else if (!strcmp(case_name, "accept"))
		case_accept();
	else if (!strcmp(case_name, "connect"))
		case_connect();
	else if (!strcmp(case_name, "threads"))
		case_threads();
	else if (!strcmp(case_name, "fork"))
		case_fork("/proc/self/exe", argv);
	else if (!strcmp(case_name, "mptcp"))
		case_mptcp();
	else if (!strcmp(case_name, "untouched"))
		case_untouched();
	else if (!strcmp(case_name, "stress"))
		case_stress();
	else if (!strcmp(case_name, "signals"))
		case_signals();
	else if (!strcmp(case_name, "highfd"))
		case_highfd();
	else if (!strcmp(case_name, "forkstorm"))
		case_forkstorm("/proc/self/exe");
	else if (!strcmp(case_name, "chain"))
		return case_chain("/proc/self/exe", argv);
	else if (!strcmp(case_name, "vfork"))
		case_vfork("/proc/self/exe", argv);
	else if (!strcmp(case_name, "seccomp"))
		case_seccomp();
	else if (!strcmp(case_name, "fastopen"))
		case_fastopen();
	else if (!strcmp(case_name, "stale"))
		case_stale();
	else if (!strcmp(case_name, "hold"))
		case_hold();
	else {
		fprintf(stderr, "probe: unknown case %s\n", case_name);
		return 2;
	}
	return failures ? 1 : 0;
}
