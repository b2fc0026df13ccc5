/* SPDX-License-Identifier: MIT */
/* Standard output into a file that is replaced whole or not at all: a
 * temporary file in the file's own directory (so that rename(2) cannot
 * cross a file system), written, flushed to disk, then renamed over the
 * file.  A reader (node_exporter's textfile collector) sees the old file
 * or the new one, never a part; a failed run leaves the old one, whose
 * age then says that runs fail.  The temporary name starts with a dot and
 * does not end in .prom, so the collector never reads it. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void say_failed(const struct stdout_file *o, const char *what, int err)
{
	char shown[ESCAPED_PATH_MAX];

	fprintf(stderr, "kashim: cannot %s %s: %s\n", what, escaped(o->path, shown, sizeof shown),
		strerror(err));
}

bool stdout_file_begin(struct stdout_file *o, const char *path)
{
	const char *slash = strrchr(path, '/');
	mode_t mask = umask(0);
	int fd;

	umask(mask);
	o->path = path;
	o->saved = -1;
	if (!*path || (slash && !slash[1]) ||
	    snprintf(o->tmp, sizeof o->tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0,
		     path, slash ? slash + 1 : path) >= (int)sizeof o->tmp) {
		char shown[ESCAPED_PATH_MAX];
		fprintf(stderr, "kashim: cannot write %s: not a file name\n",
			escaped(path, shown, sizeof shown));
		return false;
	}
	fd = mkostemp(o->tmp, O_CLOEXEC);
	if (fd < 0) {
		say_failed(o, "make a temporary file beside", errno);
		return false;
	}
	/* mkstemp makes it 0600: the reader is another user */
	if (fchmod(fd, 0666 & ~mask) || fflush(stdout) || (o->saved = dup(STDOUT_FILENO)) < 0 ||
	    dup2(fd, STDOUT_FILENO) < 0) {
		say_failed(o, "write to", errno);
		close(fd);
		unlink(o->tmp);
		return false;
	}
	close(fd);
	return true;
}

bool stdout_file_commit(struct stdout_file *o, bool keep)
{
	int err = 0;

	if (fflush(stdout) || ferror(stdout))
		err = errno ? errno : EIO;
	else if (fsync(STDOUT_FILENO))
		err = errno;
	dup2(o->saved, STDOUT_FILENO);
	close(o->saved);
	clearerr(stdout);
	if (!err && keep && rename(o->tmp, o->path))
		err = errno;
	if (err || !keep)
		unlink(o->tmp);
	if (err)
		say_failed(o, "write", err);
	return !err;
}
