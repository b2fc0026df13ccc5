/* SPDX-License-Identifier: MIT */
/* Opening files the command is pointed at (an environment file, a program,
 * its libraries, --library) without trusting them: a FIFO or a device must
 * not block or feed us forever, a directory or /proc file must not pass as
 * empty. */
#define _GNU_SOURCE
#include "cli.h"

#include "../config.h"

#include <errno.h>
#include <limits.h>
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

ssize_t read_text(const char *path, char *buf, size_t size, char *why, size_t why_size)
{
	struct stat st;
	ssize_t n;
	int fd = open_regular(path, &st, why, why_size);

	if (fd < 0)
		return -1;
	n = read_at_most(fd, buf, size - 1, why, why_size);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/* --- text from the system, on its way out ------------------------------ */

/* Chunks of at most this many bytes go through the library's escaper,
 * whose line holds KASHIM_LINE_MAX bytes: 4 out for 1 in at most. */
#define ESCAPE_CHUNK 100

const char *escaped(const char *s, char *out, size_t size)
{
	struct kashim_line l;
	size_t len = strlen(s), off, used = 0;

	if (!size)
		return "";
	out[0] = 0;
	for (off = 0; off < len; off += ESCAPE_CHUNK) {
		size_t n = len - off < ESCAPE_CHUNK ? len - off : ESCAPE_CHUNK;
		kashim_line_start(&l);
		kashim_line_put_escaped(&l, s + off, n, n);
		if (used + l.len + 4 > size) { /* room for "..." and the NUL */
			snprintf(out + used, size - used, "...");
			return out;
		}
		memcpy(out + used, l.buf, l.len);
		used += l.len;
		out[used] = 0;
	}
	return out;
}

const char *escaped_n(const char *s, size_t n, char *out, size_t size)
{
	char part[ESCAPE_CHUNK * 4 + 1];

	snprintf(part, sizeof part, "%.*s", (int)(n < ESCAPE_CHUNK ? n : ESCAPE_CHUNK), s);
	escaped(part, out, size);
	if (n > ESCAPE_CHUNK && strlen(out) + 4 <= size)
		strcat(out, "...");
	return out;
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 if there is
 * none: a byte that is not UTF-8. */
static size_t utf8_length(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f; /* U+D800..U+DFFF */
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (i = 1; i < n; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0; /* also stops at the NUL */
	return n;
}

/* A control character: C0, DEL, or C1 (U+0080..U+009F, "\xc2\x80"..). */
static bool is_control(const unsigned char *s, size_t n)
{
	return (n == 1 && (s[0] < 0x20 || s[0] == 0x7f)) || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0);
}

int table_text_width(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	int shown = 0;

	for (; *s && shown < INT_MAX; shown++) {
		size_t n = utf8_length(s);
		s += n ? n : 1;
	}
	return shown;
}

void put_table_text(FILE *f, const char *text, int width)
{
	const unsigned char *s = (const unsigned char *)text;
	int shown = 0;

	while (*s) {
		size_t n = utf8_length(s);
		if (!n || is_control(s, n)) {
			putc('?', f);
			s += n ? n : 1;
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
		shown++;
	}
	for (; shown < width; shown++)
		putc(' ', f);
}

void put_json_string(FILE *f, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	putc('"', f);
	while (*s) {
		size_t n = utf8_length(s);
		if (!n) {
			fprintf(f, "\\\\x%02x", *s++); /* the text \xHH, as in messages */
			continue;
		}
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if (is_control(s, n))
			fprintf(f, "\\u%04x", n == 1 ? s[0] : s[1]);
		else
			fwrite(s, 1, n, f);
		s += n;
	}
	putc('"', f);
}

void put_prom_label_value(FILE *f, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i;

	while (*s) {
		size_t n = utf8_length(s);
		if (n && (*s == '"' || *s == '\\'))
			fprintf(f, "\\%c", *s);
		else if (n == 1 && *s == '\n')
			fputs("\\n", f);
		else if (!n || is_control(s, n))
			for (i = 0; i < (n ? n : 1); i++)
				fprintf(f, "\\\\x%02x", s[i]); /* the text \xHH */
		else
			fwrite(s, 1, n, f);
		s += n ? n : 1;
	}
}

/* Bytes as the cgroup mode's messages show them: printable ASCII and valid
 * UTF-8 as they are; control bytes (C1 too), space, backslash and bytes
 * that are not UTF-8 as \xHH, so no name can move the cursor, colour the
 * terminal, split a line or pose as a field.  Status's names and every
 * message of attach and detach naming a cgroup go through here, so a path
 * reads the same in both.  Here, below both cgroup.c and cgbpf.c, so that
 * the BPF layer depends on nothing above it. */
void cgroup_print_escaped(FILE *f, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i;

	if (f == stderr)
		fflush(stdout); /* the lines in their order */
	while (*s) {
		size_t n = utf8_length(s);
		if (!n || is_control(s, n) || (n == 1 && (*s == ' ' || *s == '\\')))
			for (i = 0; i < (n ? n : 1); i++)
				fprintf(f, "\\x%02x", s[i]);
		else
			fwrite(s, 1, n, f);
		s += n ? n : 1;
	}
}
