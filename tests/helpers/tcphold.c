/* SPDX-License-Identifier: MIT */
/* tcphold: a TCP client or server that holds its connection until killed,
 * built statically (gcc -static) for the cgroup mode's tests: no loader, so
 * no LD_PRELOAD can reach it.
 *
 *   tcphold serve PORT [own]     accept one connection on 127.0.0.1:PORT
 *   tcphold connect PORT [own]   connect to 127.0.0.1:PORT
 *   tcphold serve-on ADDR PORT   accept one connection on ADDR:PORT (IPv4
 *                                or IPv6, as :: for both)
 *   tcphold connect-to ADDR PORT connect to ADDR:PORT (an IPv6 address,
 *                                ::ffff:127.0.0.1 too, from an IPv6 socket)
 *
 * With "own" it sets its own keepalive before connect/listen: on, idle 100,
 * interval 20, count 3, user timeout 5000 ms; with "ownka" the same but no
 * user timeout.  "ready" on stdout once the
 * connection is up; then it reads the connection, and sends 64 KiB for
 * each line on stdin.  When the connection ends it prints "eof" or
 * "error STRERROR" (as a failed connect does) and exits 1: how the
 * dead-peer scenarios (tests/deadpeer.py) see it notice. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void own_settings(int fd, size_t n)
{
	static const struct { int level, name, value; } opt[] = {
		{ SOL_SOCKET, SO_KEEPALIVE, 1 }, { IPPROTO_TCP, TCP_KEEPIDLE, 100 },
		{ IPPROTO_TCP, TCP_KEEPINTVL, 20 }, { IPPROTO_TCP, TCP_KEEPCNT, 3 },
		{ IPPROTO_TCP, TCP_USER_TIMEOUT, 5000 },
	};
	size_t k;

	for (k = 0; k < n && k < sizeof opt / sizeof opt[0]; k++)
		if (setsockopt(fd, opt[k].level, opt[k].name, &opt[k].value, sizeof(int)) != 0)
			perror("tcphold: setsockopt");
}

static int ended(const char *what)
{
	printf("error %s (%s)\n", strerror(errno), what);
	fflush(stdout);
	return 1;
}

/* Reads the connection until it ends; a line on stdin sends 64 KiB. */
static int hold(int c)
{
	static char buf[65536];
	struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = 0, .events = POLLIN } };

	for (;;) {
		ssize_t n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return ended("poll");
		if (p[1].revents) {
			if (read(0, buf, sizeof buf) <= 0)
				p[1].fd = -1; /* stdin ended: just hold */
			else if (send(c, buf, sizeof buf, MSG_NOSIGNAL) < 0)
				return ended("send");
		}
		if (p[0].revents) {
			n = recv(c, buf, sizeof buf, 0);
			if (n == 0) {
				printf("eof\n");
				fflush(stdout);
				return 1;
			}
			if (n < 0)
				return ended("recv");
		}
	}
}

/* serve-on / connect-to ADDR PORT: any address, IPv4 or IPv6. */
static int by_address(int argc, char **argv)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct sockaddr *a;
	socklen_t len;
	int fd, c, one = 1, off = 0;

	if (argc < 4)
		return 2;
	memset(&a4, 0, sizeof a4);
	memset(&a6, 0, sizeof a6);
	if (inet_pton(AF_INET, argv[2], &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((unsigned short)atoi(argv[3]));
		a = (struct sockaddr *)&a4;
		len = sizeof a4;
	} else if (inet_pton(AF_INET6, argv[2], &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((unsigned short)atoi(argv[3]));
		a = (struct sockaddr *)&a6;
		len = sizeof a6;
	} else {
		fprintf(stderr, "tcphold: %s: not an address\n", argv[2]);
		return 2;
	}
	fd = socket(a->sa_family, SOCK_STREAM, 0);
	if (fd < 0)
		return 1;
	if (a->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	if (!strcmp(argv[1], "serve-on")) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a, len) || listen(fd, 8)) {
			perror("tcphold: listen");
			return 1;
		}
		if ((c = accept(fd, NULL, NULL)) < 0)
			return 1;
	} else if (connect(fd, a, len) != 0) {
		return ended("connect");
	} else {
		c = fd;
	}
	printf("ready\n");
	fflush(stdout);
	return hold(c);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	int fd, c, one = 1;

	if (argc > 1 && (!strcmp(argv[1], "serve-on") || !strcmp(argv[1], "connect-to")))
		return by_address(argc, argv);

	if (argc < 3) {
		fprintf(stderr, "usage: tcphold serve|connect PORT [own|ownka]\n");
		return 2;
	}
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)atoi(argv[2]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 1;
	if (argc > 3 && !strcmp(argv[3], "own"))
		own_settings(fd, 5);
	else if (argc > 3 && !strcmp(argv[3], "ownka"))
		own_settings(fd, 4); /* all but the user timeout */
	if (!strcmp(argv[1], "serve")) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
			perror("tcphold: listen");
			return 1;
		}
		if ((c = accept(fd, NULL, NULL)) < 0)
			return 1;
	} else if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		return ended("connect");
	} else {
		c = fd;
	}
	printf("ready\n");
	fflush(stdout);
	return hold(c);
}
