/* SPDX-License-Identifier: MIT */
/* libkashim.so: the interposed calls.
 *
 * Every exported function is a thin wrapper: it calls the next definition
 * (libc, or another preloaded interposer) and, for a TCP socket, sets the
 * keepalive options on the new descriptor before the program sees it.  After
 * load the wrappers read an immutable configuration and make system calls
 * only: no getenv, malloc, stdio or locks, and errno is always restored.
 *
 * Living inside someone else's process:
 * - a pointer the program passes is read only after the kernel accepted it,
 *   or showed it can read it, in a check no seccomp filter can answer for
 *   unnoticed (connect(), below);
 * - the stack is borrowed (a 16 KiB thread, a sigaltstack a few hundred
 *   bytes over the CPU's signal frame): kashim's frames stay within 1024
 *   bytes in any call after the load, debug line included
 *   (docs/reliability.md, "Stack"), and a call that arrives while another
 *   is loading passes straight through;
 * - fd 2 is written only while it is still the file it was at load. */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
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
/* Kept out of the callers' frames: a debug line's buffer, a struct stat,
 * exist only while such a function runs, not in every wrapper's frame. */
#define KASHIM_OUT_OF_LINE __attribute__((noinline, cold))

extern char **environ;

typedef int socket_fn(int, int, int);
typedef int connect_fn(int, const struct sockaddr *, socklen_t);
typedef int accept_fn(int, struct sockaddr *, socklen_t *);
typedef int accept4_fn(int, struct sockaddr *, socklen_t *, int);
typedef int setsockopt_fn(int, int, int, const void *, socklen_t);
typedef ssize_t sendto_fn(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t sendmsg_fn(int, const struct msghdr *, int);
/* glibc declares sendmmsg's flags int, musl unsigned int. */
#ifdef __GLIBC__
typedef int kashim_mmsg_flags;
#else
typedef unsigned int kashim_mmsg_flags;
#endif
typedef int sendmmsg_fn(int, struct mmsghdr *, unsigned int, kashim_mmsg_flags);
typedef int close_fn(int);
typedef int dup2_fn(int, int);
typedef int dup3_fn(int, int, int);
/* close_range() and closefrom() are glibc's since 2.34; musl has neither. */
#ifdef __GLIBC__
#if __GLIBC_PREREQ(2, 34)
#define KASHIM_CLOSE_RANGE 1
#endif
#endif
#ifdef KASHIM_CLOSE_RANGE
typedef int close_range_fn(unsigned int, unsigned int, int);
typedef void closefrom_fn(int);
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#endif

/* The next definitions in lookup order; NULL until resolved, or when dlsym
 * found nothing but our own wrapper, in which case the raw system call is
 * used.  Written by the loader only; a call that arrives while it loads
 * reads them atomically and uses the system call for what is not there yet. */
static struct {
	socket_fn *socket;
	connect_fn *connect;
	accept_fn *accept;
	accept4_fn *accept4;
	setsockopt_fn *setsockopt;
	sendto_fn *sendto;
	sendmsg_fn *sendmsg;
	sendmmsg_fn *sendmmsg;
	close_fn *close;
	dup2_fn *dup2;
	dup3_fn *dup3;
#ifdef KASHIM_CLOSE_RANGE
	close_range_fn *close_range;
	closefrom_fn *closefrom;
#endif
} kashim_next;

#define KASHIM_NEXT(name) __atomic_load_n(&kashim_next.name, __ATOMIC_RELAXED)

enum { KASHIM_UNLOADED, KASHIM_LOADING, KASHIM_READY };
static int kashim_state = KASHIM_UNLOADED;
static struct kashim_config kashim_settings_ro; /* written once, then read-only */

/* Per-descriptor marks, one bit per fd (higher fds are not tracked), cleared
 * whenever socket()/accept() hands the fd out anew (ours and not_tcp also
 * when close(), dup2(), dup3(), close_range() or closefrom() frees or
 * overwrites it: kashim_forget_fd):
 * - app_off: the program itself switched SO_KEEPALIVE off.  Its choice
 *   (tied to that socket's inode: kashim_app_off_now) wins, so connect()
 *   must not switch it back on, and sockets accepted
 *   from such a listener are left alone.
 * - ours: kashim set the options; in force mode the program's later calls
 *   that would change them are undone.
 * - not_tcp: seen at socket() (or judged once) not to be TCP, so that its
 *   connect() and accept() cost one getsockopt that confirms it
 *   (kashim_not_tcp_now: the number may have changed hands unseen) and no
 *   look at the address.
 * - pending, pending_server: made while another call was loading the
 *   configuration; the loader adopts them when it is done. */
#define KASHIM_TRACKED_FDS (1u << 20)
#define KASHIM_PENDING_FDS (1u << 16)
#define KASHIM_WORD_BITS (8 * sizeof(unsigned long))
struct kashim_marks {
	unsigned long bits[KASHIM_TRACKED_FDS / KASHIM_WORD_BITS];
};
struct kashim_pending {
	unsigned long bits[KASHIM_PENDING_FDS / KASHIM_WORD_BITS];
};
static struct kashim_marks kashim_app_off, kashim_ours, kashim_not_tcp;
static struct kashim_pending kashim_pending, kashim_pending_server;
static int kashim_pending_top = -1; /* the highest fd ever made pending */

/* In force mode, which socket kashim configured under each fd number: its
 * inode (sockfs numbers are 32 bits), so that a number closed and reused by
 * dup2() or a socket from elsewhere does not keep kashim's claim, and a
 * second number for kashim's socket (dup) does.  0 is unknown; fds past
 * the table keep the claim by number. */
#define KASHIM_IDENTIFIED_FDS (1u << 16)
static unsigned kashim_inode[KASHIM_IDENTIFIED_FDS];
static int kashim_inode_top = -1; /* the highest fd with an inode recorded */

/* Under each number with the app_off mark, the socket the program switched
 * keepalive off on (its inode; 0 unknown), so that its choice is not taken
 * for another socket that lands on the number by a route no wrapper sees.
 * Past the table the number decides. */
static unsigned kashim_off_inode[KASHIM_IDENTIFIED_FDS];

/* The program's names, for the program filters: written once by the
 * loader. */
struct kashim_names {
	const char *name[3];
	char exe[256];
};
static struct kashim_names kashim_names_ro;

/* With filters: whether the address check before connect() answered as
 * the kernel does at load (kashim_probe_check; each call checks again);
 * written by the loader, before READY. */
static bool kashim_probe_works;

/* ---- messages ---------------------------------------------------------- */

/* What fd 2 was at load: messages go there only while it still is. */
static struct {
	bool open;
	mode_t type;
	dev_t dev;
	ino_t ino;
} kashim_stderr;

static void kashim_stderr_remember(void)
{
	struct stat st;

	kashim_stderr.open = fstat(STDERR_FILENO, &st) == 0;
	if (kashim_stderr.open) {
		kashim_stderr.type = st.st_mode & S_IFMT;
		kashim_stderr.dev = st.st_dev;
		kashim_stderr.ino = st.st_ino;
	}
}

/* Whether a message may go to fd 2: it is still the file it was at load.
 * Out of line, and called before a debug line is built, so that its
 * struct stat and the line's buffer are never on the stack together. */
static __attribute__((noinline)) bool kashim_stderr_unchanged(void)
{
	struct stat st;
	int saved = errno;
	bool same = kashim_stderr.open && fstat(STDERR_FILENO, &st) == 0 &&
		    st.st_dev == kashim_stderr.dev && st.st_ino == kashim_stderr.ino;

	errno = saved;
	return same;
}

/* The kernel's signal set (one word), so that no 128-byte sigset_t lands
 * on a small stack. */
static long kashim_sigmask(int how, const unsigned long *set, unsigned long *old)
{
	return syscall(SYS_rt_sigprocmask, how, set, old, sizeof *set);
}

static const struct timespec kashim_no_wait; /* static: off the stack */

/* One write to a pipe with SIGPIPE blocked; a SIGPIPE this write raised
 * (and only that one) is taken back before the mask is restored. */
static ssize_t kashim_write_pipe(const char *buf, size_t len)
{
	unsigned long pipe_bit = 1UL << (SIGPIPE - 1), old = 0, pending = 0;
	bool was_pending;
	ssize_t n;

	kashim_sigmask(SIG_BLOCK, &pipe_bit, &old);
	syscall(SYS_rt_sigpending, &pending, sizeof pending);
	was_pending = pending & pipe_bit;
	n = write(STDERR_FILENO, buf, len);
	if (n < 0 && errno == EPIPE && !was_pending &&
	    syscall(SYS_rt_sigpending, &pending, sizeof pending) == 0 && (pending & pipe_bit))
		syscall(SYS_rt_sigtimedwait, &pipe_bit, NULL, &kashim_no_wait, sizeof pipe_bit);
	kashim_sigmask(SIG_SETMASK, &old, NULL);
	return n;
}

/* One line to fd 2, checked by the caller (kashim_stderr_unchanged). */
static void kashim_write_line(const char *line, size_t len)
{
	int saved = errno;

	while (len > 0) {
		ssize_t n;
		if (kashim_stderr.type == S_IFSOCK)
			n = send(STDERR_FILENO, line, len, MSG_NOSIGNAL);
		else if (kashim_stderr.type == S_IFIFO)
			n = kashim_write_pipe(line, len);
		else
			n = write(STDERR_FILENO, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		line += n;
		len -= (size_t)n;
	}
	errno = saved;
}

/* The configuration's messages, at load. */
KASHIM_OUT_OF_LINE static void kashim_write_stderr(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	if (kashim_stderr_unchanged())
		kashim_write_line(line, len);
}

/* A debug line, built in a buffer sized for the longest one kashim writes:
 * 140 bytes (a 7-digit pid, a 10-digit fd, "made during load", "keepalive
 * partly set" with each value at its maximum), so that a signal handler's
 * stack carries little more than the line (docs/reliability.md, "Stack").
 * The buffer lives in the frame of a kashim_line_* function only, and fd 2
 * is checked before that frame exists (kashim_debug_*). */
#define KASHIM_DEBUG_LINE 144
struct kashim_dline {
	char *end;
	char buf[KASHIM_DEBUG_LINE];
};

static void kashim_dput(struct kashim_dline *l, const char *s)
{
	while (*s && l->end < l->buf + sizeof l->buf - 1)
		*l->end++ = *s++;
}

/* Written in place, digits last to first; a number that does not fit
 * ends the line there. */
static void kashim_dput_uint(struct kashim_dline *l, unsigned long v)
{
	char *limit = l->buf + sizeof l->buf - 1, *p;
	unsigned long rest = v;
	ptrdiff_t digits = 1;

	while ((rest /= 10) != 0)
		digits++;
	if (digits > limit - l->end) {
		l->end = limit;
		return;
	}
	l->end += digits;
	p = l->end;
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
}

static void kashim_debug_start(struct kashim_dline *l)
{
	l->end = l->buf;
	kashim_dput(l, "kashim[");
	kashim_dput_uint(l, (unsigned long)getpid());
	kashim_dput(l, "]: ");
}

static void kashim_debug_fd(struct kashim_dline *l, int fd, const char *where)
{
	kashim_debug_start(l);
	kashim_dput(l, "fd ");
	kashim_dput_uint(l, (unsigned long)fd);
	kashim_dput(l, " (");
	kashim_dput(l, where);
	kashim_dput(l, "): ");
}

static void kashim_debug_send(struct kashim_dline *l)
{
	*l->end++ = '\n'; /* dput keeps one byte for it */
	kashim_write_line(l->buf, (size_t)(l->end - l->buf));
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
	__atomic_store_n(&kashim_next.sendto,
			 (sendto_fn *)kashim_resolve("sendto", (void *)sendto), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.sendmsg,
			 (sendmsg_fn *)kashim_resolve("sendmsg", (void *)sendmsg), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.sendmmsg,
			 (sendmmsg_fn *)kashim_resolve("sendmmsg", (void *)sendmmsg),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.close,
			 (close_fn *)kashim_resolve("close", (void *)close), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.dup2,
			 (dup2_fn *)kashim_resolve("dup2", (void *)dup2), __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.dup3,
			 (dup3_fn *)kashim_resolve("dup3", (void *)dup3), __ATOMIC_RELAXED);
#ifdef KASHIM_CLOSE_RANGE
	__atomic_store_n(&kashim_next.close_range,
			 (close_range_fn *)kashim_resolve("close_range", (void *)close_range),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&kashim_next.closefrom,
			 (closefrom_fn *)kashim_resolve("closefrom", (void *)closefrom),
			 __ATOMIC_RELAXED);
#endif
}

static inline int kashim_real_setsockopt(int fd, int level, int name, const void *val,
					 socklen_t len)
{
	setsockopt_fn *next = KASHIM_NEXT(setsockopt);

	if (next)
		return next(fd, level, name, val, len);
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

/* Two copies of kashim preloaded (two paths to the library, or a program
 * that links it and a preload): each carries this note, and only the first
 * in load order, which is also the first in symbol lookup order, acts; the
 * others pass every call straight on. */
#define KASHIM_NOTE_TYPE 0x6b617368u /* "kash" */
static const struct {
	ElfW(Nhdr) head;
	char name[8];
	unsigned desc;
} kashim_note __attribute__((used, section(".note.kashim"), aligned(4))) = {
	{ 7, sizeof(unsigned), KASHIM_NOTE_TYPE }, "kashim", 1
};

static bool kashim_note_at(const char *p, const char *end)
{
	const ElfW(Nhdr) *h = (const void *)p;

	return end - p >= (ptrdiff_t)sizeof kashim_note && h->n_type == KASHIM_NOTE_TYPE &&
	       h->n_namesz == 7 && memcmp(p + sizeof *h, "kashim", 7) == 0;
}

/* The first kashim note in one loaded object, or NULL. */
static const char *kashim_object_note(const struct dl_phdr_info *info)
{
	ElfW(Half) i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p, *end;
		size_t align = ph->p_align == 8 ? 8 : 4;

		if (ph->p_type != PT_NOTE || ph->p_memsz == 0)
			continue;
		p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (end - p >= (ptrdiff_t)sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *h = (const void *)p;
			size_t step = sizeof *h + ((h->n_namesz + align - 1) & ~(align - 1)) +
				      ((h->n_descsz + align - 1) & ~(align - 1));
			if (kashim_note_at(p, end))
				return p;
			if (step > (size_t)(end - p))
				break;
			p += step;
		}
	}
	return NULL;
}

static int kashim_find_first(struct dl_phdr_info *info, size_t size, void *data)
{
	const char **first = data;

	(void)size;
	*first = kashim_object_note(info);
	return *first != NULL; /* stops at the first object with a note */
}

static bool kashim_first_copy(void)
{
	const char *first = NULL;

	dl_iterate_phdr(kashim_find_first, &first);
	/* No note found at all (a linker that dropped it): act alone. */
	return !first || first == (const char *)&kashim_note;
}

KASHIM_OUT_OF_LINE static void kashim_line_loaded(const struct kashim_config *cfg)
{
	struct kashim_dline l;

	kashim_debug_start(&l);
	kashim_dput(&l, "loaded: idle ");
	kashim_dput_uint(&l, (unsigned long)cfg->idle_s);
	kashim_dput(&l, "s, interval ");
	kashim_dput_uint(&l, (unsigned long)cfg->interval_s);
	kashim_dput(&l, "s, count ");
	kashim_dput_uint(&l, (unsigned long)cfg->count);
	kashim_dput(&l, ", user timeout ");
	if (cfg->user_timeout_mode == KASHIM_UT_OFF) {
		kashim_dput(&l, "off (kernel default)");
	} else {
		kashim_dput_uint(&l, cfg->user_timeout_ms);
		kashim_dput(&l, cfg->user_timeout_mode == KASHIM_UT_AUTO ? "ms (auto)" : "ms");
	}
	if (cfg->deferred && !__atomic_load_n(&kashim_probe_works, __ATOMIC_RELAXED))
		kashim_dput(&l, "; filters judged after connect()");
	kashim_debug_send(&l);
}

static void kashim_debug_loaded(const struct kashim_config *cfg)
{
	if (kashim_stderr_unchanged())
		kashim_line_loaded(cfg);
}

static void kashim_adopt(int fd, const struct kashim_config *cfg, const char *where);
static void kashim_adopt_server_side(int fd, const struct kashim_config *cfg,
				     const char *where);
static void kashim_adopt_pending(const struct kashim_config *cfg);
static bool kashim_probe_check(void);

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
 * file, and the program's names for the program filters.  Static storage:
 * only the one loader that won the state change runs this. */
static void kashim_load_config(struct kashim_config *cfg, struct kashim_names *names,
			       bool secure)
{
	static struct kashim_source src;
	ssize_t n = readlink("/proc/self/exe", names->exe, sizeof names->exe - 1);
	const char *base;

	memset(names->name, 0, sizeof names->name);
	if (n > 0) {
		names->exe[n] = 0;
		base = strrchr(names->exe, '/');
		names->name[0] = base ? base + 1 : names->exe;
	}
	names->name[n > 0 ? 1 : 0] = program_invocation_short_name;
	src.envp = environ;
	src.program_names = names->name;
	src.secure = secure;
	src.default_file = "/etc/kashim.conf";
	kashim_config_load_from(cfg, &src, kashim_write_stderr, NULL);
}

/* A call that arrives before the constructor (from another library's
 * constructor) may load only on the main thread's own stack: a thread may
 * have 16 KiB and a signal handler's alternate stack 4 KiB, too little for
 * the parser.  Elsewhere it passes through, and kashim's constructor, which
 * runs on the main thread, loads and adopts its socket. */
static bool kashim_may_load_here(void)
{
	stack_t now;

	if (syscall(SYS_gettid) != getpid())
		return false;
	return sigaltstack(NULL, &now) != 0 || !(now.ss_flags & SS_ONSTACK);
}

/* Resolves the next definitions and reads the configuration, once, in the
 * one call that wins the change from UNLOADED to LOADING.  A call that
 * arrives while it loads (another thread, or a signal handler interrupting
 * the loader), or before it where it may not load, gets NULL: it neither waits, nor parses, nor resolves; it
 * passes the program's call on and leaves the socket to the loader. */
/* The one call that won the change to LOADING: kept out of line, so that
 * a call passing through during the load carries none of its frame. */
static __attribute__((noinline)) void kashim_load_as_winner(void)
{
	int saved = errno;

	kashim_resolve_all();
	kashim_stderr_remember();
	if (kashim_first_copy()) {
		kashim_load_config(&kashim_settings_ro, &kashim_names_ro,
				   getauxval(AT_SECURE) != 0);
		if (kashim_settings_ro.deferred)
			__atomic_store_n(&kashim_probe_works, kashim_probe_check(),
					 __ATOMIC_RELAXED);
		if (kashim_settings_ro.enabled && kashim_settings_ro.debug)
			kashim_debug_loaded(&kashim_settings_ro);
	} else {
		kashim_config_defaults(&kashim_settings_ro);
		kashim_settings_ro.enabled = false;
	}
	__atomic_store_n(&kashim_state, KASHIM_READY, __ATOMIC_SEQ_CST);
	if (kashim_settings_ro.enabled) {
		kashim_adopt_inherited(&kashim_settings_ro);
		kashim_adopt_pending(&kashim_settings_ro);
	}
	errno = saved;
}

static const struct kashim_config *kashim_load(bool constructor)
{
	int expected = __atomic_load_n(&kashim_state, __ATOMIC_ACQUIRE);

	if (expected == KASHIM_READY)
		return &kashim_settings_ro;
	if (expected == KASHIM_LOADING || (!constructor && !kashim_may_load_here()))
		return NULL;
	if (!__atomic_compare_exchange_n(&kashim_state, &expected, KASHIM_LOADING,
					 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return expected == KASHIM_READY ? &kashim_settings_ro : NULL;
	kashim_load_as_winner();
	return &kashim_settings_ro;
}

/* The configuration, or NULL while another call is loading it. */
static inline const struct kashim_config *kashim_settings(void)
{
	if (__atomic_load_n(&kashim_state, __ATOMIC_ACQUIRE) == KASHIM_READY)
		return &kashim_settings_ro;
	return kashim_load(false);
}

/* Loads whatever thread runs it (a dlopen() from a thread, too). */
__attribute__((constructor)) static void kashim_constructor(void)
{
	(void)kashim_load(true);
}

/* ---- the per-socket work ----------------------------------------------- */

static inline bool kashim_bit(const unsigned long *bits, unsigned size, int fd)
{
	if (fd < 0 || (unsigned)fd >= size)
		return false;
	return (__atomic_load_n(&bits[(unsigned)fd / KASHIM_WORD_BITS], __ATOMIC_RELAXED) >>
		((unsigned)fd % KASHIM_WORD_BITS)) & 1;
}

/* Sets or clears one bit; returns whether it was set before. */
static inline bool kashim_set_bit(unsigned long *bits, unsigned size, int fd, bool on)
{
	unsigned long *word, bit;

	if (fd < 0 || (unsigned)fd >= size)
		return false;
	word = &bits[(unsigned)fd / KASHIM_WORD_BITS];
	bit = 1UL << ((unsigned)fd % KASHIM_WORD_BITS);
	if (on)
		return __atomic_fetch_or(word, bit, __ATOMIC_RELAXED) & bit;
	if (!(__atomic_load_n(word, __ATOMIC_RELAXED) & bit))
		return false;
	return __atomic_fetch_and(word, ~bit, __ATOMIC_RELAXED) & bit;
}

static inline bool kashim_marked(const struct kashim_marks *m, int fd)
{
	return kashim_bit(m->bits, KASHIM_TRACKED_FDS, fd);
}

static inline void kashim_mark(struct kashim_marks *m, int fd, bool on)
{
	(void)kashim_set_bit(m->bits, KASHIM_TRACKED_FDS, fd, on);
}

/* A descriptor handed out anew carries no marks from an earlier use (nor
 * a pending adoption left from a socket made during the load and closed). */
static inline void kashim_fresh_fd(int fd)
{
	kashim_mark(&kashim_app_off, fd, false);
	kashim_mark(&kashim_ours, fd, false);
	kashim_mark(&kashim_not_tcp, fd, false);
	(void)kashim_set_bit(kashim_pending.bits, KASHIM_PENDING_FDS, fd, false);
	(void)kashim_set_bit(kashim_pending_server.bits, KASHIM_PENDING_FDS, fd, false);
}

/* A number closed, or about to be overwritten by dup2()/dup3(): the marks
 * that describe the socket by its number (ours, not_tcp) go with it, so
 * that a socket from elsewhere later on the number (SCM_RIGHTS, syscall(),
 * a dup) is judged at its connect() as any socket from elsewhere.  Bit
 * clears only: close() runs in signal handlers and in a child after
 * fork().  The app_off mark stays, as it is checked against its socket's
 * inode (kashim_app_off_now); a child of vfork() shares this memory, and
 * its close() must not drop the parent's record of the program's own
 * choice.  What a vfork() child clears of the rest costs the parent one
 * getsockopt at the next connect() (kashim_adopt), nothing else. */
static inline void kashim_forget_fd(int fd)
{
	kashim_mark(&kashim_ours, fd, false);
	kashim_mark(&kashim_not_tcp, fd, false);
}

#ifdef KASHIM_CLOSE_RANGE
/* The same for the numbers lo..hi (close_range(), closefrom()), bounded by
 * the table: a word at a time, written only where a bit is set. */
static void kashim_forget_bits(unsigned long *bits, unsigned lo, unsigned hi)
{
	unsigned w, first = lo / KASHIM_WORD_BITS, last = hi / KASHIM_WORD_BITS;

	for (w = first; w <= last; w++) {
		unsigned long keep = 0;
		if (w == first)
			keep |= (1UL << (lo % KASHIM_WORD_BITS)) - 1;
		if (w == last && hi % KASHIM_WORD_BITS != KASHIM_WORD_BITS - 1)
			keep |= ~0UL << (hi % KASHIM_WORD_BITS + 1);
		if (__atomic_load_n(&bits[w], __ATOMIC_RELAXED) & ~keep)
			(void)__atomic_fetch_and(&bits[w], keep, __ATOMIC_RELAXED);
	}
}

static void kashim_forget_range(unsigned lo, unsigned hi)
{
	if (lo >= KASHIM_TRACKED_FDS || lo > hi)
		return;
	if (hi >= KASHIM_TRACKED_FDS)
		hi = KASHIM_TRACKED_FDS - 1;
	kashim_forget_bits(kashim_ours.bits, lo, hi);
	kashim_forget_bits(kashim_not_tcp.bits, lo, hi);
}
#endif

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
#define KASHIM_STEPS (sizeof kashim_steps / sizeof kashim_steps[0])

static int kashim_step_value(const struct kashim_config *cfg, size_t step)
{
	switch (step) {
	case 0: return 1;
	case 1: return cfg->idle_s;
	case 2: return cfg->interval_s;
	case 3: return cfg->count;
	default: return (int)cfg->user_timeout_ms;
	}
}

/* The socket's identity (one fstat): for force mode, and for a number the
 * program switched keepalive off on; 0 when unknown.  errno kept. */
KASHIM_OUT_OF_LINE static unsigned kashim_identity(int fd)
{
	struct stat st;
	int saved = errno;
	unsigned ino = fstat(fd, &st) == 0 ? (unsigned)st.st_ino : 0;

	errno = saved;
	return ino;
}

static void kashim_remember_inode(int fd, unsigned ino)
{
	int top = __atomic_load_n(&kashim_inode_top, __ATOMIC_RELAXED);

	if (fd < 0 || (unsigned)fd >= KASHIM_IDENTIFIED_FDS)
		return;
	__atomic_store_n(&kashim_inode[fd], ino, __ATOMIC_RELAXED);
	while (top < fd && !__atomic_compare_exchange_n(&kashim_inode_top, &top, fd, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* The program switched SO_KEEPALIVE off (or on again) on fd.  Off costs
 * one fstat: a rare call. */
static void kashim_app_off_set(int fd, bool off)
{
	if (off && fd >= 0 && (unsigned)fd < KASHIM_IDENTIFIED_FDS)
		__atomic_store_n(&kashim_off_inode[fd], kashim_identity(fd), __ATOMIC_RELAXED);
	kashim_mark(&kashim_app_off, fd, off);
}

/* A number marked app_off: is the socket under it still the one the
 * program switched keepalive off on?  Checked against that socket's inode
 * (one fstat); a mark found on another socket is dropped. */
static __attribute__((noinline)) bool kashim_still_app_off(int fd)
{
	unsigned want;

	if ((unsigned)fd >= KASHIM_IDENTIFIED_FDS)
		return true;
	want = __atomic_load_n(&kashim_off_inode[fd], __ATOMIC_RELAXED);
	if (want == 0 || kashim_identity(fd) == want)
		return true;
	kashim_mark(&kashim_app_off, fd, false);
	return false;
}

/* Respect mode: did the program switch keepalive off on the socket now
 * under fd?  An unmarked number costs a bit test, inline. */
static inline bool kashim_app_off_now(int fd, const struct kashim_config *cfg)
{
	return cfg->mode != KASHIM_MODE_FORCE && kashim_marked(&kashim_app_off, fd) &&
	       kashim_still_app_off(fd);
}

KASHIM_OUT_OF_LINE static void kashim_line_not_set(int fd, const char *where, const char *label,
						    int e)
{
	struct kashim_dline l;

	kashim_debug_fd(&l, fd, where);
	kashim_dput(&l, label);
	kashim_dput(&l, " not set: ");
	kashim_dput(&l, kashim_errno_name(e));
	kashim_dput(&l, " (errno ");
	kashim_dput_uint(&l, (unsigned long)e);
	kashim_dput(&l, ")");
	kashim_debug_send(&l);
}

KASHIM_OUT_OF_LINE static void kashim_line_set(int fd, const struct kashim_config *cfg,
						const char *where, bool all)
{
	struct kashim_dline l;

	kashim_debug_fd(&l, fd, where);
	kashim_dput(&l, all ? "keepalive set: idle " : "keepalive partly set: idle ");
	kashim_dput_uint(&l, (unsigned long)cfg->idle_s);
	kashim_dput(&l, "s, interval ");
	kashim_dput_uint(&l, (unsigned long)cfg->interval_s);
	kashim_dput(&l, "s, count ");
	kashim_dput_uint(&l, (unsigned long)cfg->count);
	if (cfg->user_timeout_mode != KASHIM_UT_OFF) {
		kashim_dput(&l, ", user timeout ");
		kashim_dput_uint(&l, cfg->user_timeout_ms);
		kashim_dput(&l, "ms");
	}
	kashim_debug_send(&l);
}

/* The two lines kashim_apply writes; fd 2 checked before the line's
 * buffer is on the stack. */
KASHIM_OUT_OF_LINE static void kashim_debug_not_set(int fd, const char *where, const char *label,
						     int e)
{
	if (kashim_stderr_unchanged())
		kashim_line_not_set(fd, where, label, e);
}

KASHIM_OUT_OF_LINE static void kashim_debug_set(int fd, const struct kashim_config *cfg,
						 const char *where, bool all)
{
	if (kashim_stderr_unchanged())
		kashim_line_set(fd, cfg, where, all);
}

/* Sets each option as its own step; a refusal (an MPTCP socket on an older
 * kernel, a seccomp filter) skips that option only and is reported under
 * KASHIM_DEBUG.  The program's errno is left as it was. */
static void kashim_apply(int fd, const struct kashim_config *cfg, const char *where)
{
	int saved = errno;
	size_t steps = KASHIM_STEPS, i;
	bool all = true;

	if (cfg->user_timeout_mode == KASHIM_UT_OFF)
		steps--;
	kashim_mark(&kashim_ours, fd, true);
	if (cfg->mode == KASHIM_MODE_FORCE)
		kashim_remember_inode(fd, kashim_identity(fd));
	for (i = 0; i < steps; i++) {
		int value = kashim_step_value(cfg, i);
		if (kashim_real_setsockopt(fd, kashim_steps[i].level, kashim_steps[i].name,
					   &value, sizeof value) == 0)
			continue;
		all = false;
		if (cfg->debug)
			kashim_debug_not_set(fd, where, kashim_steps[i].label, errno);
	}
	if (cfg->debug)
		kashim_debug_set(fd, cfg, where, all);
	errno = saved;
}

KASHIM_OUT_OF_LINE static void kashim_line_left(int fd, const char *where, const char *why)
{
	struct kashim_dline l;

	kashim_debug_fd(&l, fd, where);
	kashim_dput(&l, why);
	kashim_debug_send(&l);
}

KASHIM_OUT_OF_LINE static void kashim_debug_left(int fd, const struct kashim_config *cfg,
						  const char *where, const char *why)
{
	if (cfg->debug && kashim_stderr_unchanged())
		kashim_line_left(fd, where, why);
}

/* Only TCP (and MPTCP) answer a TCP-level option: UDP, raw and netlink
 * sockets refuse it, AF_UNIX ones too, and a number that is not a socket
 * (or not open) fails.  One system call; errno kept.  Out of line: its
 * buffers stay off the frames of the callers it would be inlined into. */
static __attribute__((noinline)) bool kashim_answers_tcp(int fd)
{
	int saved = errno, idle = 0;
	socklen_t len = sizeof idle;
	bool tcp = getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0;

	errno = saved;
	return tcp;
}

/* The not-TCP mark is a hint, never a verdict: a number changes hands by
 * routes no wrapper sees (a raw syscall(SYS_close) or SYS_dup2, io_uring,
 * libc's internal closes), so a marked
 * number is asked again, with one getsockopt, before it is passed over,
 * and a TCP socket found there loses the stale mark.  An unmarked number
 * costs a bit test, inline. */
static __attribute__((noinline)) bool kashim_still_not_tcp(int fd)
{
	if (!kashim_answers_tcp(fd))
		return true;
	kashim_mark(&kashim_not_tcp, fd, false);
	return false;
}

static inline bool kashim_not_tcp_now(int fd)
{
	return kashim_marked(&kashim_not_tcp, fd) && kashim_still_not_tcp(fd);
}

/* A descriptor we did not create: a TCP socket with keepalive off gets the
 * options; one with keepalive already on (set by the program, inherited from
 * a listener we configured, or by whoever created it) is left as it is.
 * Anything that is not a TCP socket is left alone silently, and marked so
 * that its next connect() or accept() costs one look (kashim_not_tcp_now). */
static void kashim_adopt(int fd, const struct kashim_config *cfg, const char *where)
{
	int saved = errno, on = 0;
	socklen_t len = sizeof on;

	if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) != 0)
		goto out; /* closed, or not a socket */
	if (on && cfg->mode != KASHIM_MODE_FORCE) {
		/* The common case for accepted sockets, which inherit the
		 * listener's options: one system call and done. */
		if (cfg->debug && kashim_answers_tcp(fd))
			kashim_debug_left(fd, cfg, where, "keepalive already on, left as it is");
		goto out;
	}
	if (!kashim_answers_tcp(fd)) {
		kashim_mark(&kashim_not_tcp, fd, true);
		goto out;
	}
	kashim_apply(fd, cfg, where);
out:
	errno = saved;
}

/* A sockaddr_in6 without sin6_scope_id (RFC 2133's, 24 bytes), which the
 * kernel takes too: the judgement needs no more than that. */
#define KASHIM_SIN6_LEN_RFC2133 ((socklen_t)offsetof(struct sockaddr_in6, sin6_scope_id))

/* With KASHIM_SCOPE, KASHIM_ONLY or KASHIM_SKIP, is this connection
 * covered?  addr is the remote end of a connection the program makes, the
 * local end of one it accepts; len is what the kernel (or a safe copy)
 * gave, never more than the buffer. */
static bool kashim_covers(const struct kashim_config *cfg, bool server,
			  const struct sockaddr *addr, socklen_t len)
{
	if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)addr;
		return kashim_config_covers(cfg, server, AF_INET,
					    (const unsigned char *)&a->sin_addr, ntohs(a->sin_port));
	}
	if (addr->sa_family == AF_INET6 && len >= KASHIM_SIN6_LEN_RFC2133) {
		const struct sockaddr_in6 *a = (const void *)addr;
		return kashim_config_covers(cfg, server, AF_INET6, a->sin6_addr.s6_addr,
					    ntohs(a->sin6_port));
	}
	return false;
}

/* The remote end of a connection the program made, as the kernel holds
 * it.  getpeername() answers ENOTCONN until the handshake is done, so a
 * non-blocking connect() still in SYN_SENT would look unconnected;
 * SO_PEERNAME (the kernel's "peer 2" query) answers from the moment the
 * kernel accepted the address.  It refuses a buffer longer than the
 * address, so the IPv4 size is asked first and IPv6 only when that is
 * the family. */
static int kashim_peer_address(int fd, struct sockaddr_in6 *addr, socklen_t *len)
{
	*len = sizeof(struct sockaddr_in);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERNAME, addr, len) != 0)
		return -1;
	if (addr->sin6_family != AF_INET6)
		return 0;
	*len = sizeof *addr;
	return getsockopt(fd, SOL_SOCKET, SO_PEERNAME, addr, len);
}

/* A connection judged by one of its own addresses (the local one for a
 * connection accepted, the remote one for a connection made during the
 * load or, when the address cannot be read before the call, after its
 * connect()), when filters are in force; a family other than IPv4 or
 * IPv6 marks it not TCP. */
static bool kashim_covered_by_own_address(int fd, const struct kashim_config *cfg,
					  bool server)
{
	struct sockaddr_in6 addr; /* the larger of the two families kashim judges */
	socklen_t len = sizeof addr;
	int saved = errno, rc;

	rc = server ? getsockname(fd, (struct sockaddr *)&addr, &len)
		    : kashim_peer_address(fd, &addr, &len);
	errno = saved;
	if (rc != 0)
		return false;
	if (len > sizeof addr)
		len = sizeof addr; /* cut by the kernel: never read past the buffer */
	if (addr.sin6_family != AF_INET && addr.sin6_family != AF_INET6) {
		kashim_mark(&kashim_not_tcp, fd, true);
		return false;
	}
	return kashim_covers(cfg, server, (const struct sockaddr *)&addr, len);
}

/* An accepted (or inherited, inetd-style) connection, judged by its local
 * address when filters are in force. */
static void kashim_adopt_server_side(int fd, const struct kashim_config *cfg, const char *where)
{
	if (cfg->deferred && !kashim_covered_by_own_address(fd, cfg, true)) {
		kashim_debug_left(fd, cfg, where, "not covered by KASHIM_SCOPE/ONLY/SKIP");
		return;
	}
	kashim_adopt(fd, cfg, where);
}

static void kashim_after_accept(int listener, int fd, const struct kashim_config *cfg,
				const char *where)
{
	if (!cfg->enabled)
		return;
	if (kashim_app_off_now(listener, cfg)) {
		kashim_debug_left(fd, cfg, where,
				  "the program turned keepalive off on the listener, left as it is");
		return;
	}
	/* Even from a listener kashim configured, whose options the kernel
	 * copies to the sockets it accepts, one getsockopt looks: the fd number
	 * may since have been reused by a listener from elsewhere (systemd, a
	 * parent) by a route no wrapper sees. */
	kashim_adopt_server_side(fd, cfg, where);
	if (kashim_marked(&kashim_not_tcp, fd))
		kashim_mark(&kashim_not_tcp, listener, true);
}

/* ---- sockets made while the configuration loads ------------------------ */

static bool kashim_pending_take(int fd, bool *server)
{
	*server = kashim_set_bit(kashim_pending_server.bits, KASHIM_PENDING_FDS, fd, false);
	return kashim_set_bit(kashim_pending.bits, KASHIM_PENDING_FDS, fd, false);
}

static void kashim_adopt_one_pending(int fd, bool server, const struct kashim_config *cfg)
{
	if (kashim_app_off_now(fd, cfg))
		return; /* the program switched keepalive off meanwhile */
	if (server) {
		kashim_adopt_server_side(fd, cfg, "made during load");
	} else if (!cfg->deferred || kashim_covered_by_own_address(fd, cfg, false)) {
		kashim_adopt(fd, cfg, "made during load");
	} else {
		/* Not connected yet, or not covered: connect() judges it later. */
		kashim_debug_left(fd, cfg, "made during load", "left to connect()");
	}
}

/* The loader, when done, adopts every socket made meanwhile; each fd is
 * taken by exactly one of the loader and its maker (below), by clearing
 * its bit. */
static void kashim_adopt_pending(const struct kashim_config *cfg)
{
	int fd, top;
	bool server;

	/* Pairs with the fence in kashim_pending_add: either the loader sees
	 * the maker's bit here, or the maker sees READY there. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	top = __atomic_load_n(&kashim_pending_top, __ATOMIC_RELAXED);

	for (fd = 0; fd <= top; fd++)
		if (kashim_bit(kashim_pending.bits, KASHIM_PENDING_FDS, fd) &&
		    kashim_pending_take(fd, &server))
			kashim_adopt_one_pending(fd, server, cfg);
}

/* A call that passed straight through while another loaded: its socket
 * waits for the loader, unless the loader has finished since, in which
 * case the maker adopts it itself.  No system call, errno untouched. */
static void kashim_pending_add(int fd, bool server)
{
	int top = __atomic_load_n(&kashim_pending_top, __ATOMIC_RELAXED);
	bool taken_server;

	if (fd < 0 || (unsigned)fd >= KASHIM_PENDING_FDS)
		return;
	if (server)
		kashim_set_bit(kashim_pending_server.bits, KASHIM_PENDING_FDS, fd, true);
	kashim_set_bit(kashim_pending.bits, KASHIM_PENDING_FDS, fd, true);
	while (top < fd && !__atomic_compare_exchange_n(&kashim_pending_top, &top, fd, true,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&kashim_state, __ATOMIC_ACQUIRE) == KASHIM_READY &&
	    kashim_pending_take(fd, &taken_server) && kashim_settings_ro.enabled)
		kashim_adopt_one_pending(fd, taken_server, &kashim_settings_ro);
}

/* ---- connect() --------------------------------------------------------- */

/* With filters, connect() is judged by the address the program gave, and
 * where it can be, before the real call: the user timeout is then on the
 * socket when its SYN leaves and also bounds a blocking connect()'s
 * handshake.  A preload must neither crash on a pointer the kernel would
 * refuse with EFAULT nor make a call a sandbox may deny: process_vm_readv,
 * used before, is one that seccomp policies deny (every connection then
 * looked uncovered) or kill on (SIGSYS at connect()).
 *
 * A non-blocking socket is always judged after the call, from the address
 * the kernel copied (kashim_after_connect): connect() returns at once, the
 * options are set while the SYN is in flight, and the kernel measures the
 * user timeout from the SYN's own send time, so nothing is lost and the
 * program's pointer is never read.
 *
 * A blocking socket's address is read before the call, but only where the
 * kernel has just shown it can read it: rt_sigprocmask() with a `how` the
 * kernel refuses copies the 8-byte signal set from user memory first
 * (EFAULT if it cannot), then answers EINVAL without touching the mask.
 * An address of at most 28 bytes spans at most two pages, so its first and
 * last 8 bytes cover every page the kernel's own copy will touch (one
 * probe when both are in the same 4 KiB).
 *
 * A seccomp filter may answer that call itself, with any errno, and may be
 * installed at any time (by the program after kashim loaded, by one thread
 * only), so a check at load cannot vouch for later calls.  The answers are
 * trusted only when, in the same call and after the address's probes, a
 * kernel address gets EFAULT: EINVAL for the address then EFAULT for that
 * reference is the pair only the kernel gives.  Anything else (EPERM,
 * ENOSYS, EINVAL for everything, EFAULT for the address) means another
 * answerer or a bad address: the pointer is not read, and the connection
 * is judged after the call.  The reference goes last because a filter,
 * once installed, stays: one that arrived between two probes answers the
 * reference too.  Not caught: a filter that looks at the pointer's value
 * and answers EFAULT for kernel addresses only, as the kernel would.
 *
 * Left, and said in docs/limits.md:
 * - a thread that unmaps the address while another is inside a blocking
 *   connect() with it (between the probe and the copy, a few hundred
 *   nanoseconds) makes kashim fault where the kernel would answer EFAULT;
 * - a filter that kills on rt_sigprocmask, getsockopt or fcntl kills a
 *   program under kashim.  libc itself makes rt_sigprocmask at fork,
 *   posix_spawn, pthread_create, abort and system, so such a filter breaks
 *   most programs without kashim too; Docker's default profile and
 *   systemd's @system-service allow all three.  Every call a preload adds
 *   is one a filter could kill on: kashim keeps to ones libc makes. */
#define KASHIM_HOW_REFUSED 0x6b61 /* not SIG_BLOCK, SIG_UNBLOCK or SIG_SETMASK */
#define KASHIM_KERNEL_SIGSET ((_NSIG - 1) / 8)
/* No user pointer can be there: the kernel must answer EFAULT. */
#define KASHIM_UNREADABLE ((const void *)(~(uintptr_t)0 - 4095))

/* The answer to the probe at p: EINVAL when the kernel read 8 bytes there,
 * EFAULT when it could not, anything else from whatever answered instead
 * (0 for a filter's "success"). */
static int kashim_probe(const void *p)
{
	int saved = errno, answer = 0;

	if (syscall(SYS_rt_sigprocmask, KASHIM_HOW_REFUSED, p, NULL,
		    (unsigned long)KASHIM_KERNEL_SIGSET) != 0)
		answer = errno;
	errno = saved;
	return answer;
}

/* Once, at load, when filters are set: whether the kernel answers the
 * probe.  When not (an emulator, another signal-set size, a filter from
 * before exec), every connect() is judged after the call, with no probe. */
static bool kashim_probe_check(void)
{
	unsigned long set[2] = { 0, 0 };

	return kashim_probe(set) == EINVAL && kashim_probe(KASHIM_UNREADABLE) == EFAULT;
}

/* Copies the program's address: its length; 0 when it is too short or
 * too long to judge (the kernel refuses it, or it is AF_UNSPEC's
 * disconnect: no connection either way); -1 when the kernel did not show
 * it can read it, and then nothing is read: judge after the call.  No byte
 * past len is read (a 24-byte IPv6 address leaves copy's scope unset). */
static int kashim_copy_address(struct sockaddr_in6 *copy, const struct sockaddr *addr,
			       socklen_t len)
{
	uintptr_t first = (uintptr_t)addr;
	socklen_t n = len < sizeof *copy ? len : (socklen_t)sizeof *copy;

	if (n < sizeof(struct sockaddr_in) || len > sizeof(struct sockaddr_storage))
		return 0;
	if (kashim_probe(addr) != EINVAL)
		return -1;
	if ((first >> 12) != ((first + n - 1) >> 12) &&
	    kashim_probe((const void *)(first + n - KASHIM_KERNEL_SIGSET)) != EINVAL)
		return -1;
	if (kashim_probe(KASHIM_UNREADABLE) != EFAULT)
		return -1; /* something else answered: none of the above is the kernel's */
	__builtin_memcpy(copy, addr, n);
	return (int)n;
}

/* A blocking socket, as the kernel says now (the program may have changed
 * O_NONBLOCK since socket()); a failed look counts as not blocking. */
static bool kashim_blocking(int fd)
{
	int saved = errno;
	long flags = syscall(SYS_fcntl, fd, F_GETFL);

	errno = saved;
	return flags >= 0 && !(flags & O_NONBLOCK);
}

/* What becomes of a connection the program opens: left alone, configured
 * before the call, or judged after it.  The caller configures it, so that
 * the judging frames are gone from the stack when kashim_adopt runs. */
enum kashim_verdict { KASHIM_LEAVE, KASHIM_ADOPT, KASHIM_JUDGE_AFTER };

/* Not a socket that is not TCP, nor one the program switched keepalive
 * off on (respect mode).  Without filters the decision is made here, from
 * the fd: a socket kashim configured at socket() needs no second look
 * (the mark goes when the number is closed or overwritten through libc;
 * after a raw syscall(SYS_close) a socket from elsewhere on the number is
 * missed: docs/limits.md).  With filters, it
 * is judged by its address. */
static inline enum kashim_verdict kashim_to_judge(int fd, const struct kashim_config *cfg,
						  const char *where)
{
	if (!cfg->enabled || kashim_not_tcp_now(fd))
		return KASHIM_LEAVE;
	if (kashim_app_off_now(fd, cfg))
		return KASHIM_LEAVE;
	if (cfg->deferred)
		return KASHIM_JUDGE_AFTER;
	if (!kashim_marked(&kashim_ours, fd))
		return KASHIM_ADOPT;
	if (cfg->debug)
		kashim_debug_left(fd, cfg, where, "configured at socket()");
	return KASHIM_LEAVE;
}

/* With filters, before the real call (see above): by the address, where
 * it can be read.  Out of line: its copy of the address stays off the
 * wrappers' frames. */
static __attribute__((noinline)) enum kashim_verdict
kashim_judge_address(int fd, const struct sockaddr *addr, socklen_t len,
		     const struct kashim_config *cfg, const char *where)
{
	struct sockaddr_in6 copy;
	int copied;

	if (!__atomic_load_n(&kashim_probe_works, __ATOMIC_RELAXED) || !kashim_blocking(fd))
		return KASHIM_JUDGE_AFTER;
	copied = kashim_copy_address(&copy, addr, len);
	if (copied < 0)
		return KASHIM_JUDGE_AFTER;
	if (copied > 0 &&
	    kashim_covers(cfg, false, (const struct sockaddr *)&copy, (socklen_t)copied))
		return KASHIM_ADOPT;
	kashim_debug_left(fd, cfg, where, "not covered by KASHIM_SCOPE/ONLY/SKIP");
	return KASHIM_LEAVE;
}

/* With filters, when the address was not read before the call: judged by
 * the remote address the kernel accepted (a failed call leaves none).  The
 * keepalive options still hold; for a blocking connect() judged here (the
 * probe did not answer as the kernel does), the handshake is bounded by
 * the kernel's SYN retries, not by the user timeout. */
static __attribute__((noinline)) void kashim_after_connect(int fd,
							    const struct kashim_config *cfg,
							    const char *where)
{
	if (!cfg->enabled || kashim_marked(&kashim_not_tcp, fd))
		return;
	if (kashim_app_off_now(fd, cfg))
		return;
	if (kashim_covered_by_own_address(fd, cfg, false))
		kashim_adopt(fd, cfg, where);
	else
		kashim_debug_left(fd, cfg, where, "not covered by KASHIM_SCOPE/ONLY/SKIP");
}

/* Before a call that opens a connection: the verdict, and the options
 * set now when it is to be configured. */
static inline enum kashim_verdict kashim_opening(int fd, const struct kashim_config *cfg,
						 const struct sockaddr *addr, socklen_t len,
						 const char *where)
{
	enum kashim_verdict verdict = cfg ? kashim_to_judge(fd, cfg, where) : KASHIM_LEAVE;

	if (verdict == KASHIM_JUDGE_AFTER)
		verdict = kashim_judge_address(fd, addr, len, cfg, where);
	if (verdict == KASHIM_ADOPT)
		kashim_adopt(fd, cfg, where);
	return verdict;
}

/* After it: made during the load, the connection waits for the loader;
 * to be judged after the call, it is judged now.  errno as the call left
 * it. */
static inline void kashim_opened(int fd, const struct kashim_config *cfg,
				 enum kashim_verdict verdict, const char *where)
{
	if (!cfg && !kashim_not_tcp_now(fd))
		kashim_pending_add(fd, false);
	else if (verdict == KASHIM_JUDGE_AFTER)
		kashim_after_connect(fd, cfg, where);
}

/* ---- setsockopt() in force mode ---------------------------------------- */

/* Which of kashim's steps a call touches, or -1. */
static int kashim_step_of(const struct kashim_config *cfg, int level, int name)
{
	size_t i, steps = KASHIM_STEPS;

	if (cfg->user_timeout_mode == KASHIM_UT_OFF)
		steps--;
	for (i = 0; i < steps; i++)
		if (kashim_steps[i].level == level && kashim_steps[i].name == name)
			return (int)i;
	return -1;
}

/* Another number for a socket kashim configured: its inode is one kashim
 * recorded (a recorded number since reused still names its old socket's
 * inode, which only a live alias of that socket can have).  A scan, on the
 * rare path of a force-mode change to an unmarked descriptor. */
static bool kashim_known_socket(unsigned ino)
{
	int fd, top = __atomic_load_n(&kashim_inode_top, __ATOMIC_RELAXED);

	for (fd = 0; ino != 0 && fd <= top; fd++)
		if (__atomic_load_n(&kashim_inode[fd], __ATOMIC_RELAXED) == ino)
			return true;
	return false;
}

/* Is fd the socket kashim configured (under this number or another)? */
static bool kashim_claims(int fd)
{
	bool marked = kashim_marked(&kashim_ours, fd);
	unsigned ino, want = 0;

	if (marked && (unsigned)fd >= KASHIM_IDENTIFIED_FDS)
		return true;
	ino = kashim_identity(fd);
	if (fd >= 0 && (unsigned)fd < KASHIM_IDENTIFIED_FDS)
		want = __atomic_load_n(&kashim_inode[fd], __ATOMIC_RELAXED);
	if (marked && ino != 0 && ino == want)
		return true;
	if (marked)
		kashim_mark(&kashim_ours, fd, false); /* closed and reused: no claim */
	if (!kashim_known_socket(ino))
		return false;
	kashim_remember_inode(fd, ino); /* a dup of kashim's socket */
	kashim_mark(&kashim_ours, fd, true);
	return true;
}

/* Force mode, after the program's call succeeded: the kernel itself
 * validated it (so an invalid call got exactly libc's answer), and val is
 * known readable.  A change to one of kashim's values on a socket kashim
 * configured (under any number) is undone; the program sees success. */
static void kashim_force_undo(int fd, int level, int name, const void *val,
			      const struct kashim_config *cfg)
{
	int step = kashim_step_of(cfg, level, name), want, got;
	int saved = errno;

	if (step < 0)
		return;
	want = kashim_step_value(cfg, (size_t)step);
	__builtin_memcpy(&got, val, sizeof got);
	if ((step == 0 ? got != 0 : got == want) || !kashim_claims(fd))
		goto out;
	kashim_real_setsockopt(fd, level, name, &want, sizeof want);
	errno = saved;
	kashim_debug_left(fd, cfg, "setsockopt",
			  "KASHIM_MODE=force: the program's keepalive change not applied");
out:
	errno = saved;
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
		kashim_pending_add(fd, false);
	/* With filters the decision waits for connect() or accept(). */
	else if (cfg->enabled && !cfg->deferred)
		kashim_apply(fd, cfg, "socket");
	return fd;
}

KASHIM_API int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	const struct kashim_config *cfg = kashim_settings();
	connect_fn *next = KASHIM_NEXT(connect);
	enum kashim_verdict verdict = kashim_opening(fd, cfg, addr, len, "connect");
	int rc = next ? next(fd, addr, len) : (int)syscall(SYS_connect, fd, addr, len);

	kashim_opened(fd, cfg, verdict, "connect");
	return rc;
}

/* ---- TCP Fast Open ----------------------------------------------------- */

/* sendto(), sendmsg() and sendmmsg() with MSG_FASTOPEN open a connection
 * with no connect(): the kernel connects to the message's address and
 * sends the data in the SYN (tcp_sendmsg_fastopen), and sendmmsg() passes
 * its flags to each message.  Such a call is judged after it, and only
 * when it opened a connection: the socket had no remote end before the
 * call and has one after it.  A call the kernel refused opened nothing
 * and is passed over: EISCONN on a connection already made or accepted
 * (judged then, by its own rules), EOPNOTSUPP where Fast Open is off for
 * clients (the program's later connect() is judged), EFAULT or EINVAL for
 * the program's pointers, which kashim never reads.  The connection is
 * judged by the remote address the kernel holds (kashim_after_connect), as
 * a connect() judged after the call.  Every other call (UDP, established
 * TCP: hot paths) costs one test of the flags and is passed on at once. */

/* Whether the kernel holds a remote end for fd: connected, or connecting
 * (SO_PEERNAME answers from the SYN on, getpeername() only once the
 * handshake is done).  A short buffer is enough to learn it: the kernel
 * copies what fits of an IPv6 address.  errno kept. */
static __attribute__((noinline)) bool kashim_has_peer(int fd)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof addr;
	int saved = errno;
	bool peer = getsockopt(fd, SOL_SOCKET, SO_PEERNAME, &addr, &len) == 0;

	errno = saved;
	return peer;
}

/* Before the call: could it open a connection kashim has to judge?  A TCP
 * socket with no remote end yet.  Without filters, a socket kashim
 * configured at socket() has nothing left to decide: no system call. */
static bool kashim_fastopen_may_open(int fd)
{
	const struct kashim_config *cfg = kashim_settings();

	if (cfg && (!cfg->enabled || (!cfg->deferred && kashim_marked(&kashim_ours, fd))))
		return false;
	return !kashim_not_tcp_now(fd) && !kashim_has_peer(fd);
}

/* After it: the connection it opened, if any, judged as connect()'s. */
static void kashim_after_fastopen(int fd, bool may_open, const char *where)
{
	const struct kashim_config *cfg;
	enum kashim_verdict verdict;

	if (!may_open || !kashim_has_peer(fd))
		return; /* refused, or on a connection made before */
	cfg = kashim_settings();
	verdict = cfg ? kashim_to_judge(fd, cfg, where) : KASHIM_LEAVE;
	if (verdict == KASHIM_ADOPT)
		kashim_adopt(fd, cfg, where);
	kashim_opened(fd, cfg, verdict, where);
}

static __attribute__((noinline)) ssize_t kashim_sendto_fastopen(int fd, const void *buf,
								 size_t n, int flags,
								 const struct sockaddr *addr,
								 socklen_t len)
{
	sendto_fn *next = KASHIM_NEXT(sendto);
	bool may_open = kashim_fastopen_may_open(fd);
	ssize_t rc = next ? next(fd, buf, n, flags, addr, len)
			  : syscall(SYS_sendto, fd, buf, n, flags, addr, len);

	kashim_after_fastopen(fd, may_open, "sendto");
	return rc;
}

static __attribute__((noinline)) ssize_t kashim_sendmsg_fastopen(int fd,
								  const struct msghdr *msg,
								  int flags)
{
	sendmsg_fn *next = KASHIM_NEXT(sendmsg);
	bool may_open = kashim_fastopen_may_open(fd);
	ssize_t rc = next ? next(fd, msg, flags) : syscall(SYS_sendmsg, fd, msg, flags);

	kashim_after_fastopen(fd, may_open, "sendmsg");
	return rc;
}

static __attribute__((noinline)) int kashim_sendmmsg_fastopen(int fd, struct mmsghdr *msgs,
							       unsigned int n,
							       kashim_mmsg_flags flags)
{
	sendmmsg_fn *next = KASHIM_NEXT(sendmmsg);
	bool may_open = kashim_fastopen_may_open(fd);
	int rc = next ? next(fd, msgs, n, flags) : (int)syscall(SYS_sendmmsg, fd, msgs, n, flags);

	kashim_after_fastopen(fd, may_open, "sendmmsg");
	return rc;
}

KASHIM_API ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *addr, socklen_t len)
{
	sendto_fn *next;

	if (__builtin_expect((flags & MSG_FASTOPEN) && addr, 0))
		return kashim_sendto_fastopen(fd, buf, n, flags, addr, len);
	next = KASHIM_NEXT(sendto);
	return next ? next(fd, buf, n, flags, addr, len)
		    : syscall(SYS_sendto, fd, buf, n, flags, addr, len);
}

KASHIM_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	sendmsg_fn *next;

	if (__builtin_expect(flags & MSG_FASTOPEN, 0))
		return kashim_sendmsg_fastopen(fd, msg, flags);
	next = KASHIM_NEXT(sendmsg);
	return next ? next(fd, msg, flags) : syscall(SYS_sendmsg, fd, msg, flags);
}

KASHIM_API int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, kashim_mmsg_flags flags)
{
	sendmmsg_fn *next;

	if (__builtin_expect(flags & MSG_FASTOPEN, 0))
		return kashim_sendmmsg_fastopen(fd, msgs, n, flags);
	next = KASHIM_NEXT(sendmmsg);
	return next ? next(fd, msgs, n, flags) : (int)syscall(SYS_sendmmsg, fd, msgs, n, flags);
}

/* Accepted from a listener marked not TCP: the mark may have outlived its
 * socket (see kashim_not_tcp_now), so the connection itself says; a TCP
 * one clears the listener's stale mark. */
static bool kashim_from_non_tcp(int listener, int fd)
{
	if (!kashim_marked(&kashim_not_tcp, listener))
		return false;
	if (!kashim_answers_tcp(fd))
		return true;
	kashim_mark(&kashim_not_tcp, listener, false);
	return false;
}

static int kashim_accepted(int listener, int fd, const struct kashim_config *cfg,
			   const char *where)
{
	if (fd < 0)
		return fd;
	kashim_fresh_fd(fd);
	/* The address the program got back is not read: its buffer may be
	 * shorter than the address (or absent) however long *len says it is. */
	if (kashim_from_non_tcp(listener, fd))
		kashim_mark(&kashim_not_tcp, fd, true);
	else if (!cfg)
		kashim_pending_add(fd, true);
	else
		kashim_after_accept(listener, fd, cfg, where);
	return fd;
}

KASHIM_API int accept(int listener, struct sockaddr *addr, socklen_t *len)
{
	const struct kashim_config *cfg = kashim_settings();
	accept_fn *next = KASHIM_NEXT(accept);
	int fd = next ? next(listener, addr, len)
		      : (int)syscall(SYS_accept4, listener, addr, len, 0);

	return kashim_accepted(listener, fd, cfg, "accept");
}

KASHIM_API int accept4(int listener, struct sockaddr *addr, socklen_t *len, int flags)
{
	const struct kashim_config *cfg = kashim_settings();
	accept4_fn *next = KASHIM_NEXT(accept4);
	int fd = next ? next(listener, addr, len, flags)
		      : (int)syscall(SYS_accept4, listener, addr, len, flags);

	return kashim_accepted(listener, fd, cfg, "accept4");
}

/* Every call reaches the kernel first, so the program gets exactly libc's
 * answer to an invalid one.  A successful SO_KEEPALIVE is watched, so the
 * program's explicit choice is respected later; in force mode, a change to
 * kashim's settings is undone (with success). */
KASHIM_API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	const struct kashim_config *cfg = kashim_settings();
	int rc = kashim_real_setsockopt(fd, level, name, val, len), on;

	if (rc != 0 || !val || len < (socklen_t)sizeof on)
		return rc;
	if (level == SOL_SOCKET && name == SO_KEEPALIVE) {
		__builtin_memcpy(&on, val, sizeof on);
		kashim_app_off_set(fd, on == 0);
	}
	if (cfg && cfg->enabled && cfg->mode == KASHIM_MODE_FORCE)
		kashim_force_undo(fd, level, name, val, cfg);
	return rc;
}

/* ---- numbers that change hands ------------------------------------------ */

/* close(), dup2() and dup3() clear the number's marks (kashim_forget_fd)
 * before the real call: once the kernel frees a number, another thread's
 * socket() may get it at once, and its fresh marks must not be wiped.
 * Cleared a moment early, a mark costs at most one getsockopt later.  No
 * system call is added; errno and the result are the real call's. */
KASHIM_API int close(int fd)
{
	close_fn *next = KASHIM_NEXT(close);

	kashim_forget_fd(fd);
	return next ? next(fd) : (int)syscall(SYS_close, fd);
}

KASHIM_API int dup2(int oldfd, int newfd)
{
	dup2_fn *next = KASHIM_NEXT(dup2);

	if (oldfd != newfd)
		kashim_forget_fd(newfd);
	if (next)
		return next(oldfd, newfd);
	if (oldfd == newfd) /* before the load only: dup2's answer for it */
		return fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
	return (int)syscall(SYS_dup3, oldfd, newfd, 0);
}

KASHIM_API int dup3(int oldfd, int newfd, int flags)
{
	dup3_fn *next = KASHIM_NEXT(dup3);

	if (oldfd != newfd)
		kashim_forget_fd(newfd);
	return next ? next(oldfd, newfd, flags) : (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

#ifdef KASHIM_CLOSE_RANGE
/* A range is cleared after the call, and only when it closed (not with
 * CLOSE_RANGE_CLOEXEC, which closes nothing now): clearing a range first
 * would drop the marks of sockets a failed call left open.  A socket()
 * another thread makes in the range between the two loses its marks: one
 * getsockopt at its connect(). */
KASHIM_API int close_range(unsigned int fd, unsigned int max_fd, int flags)
{
	close_range_fn *next = KASHIM_NEXT(close_range);
	int rc = next ? next(fd, max_fd, flags) : (int)syscall(SYS_close_range, fd, max_fd, flags);

	if (rc == 0 && !((unsigned)flags & CLOSE_RANGE_CLOEXEC))
		kashim_forget_range(fd, max_fd);
	return rc;
}

/* glibc's closefrom() closes every number from lowfd or aborts. */
KASHIM_API void closefrom(int lowfd)
{
	closefrom_fn *next = KASHIM_NEXT(closefrom);
	int saved;

	if (next)
		next(lowfd);
	else
		(void)syscall(SYS_close_range, lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0);
	saved = errno;
	kashim_forget_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U);
	errno = saved;
}
#endif
