/* SPDX-License-Identifier: MIT */
/* Opening files the command is pointed at (an environment file, a program,
 * its libraries, --library) without trusting them: a FIFO or a device must
 * not block or feed us forever, a directory or /proc file must not pass as
 * empty. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	default: return "not a regular file";
	}
}

int open_regular(const char *path, struct stat *st, char *why, size_t why_size)
{
	/* O_NONBLOCK: opening a FIFO with no writer returns at once. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(why, why_size, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, st) != 0) {
		snprintf(why, why_size, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, why_size, "not a regular file (%s)", file_kind(st->st_mode));
		close(fd);
		return -1;
	}
	return fd;
}

ssize_t read_at_most(int fd, void *buf, size_t max, char *why, size_t why_size)
{
	size_t got = 0;

	while (got < max) {
		ssize_t n = pread(fd, (char *)buf + got, max - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_size, "%s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}
