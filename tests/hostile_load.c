/* Preloaded before libkashim.so: its constructor, which runs before
 * kashim's, starts 4 threads with 16 KiB stacks that call socket() in a
 * loop, and a thread that signals the main thread, whose handler runs on a
 * 4 KiB alternate stack and calls socket(), connect() and setsockopt();
 * then the main thread makes a socket, which loads kashim's configuration
 * (a large file) while all of that goes on.  Any crash kills the program;
 * what went wrong otherwise is written to HOSTILE_REPORT, one line:
 *   "threads N sockets, errno changed M times, signals S, last-during-load K"
 * where K is the keepalive flag, after the load, of a socket a thread made
 * while the load was under way (kashim configures those afterwards).
 * With HOSTILE_STACK=FILE instead, the first socket() (the one that loads)
 * runs on a measured thread, and FILE gets "loader BYTES". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stack_depth.h"

#define THREADS 4
#define ROUNDS 300

static int stop, sockets, errno_changed, signals, keep_fd = -1;
static pthread_t main_thread;

static void on_signal(int sig)
{
	int saved = errno, one = 1, fd;
	struct sockaddr_in nowhere = { .sin_family = AF_INET };

	(void)sig;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		connect(fd, (struct sockaddr *)&nowhere, sizeof nowhere);
		close(fd);
	}
	__atomic_add_fetch(&signals, 1, __ATOMIC_RELAXED);
	errno = saved;
}

static void *maker(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < ROUNDS && !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		int fd;
		errno = 0;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			continue;
		if (errno != 0)
			__atomic_add_fetch(&errno_changed, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sockets, 1, __ATOMIC_RELAXED);
		if (i == 0 && __atomic_load_n(&keep_fd, __ATOMIC_RELAXED) < 0)
			__atomic_store_n(&keep_fd, fd, __ATOMIC_RELAXED); /* kept open */
		else
			close(fd);
	}
	return NULL;
}

static void *signaller(void *arg)
{
	struct timespec tick = { 0, 200000 };
	int i;

	(void)arg;
	for (i = 0; i < 2000 && !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		pthread_kill(main_thread, SIGUSR1);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

static void *first_socket(void *arg)
{
	close(socket(AF_INET, SOCK_STREAM, 0));
	return arg;
}

static void measure_loader(const char *path)
{
	FILE *out = fopen(path, "w");

	if (out) {
		fprintf(out, "loader %zu\n", stack_depth(first_socket, NULL));
		fclose(out);
	}
}

__attribute__((constructor)) static void hostile_load(void)
{
	static char altstack[4096];
	const char *report = getenv("HOSTILE_REPORT");
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t t[THREADS + 1];
	int i, fd, on = -1, out;
	socklen_t len = sizeof on;
	char line[200];

	if (getenv("HOSTILE_STACK"))
		measure_loader(getenv("HOSTILE_STACK"));
	if (!report)
		return;
	main_thread = pthread_self();
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 16384);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], &attr, maker, NULL);
	pthread_create(&t[THREADS], NULL, signaller, NULL);
	errno = 0;
	fd = socket(AF_INET, SOCK_STREAM, 0); /* loads kashim, unless a thread did */
	if (fd >= 0 && errno != 0)
		__atomic_add_fetch(&errno_changed, 1, __ATOMIC_RELAXED);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t[THREADS], NULL);
	getsockopt(keep_fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len);
	snprintf(line, sizeof line,
		 "threads %d sockets, errno changed %d times, signals %d, last-during-load %d\n",
		 sockets, errno_changed, signals, on);
	out = open(report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		if (write(out, line, strlen(line)) < 0)
			perror("write");
		close(out);
	}
}
