/* SPDX-License-Identifier: MIT */
/* Reading the TCP sockets of a running process from outside it, shared by
 * kashim inspect (one process) and kashim audit (every process). */
#ifndef KASHIM_SOCKREAD_H
#define KASHIM_SOCKREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A TCP socket's address and port, IPv4 or IPv6: 28 bytes where a
 * sockaddr_storage takes 128 (audit keeps two per connection, and a busy
 * host has 100,000 connections). */
union sock_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* One TCP socket of the target, as the kernel has it. */
struct sock_info {
	int fd; /* the descriptor number in the target */
	unsigned long inode;
	bool mptcp;              /* IPPROTO_MPTCP: the options are its subflows' */
	int mptcp_subflows;      /* subflows besides the first; -1: unreadable */
	unsigned char state; /* tcpi_state: TCP_ESTABLISHED, TCP_LISTEN... */
	union sock_addr local, remote;
	/* -1: the kernel refused the read (MPTCP refuses TCP_USER_TIMEOUT),
	 * shown as "unknown", never as a value */
	int keepalive, idle, interval, count, user_timeout;
	unsigned rto_ms;    /* the retransmission timeout before any backoff */
	unsigned rto_max_ms; /* the cap of its exponential backoff */
};

enum proc_read_status {
	PROC_READ_OK,
	PROC_READ_NO_PROCESS, /* none with that id when the read began */
	PROC_READ_THREAD_ID,  /* the id of a thread, not of a process */
	PROC_READ_DENIED,     /* no right to its descriptors (errno in *err) */
	PROC_READ_EXITED,     /* it exited before or while it was read */
	PROC_READ_KERNEL_THREAD, /* a kernel thread: it has no descriptors */
};

typedef void sock_visit_fn(void *ctx, const struct sock_info *s);

/* Calls visit for every TCP socket of pid (getsockopt on a duplicate made
 * with pidfd_getfd(2)); never signals or stops the process.  Sockets
 * visited before a failure stay visited: the caller says it was partial. */
enum proc_read_status proc_read_sockets(long pid, sock_visit_fn *visit, void *ctx, int *err);

/* The id of a live thread of pid, through which /proc shows what the
 * process holds (its descriptors, exe, namespaces): pid itself, or another
 * thread when the main thread has exited and others run (pthread_exit in
 * main: /proc/PID/fd is then empty, /proc/PID/exe unreadable). */
long proc_live_task(long pid);

/* Runs fn in the network namespace of pid (setns there and back; entering
 * another needs CAP_SYS_ADMIN).  False when it could not enter it. */
bool netns_run(long pid, void (*fn)(void *ctx), void *ctx);

/* The device and inode of pid's network namespace, false if unreadable. */
bool netns_id(long pid, unsigned long long *id);

/* What sock_diag says of each TCP (and MPTCP) socket of a network
 * namespace, by inode: its timer, and the cgroup the socket belongs to
 * (the one of the process that created it, or of the listener it was
 * accepted on; INET_DIAG_CGROUP_ID, Linux 5.7; 0 when not said). */
enum { DIAG_TIMER_NONE, DIAG_TIMER_RETRANSMIT, DIAG_TIMER_KEEPALIVE, DIAG_TIMER_TIME_WAIT,
       DIAG_TIMER_ZERO_WINDOW };
struct diag_entry {
	unsigned long inode;
	unsigned char timer;
	unsigned expires_ms;
	unsigned char probes;
	unsigned long long cgroup_id;
};
struct diag_table {
	struct diag_entry *e;
	size_t n, cap;
	bool ok; /* false: no information could be had */
};
/* The table of pid's network namespace (entered, as netns_run). */
void diag_load(long pid, struct diag_table *t);
const struct diag_entry *diag_find(const struct diag_table *t, unsigned long inode);

/* The cgroup v2 path (from the mount's root) of the cgroup with this id,
 * by its file handle (needs CAP_DAC_READ_SEARCH); false if unknown. */
bool cgroup_path_of_id(unsigned long long id, char *out, size_t size);
/* The id of the cgroup at path (as in /proc/PID/cgroup); 0 if unknown. */
unsigned long long cgroup_id_of_path(const char *path);

const char *tcp_state_name(unsigned state);
void sockaddr_text(const union sock_addr *a, char *out, size_t size);
/* A process id as given on a command line: digits only, 1..4194304. */
bool parse_pid(const char *s, long *pid);

#endif
