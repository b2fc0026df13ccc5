/* SPDX-License-Identifier: MIT */
/* Standard output into a file that is replaced whole or not at all: a
 * temporary file in the file's own directory (so that rename(2) cannot
 * cross a file system), written, flushed to disk, then renamed over the
 * file.  A reader (node_exporter's textfile collector) sees the old file
 * or the new one, never a part; a failed run leaves the old one, whose
 * age then says that runs fail.  The temporary name starts with a dot and
 * does not end in .prom, so the collector never reads it.
 *
 * Only a regular file, or nothing, is ever replaced: rename(2) would as
 * readily put a file in place of /dev/null, a FIFO, a socket or a
 * symbolic link.  A symbolic link at the name is refused, neither
 * followed (the files would then be written where the link points, a
 * place the operator did not name: a link in /tmp could send root's file
 * into /etc) nor replaced (the operator's link would silently become a
 * file, and what it pointed to go stale); links in the directory part are
 * the operator's path and are followed.  The name is checked before the
 * temporary file is made and again just before the rename; between that
 * last check and rename(2) a window remains (Linux has no rename that
 * replaces only a regular file), open only to whoever may write the
 * directory. */
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

static const char *kind_of(mode_t mode)
{
	return S_ISCHR(mode) ? "a character device" : S_ISBLK(mode) ? "a block device" :
	       S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" :
	       S_ISDIR(mode) ? "a directory" : S_ISLNK(mode) ? "a symbolic link" : "not a file";
}

/* Whether o->path names a regular file or nothing (the name itself, not
 * what a link there points to); else says why. */
static bool may_replace(const struct stdout_file *o, struct stat *old)
{
	char shown[ESCAPED_PATH_MAX];
	struct stat st;

	old->st_nlink = 0; /* no file there */
	if (lstat(o->path, &st)) {
		if (errno == ENOENT)
			return true; /* a new file; a missing directory is mkostemp's to say */
		say_failed(o, "write", errno);
		return false;
	}
	if (S_ISREG(st.st_mode)) {
		*old = st;
		return true;
	}
	fprintf(stderr, "kashim: will not replace %s: it is %s; only a regular file is replaced%s\n",
		escaped(o->path, shown, sizeof shown), kind_of(st.st_mode),
		S_ISLNK(st.st_mode) ? " (name the file itself, not a link to it)" : "");
	return false;
}

/* fd moved above standard error: a descriptor among 0, 1 and 2 (one was
 * closed when audit started) would be closed or written as one of them. */
static int above_stdio(int fd)
{
	int high;

	if (fd > STDERR_FILENO)
		return fd;
	high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return high;
}

bool stdout_file_begin(struct stdout_file *o, const char *path)
{
	const char *slash = strrchr(path, '/');
	mode_t mask = umask(0);
	struct stat old;
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
	if (!may_replace(o, &old))
		return false;
	fd = mkostemp(o->tmp, O_CLOEXEC);
	if (fd < 0) {
		say_failed(o, "make a temporary file beside", errno);
		return false;
	}
	fd = above_stdio(fd);
	/* mkstemp makes it 0600: the reader is another user.  A file
	 * replaced keeps its owner and permissions (an operator's 0640 for
	 * node_exporter's group stays so), a new one gets the umask's.  A
	 * closed standard output is saved as closed (-1), and closed again
	 * after. */
	if (fd >= 0 && old.st_nlink && fchown(fd, old.st_uid, old.st_gid))
		old.st_mode = 0666 & ~mask; /* not ours to give away: the umask's */
	if (fd < 0 || fchmod(fd, old.st_nlink ? old.st_mode & 0777 : 0666 & ~mask) || fflush(stdout) ||
	    ((o->saved = dup(STDOUT_FILENO)) < 0 && errno != EBADF) || dup2(fd, STDOUT_FILENO) < 0) {
		say_failed(o, "write to", errno);
		if (fd >= 0)
			close(fd);
		if (o->saved >= 0)
			close(o->saved);
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
	if (o->saved >= 0) {
		dup2(o->saved, STDOUT_FILENO);
		close(o->saved);
	} else {
		close(STDOUT_FILENO);
	}
	clearerr(stdout);
	struct stat now;

	if (!err && keep && !may_replace(o, &now)) { /* it may have changed meanwhile */
		unlink(o->tmp);
		return false;
	}
	if (!err && keep && rename(o->tmp, o->path))
		err = errno;
	if (err || !keep)
		unlink(o->tmp);
	if (err)
		say_failed(o, "write", err);
	return !err;
}
