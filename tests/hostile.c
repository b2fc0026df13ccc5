/* Hostile calls for tests/t_hostile_lib.sh: what a careless or malicious
 * program does to the calls kashim wraps.
 *
 *   hostile calls     bad pointers and invalid values; prints one line per
 *                     call, "NAME rc errno", to be compared with the same
 *                     run without kashim (the program must get what libc
 *                     gives, in every mode)
 *   hostile reuse     force mode: a number kashim configured, closed and
 *                     reused (a socket from elsewhere, dup2): the program's
 *                     own setsockopt applies; prints "NAME idle"
 *   hostile stderr2   fd 2 closed (at start or now): a socket becomes fd 2, then
 *                     more sockets are made under KASHIM_DEBUG; prints what
 *                     the peer of fd 2 received
 *   hostile one       one TCP socket (for stderr and two-copy checks)
 *   hostile stack     the stack each wrapped call uses on a thread, in
 *                     bytes, thread start-up included ("thread" alone) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stack_depth.h"

#define BAD ((void *)1)

static void said(const char *name, int rc)
{
	printf("%s %d %s\n", name, rc < 0 ? -1 : 0, rc < 0 ? strerrorname_np(errno) : "-");
}

static int listener(struct sockaddr_in *at)
{
	socklen_t len = sizeof *at;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	memset(at, 0, sizeof *at);
	at->sin_family = AF_INET;
	at->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)at, sizeof *at) || listen(l, 8) ||
	    getsockname(l, (struct sockaddr *)at, &len))
		return -1;
	return l;
}

static int set_int(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof v);
}

static int calls(void)
{
	struct sockaddr_in at;
	socklen_t len = sizeof at;
	int l = listener(&at), s, raw, zero = 0;
	long long wide = 100;

	s = socket(AF_INET, SOCK_STREAM, 0);
	said("connect-bad-addr", connect(s, BAD, sizeof at));
	said("connect-null-addr", connect(s, NULL, sizeof at));
	said("connect-short-len", connect(s, (struct sockaddr *)&at, 1));
	raw = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	said("connect-elsewhere-bad-addr", connect(raw, BAD, sizeof at));
	said("connect-unix-bad-addr", connect(socket(AF_UNIX, SOCK_STREAM, 0), BAD, 110));
	said("connect", connect(s, (struct sockaddr *)&at, sizeof at));
	said("accept-bad-addr", accept(l, BAD, &len));
	said("connect2", connect(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&at, sizeof at));
	said("accept-bad-len", accept(l, (struct sockaddr *)&at, BAD));
	said("connect3", connect(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&at, sizeof at));
	said("accept4-bad-addr", accept4(l, BAD, &len, 0));
	said("setsockopt-keepalive-null", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, NULL, 4));
	said("setsockopt-keepalive-bad", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, BAD, 4));
	said("setsockopt-keepalive-len0", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &zero, 0));
	said("setsockopt-keepalive-len2", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &zero, 2));
	said("setsockopt-keepcnt-0", set_int(s, IPPROTO_TCP, TCP_KEEPCNT, 0));
	said("setsockopt-keepcnt-128", set_int(s, IPPROTO_TCP, TCP_KEEPCNT, 128));
	said("setsockopt-keepidle-40000", set_int(s, IPPROTO_TCP, TCP_KEEPIDLE, 40000));
	said("setsockopt-keepintvl-neg", set_int(s, IPPROTO_TCP, TCP_KEEPINTVL, -1));
	said("setsockopt-user-timeout-neg", set_int(s, IPPROTO_TCP, TCP_USER_TIMEOUT, -1));
	said("setsockopt-keepidle-bad", setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, BAD, 4));
	said("setsockopt-keepidle-null", setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, NULL, 4));
	said("setsockopt-keepidle-len8", setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &wide, 8));
	said("setsockopt-notsock", set_int(1, IPPROTO_TCP, TCP_KEEPIDLE, 50));
	said("setsockopt-badfd", set_int(-1, SOL_SOCKET, SO_KEEPALIVE, 0));
	return 0;
}

static int idle_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof v;

	getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len);
	return v;
}

static int reuse(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), t, u;

	set_int(s, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	printf("own %d\n", idle_of(s));
	close(s);
	t = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); /* takes s's number */
	set_int(t, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	printf("elsewhere %d %s\n", idle_of(t), t == s ? "same-number" : "other-number");
	s = socket(AF_INET, SOCK_STREAM, 0);
	u = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	dup2(u, s);
	set_int(s, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	printf("dup2 %d\n", idle_of(s));
	return 0;
}

static int stderr2(void)
{
	struct sockaddr_in at;
	char got[600];
	ssize_t n;
	int l, c, a;

	close(2); /* closed at start, or closed now: either way fd 2 is reused */
	l = listener(&at); /* fd 2 */
	c = socket(AF_INET, SOCK_STREAM, 0);
	connect(c, (struct sockaddr *)&at, sizeof at);
	a = accept(l, NULL, NULL);
	close(l);
	dup2(a, 2); /* the program's own socket, now at fd 2 */
	close(a);
	socket(AF_INET, SOCK_STREAM, 0); /* a debug line would go to fd 2 */
	n = recv(c, got, sizeof got - 1, MSG_DONTWAIT);
	got[n > 0 ? n : 0] = 0;
	printf("peer read %zd bytes%s%s\n", n > 0 ? n : 0, n > 0 ? ": " : "", got);
	return 0;
}

static struct sockaddr_in stack_at;
static int stack_listener, stack_fd;

static void *call_nothing(void *arg) { return arg; }
static void *call_socket(void *arg)
{
	stack_fd = socket(AF_INET, SOCK_STREAM, 0);
	return arg;
}
static void *call_connect(void *arg)
{
	connect(stack_fd, (struct sockaddr *)&stack_at, sizeof stack_at);
	return arg;
}
static void *call_accept(void *arg)
{
	close(accept(stack_listener, NULL, NULL));
	return arg;
}
static void *call_accept4(void *arg)
{
	close(accept4(stack_listener, NULL, NULL, SOCK_CLOEXEC));
	return arg;
}
static void *call_setsockopt(void *arg)
{
	set_int(stack_fd, IPPROTO_TCP, TCP_KEEPIDLE, 100);
	return arg;
}

static int stack(void)
{
	static const struct {
		const char *name;
		void *(*fn)(void *);
	} calls[] = {
		{ "socket", call_socket }, { "connect", call_connect }, { "accept", call_accept },
		{ "connect", call_connect }, { "accept4", call_accept4 },
		{ "setsockopt", call_setsockopt },
	};
	size_t base = stack_depth(call_nothing, NULL), i;

	printf("thread %zu\n", base);
	stack_listener = listener(&stack_at);
	for (i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		size_t d;
		if (calls[i].fn == call_connect)
			stack_fd = socket(AF_INET, SOCK_STREAM, 0);
		d = stack_depth(calls[i].fn, NULL);
		if (calls[i].fn != call_connect || i == 1)
			printf("%s %zu\n", calls[i].name, d);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "calls"))
		return calls();
	if (!strcmp(argv[1], "reuse"))
		return reuse();
	if (!strcmp(argv[1], "stderr2"))
		return stderr2();
	if (!strcmp(argv[1], "stack"))
		return stack();
	if (!strcmp(argv[1], "one"))
		return socket(AF_INET, SOCK_STREAM, 0) < 0;
	return 2;
}
