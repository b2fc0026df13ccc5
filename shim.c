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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define KASHIM_API __attribute__((visibility("default")))

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
 *   that would change them are answered with success and not applied. */
#define KASHIM_TRACKED_FDS (1u << 20)
#define KASHIM_WORD_BITS (8 * sizeof(unsigned long))
struct kashim_marks {
	unsigned long bits[KASHIM_TRACKED_FDS / KASHIM_WORD_BITS];
};
static struct kashim_marks kashim_app_off, kashim_ours;

/* The program's names, for the program filters: written once by the
 * loader (a concurrent early caller uses its own copy). */
struct kashim_names {
	const char *name[3];
	char exe[256];
};
static struct kashim_names kashim_names_ro;

/* ---- messages ---------------------------------------------------------- */

static void kashim_write_stderr(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

static void kashim_debug_start(struct kashim_line *l)
{
	kashim_line_start(l);
	kashim_line_put(l, "kashim[");
	kashim_line_put_uint(l, (unsigned long)getpid());
	kashim_line_put(l, "]: ");
}

static void kashim_debug_fd(struct kashim_line *l, int fd, const char *where)
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

static void kashim_debug_loaded(const struct kashim_config *cfg)
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

/* Resolves the next definitions and reads the configuration, once.  A call
 * that arrives while another is loading (another thread, or a signal handler
 * interrupting the loader) neither waits nor reports: it reads a private
 * copy of the same environment into scratch and carries on. */
static const struct kashim_config *kashim_load(struct kashim_config *scratch)
{
	int expected = KASHIM_UNLOADED;
	bool secure = getauxval(AT_SECURE) != 0;
	int saved = errno;

	kashim_resolve_all();
	if (!__atomic_compare_exchange_n(&kashim_state, &expected, KASHIM_LOADING,
					 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		errno = saved;
		if (expected == KASHIM_READY)
			return &kashim_settings_ro;
		struct kashim_names names; /* not the loader's */
		kashim_load_config(scratch, &names, secure, NULL);
		return scratch;
	}
	kashim_load_config(&kashim_settings_ro, &kashim_names_ro, secure, kashim_write_stderr);
	if (kashim_settings_ro.enabled && kashim_settings_ro.debug)
		kashim_debug_loaded(&kashim_settings_ro);
	__atomic_store_n(&kashim_state, KASHIM_READY, __ATOMIC_RELEASE);
	if (kashim_settings_ro.enabled)
		kashim_adopt_inherited(&kashim_settings_ro);
	errno = saved;
	return &kashim_settings_ro;
}

static inline const struct kashim_config *kashim_settings(struct kashim_config *scratch)
{
	if (__atomic_load_n(&kashim_state, __ATOMIC_ACQUIRE) == KASHIM_READY)
		return &kashim_settings_ro;
	return kashim_load(scratch);
}

__attribute__((constructor)) static void kashim_constructor(void)
{
	struct kashim_config scratch;

	(void)kashim_settings(&scratch);
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

/* Sets each option as its own step; a refusal (an MPTCP socket on an older
 * kernel, a seccomp filter) skips that option only and is reported under
 * KASHIM_DEBUG.  The program's errno is left as it was. */
static void kashim_apply(int fd, const struct kashim_config *cfg, const char *where)
{
	int saved = errno;
	int values[] = { 1, cfg->idle_s, cfg->interval_s, cfg->count,
			 (int)cfg->user_timeout_ms };
	size_t steps = sizeof kashim_steps / sizeof kashim_steps[0], i;
	bool all = true;
	struct kashim_line l;

	if (cfg->user_timeout_mode == KASHIM_UT_OFF)
		steps--;
	kashim_mark(&kashim_ours, fd, true);
	for (i = 0; i < steps; i++) {
		const struct kashim_step *s = &kashim_steps[i];
		if (kashim_real_setsockopt(fd, s->level, s->name, &values[i],
					   sizeof values[i]) == 0)
			continue;
		all = false;
		if (cfg->debug) {
			int e = errno;
			kashim_debug_fd(&l, fd, where);
			kashim_line_put(&l, s->label);
			kashim_line_put(&l, " not set: ");
			kashim_line_put(&l, kashim_errno_name(e));
			kashim_line_put(&l, " (errno ");
			kashim_line_put_uint(&l, (unsigned long)e);
			kashim_line_put(&l, ")");
			kashim_debug_send(&l);
		}
	}
	if (cfg->debug) {
		kashim_debug_fd(&l, fd, where);
		kashim_line_put(&l, all ? "keepalive set: idle " :
			       "keepalive partly set: idle ");
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
	errno = saved;
}

static void kashim_debug_left(int fd, const struct kashim_config *cfg,
			      const char *where, const char *why)
{
	struct kashim_line l;

	if (!cfg->debug)
		return;
	kashim_debug_fd(&l, fd, where);
	kashim_line_put(&l, why);
	kashim_debug_send(&l);
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

/* False when an address the program passed or got back says the socket
 * cannot be TCP: an AF_UNIX connect() or accept() costs no system call. */
static bool kashim_maybe_inet(const struct sockaddr *addr, socklen_t len)
{
	if (!addr || len < (socklen_t)sizeof addr->sa_family)
		return true;
	return addr->sa_family == AF_INET || addr->sa_family == AF_INET6;
}

/* With KASHIM_SCOPE, KASHIM_ONLY or KASHIM_SKIP, is this connection
 * covered?  addr is the remote end of a connection the program makes, the
 * local end of one it accepts. */
static bool kashim_covers(const struct kashim_config *cfg, bool server,
			  const struct sockaddr *addr, socklen_t len)
{
	if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)addr;
		return kashim_config_covers(cfg, server, AF_INET,
					    (const unsigned char *)&a->sin_addr, ntohs(a->sin_port));
	}
	if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
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
		    !kashim_covers(cfg, true, (struct sockaddr *)&local, len)) {
			errno = saved;
			kashim_debug_left(fd, cfg, where, "not covered by KASHIM_SCOPE/ONLY/SKIP");
			return;
		}
		errno = saved;
	}
	kashim_adopt(fd, cfg, where);
}

static void kashim_after_accept(int listener, int fd, const struct sockaddr *addr,
				const socklen_t *len, const struct kashim_config *cfg,
				const char *where)
{
	if (fd < 0)
		return;
	kashim_fresh_fd(fd);
	if (!cfg->enabled || (len && !kashim_maybe_inet(addr, *len)))
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

/* ---- the interposed calls ---------------------------------------------- */

KASHIM_API int socket(int domain, int type, int protocol)
{
	struct kashim_config scratch;
	const struct kashim_config *cfg = kashim_settings(&scratch);
	socket_fn *next = KASHIM_NEXT(socket);
	int fd = next ? next(domain, type, protocol)
		      : (int)syscall(SYS_socket, domain, type, protocol);

	if (fd >= 0) {
		kashim_fresh_fd(fd);
		/* With filters the decision waits for connect() or accept(). */
		if (cfg->enabled && kashim_is_tcp(domain, type, protocol) &&
		    !cfg->deferred)
			kashim_apply(fd, cfg, "socket");
	}
	return fd;
}

KASHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct kashim_config scratch;
	const struct kashim_config *cfg = kashim_settings(&scratch);
	connect_fn *next = KASHIM_NEXT(connect);

	/* Before the real call, so the user timeout also bounds the handshake.
	 * A socket kashim configured at socket() needs no second look (an
	 * unconnected socket from elsewhere reusing its fd number would be
	 * missed: rare, and then left as the kernel made it). */
	if (cfg->enabled && kashim_maybe_inet(addr, len) &&
	    (cfg->mode == KASHIM_MODE_FORCE || !kashim_marked(&kashim_app_off, fd))) {
		if (!cfg->deferred && kashim_marked(&kashim_ours, fd))
			kashim_debug_left(fd, cfg, "connect", "configured at socket()");
		else if (!cfg->deferred ||
			 (addr && kashim_covers(cfg, false, addr, len)))
			kashim_adopt(fd, cfg, "connect");
		else
			kashim_debug_left(fd, cfg, "connect", "not covered by KASHIM_SCOPE/ONLY/SKIP");
	}
	if (next)
		return next(fd, addr, len);
	return (int)syscall(SYS_connect, fd, addr, len);
}

KASHIM_API int accept(int listener, struct sockaddr *addr, socklen_t *len)
{
	struct kashim_config scratch;
	const struct kashim_config *cfg = kashim_settings(&scratch);
	accept_fn *next = KASHIM_NEXT(accept);
	int fd = next ? next(listener, addr, len)
		      : (int)syscall(SYS_accept4, listener, addr, len, 0);

	kashim_after_accept(listener, fd, addr, len, cfg, "accept");
	return fd;
}

KASHIM_API int accept4(int listener, struct sockaddr *addr, socklen_t *len, int flags)
{
	struct kashim_config scratch;
	const struct kashim_config *cfg = kashim_settings(&scratch);
	accept4_fn *next = KASHIM_NEXT(accept4);
	int fd = next ? next(listener, addr, len, flags)
		      : (int)syscall(SYS_accept4, listener, addr, len, flags);

	kashim_after_accept(listener, fd, addr, len, cfg, "accept4");
	return fd;
}

/* In force mode, a call that would undo kashim's settings on a socket it
 * configured: switching keepalive off, or setting one of the timers. */
static bool kashim_would_undo(const struct kashim_config *cfg, int level, int name,
			      const void *val, socklen_t len)
{
	int v;

	if (level == SOL_SOCKET && name == SO_KEEPALIVE) {
		if (!val || len < (socklen_t)sizeof v)
			return false;
		__builtin_memcpy(&v, val, sizeof v);
		return v == 0;
	}
	if (level != IPPROTO_TCP)
		return false;
	return name == TCP_KEEPIDLE || name == TCP_KEEPINTVL || name == TCP_KEEPCNT ||
	       (name == TCP_USER_TIMEOUT && cfg->user_timeout_mode != KASHIM_UT_OFF);
}

/* Watches the program switching keepalive off or on, so its explicit
 * choice is respected later; in force mode, refuses (with success) what
 * would undo kashim's settings.  Everything else passes straight on. */
KASHIM_API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct kashim_config scratch;
	const struct kashim_config *cfg = kashim_settings(&scratch);
	int rc, on;

	if (cfg->enabled && cfg->mode == KASHIM_MODE_FORCE && kashim_marked(&kashim_ours, fd) &&
	    kashim_would_undo(cfg, level, name, val, len)) {
		kashim_debug_left(fd, cfg, "setsockopt",
				  "KASHIM_MODE=force: the program's keepalive change not applied");
		return 0;
	}
	rc = kashim_real_setsockopt(fd, level, name, val, len);
	if (rc == 0 && level == SOL_SOCKET && name == SO_KEEPALIVE &&
	    val && len >= (socklen_t)sizeof on) {
		__builtin_memcpy(&on, val, sizeof on);
		kashim_mark(&kashim_app_off, fd, on == 0);
	}
	return rc;
}
