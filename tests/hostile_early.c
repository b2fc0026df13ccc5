/* SPDX-License-Identifier: MIT */
/* tests/libhostile.so: a preloaded library whose constructor runs before
 * kashim's and makes sockets on small stacks while kashim loads its
 * configuration (make that load slow with a large KASHIM_CONFIG file):
 *
 * - 8 threads with small stacks (glibc's minimum, 16 KiB, plus kashim's
 *   budget: see small_thread below) call socket() in a loop, keep the first
 *   sockets they make while the load is under way, and count every
 *   successful socket() that changed errno;
 * - a ninth such thread sends SIGUSR1 to the main thread in a storm;
 *   its handler runs on a small sigaltstack (the kernel's minimum for a
 *   signal frame, AT_MINSIGSTKSZ, plus 1 KiB for the handler and plus
 *   kashim's budget) and calls socket(),
 *   setsockopt(), connect(), accept() and accept4();
 * - HOSTILE_LOADER=main: the main thread makes the first call, so it is
 *   the loader and the others arrive during its load; =thread: the main
 *   thread makes no call, and one of the small threads loads.
 *
 * HOSTILE_BIG_STACKS=1: the same on default stacks (only the concurrency).
 *
 * HOSTILE_CONNECT=answer|busy: each socket a thread keeps is non-blocking
 * and connect()ed at once, in turn to a listener on 127.0.0.1 (for a
 * KASHIM_ONLY=127.0.0.1 that covers it) and one on 127.0.0.2 (excluded);
 * with busy, the listeners' queues are full, so the connections stay in
 * SYN_SENT (a server an RTT away looks the same while the load runs).
 *
 * Afterwards the handler runs 100 more times, and after main() one line
 * goes to the file named by HOSTILE_REPORT:
 *   made=N kept=K configured=C errno_changed=E signals=S in_load=L
 *   excluded=X excluded_configured=Y connect_failed=F
 *   minsigstksz=M alt_stack=A alt_used=U thread_stack=T thread_used=V
 * where configured counts the kept sockets the kernel shows with keepalive
 * on and TCP_KEEPIDLE equal to HOSTILE_IDLE; with HOSTILE_CONNECT, kept
 * and configured count the connections to 127.0.0.1, excluded and
 * excluded_configured (keepalive on) those to 127.0.0.2, and
 * connect_failed the connect() calls that answered neither 0 nor
 * EINPROGRESS; M the kernel's AT_MINSIGSTKSZ, A and T the sizes of the
 * handler's stack and of each small thread's, U and V how deep they were
 * written (the deepest thread's). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define KEEP 8
#define CALLS 3000  /* per thread */
#define SIGNALS 3000

static int listen_fd = -1;
static struct sockaddr_in listen_addr;
static pid_t main_tid;
static int go, stop, loading;
static int kept[THREADS][KEEP], nkept[THREADS];
static long made, errno_changed, signals, signals_in_load, connect_failed, makers_under_way;
static int connect_mode; /* HOSTILE_CONNECT given */
static struct sockaddr_in target[2]; /* covered, excluded */
static int target_fd[2] = { -1, -1 };

static void add(long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static void on_signal(int sig)
{
	int saved = errno, one = 1, idle = 100, s, a;

	(void)sig;
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	connect(s, (struct sockaddr *)&listen_addr, sizeof listen_addr);
	a = accept(listen_fd, NULL, NULL);
	if (a >= 0)
		close(a);
	a = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (a >= 0)
		close(a);
	close(s);
	add(&signals);
	if (__atomic_load_n(&loading, __ATOMIC_ACQUIRE))
		add(&signals_in_load);
	errno = saved;
}

static void pause_us(long us)
{
	struct timespec t = { 0, us * 1000 };

	nanosleep(&t, NULL);
}

static void *maker(void *arg)
{
	int id = (int)(long)arg, i;

	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		pause_us(50);
	for (i = 0; i < CALLS && !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); i++) {
		int during = __atomic_load_n(&loading, __ATOMIC_ACQUIRE), s;
		bool keep = during && nkept[id] < KEEP;
		errno = 4242;
		s = socket(AF_INET, connect_mode && keep ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_STREAM, 0);
		if (s < 0)
			continue;
		if (errno != 4242)
			add(&errno_changed);
		if (connect_mode && keep &&
		    connect(s, (struct sockaddr *)&target[nkept[id] % 2], sizeof target[0]) != 0 &&
		    errno != EINPROGRESS)
			add(&connect_failed);
		pause_us(20); /* leave the loader and the storm some of the CPU */
		add(&made);
		if (i == 0)
			add(&makers_under_way);
		if (keep)
			kept[id][nkept[id]++] = s;
		else
			close(s);
	}
	return NULL;
}

static void *storm(void *arg)
{
	int i;

	(void)arg;
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		pause_us(50);
	for (i = 0; i < SIGNALS && !__atomic_load_n(&stop, __ATOMIC_ACQUIRE); i++) {
		syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
		pause_us(20);
	}
	return NULL;
}

/* The stacks are sized for what this program needs without kashim, plus
 * kashim's budget (docs/reliability.md, "Stack"), plus, for the signal
 * handler's stack, the kernel's own minimum for a signal frame on this CPU
 * (AT_MINSIGSTKSZ: about 3.4 KiB with AVX-512, 11.7 KiB with AMX), so that
 * a CPU with a larger register file does not fail the test and kashim's
 * share is what is tried.  Each stack lies above a page that faults, so an
 * overflow crashes instead of corrupting, and is painted, so that the
 * report says how deep it was written (a high-water mark).
 * HOSTILE_KASHIM_BUDGET overrides the budget (a smaller one shows what an
 * overflow looks like). */
#define KASHIM_BUDGET 1024
#define HANDLER_OWN 1024 /* the handler's frame and libc's calls from it */
#define PAINT 0x6b

struct painted {
	char *base; /* lowest usable byte, above the guard page */
	size_t size;
};
static struct painted alt, threads_stack[THREADS + 1];
static unsigned long minsigstksz;

static size_t budget(void)
{
	const char *b = getenv("HOSTILE_KASHIM_BUDGET");

	return b ? (size_t)strtoul(b, NULL, 10) : KASHIM_BUDGET;
}

static int paint(struct painted *p, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *m;

	size = (size + 15) & ~(size_t)15;
	m = mmap(NULL, page + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0)
		return -1;
	p->base = m + page;
	p->size = size;
	memset(p->base, PAINT, size);
	return 0;
}

/* How many bytes from the top down were written at least once. */
static size_t used(const struct painted *p)
{
	size_t i = 0;

	while (i < p->size && (unsigned char)p->base[i] == PAINT)
		i++;
	return p->size - i;
}

static int small_thread(pthread_t *t, void *(*fn)(void *), void *arg, struct painted *stack)
{
	pthread_attr_t attr;
	long min = sysconf(_SC_THREAD_STACK_MIN);
	int rc;

	pthread_attr_init(&attr);
	if (!getenv("HOSTILE_BIG_STACKS")) {
		if (paint(stack, (size_t)(min > 0 ? min : 16384) + budget()) != 0)
			return -1;
		pthread_attr_setstack(&attr, stack->base, stack->size);
	}
	rc = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc;
}

/* The handler's stack. */
static int alt_stack(void)
{
	stack_t ss;
	struct sigaction sa;

	minsigstksz = getauxval(AT_MINSIGSTKSZ);
	if (minsigstksz == 0) /* a kernel before 5.14, or not x86/arm64 */
		minsigstksz = 2048; /* the old constant MINSIGSTKSZ */
	if (paint(&alt, minsigstksz + HANDLER_OWN + budget()) != 0)
		return -1;
	ss.ss_sp = alt.base;
	ss.ss_size = alt.size;
	ss.ss_flags = 0;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = getenv("HOSTILE_BIG_STACKS") ? SA_RESTART : SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaltstack(&ss, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0 ? 0 : -1;
}

/* A listener made without socket(), so that making it loads nothing. */
static int raw_listener(void)
{
	socklen_t len = sizeof listen_addr;

	listen_fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) ||
	    listen(listen_fd, 64) || getsockname(listen_fd, (struct sockaddr *)&listen_addr, &len))
		return -1;
	return 0;
}

/* The two listeners the kept sockets connect to, made without socket(). */
static int connect_targets(const char *how)
{
	const char *host[2] = { "\x7f\x00\x00\x01", "\x7f\x00\x00\x02" };
	int busy = !strcmp(how, "busy"), i;

	for (i = 0; i < 2; i++) {
		socklen_t len = sizeof target[i];
		int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
		target[i].sin_family = AF_INET;
		memcpy(&target[i].sin_addr, host[i], 4);
		/* backlog 0 holds one connection; a second fills nothing more */
		if (fd < 0 || bind(fd, (struct sockaddr *)&target[i], sizeof target[i]) ||
		    listen(fd, busy ? 0 : THREADS * KEEP) ||
		    getsockname(fd, (struct sockaddr *)&target[i], &len))
			return -1;
		target_fd[i] = fd;
		if (busy) { /* fill the queue, with sockets made without socket() */
			int c = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
			if (c < 0 || syscall(SYS_connect, c, &target[i], sizeof target[i]) != 0)
				return -1;
		}
	}
	return 0;
}

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	getsockopt(fd, level, name, &v, &len);
	return v;
}

/* After main(), when kashim's constructor has run in every order. */
__attribute__((destructor)) static void report(void)
{
	const char *want = getenv("HOSTILE_IDLE"), *path = getenv("HOSTILE_REPORT");
	int t, i, keptn = 0, configured = 0, excluded = 0, excluded_configured = 0, out;
	size_t thread_used = 0;
	char line[400];
	int n;

	if (!path)
		return;
	for (t = 0; t < THREADS; t++)
		for (i = 0; i < nkept[t]; i++) {
			int fd = kept[t][i];
			if (connect_mode && i % 2 == 1) { /* to 127.0.0.2 */
				excluded++;
				excluded_configured += opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 1;
				close(fd);
				continue;
			}
			keptn++;
			if (opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 1 && want &&
			    opt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == atoi(want))
				configured++;
			close(fd);
		}
	for (t = 0; t <= THREADS; t++)
		if (threads_stack[t].base && used(&threads_stack[t]) > thread_used)
			thread_used = used(&threads_stack[t]);
	n = snprintf(line, sizeof line,
		     "made=%ld kept=%d configured=%d errno_changed=%ld signals=%ld in_load=%ld "
		     "excluded=%d excluded_configured=%d connect_failed=%ld "
		     "minsigstksz=%lu alt_stack=%zu alt_used=%zu thread_stack=%zu thread_used=%zu\n",
		     made, keptn, configured, errno_changed, signals, signals_in_load, excluded,
		     excluded_configured, connect_failed, minsigstksz, alt.size, used(&alt),
		     threads_stack[0].size, thread_used);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		if (write(out, line, (size_t)n) != n)
			perror("hostile: write");
		close(out);
	}
}

__attribute__((constructor)) static void hostile_start(void)
{
	const char *path = getenv("HOSTILE_REPORT"), *loader = getenv("HOSTILE_LOADER");
	const char *connect_how = getenv("HOSTILE_CONNECT");
	pthread_t threads[THREADS + 1];
	int t, i;

	if (!path)
		return;
	main_tid = (pid_t)syscall(SYS_gettid);
	connect_mode = connect_how != NULL;
	if (alt_stack() != 0 || raw_listener() != 0 ||
	    (connect_mode && connect_targets(connect_how) != 0)) {
		perror("hostile: setup");
		exit(3);
	}
	for (t = 0; t < THREADS; t++)
		if (small_thread(&threads[t], maker, (void *)(long)t, &threads_stack[t]) != 0)
			exit(3);
	if (small_thread(&threads[THREADS], storm, NULL, &threads_stack[THREADS]) != 0)
		exit(3);
	__atomic_store_n(&loading, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	/* the threads and the storm in full swing: every maker has made a
	 * socket (a loaded machine may take long to run them all; 10 s) */
	for (i = 0; i < 5000 && __atomic_load_n(&makers_under_way, __ATOMIC_ACQUIRE) < THREADS; i++)
		pause_us(2000);
	if (loader && !strcmp(loader, "main")) {
		close(socket(AF_INET, SOCK_STREAM, 0)); /* loads, under the storm */
		__atomic_store_n(&loading, 0, __ATOMIC_RELEASE);
	} else {
		pause_us(20000);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (t = 0; t <= THREADS; t++)
		pthread_join(threads[t], NULL);
	for (i = 0; i < 100; i++) /* the handler on the loaded configuration */
		raise(SIGUSR1);
}
