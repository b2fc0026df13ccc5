/* libkashim.so: the interposed calls.
 *
 * Every exported function is a thin wrapper: it calls the next definition
 * (libc, or another preloaded interposer) and, for a TCP socket, sets the
 * keepalive options on the new descriptor before the program sees it.  After
 * load the wrappers read an immutable configuration and make system calls
 * only: no getenv, malloc, stdio or locks, and errno is always restored. */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define KASHIM_API __attribute__((visibility("default")))
/* Debug output holds a 512-byte line: kept out of the callers' frames, so
 * a wrapper running on a 4 KiB signal stack stays small when debug is off. */
#define KASHIM_COLD __attribute__((noinline, cold))

extern char **environ;

typedef int socket_fn(int, int, int);
typedef int connect_fn(int, const struct sockaddr *, socklen_t);
typedef int accept_fn(int, struct sockaddr *, socklen_t *);
typedef int accept4_fn(int, struct sockaddr *, socklen_t *, int);
typedef int setsockopt_fn(int, int, int, const void *, socklen_t);

/* The next definitions in lookup order; NULL until resolved, or when dlsym
 * found nothing but our own wrapper, in which case the raw system call is
 * used.  Accessed atomically: early callers may race to resolve them. */
static struct {
	socket_fn *socket;
	connect_fn *connect;
	accept_fn *accept;
	accept4_fn *accept4;
	setsockopt_fn *setsockopt;
} kashim_next;

#define KASHIM_NEXT(name) __atomic_load_n(&kashim_next.name, __ATOMIC_RELAXED)

enum { KASHIM_UNLOADED, KASHIM_LOADING, KASHIM_READY };
static int kashim_state = KASHIM_UNLOADED;
static struct kashim_config kashim_settings_ro; /* written once, then read-only */

/* Per-descriptor marks, one bit per fd (higher fds are not tracked), cleared
 * whenever socket()/accept() hands the fd out anew:
 * - app_off: the program itself switched SO_KEEPALIVE off.  Its choice
 *   wins, so connect() must not switch it back on, and sockets accepted
 *   from such a listener are left alone.
 * - ours: kashim set the options; in force mode the program's later calls
 *   that would change them are answered with success and not applied.
 * - not_tcp: made by socket() as anything but TCP (AF_UNIX, UDP): its
 *   connect() and the connections accepted from it cost no system call,
 *   without reading the address the program passed. */
#define KASHIM_TRACKED_FDS (1u << 20)
#define KASHIM_WORD_BITS (8 * sizeof(unsigned long))
struct kashim_marks {
	unsigned long bits[KASHIM_TRACKED_FDS / KASHIM_WORD_BITS];
};
static struct kashim_marks kashim_app_off, kashim_ours, kashim_not_tcp;

/* Sockets made or accepted by calls that arrived while another thread or a
 * signal handler was loading: passed straight through (no parsing, no
 * dlsym, errno untouched), queued here, and configured by the loader when
 * it finishes.  Entries are (fd + 1) << 1 | accepted; 0 is empty. */
#define KASHIM_PENDING 64
static struct {
	unsigned next;
	unsigned long fd[KASHIM_PENDING];
} kashim_pending;

/* What fd 2 was at load: messages go there only while it still is. */
static struct {
	bool open;
	dev_t dev;
	ino_t ino;
} kashim_stderr;

/* The program's names, for the program filters: written once by the
 * loader (a concurrent early caller uses its own copy). */
struct kashim_names {
	const char *name[3];
	char exe[256];
};
static struct kashim_names kashim_names_ro;

/* ---- messages ---------------------------------------------------------- */

static void kashim_note_stderr(void)
{
	struct stat st;

	kashim_stderr.open = fstat(STDERR_FILENO, &st) == 0;
	kashim_stderr.dev = kashim_stderr.open ? st.st_dev : 0;
	kashim_stderr.ino = kashim_stderr.open ? st.st_ino : 0;
}

/* Writes all of line to fd 2, a socket with MSG_NOSIGNAL; anything else
 * with SIGPIPE blocked, a SIGPIPE this write caused consumed. */
static void kashim_write_all(bool sock, const char *line, size_t len)
{
	sigset_t pipe_only, old, pending;
	bool was_pending;
	struct timespec now = { 0, 0 };

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	if (!sock)
		sigprocmask(SIG_BLOCK, &pipe_only, &old);
	was_pending = !sock && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	while (len > 0) {
		ssize_t n = sock ? send(STDERR_FILENO, line, len, MSG_NOSIGNAL | MSG_DONTWAIT)
				 : write(STDERR_FILENO, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		line += n;
		len -= (size_t)n;
	}
	if (sock)
		return;
	if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		sigtimedwait(&pipe_only, NULL, &now);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Only to the stderr the program had at load: with fd 2 closed then, or
 * reused since (a socket, a data file), nothing is written. */
static void kashim_write_stderr(void *ctx, const char *line, size_t len)
{
	struct stat st;
	int saved = errno;

	(void)ctx;
	if (kashim_stderr.open && fstat(STDERR_FILENO, &st) == 0 &&
	    st.st_dev == kashim_stderr.dev && st.st_ino == kashim_stderr.ino)
		kashim_write_all(S_ISSOCK(st.st_mode), line, len);
	errno = saved;
}

static void kashim_debug_start(struct kashim_line *l)
{
	kashim_line_start(l);
	kashim_line_put(l, "kashim[");
	kashim_line_put_uint(l, (unsigned long)getpid());
	kashim_line_put(l, "]: ");
}

KASHIM_COLD static void kashim_debug_fd(struct kashim_line *l, int fd, const char *where)
{
	kashim_debug_start(l);
	kashim_line_put(l, "fd ");
	kashim_line_put_uint(l, (unsigned long)fd);
	kashim_line_put(l, " (");
	kashim_line_put(l, where);
	kashim_line_put(l, "): ");
}

static void kashim_debug_send(struct kashim_line *l)
{
	size_t len = kashim_line_end(l);
	kashim_write_stderr(NULL, l->buf, len);
}

static const char *kashim_errno_name(int e)
{
	switch (e) {
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOTSOCK: return "ENOTSOCK";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOSYS: return "ENOSYS";
	default: return "error";
	}
}

/* ---- loading ----------------------------------------------------------- */

static void *kashim_resolve(const char *name, void *self)
{
	void *p = dlsym(RTLD_NEXT, name);

	/* Getting our own wrapper back would recurse forever. */
	return p == self ? NULL : p;
}

static void kashim_resolve_all(void)
{
	__atomic_store_n(&kashim_next.socket,
			 (socket_fn *)kashim_resolve("socket", (void *)socket), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.connect,
			 (connect_fn *)kashim_resolve("connect", (void *)connect), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.accept,
			 (accept_fn *)kashim_resolve("accept", (void *)accept), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.accept4,
			 (accept4_fn *)kashim_resolve("accept4", (void *)accept4), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.setsockopt,
			 (setsockopt_fn *)kashim_resolve("setsockopt", (void *)setsockopt),
			 __ATOMIC_RELAXED);
}

static inline int kashim_real_setsockopt(int fd, int level, int name, const void *val,
					 socklen_t len)
{
	setsockopt_fn *next = KASHIM_NEXT(setsockopt);

	if (next)
		return next(fd, level, name, val, len);
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

KASHIM_COLD static void kashim_debug_loaded(const struct kashim_config *cfg)
{
	struct kashim_line l;

	kashim_debug_start(&l);
	kashim_line_put(&l, "loaded: idle ");
	kashim_line_put_uint(&l, (unsigned long)cfg->idle_s);
	kashim_line_put(&l, "s, interval ");
	kashim_line_put_uint(&l, (unsigned long)cfg->interval_s);
	kashim_line_put(&l, "s, count ");
	kashim_line_put_uint(&l, (unsigned long)cfg->count);
	kashim_line_put(&l, ", user timeout ");
	if (cfg->user_timeout_mode == KASHIM_UT_OFF) {
		kashim_line_put(&l, "off (kernel default)");
	} else {
		kashim_line_put_uint(&l, cfg->user_timeout_ms);
		kashim_line_put(&l, cfg->user_timeout_mode == KASHIM_UT_AUTO ?
				"ms (auto)" : "ms");
	}
	kashim_debug_send(&l);
}

static void kashim_adopt(int fd, const struct kashim_config *cfg, const char *where);
static void kashim_adopt_server_side(int fd, const struct kashim_config *cfg,
				     const char *where);

/* Sockets the program holds before main(): an inetd-style connection on
 * stdin/stdout/stderr and systemd's socket-activated listeners. */
static void kashim_adopt_inherited(const struct kashim_config *cfg)
{
	int fd, n = kashim_listen_fds(environ, (long)getpid());

	for (fd = 0; fd <= 2; fd++)
		kashim_adopt_server_side(fd, cfg, "inherited");
	/* With filters, connections are judged one by one at accept(). */
	for (fd = 3; fd < 3 + n && !cfg->deferred; fd++)
		kashim_adopt(fd, cfg, "LISTEN_FDS");
}

/* The configuration for this program: the environment, the configuration
 * file, and the program's names for the program filters. */
static void kashim_load_config(struct kashim_config *cfg, struct kashim_names *names,
			       bool secure, kashim_report_fn *report)
{
	struct kashim_source src = { environ, names->name, secure, "/etc/kashim.conf" };
	ssize_t n = readlink("/proc/self/exe", names->exe, sizeof names->exe - 1);
	const char *base;

	memset(names->name, 0, sizeof names->name);
	if (n > 0) {
		names->exe[n] = 0;
		base = strrchr(names->exe, '/');
		names->name[0] = base ? base + 1 : names->exe;
	}
	names->name[n > 0 ? 1 : 0] = program_invocation_short_name;
	kashim_config_load_from(cfg, &src, report, NULL);
}

/* ---- two copies preloaded ------------------------------------------------ */

/* A private ELF note marks an object as kashim.  With two copies preloaded
 * (two paths, a symlink), only the first in load order acts; the others
 * pass every call straight through, so each socket gets one set of system
 * calls and the program one set of messages. */
struct kashim_note {
	uint32_t namesz, descsz, type;
	char name[8];
};
#define KASHIM_NOTE_TYPE 0x6b617368u /* "kash" */
__attribute__((used, section(".note.kashim"), aligned(4)))
static const struct kashim_note kashim_note = { 7, 0, KASHIM_NOTE_TYPE, "kashim" };

static const void *kashim_note_in(const struct dl_phdr_info *info)
{
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p, *end;
		if (ph->p_type != PT_NOTE)
			continue;
		p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(struct kashim_note) <= end) {
			const struct kashim_note *n = (const void *)p;
			if (n->namesz == 7 && n->descsz == 0 && n->type == KASHIM_NOTE_TYPE &&
			    !memcmp(n->name, "kashim", 7))
				return n;
			p += 12 + ((n->namesz + 3u) & ~3u) + ((n->descsz + 3u) & ~3u);
		}
	}
	return NULL;
}

static int kashim_find_first(struct dl_phdr_info *info, size_t size, void *first)
{
	(void)size;
	*(const void **)first = kashim_note_in(info);
	return *(const void **)first != NULL; /* stop at the first kashim */
}

static bool kashim_first_copy(void)
{
	const void *first = NULL;

	dl_iterate_phdr(kashim_find_first, &first);
	return !first || first == &kashim_note;
}

/* ---- load -------------------------------------------------------------- */

static inline bool kashim_marked(const struct kashim_marks *m, int fd);
static inline void kashim_fresh_fd(int fd);

/* Configures the sockets queued by calls made during the load. */
static void kashim_adopt_pending(const struct kashim_config *cfg)
{
	unsigned i;

	/* Sequentially consistent with kashim_queue: either the loader sees an
	 * entry, or its caller sees the load finished and takes it back. */
	for (i = 0; i < KASHIM_PENDING; i++) {
		unsigned long e = __atomic_exchange_n(&kashim_pending.fd[i], 0, __ATOMIC_SEQ_CST);
		int fd = (int)(e >> 1) - 1;
		if (!e || !cfg->enabled || kashim_marked(&kashim_app_off, fd))
			continue;
		if (e & 1)
			kashim_adopt_server_side(fd, cfg, "accepted during load");
		else if (!cfg->deferred)
			kashim_adopt(fd, cfg, "made during load");
	}
}

/* A socket made while another caller loads: queued for the loader; if the
 * load finished meanwhile, this caller takes its own entry back. */
static void kashim_queue(int fd, bool accepted)
{
	unsigned i = __atomic_fetch_add(&kashim_pending.next, 1, __ATOMIC_RELAXED);
	unsigned long e = ((unsigned long)fd + 1) << 1 | accepted;

	if (fd < 0 || i >= KASHIM_PENDING)
		return; /* past the queue: left as the kernel made it */
	__atomic_store_n(&kashim_pending.fd[i], e, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&kashim_state, __ATOMIC_SEQ_CST) == KASHIM_READY)
		kashim_adopt_pending(&kashim_settings_ro);
}

/* Resolves the next definitions and reads the configuration, once, in the
 * caller that wins the race.  A call arriving during the load (another
 * thread, or a signal handler interrupting the loader) gets NULL: it passes
 * straight through and queues what it made (kashim_queue). */
static const struct kashim_config *kashim_load(void)
{
	int expected = KASHIM_UNLOADED;
	int saved = errno;

	if (!__atomic_compare_exchange_n(&kashim_state, &expected, KASHIM_LOADING,
					 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return expected == KASHIM_READY ? &kashim_settings_ro : NULL;
	kashim_resolve_all();
	kashim_note_stderr();
	if (kashim_first_copy())
		kashim_load_config(&kashim_settings_ro, &kashim_names_ro,
				   getauxval(AT_SECURE) != 0, kashim_write_stderr);
	else
		kashim_settings_ro.enabled = false;
	if (kashim_settings_ro.enabled && kashim_settings_ro.debug)
		kashim_debug_loaded(&kashim_settings_ro);
	__atomic_store_n(&kashim_state, KASHIM_READY, __ATOMIC_SEQ_CST);
	if (kashim_settings_ro.enabled)
		kashim_adopt_inherited(&kashim_settings_ro);
	kashim_adopt_pending(&kashim_settings_ro);
	errno = saved;
	return &kashim_settings_ro;
}

/* The configuration, or NULL while another caller is loading it. */
static inline const struct kashim_config *kashim_settings(void)
{
	if (__atomic_load_n(&kashim_state, __ATOMIC_ACQUIRE) == KASHIM_READY)
		return &kashim_settings_ro;
	return kashim_load();
}

__attribute__((constructor)) static void kashim_constructor(void)
{
	(void)kashim_settings();
}

/* ---- the per-socket work ----------------------------------------------- */

static inline bool kashim_marked(const struct kashim_marks *m, int fd)
{
	if (fd < 0 || (unsigned)fd >= KASHIM_TRACKED_FDS)
		return false;
	return (__atomic_load_n(&m->bits[(unsigned)fd / KASHIM_WORD_BITS], __ATOMIC_RELAXED) >>
		((unsigned)fd % KASHIM_WORD_BITS)) & 1;
}

static inline void kashim_mark(struct kashim_marks *m, int fd, bool on)
{
	unsigned long *word, bit;

	if (fd < 0 || (unsigned)fd >= KASHIM_TRACKED_FDS)
		return;
	word = &m->bits[(unsigned)fd / KASHIM_WORD_BITS];
	bit = 1UL << ((unsigned)fd % KASHIM_WORD_BITS);
	if (on)
		__atomic_fetch_or(word, bit, __ATOMIC_RELAXED);
	else if (__atomic_load_n(word, __ATOMIC_RELAXED) & bit)
		__atomic_fetch_and(word, ~bit, __ATOMIC_RELAXED);
}

/* A descriptor handed out anew carries no marks from an earlier use. */
static inline void kashim_fresh_fd(int fd)
{
	if (kashim_marked(&kashim_app_off, fd))
		kashim_mark(&kashim_app_off, fd, false);
	if (kashim_marked(&kashim_ours, fd))
		kashim_mark(&kashim_ours, fd, false);
	if (kashim_marked(&kashim_not_tcp, fd))
		kashim_mark(&kashim_not_tcp, fd, false);
}

static bool kashim_is_tcp(int domain, int type, int protocol)
{
	if (domain != AF_INET && domain != AF_INET6)
		return false;
	if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM)
		return false;
	return protocol == 0 || protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP;
}

struct kashim_step {
	int level;
	int name;
	const char *label;
};

static const struct kashim_step kashim_steps[] = {
	{ SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT" },
};

KASHIM_COLD static void kashim_debug_refused(int fd, const char *where, const char *label, int e)
{
	struct kashim_line l;

	kashim_debug_fd(&l, fd, where);
	kashim_line_put(&l, label);
	kashim_line_put(&l, " not set: ");
	kashim_line_put(&l, kashim_errno_name(e));
	kashim_line_put(&l, " (errno ");
	kashim_line_put_uint(&l, (unsigned long)e);
	kashim_line_put(&l, ")");
	kashim_debug_send(&l);
}

KASHIM_COLD static void kashim_debug_set(int fd, const struct kashim_config *cfg,
					 const char *where, bool all)
{
	struct kashim_line l;

	kashim_debug_fd(&l, fd, where);
	kashim_line_put(&l, all ? "keepalive set: idle " : "keepalive partly set: idle ");
	kashim_line_put_uint(&l, (unsigned long)cfg->idle_s);
	kashim_line_put(&l, "s, interval ");
	kashim_line_put_uint(&l, (unsigned long)cfg->interval_s);
	kashim_line_put(&l, "s, count ");
	kashim_line_put_uint(&l, (unsigned long)cfg->count);
	if (cfg->user_timeout_mode != KASHIM_UT_OFF) {
		kashim_line_put(&l, ", user timeout ");
		kashim_line_put_uint(&l, cfg->user_timeout_ms);
		kashim_line_put(&l, "ms");
	}
	kashim_debug_send(&l);
}

/* kashim's value for option step i. */
static int kashim_value(const struct kashim_config *cfg, size_t i)
{
	switch (i) {
	case 0: return 1;
	case 1: return cfg->idle_s;
	case 2: return cfg->interval_s;
	case 3: return cfg->count;
	default: return (int)cfg->user_timeout_ms;
	}
}

/* Sets each option as its own step; a refusal (an MPTCP socket on an older
 * kernel, a seccomp filter) skips that option only and is reported under
 * KASHIM_DEBUG.  The program's errno is left as it was. */
static void kashim_apply(int fd, const struct kashim_config *cfg, const char *where)
{
	int saved = errno;
	size_t steps = sizeof kashim_steps / sizeof kashim_steps[0], i;
	bool all = true;

	if (cfg->user_timeout_mode == KASHIM_UT_OFF)
		steps--;
	kashim_mark(&kashim_ours, fd, true);
	for (i = 0; i < steps; i++) {
		const struct kashim_step *s = &kashim_steps[i];
		int v = kashim_value(cfg, i);
		if (kashim_real_setsockopt(fd, s->level, s->name, &v, sizeof v) == 0)
			continue;
		all = false;
		if (cfg->debug)
			kashim_debug_refused(fd, where, s->label, errno);
	}
	if (cfg->debug)
		kashim_debug_set(fd, cfg, where, all);
	errno = saved;
}

KASHIM_COLD static void kashim_debug_left_line(int fd, const char *where, const char *why)
{
	struct kashim_line l;

	kashim_debug_fd(&l, fd, where);
	kashim_line_put(&l, why);
	kashim_debug_send(&l);
}

static inline void kashim_debug_left(int fd, const struct kashim_config *cfg,
				     const char *where, const char *why)
{
	if (cfg->debug)
		kashim_debug_left_line(fd, where, why);
}

/* A descriptor we did not create: a TCP socket with keepalive off gets the
 * options; one with keepalive already on (set by the program, inherited from
 * a listener we configured, or by whoever created it) is left as it is.
 * Anything that is not a TCP socket is left alone silently. */
static void kashim_adopt(int fd, const struct kashim_config *cfg, const char *where)
{
	int saved = errno, on = 0, idle = 0;
	socklen_t len = sizeof on;

	if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) != 0)
		goto out; /* closed, or not a socket */
	len = sizeof idle;
	if (on && cfg->mode != KASHIM_MODE_FORCE) {
		/* The common case for accepted sockets, which inherit the
		 * listener's options: one system call and done. */
		if (cfg->debug && getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0)
			kashim_debug_left(fd, cfg, where, "keepalive already on, left as it is");
		goto out;
	}
	/* Only TCP (and MPTCP) answer a TCP-level option. */
	if (getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) != 0)
		goto out;
	kashim_apply(fd, cfg, where);
out:
	errno = saved;
}

/* Copies len bytes the program passed, or fails (EFAULT) where reading
 * them would crash: process_vm_readv on this very process.  Only the rare
 * paths that must look at a program's buffer before the kernel has (filters
 * at connect(), force mode) pay these two system calls. */
static bool kashim_copy_in(void *dst, const void *src, size_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)src, len };
	int saved = errno;
	bool ok = src && syscall(SYS_process_vm_readv, (long)syscall(SYS_getpid), &local, 1UL,
				 &remote, 1UL, 0UL) == (long)len;

	errno = saved;
	return ok;
}

/* With KASHIM_SCOPE, KASHIM_ONLY or KASHIM_SKIP, is this connection
 * covered?  addr is the remote end of a connection the program makes, the
 * local end of one it accepts; a copy kashim made, never the program's. */
static bool kashim_covers(const struct kashim_config *cfg, bool server,
			  const struct sockaddr_storage *addr, socklen_t len)
{
	if (addr->ss_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)addr;
		return kashim_config_covers(cfg, server, AF_INET,
					    (const unsigned char *)&a->sin_addr, ntohs(a->sin_port));
	}
	if (addr->ss_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const void *)addr;
		return kashim_config_covers(cfg, server, AF_INET6, a->sin6_addr.s6_addr,
					    ntohs(a->sin6_port));
	}
	return false;
}

/* An accepted (or inherited, inetd-style) connection, judged by its local
 * address when filters are in force. */
static void kashim_adopt_server_side(int fd, const struct kashim_config *cfg, const char *where)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof local;
	int saved = errno;

	if (cfg->deferred) {
		if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 ||
		    !kashim_covers(cfg, true, &local, len)) {
			errno = saved;
			kashim_debug_left(fd, cfg, where, "not covered by KASHIM_SCOPE/ONLY/SKIP");
			return;
		}
		errno = saved;
	}
	kashim_adopt(fd, cfg, where);
}

/* The program's addr and len are not read: the kernel wrote them, but a
 * length larger than the buffer it was given is legal. */
static void kashim_after_accept(int listener, int fd, const struct kashim_config *cfg,
				const char *where)
{
	if (fd < 0)
		return;
	kashim_fresh_fd(fd);
	if (kashim_marked(&kashim_not_tcp, listener)) {
		kashim_mark(&kashim_not_tcp, fd, true);
		return;
	}
	if (!cfg) {
		kashim_queue(fd, true);
		return;
	}
	if (!cfg->enabled)
		return;
	if (cfg->mode != KASHIM_MODE_FORCE && kashim_marked(&kashim_app_off, listener)) {
		kashim_debug_left(fd, cfg, where,
				  "the program turned keepalive off on the listener, left as it is");
		return;
	}
	/* Even from a listener kashim configured, whose options the kernel
	 * copies to the sockets it accepts, one getsockopt looks: the fd number
	 * may since have been reused by a listener from elsewhere (systemd, a
	 * parent), and close() is not watched. */
	kashim_adopt_server_side(fd, cfg, where);
}

static void kashim_before_connect(int fd, const struct sockaddr *addr, socklen_t len,
				  const struct kashim_config *cfg)
{
	struct sockaddr_storage copy;

	if (!cfg || !cfg->enabled || kashim_marked(&kashim_not_tcp, fd))
		return;
	if (cfg->mode != KASHIM_MODE_FORCE && kashim_marked(&kashim_app_off, fd))
		return;
	/* A socket kashim configured at socket() needs no second look (an
	 * unconnected socket from elsewhere reusing its fd number would be
	 * missed: rare, and then left as the kernel made it). */
	if (!cfg->deferred && kashim_marked(&kashim_ours, fd)) {
		kashim_debug_left(fd, cfg, "connect", "configured at socket()");
		return;
	}
	if (!cfg->deferred) {
		kashim_adopt(fd, cfg, "connect");
		return;
	}
	if (len > (socklen_t)sizeof copy)
		len = sizeof copy;
	if (kashim_copy_in(&copy, addr, len) && kashim_covers(cfg, false, &copy, len))
		kashim_adopt(fd, cfg, "connect");
	else
		kashim_debug_left(fd, cfg, "connect", "not covered by KASHIM_SCOPE/ONLY/SKIP");
}

/* ---- the interposed calls ---------------------------------------------- */

KASHIM_API int socket(int domain, int type, int protocol)
{
	const struct kashim_config *cfg = kashim_settings();
	socket_fn *next = KASHIM_NEXT(socket);
	int fd = next ? next(domain, type, protocol)
		      : (int)syscall(SYS_socket, domain, type, protocol);

	if (fd < 0)
		return fd;
	kashim_fresh_fd(fd);
	if (!kashim_is_tcp(domain, type, protocol))
		kashim_mark(&kashim_not_tcp, fd, true);
	else if (!cfg)
		kashim_queue(fd, false);
	/* With filters the decision waits for connect() or accept(). */
	else if (cfg->enabled && !cfg->deferred)
		kashim_apply(fd, cfg, "socket");
	return fd;
}

KASHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct kashim_config *cfg = kashim_settings();
	connect_fn *next = KASHIM_NEXT(connect);

	/* Before the real call, so the user timeout also bounds the handshake. */
	kashim_before_connect(fd, addr, len, cfg);
	if (next)
		return next(fd, addr, len);
	return (int)syscall(SYS_connect, fd, addr, len);
}

KASHIM_API int accept(int listener, struct sockaddr *addr, socklen_t *len)
{
	const struct kashim_config *cfg = kashim_settings();
	accept_fn *next = KASHIM_NEXT(accept);
	int fd = next ? next(listener, addr, len)
		      : (int)syscall(SYS_accept4, listener, addr, len, 0);

	kashim_after_accept(listener, fd, cfg, "accept");
	return fd;
}

KASHIM_API int accept4(int listener, struct sockaddr *addr, socklen_t *len, int flags)
{
	const struct kashim_config *cfg = kashim_settings();
	accept4_fn *next = KASHIM_NEXT(accept4);
	int fd = next ? next(listener, addr, len, flags)
		      : (int)syscall(SYS_accept4, listener, addr, len, flags);

	kashim_after_accept(listener, fd, cfg, "accept4");
	return fd;
}

/* The option step a call sets, or -1: switching keepalive (SOL_SOCKET
 * SO_KEEPALIVE) or one of the timers kashim sets. */
static int kashim_step_of(const struct kashim_config *cfg, int level, int name)
{
	size_t i, steps = sizeof kashim_steps / sizeof kashim_steps[0];

	if (cfg->user_timeout_mode == KASHIM_UT_OFF)
		steps--;
	for (i = 0; i < steps; i++)
		if (kashim_steps[i].level == level && kashim_steps[i].name == name)
			return (int)i;
	return -1;
}

/* Would the kernel accept v for step i?  Its ranges, as tcp(7) and
 * do_tcp_setsockopt() give them; SO_KEEPALIVE takes any int. */
static bool kashim_kernel_accepts(int i, int v)
{
	switch (i) {
	case 0: return true;
	case 1: case 2: return v >= KASHIM_SECONDS_MIN && v <= KASHIM_SECONDS_MAX;
	case 3: return v >= KASHIM_COUNT_MIN && v <= KASHIM_COUNT_MAX;
	default: return v >= 0;
	}
}

/* Is fd still the socket kashim configured?  Its number may have been
 * closed and reused (dup2, a socket from elsewhere), and close() is not
 * watched: a reused number does not hold kashim's settings. */
static bool kashim_still_ours(int fd, const struct kashim_config *cfg)
{
	int saved = errno, on = 0, idle = 0;
	socklen_t len = sizeof on;
	bool ours = getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) == 0 && on;

	len = sizeof idle;
	ours = ours && getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0 &&
	       idle == cfg->idle_s;
	errno = saved;
	return ours;
}

/* In force mode, a valid call that would change kashim's settings on a
 * socket it configured.  An invalid call (NULL, short, a value out of the
 * kernel's range) is not one: it goes to the kernel, which answers it. */
static bool kashim_would_undo(int fd, const struct kashim_config *cfg, int level, int name,
			      const void *val, socklen_t len)
{
	int step = kashim_step_of(cfg, level, name), v;

	if (step < 0 || len < (socklen_t)sizeof v || !kashim_copy_in(&v, val, sizeof v) ||
	    !kashim_kernel_accepts(step, v))
		return false;
	if (step == 0 ? v != 0 : v == kashim_value(cfg, (size_t)step))
		return false; /* changes nothing kashim set */
	return kashim_still_ours(fd, cfg);
}

/* Watches the program switching keepalive off or on, so its explicit
 * choice is respected later; in force mode, refuses (with success) what
 * would undo kashim's settings.  Everything else passes straight on. */
KASHIM_API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	const struct kashim_config *cfg = kashim_settings();
	int rc, on;

	if (cfg && cfg->enabled && cfg->mode == KASHIM_MODE_FORCE &&
	    kashim_marked(&kashim_ours, fd) && kashim_would_undo(fd, cfg, level, name, val, len)) {
		kashim_debug_left(fd, cfg, "setsockopt",
				  "KASHIM_MODE=force: the program's keepalive change not applied");
		return 0;
	}
	rc = kashim_real_setsockopt(fd, level, name, val, len);
	/* The kernel read the value: reading it is safe now. */
	if (rc == 0 && level == SOL_SOCKET && name == SO_KEEPALIVE &&
	    val && len >= (socklen_t)sizeof on) {
		__builtin_memcpy(&on, val, sizeof on);
		kashim_mark(&kashim_app_off, fd, on == 0);
	}
	return rc;
}
