/* SPDX-License-Identifier: MIT */
/* Another interposer of socket() and connect(), as proxychains or torsocks
 * would be: it counts the calls and passes them on with RTLD_NEXT.  Stacked
 * before or after kashim, both must see the calls and kashim's options must
 * still be set.  The count goes to the file named by WRAP_REPORT at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static unsigned long wrap_calls;

__attribute__((visibility("default"))) int socket(int domain, int type, int protocol)
{
	int (*next)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");

	__atomic_fetch_add(&wrap_calls, 1, __ATOMIC_RELAXED);
	return next(domain, type, protocol);
}

__attribute__((visibility("default"))) int connect(int fd, const struct sockaddr *a, socklen_t l)
{
	int (*next)(int, const struct sockaddr *, socklen_t) =
		(int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");

	__atomic_fetch_add(&wrap_calls, 1, __ATOMIC_RELAXED);
	return next(fd, a, l);
}

__attribute__((destructor)) static void wrap_report(void)
{
	const char *path = getenv("WRAP_REPORT");
	FILE *f = path ? fopen(path, "w") : NULL;

	if (f) {
		fprintf(f, "%lu\n", wrap_calls);
		fclose(f);
	}
}
