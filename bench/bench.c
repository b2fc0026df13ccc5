/* SPDX-License-Identifier: MIT */
/* bench WHAT MODE ITERATIONS: time one kind of socket work, nanoseconds
 * per operation on stdout.
 *   WHAT  socket   socket() + close()
 *         connect  socket(), connect() to a loopback listener, accept(),
 *                  close() both (with SO_LINGER 0: no TIME_WAIT pile-up)
 *         rss      make and close ITERATIONS sockets, print VmRSS in kB
 *         udp-sendto   sendto() of one byte to a UDP socket on loopback
 *         udp-sendmsg  the same with sendmsg()
 *         udp-connect  socket(AF_INET, SOCK_DGRAM), connect() to loopback,
 *                      close()
 *         unix-accept  connect() and accept() of an AF_UNIX stream
 *                      connection (abstract address), close() both
 *         (paths kashim leaves alone: MODE does not matter for them)
 *   MODE  none     the program sets nothing
 *         floor    the program sets the five options kashim sets, itself:
 *                  the least any keepalive shim can cost
 * Heap allocations made during the loop are counted when countalloc.so is
 * preloaded, and printed as a second number. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void set_floor(int fd)
{
	static const int opts[][3] = {
		{ SOL_SOCKET, SO_KEEPALIVE, 1 }, { IPPROTO_TCP, TCP_KEEPIDLE, 15 },
		{ IPPROTO_TCP, TCP_KEEPINTVL, 15 }, { IPPROTO_TCP, TCP_KEEPCNT, 9 },
		{ IPPROTO_TCP, TCP_USER_TIMEOUT, 150000 },
	};
	size_t i;

	for (i = 0; i < sizeof opts / sizeof opts[0]; i++)
		setsockopt(fd, opts[i][0], opts[i][1], &opts[i][2], sizeof opts[i][2]);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static unsigned long allocations(void)
{
	unsigned long *count = dlsym(RTLD_DEFAULT, "countalloc_total");

	return count ? __atomic_load_n(count, __ATOMIC_RELAXED) : 0;
}

/* The paths kashim must leave (nearly) free: UDP sends, a UDP connect(),
 * an AF_UNIX accept().  Returns nanoseconds per operation, or -1. */
static double non_tcp_work(const char *what, long n)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "\0kashim-bench-" };
	socklen_t len = sizeof in, unlen;
	char byte = 'b';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_name = &in, .msg_namelen = sizeof in, .msg_iov = &iov,
			      .msg_iovlen = 1 };
	int unix_side = !strcmp(what, "unix-accept");
	int target = socket(unix_side ? AF_UNIX : AF_INET, unix_side ? SOCK_STREAM : SOCK_DGRAM, 0);
	int sender = socket(AF_INET, SOCK_DGRAM, 0);
	double start;
	long i;

	snprintf(un.sun_path + 14, sizeof un.sun_path - 14, "%d", (int)getpid());
	unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 14 + strlen(un.sun_path + 14));
	if (target < 0 || sender < 0 ||
	    (unix_side ? bind(target, (struct sockaddr *)&un, unlen) != 0 || listen(target, 128) != 0
		       : bind(target, (struct sockaddr *)&in, sizeof in) != 0 ||
				 getsockname(target, (struct sockaddr *)&in, &len) != 0)) {
		perror("bench: target");
		return -1;
	}
	start = now_ns();
	for (i = 0; i < n; i++) {
		int fd, a;
		if (!strcmp(what, "udp-sendto")) {
			if (sendto(sender, &byte, 1, 0, (struct sockaddr *)&in, sizeof in) != 1)
				goto fail;
		} else if (!strcmp(what, "udp-sendmsg")) {
			if (sendmsg(sender, &msg, 0) != 1)
				goto fail;
		} else if (!strcmp(what, "udp-connect")) {
			fd = socket(AF_INET, SOCK_DGRAM, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof in) != 0)
				goto fail;
			close(fd);
		} else {
			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&un, unlen) != 0 ||
			    (a = accept(target, NULL, NULL)) < 0)
				goto fail;
			close(a);
			close(fd);
		}
	}
	return (now_ns() - start) / (double)n;
fail:
	perror(what);
	return -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	struct linger linger = { 1, 0 };
	int floor, listener = -1;
	long i, n;
	unsigned long before;
	double start;

	if (argc != 4) {
		fprintf(stderr, "usage: bench socket|connect|rss|udp-sendto|udp-sendmsg|udp-connect|"
				"unix-accept none|floor ITERATIONS\n");
		return 2;
	}
	floor = !strcmp(argv[2], "floor");
	n = atol(argv[3]);
	if (!strncmp(argv[1], "udp-", 4) || !strcmp(argv[1], "unix-accept")) {
		double ns;
		before = allocations();
		ns = non_tcp_work(argv[1], n);
		if (ns < 0)
			return 1;
		printf("%.1f %lu\n", ns, allocations() - before);
		return 0;
	}
	if (!strcmp(argv[1], "connect")) {
		listener = socket(AF_INET, SOCK_STREAM, 0);
		if (floor)
			set_floor(listener);
		if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
		    listen(listener, 128) != 0 ||
		    getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
			perror("bench: listener");
			return 1;
		}
	}
	before = allocations();
	start = now_ns();
	for (i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("bench: socket");
			return 1;
		}
		if (floor)
			set_floor(fd);
		if (listener >= 0) {
			int a;
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
			if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
			    (a = accept(listener, NULL, NULL)) < 0) {
				perror("bench: connect/accept");
				return 1;
			}
			close(a);
		}
		close(fd);
	}
	if (!strcmp(argv[1], "rss")) {
		char line[256];
		FILE *f = fopen("/proc/self/status", "r");
		while (f && fgets(line, sizeof line, f))
			if (!strncmp(line, "VmRSS:", 6))
				printf("%ld %lu\n", atol(line + 6), allocations() - before);
		if (f)
			fclose(f);
		return 0;
	}
	printf("%.1f %lu\n", (now_ns() - start) / (double)n, allocations() - before);
	return 0;
}
