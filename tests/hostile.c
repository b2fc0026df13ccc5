/* SPDX-License-Identifier: MIT */
/* The hostile calls of tests/t_hostile_lib.sh, made by a plain C program so
 * that each one is exactly what is named:
 *
 *   hostile pointers connect|setsockopt|accept
 *                      invalid calls; prints "call: rc errno" lines, which
 *                      must be the same with and without kashim, and
 *                      "state:" lines with what the kernel holds after them
 *   hostile reuse      force mode: a number kashim configured, reused by
 *                      dup2() of a socket made elsewhere
 *   hostile stderr [ignore|FILE]
 *                      run with fd 2 closed: a socket becomes fd 2 (its
 *                      peer must read nothing); with FILE, fd 2 is closed
 *                      after start and a data file takes its number
 *   hostile debuglines a few sockets, for counting debug lines
 *   hostile race blocking|nonblocking SECONDS
 *                      one thread maps and unmaps the page holding a
 *                      sockaddr_in while another connect()s with it (to a
 *                      closed loopback port); prints how many calls got
 *                      EFAULT and how many another answer, if it lives
 *   hostile sandbox errno|kill|killthread|trap|emulated|sigprocmask-einval|
 *                   sigprocmask-eperm PROGRAM [ARG...]
 *                      PROGRAM run under a seccomp filter that denies the
 *                      process-inspection calls (process_vm_readv and
 *                      _writev, ptrace, kcmp, pidfd_getfd, process_madvise)
 *                      as sandboxes do: with EPERM, SECCOMP_RET_KILL_PROCESS,
 *                      _KILL_THREAD or _TRAP (SIGSYS); raw prctl, no
 *                      libseccomp; every other call is allowed.  emulated:
 *                      EPERM, and rt_sigprocmask with a `how` other than
 *                      SIG_BLOCK/UNBLOCK/SETMASK answers EINVAL before the
 *                      kernel reads the set (as an emulator checking its
 *                      arguments in another order might); sigprocmask-E:
 *                      only every rt_sigprocmask answers E, unread */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BAD ((void *)1) /* never mapped */

static void result(const char *what, int rc)
{
	printf("%s: rc=%d errno=%s\n", what, rc < 0 ? -1 : rc >= 0 ? 0 : rc,
	       rc < 0 ? strerrorname_np(errno) : "-");
	fflush(stdout);
}

static int getopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	getsockopt(fd, level, name, &v, &len);
	return v;
}

static void state(const char *what, int fd)
{
	printf("state: %s keepalive=%d idle=%d interval=%d count=%d user_timeout=%d\n", what,
	       getopt_int(fd, SOL_SOCKET, SO_KEEPALIVE), getopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE),
	       getopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), getopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT),
	       getopt_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
	fflush(stdout);
}

static int foreign_socket(int type)
{
	return (int)syscall(SYS_socket, AF_INET, type, 0);
}

/* A loopback listener (made by socket()) and its address. */
static int listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof *addr;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	memset(addr, 0, sizeof *addr);
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(l, 16) != 0 ||
	    getsockname(l, (struct sockaddr *)addr, &len) != 0) {
		perror("hostile: listener");
		exit(2);
	}
	return l;
}

static void set_int(const char *what, int fd, int level, int name, int v)
{
	result(what, setsockopt(fd, level, name, &v, sizeof v));
}

static void pointers_setsockopt(int fd)
{
	short small = 1;

	set_int("setsockopt TCP_KEEPCNT 0", fd, IPPROTO_TCP, TCP_KEEPCNT, 0);
	set_int("setsockopt TCP_KEEPCNT 128", fd, IPPROTO_TCP, TCP_KEEPCNT, 128);
	set_int("setsockopt TCP_KEEPIDLE 40000", fd, IPPROTO_TCP, TCP_KEEPIDLE, 40000);
	set_int("setsockopt TCP_KEEPIDLE 0", fd, IPPROTO_TCP, TCP_KEEPIDLE, 0);
	set_int("setsockopt TCP_KEEPINTVL -1", fd, IPPROTO_TCP, TCP_KEEPINTVL, -1);
	set_int("setsockopt TCP_USER_TIMEOUT -1", fd, IPPROTO_TCP, TCP_USER_TIMEOUT, -1);
	result("setsockopt SO_KEEPALIVE bad pointer",
	       setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, BAD, sizeof(int)));
	result("setsockopt SO_KEEPALIVE NULL", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, NULL, 4));
	result("setsockopt SO_KEEPALIVE optlen 0", setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &small, 0));
	result("setsockopt SO_KEEPALIVE optlen 2",
	       setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &small, sizeof small));
	result("setsockopt TCP_KEEPIDLE bad pointer",
	       setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, BAD, sizeof(int)));
	result("setsockopt TCP_KEEPIDLE NULL", setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, NULL, 4));
	result("setsockopt TCP_KEEPIDLE optlen 2",
	       setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &small, sizeof small));
	result("setsockopt TCP_USER_TIMEOUT optlen 0",
	       setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &small, 0));
	result("setsockopt bad fd", setsockopt(-1, SOL_SOCKET, SO_KEEPALIVE, BAD, 4));
}

static void pointers_accept(int l, const struct sockaddr_in *addr, const char *how)
{
	int c = socket(AF_INET, SOCK_STREAM, 0), a;
	socklen_t zero = 0, one = 1;
	char tiny;

	connect(c, (const struct sockaddr *)addr, sizeof *addr);
	/* Length 0: the kernel writes no address, however bad the pointer,
	 * and returns the full length in *len. */
	a = how[6] == '4' ? accept4(l, BAD, &zero, SOCK_CLOEXEC) : accept(l, BAD, &zero);
	printf("%s bad address, length 0: %s len=%u\n", how, a >= 0 ? "fd" : strerrorname_np(errno),
	       zero);
	close(a);
	connect(socket(AF_INET, SOCK_STREAM, 0), (const struct sockaddr *)addr, sizeof *addr);
	a = how[6] == '4' ? accept4(l, (void *)&tiny, &one, 0) : accept(l, (void *)&tiny, &one);
	printf("%s 1-byte buffer: %s len=%u\n", how, a >= 0 ? "fd" : strerrorname_np(errno), one);
	close(a);
	connect(socket(AF_INET, SOCK_STREAM, 0), (const struct sockaddr *)addr, sizeof *addr);
	result(how[6] == '4' ? "accept4 bad length pointer" : "accept bad length pointer",
	       how[6] == '4' ? accept4(l, (void *)&tiny, BAD, 0) : accept(l, (void *)&tiny, BAD));
	close(c);
	fflush(stdout);
}

/* which: connect, setsockopt or accept */
static int pointers(const char *which)
{
	struct sockaddr_in addr;
	int l = listener(&addr);
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	int foreign = foreign_socket(SOCK_STREAM), udp = foreign_socket(SOCK_DGRAM);
	int unix_fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (!strcmp(which, "connect")) {
		result("connect bad address", connect(tcp, BAD, sizeof addr));
		result("connect NULL address", connect(tcp, NULL, sizeof addr));
		result("connect bad address, length 2", connect(tcp, BAD, 2));
		result("connect bad address, huge length", connect(tcp, BAD, 1u << 30));
		result("connect foreign TCP bad address", connect(foreign, BAD, sizeof addr));
		result("connect foreign UDP bad address", connect(udp, BAD, sizeof addr));
		result("connect AF_UNIX bad address", connect(unix_fd, BAD, 110));
		result("connect bad fd bad address", connect(-1, BAD, sizeof addr));
	} else if (!strcmp(which, "setsockopt")) {
		pointers_setsockopt(tcp);
		state("after the invalid calls", tcp);
	} else {
		pointers_accept(l, &addr, "accept");
		pointers_accept(l, &addr, "accept4");
	}
	return 0;
}

static int reuse(void)
{
	int n = socket(AF_INET, SOCK_STREAM, 0), t = foreign_socket(SOCK_STREAM), mine, again;

	close(n);
	if (dup2(t, n) != n)
		return perror("hostile: dup2"), 2;
	close(t);
	/* and a number closed and taken by a socket made elsewhere */
	again = socket(AF_INET, SOCK_STREAM, 0);
	close(again);
	if (foreign_socket(SOCK_STREAM) != again)
		return perror("hostile: the number was not reused"), 2;
	set_int("taken number: TCP_KEEPINTVL 50", again, IPPROTO_TCP, TCP_KEEPINTVL, 50);
	state("taken", again);
	set_int("reused number: TCP_KEEPIDLE 100", n, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	set_int("reused number: TCP_KEEPCNT 5", n, IPPROTO_TCP, TCP_KEEPCNT, 5);
	set_int("reused number: SO_KEEPALIVE 1", n, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int("reused number: SO_KEEPALIVE 0", n, SOL_SOCKET, SO_KEEPALIVE, 0);
	state("reused", n);
	mine = socket(AF_INET, SOCK_STREAM, 0);
	set_int("kashim's socket: TCP_KEEPIDLE 100", mine, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	set_int("kashim's socket: TCP_KEEPCNT 5", mine, IPPROTO_TCP, TCP_KEEPCNT, 5);
	set_int("kashim's socket: SO_KEEPALIVE 0", mine, SOL_SOCKET, SO_KEEPALIVE, 0);
	state("kashim's", mine);
	again = dup(mine); /* a second number for kashim's socket */
	set_int("dup of kashim's socket: TCP_KEEPINTVL 50", again, IPPROTO_TCP, TCP_KEEPINTVL, 50);
	set_int("dup of kashim's socket: SO_KEEPALIVE 0", again, SOL_SOCKET, SO_KEEPALIVE, 0);
	state("dup of kashim's", mine);
	return 0;
}

/* With fd 2 closed at start, the first socket is fd 2. */
static int stderr_socket(void)
{
	struct sockaddr_in addr;
	int c = socket(AF_INET, SOCK_STREAM, 0), l, a;
	char buf[512];
	struct pollfd p;
	ssize_t n = 0;

	if (c != 2)
		return fprintf(stdout, "hostile: socket is fd %d, not 2\n", c), 2;
	l = listener(&addr);
	if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0)
		return perror("hostile: connect"), 2;
	a = accept(l, NULL, NULL);
	setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 }, sizeof(int));
	p.fd = a;
	p.events = POLLIN;
	if (poll(&p, 1, 300) == 1)
		n = read(a, buf, sizeof buf - 1);
	printf("peer read %zd bytes%s%.*s\n", n, n > 0 ? ": " : "", (int)(n > 0 ? n : 0), buf);
	return 0;
}

/* fd 2 closed after start, a data file opened in its place. */
static int stderr_file(const char *path)
{
	int f, s;

	close(2);
	f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (f != 2)
		return printf("hostile: the file is fd %d, not 2\n", f), 2;
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &(int){ 0 }, sizeof(int));
	close(s);
	close(f);
	return 0;
}

static int sigpipe_pending(void)
{
	sigset_t set;

	sigpending(&set);
	return sigismember(&set, SIGPIPE);
}

/* The race: the page that holds the address comes and goes. */
static struct {
	char *page;
	struct sockaddr_in addr;
	volatile bool stop;
} race_scene;

static void *race_flip(void *unused)
{
	(void)unused;
	while (!race_scene.stop) {
		char *p = mmap(race_scene.page, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			continue;
		memcpy(p + 4096 - sizeof race_scene.addr, &race_scene.addr, sizeof race_scene.addr);
		munmap(p, 4096);
	}
	return NULL;
}

/* how: blocking or nonblocking; bounded by seconds. */
static int race(const char *how, const char *seconds)
{
	struct timespec now, end;
	pthread_t flipper;
	long calls = 0, faults = 0;
	int fd = socket(AF_INET, SOCK_STREAM | (!strcmp(how, "nonblocking") ? SOCK_NONBLOCK : 0), 0);

	race_scene.addr.sin_family = AF_INET;
	race_scene.addr.sin_port = htons(1);
	race_scene.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	race_scene.page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || race_scene.page == MAP_FAILED || munmap(race_scene.page, 4096) != 0 ||
	    pthread_create(&flipper, NULL, race_flip, NULL) != 0)
		return perror("hostile: race"), 2;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += atoi(seconds);
	do {
		int rc = connect(fd, (void *)(race_scene.page + 4096 - sizeof race_scene.addr),
				 sizeof race_scene.addr);
		calls++;
		faults += rc != 0 && errno == EFAULT;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	race_scene.stop = true;
	pthread_join(flipper, NULL);
	printf("race %s: %ld connect() calls, %ld EFAULT, %ld other answers\n", how, calls, faults,
	       calls - faults);
	return 0;
}

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#endif

#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
		 BPF_STMT(BPF_RET | BPF_K, action)

static int sandbox(const char *how, char **argv)
{
	bool emulated = !strcmp(how, "emulated"), known = true;
	unsigned action = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
	/* rt_sigprocmask answered by the filter: emulated, a `how` from
	 * SIG_SETMASK + 1 up gets EINVAL; sigprocmask-E, every call gets E */
	unsigned sigprocmask_errno = !strcmp(how, "sigprocmask-einval") ? EINVAL
				   : !strcmp(how, "sigprocmask-eperm") ? EPERM : 0;
	unsigned refused_from = sigprocmask_errno ? 0 : SIG_SETMASK + 1;
	bool answers_sigprocmask = emulated || sigprocmask_errno;

	if (!strcmp(how, "kill"))
		action = SECCOMP_RET_KILL_PROCESS;
	else if (!strcmp(how, "killthread"))
		action = SECCOMP_RET_KILL_THREAD; /* 0 */
	else if (!strcmp(how, "trap"))
		action = SECCOMP_RET_TRAP;
	else
		known = answers_sigprocmask || !strcmp(how, "errno");
	if (!sigprocmask_errno)
		sigprocmask_errno = EINVAL;
	struct sock_filter insn[] = {
#ifdef NATIVE_ARCH
		/* another ABI's numbers mean other calls: allow nothing of it */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		/* rt_sigprocmask(how >= refused_from, ...) answered, its set
		 * unread (the low half of args[0]: little-endian); elsewhere
		 * the jump matches no call */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, answers_sigprocmask ? SYS_rt_sigprocmask : ~0u, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, refused_from, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (sigprocmask_errno & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		DENY(SYS_process_vm_readv),
		DENY(SYS_process_vm_writev),
		DENY(SYS_ptrace),
		DENY(SYS_kcmp),
		DENY(438), /* pidfd_getfd */
		DENY(440), /* process_madvise */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof insn / sizeof insn[0]), insn };

	if (!known || !argv[0])
		return fprintf(stdout, "usage: hostile sandbox errno|kill|killthread|trap|emulated|"
				       "sigprocmask-einval|sigprocmask-eperm PROGRAM...\n"), 2;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return perror("hostile: seccomp filter"), 2;
	execvp(argv[0], argv);
	return perror("hostile: exec"), 2;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if (argc < 2)
		return fprintf(stdout, "usage: hostile CASE\n"), 2;
	if (!strcmp(argv[1], "sandbox") && argc > 2)
		return sandbox(argv[2], argv + 3);
	if (!strcmp(argv[1], "pointers") && argc > 2)
		rc = pointers(argv[2]);
	else if (!strcmp(argv[1], "race") && argc > 3)
		rc = race(argv[2], argv[3]);
	else if (!strcmp(argv[1], "reuse"))
		rc = reuse();
	else if (!strcmp(argv[1], "stderr") && argc > 2 && strcmp(argv[2], "ignore"))
		rc = stderr_file(argv[2]);
	else if (!strcmp(argv[1], "stderr")) {
		if (argc > 2)
			signal(SIGPIPE, SIG_IGN);
		rc = stderr_socket();
	} else if (!strcmp(argv[1], "debuglines")) {
		for (int i = 0; i < 3; i++)
			close(socket(AF_INET, SOCK_STREAM, 0));
		rc = 0;
	}
	printf("alive, SIGPIPE %s\n", sigpipe_pending() ? "pending" : "not pending");
	return rc;
}
