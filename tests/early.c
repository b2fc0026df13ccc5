/* SPDX-License-Identifier: MIT */
/* Another preloaded library whose constructor makes a TCP socket before
 * (or after) kashim's constructor has run, depending on the LD_PRELOAD
 * order.  It writes what the kernel says of that socket to the file named
 * by EARLY_REPORT. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;

	getsockopt(fd, level, name, &v, &len);
	return v;
}

__attribute__((constructor)) static void early_socket(void)
{
	const char *path = getenv("EARLY_REPORT");
	char line[160];
	int fd, out, n;

	if (!path)
		return;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	n = snprintf(line, sizeof line,
		     "keepalive=%d idle=%d interval=%d count=%d user_timeout=%d\n",
		     opt(fd, SOL_SOCKET, SO_KEEPALIVE), opt(fd, IPPROTO_TCP, TCP_KEEPIDLE),
		     opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), opt(fd, IPPROTO_TCP, TCP_KEEPCNT),
		     opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
	close(fd);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		if (write(out, line, (size_t)n) != n)
			perror("early: write");
		close(out);
	}
}
