/* SPDX-License-Identifier: MIT */
/* kashim doctor: can LD_PRELOAD reach this program?  Reads the ELF file
 * itself (no ldd, which may run the program). */
#define _GNU_SOURCE
#include "cli.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_SCRIPT_DEPTH 4

struct elf_file {
	const unsigned char *data;
	size_t size;
	const Elf64_Ehdr *eh;
};

static bool find_in_path(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	const char *p;

	if (strchr(name, '/')) {
		snprintf(out, size, "%s", name);
		return access(out, F_OK) == 0;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p;) {
		size_t len = strcspn(p, ":");
		snprintf(out, size, "%.*s/%s", (int)len, len ? p : ".", name);
		if (access(out, X_OK) == 0)
			return true;
		p += len;
		if (*p == ':')
			p++;
	}
	return false;
}

/* Limits on the work one file may cause.  The kernel itself loads at most
 * 64 KiB of program headers; the others are far above real programs. */
#define ELF_MAP_MAX (1UL << 30)     /* a larger file: cannot tell */
#define ELF_PHDR_BYTES_MAX 65536
#define ELF_SECTIONS_MAX 65536
#define ELF_SYMBOLS_MAX (1UL << 22)
#define ELF_DYN_MAX 4096

struct elf_buf {
	const unsigned char *data;
	size_t size;
	Elf64_Ehdr eh;
	Elf64_Shdr dynsym, dynamic, symstr, dynstr;
	bool has_dynsym, has_dynamic;
};

static bool in_buf(const struct elf_buf *b, Elf64_Off off, Elf64_Xword len)
{
	return off <= b->size && len <= b->size - off;
}

/* Copies (no unaligned access) len bytes at off, if they are there. */
static bool fetch(const struct elf_buf *b, Elf64_Off off, void *out, size_t len)
{
	if (!in_buf(b, off, len))
		return false;
	memcpy(out, b->data + off, len);
	return true;
}

/* The NUL-terminated string at off inside table t, or NULL. */
static const char *string_at(const struct elf_buf *b, const Elf64_Shdr *t, Elf64_Xword off)
{
	const char *s;

	if (off >= t->sh_size)
		return NULL;
	s = (const char *)b->data + t->sh_offset + off;
	return memchr(s, 0, t->sh_size - off) ? s : NULL;
}

/* A file that cannot be judged: nothing else read from it is kept. */
static bool bad(struct elf_facts *out, enum elf_state state, const char *problem)
{
	memset(out, 0, sizeof *out);
	out->state = state;
	out->problem = problem;
	return false;
}

static bool read_program_headers(const struct elf_buf *b, struct elf_facts *out)
{
	const Elf64_Ehdr *eh = &b->eh;
	unsigned i;

	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return bad(out, ELF_MALFORMED, "not an executable: an object file or a core dump");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > ELF_PHDR_BYTES_MAX)
		return bad(out, ELF_MALFORMED, "program headers the kernel would not load");
	if (!in_buf(b, eh->e_phoff, (Elf64_Xword)eh->e_phnum * sizeof(Elf64_Phdr)))
		return bad(out, ELF_TRUNCATED, "the file ends before its program headers");
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		fetch(b, eh->e_phoff + (Elf64_Off)i * sizeof ph, &ph, sizeof ph);
		if ((ph.p_type == PT_LOAD || ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) &&
		    !in_buf(b, ph.p_offset, ph.p_filesz))
			return bad(out, ELF_TRUNCATED, "the file ends inside a segment it loads");
		if (ph.p_type == PT_INTERP && !out->interp) {
			const char *s = (const char *)b->data + ph.p_offset;
			if (ph.p_filesz < 2 || ph.p_filesz > 4096 || s[ph.p_filesz - 1] != 0 ||
			    strlen(s) != ph.p_filesz - 1)
				return bad(out, ELF_MALFORMED, "an interpreter name that is not a path");
			out->interp = s;
		}
	}
	return true;
}

static bool section_header(const struct elf_buf *b, Elf64_Xword i, Elf64_Shdr *sh)
{
	return fetch(b, b->eh.e_shoff + i * sizeof *sh, sh, sizeof *sh);
}

/* A table's string section (sh_link), checked to be inside the file. */
static bool linked_strings(const struct elf_buf *b, const Elf64_Shdr *sh, Elf64_Xword count,
			   Elf64_Shdr *str)
{
	return sh->sh_link < count && section_header(b, sh->sh_link, str) &&
	       str->sh_type == SHT_STRTAB && in_buf(b, str->sh_offset, str->sh_size);
}

/* One pass over the section headers: the first .dynsym and .dynamic, Go's
 * sections, and whether any section's contents lie past the end. */
static bool read_sections(struct elf_buf *b, struct elf_facts *out)
{
	const Elf64_Ehdr *eh = &b->eh;
	Elf64_Xword count = eh->e_shnum, names_index = eh->e_shstrndx, i;
	Elf64_Shdr first, names;
	bool have_names;

	if (eh->e_shoff == 0)
		return true; /* stripped of section headers: nothing more to learn */
	if (eh->e_shentsize != sizeof(Elf64_Shdr))
		return bad(out, ELF_MALFORMED, "section headers of the wrong size");
	if (!section_header(b, 0, &first))
		return bad(out, ELF_TRUNCATED, "the file ends before its section headers");
	if (count == 0)
		count = first.sh_size; /* more than 65279 sections: the count is here */
	if (names_index == SHN_XINDEX)
		names_index = first.sh_link;
	if (count > ELF_SECTIONS_MAX)
		return bad(out, ELF_MALFORMED, "more sections than any program has");
	if (!in_buf(b, eh->e_shoff, count * sizeof(Elf64_Shdr)))
		return bad(out, ELF_TRUNCATED, "the file ends before its section headers");
	have_names = names_index < count && section_header(b, names_index, &names) &&
		     in_buf(b, names.sh_offset, names.sh_size);
	for (i = 0; i < count; i++) {
		Elf64_Shdr sh;
		const char *name;
		section_header(b, i, &sh);
		if (sh.sh_type != SHT_NOBITS && !in_buf(b, sh.sh_offset, sh.sh_size))
			return bad(out, ELF_TRUNCATED, "the file ends inside a section");
		name = have_names ? string_at(b, &names, sh.sh_name) : NULL;
		if (name && (!strcmp(name, ".go.buildinfo") || !strcmp(name, ".note.go.buildid")))
			out->go = true;
		if (sh.sh_type == SHT_DYNSYM && !b->has_dynsym && sh.sh_entsize == sizeof(Elf64_Sym))
			b->has_dynsym = linked_strings(b, &sh, count, &b->symstr), b->dynsym = sh;
		if (sh.sh_type == SHT_DYNAMIC && !b->has_dynamic)
			b->has_dynamic = linked_strings(b, &sh, count, &b->dynstr), b->dynamic = sh;
	}
	return true;
}

/* Does the dynamic symbol table import one of the calls kashim wraps? */
static bool imports_socket_calls(const struct elf_buf *b)
{
	static const char *const calls[] = { "socket", "connect", "accept", "accept4" };
	Elf64_Xword n = b->dynsym.sh_size / sizeof(Elf64_Sym), k;
	size_t c;

	if (n > ELF_SYMBOLS_MAX)
		n = ELF_SYMBOLS_MAX;
	for (k = 0; k < n; k++) {
		Elf64_Sym sym;
		const char *name;
		fetch(b, b->dynsym.sh_offset + k * sizeof sym, &sym, sizeof sym);
		if (sym.st_shndx != SHN_UNDEF || !(name = string_at(b, &b->symstr, sym.st_name)))
			continue;
		for (c = 0; c < sizeof calls / sizeof calls[0]; c++)
			if (!strcmp(name, calls[c]))
				return true;
	}
	return false;
}

static void read_needed(const struct elf_buf *b, struct elf_facts *out)
{
	Elf64_Xword n = b->dynamic.sh_size / sizeof(Elf64_Dyn), k;

	if (n > ELF_DYN_MAX)
		n = ELF_DYN_MAX;
	for (k = 0; k < n && out->n_needed < ELF_NEEDED_MAX; k++) {
		Elf64_Dyn dyn;
		const char *name;
		fetch(b, b->dynamic.sh_offset + k * sizeof dyn, &dyn, sizeof dyn);
		if (dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag == DT_NEEDED && (name = string_at(b, &b->dynstr, dyn.d_un.d_val)))
			out->needed[out->n_needed++] = name;
	}
}

void elf_read_facts(const unsigned char *data, size_t size, struct elf_facts *out)
{
	struct elf_buf b = { .data = data, .size = size };

	memset(out, 0, sizeof *out);
	if (size < EI_NIDENT || memcmp(data, ELFMAG, SELFMAG) != 0) {
		bad(out, size < SELFMAG ? ELF_TRUNCATED : ELF_MALFORMED, "not an ELF file");
		return;
	}
	if (data[EI_CLASS] != ELFCLASS64 || data[EI_DATA] != ELFDATA2LSB) {
		bad(out, ELF_FOREIGN, "another word size or byte order");
		return;
	}
	if (!fetch(&b, 0, &b.eh, sizeof b.eh)) {
		bad(out, ELF_TRUNCATED, "the file ends inside its ELF header");
		return;
	}
	if (b.eh.e_machine != EM_X86_64) {
		bad(out, ELF_FOREIGN, "another architecture");
		return;
	}
	if (!read_program_headers(&b, out) || !read_sections(&b, out))
		return;
	if (b.has_dynsym)
		out->imports_socket = imports_socket_calls(&b);
	if (b.has_dynamic)
		read_needed(&b, out);
}

struct mapped {
	const unsigned char *data;
	size_t size;
};

/* The whole of a regular file, mapped (pages are read only when the reader
 * touches them), at most ELF_MAP_MAX.  fd is the caller's. */
static bool map_file(int fd, const struct stat *st, struct mapped *m, const char **why)
{
	void *p;

	if (st->st_size > (off_t)ELF_MAP_MAX) {
		*why = "larger than 1 GiB";
		return false;
	}
	m->size = (size_t)st->st_size;
	if (m->size == 0) {
		m->data = (const unsigned char *)"";
		return true;
	}
	p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		*why = strerror(errno);
		return false;
	}
	m->data = p;
	return true;
}

static void unmap_file(struct mapped *m)
{
	if (m->size)
		munmap((void *)m->data, m->size);
}

/* A file that shrinks while mapped raises SIGBUS on the next page read:
 * the reader is run under this handler, which turns that into an answer. */
static sigjmp_buf bus_jump;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

static void read_facts_guarded(const struct mapped *m, struct elf_facts *facts)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jump, 1) == 0) {
		elf_read_facts(m->data, m->size, facts);
	} else {
		bad(facts, ELF_TRUNCATED, "the file shrank while it was read");
	}
	sigaction(SIGBUS, &old, NULL);
}

/* Does the library NAME, as the loader would find it in the usual
 * directories, import a socket call?  Regular files only. */
static bool library_imports(const char *name)
{
	static const char *const dirs[] = { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
					    "/lib64", "/usr/lib64", "/lib", "/usr/lib",
					    "/usr/local/lib" };
	size_t d;

	if (!*name || strchr(name, '/') || strlen(name) > 255)
		return false;
	for (d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
		char path[512], why[256];
		const char *map_why;
		struct stat st;
		struct mapped m;
		struct elf_facts lib;
		int fd;
		snprintf(path, sizeof path, "%s/%s", dirs[d], name);
		fd = open_regular(path, &st, why, sizeof why);
		if (fd < 0)
			continue;
		if (!map_file(fd, &st, &m, &map_why)) {
			close(fd);
			return false;
		}
		close(fd);
		read_facts_guarded(&m, &lib);
		unmap_file(&m);
		return lib.state == ELF_OK && lib.imports_socket;
	}
	return false;
}

/* The first library named by DT_NEEDED (libc aside) that imports a socket
 * call, or NULL. */
static const char *needed_lib_imports(const struct elf_facts *f)
{
	unsigned i;

	for (i = 0; i < f->n_needed; i++)
		if (strncmp(f->needed[i], "libc.so", 7) != 0 && library_imports(f->needed[i]))
			return f->needed[i];
	return NULL;
}

/* arg (an interpreter's or a library's name, from the file) is escaped:
 * the reason is printed as one line. */
static void verdict(struct doctor_verdict *v, bool reachable, const char *fmt, const char *arg)
{
	char shown[ESCAPED_PATH_MAX];

	v->reachable = reachable;
	snprintf(v->reason, sizeof v->reason, fmt, escaped(arg, shown, sizeof shown));
}

static void examine_elf(struct doctor_verdict *v, const struct elf_facts *f)
{
	const char *interp = f->interp, *lib;

	if (f->state == ELF_TRUNCATED) {
		verdict(v, false, "cannot tell: truncated: %s", f->problem);
		return;
	}
	if (f->state == ELF_MALFORMED) {
		verdict(v, false, "cannot tell: not a well-formed ELF program: %s", f->problem);
		return;
	}
	if (f->state == ELF_FOREIGN) {
		verdict(v, false, "no: built for another architecture or word size; "
			"libkashim.so must be built for the same one%s", "");
		return;
	}
	if (f->go) {
		verdict(v, false, "no: a Go program makes its system calls without libc; "
			"Go enables keepalive itself (15 s), set net.Dialer.KeepAliveConfig in "
			"the program or use the sysctls%s", "");
		return;
	}
	if (!interp) {
		verdict(v, false, "no: statically linked, so no dynamic loader ever reads "
			"LD_PRELOAD; set keepalive in the program, in a systemd socket unit "
			"(KeepAlive=), or use the sysctls for sockets that enable it%s", "");
		return;
	}
	if (strstr(interp, "ld-musl")) {
		v->musl = true;
		verdict(v, true, "yes, with the musl build libkashim-musl.so (make musl): linked "
			"against musl (%s); musl's loader also loads the glibc libkashim.so, but the "
			"musl build is the one made and tested for it", interp);
		return;
	}
	if (f->imports_socket) {
		verdict(v, true, "yes: dynamically linked (%s) and calls socket/connect/accept "
			"through libc", interp);
	} else if ((lib = needed_lib_imports(f))) {
		verdict(v, true, "yes: dynamically linked; its library %s calls "
			"socket/connect/accept through libc", lib);
	} else {
		verdict(v, true, "yes: dynamically linked (%s); it does not call socket() "
			"itself, but modules it loads at run time (as python and java do) "
			"are reached", interp);
	}
}

static bool cannot_read(struct doctor_verdict *v, const char *why)
{
	char path[ESCAPED_PATH_MAX];

	escaped(v->path, path, sizeof path);
	snprintf(v->reason, sizeof v->reason, "%.4096s: %s", path, why);
	v->reachable = false;
	return false;
}

/* The ELF file open on fd, mapped and read. */
static bool examine_elf_file(int fd, const struct stat *st, struct doctor_verdict *v)
{
	struct mapped m;
	struct elf_facts f;
	const char *why;

	if (!map_file(fd, st, &m, &why)) {
		if (st->st_size > (off_t)ELF_MAP_MAX) {
			verdict(v, false, "cannot tell: %s", why);
			return true;
		}
		return cannot_read(v, why);
	}
	read_facts_guarded(&m, &f);
	examine_elf(v, &f);
	unmap_file(&m);
	return true;
}

/* The interpreter of a "#!" line (the first 'len' bytes of the file, as
 * the kernel reads them) into interp and the program to examine (the
 * interpreter, or what env runs) into target.  False: no usable line. */
static bool parse_shebang(const char *head, size_t len, bool longer, char *interp, char *target,
			  size_t size, const char **why)
{
	const char *end = memchr(head, '\n', len), *p = head + 2, *arg;
	size_t n;

	bool cut = !end && longer; /* the kernel reads only the first 256 bytes */

	if (!end)
		end = head + len;
	p += strspn(p, " \t");
	n = strcspn(p, " \t\n");
	if (p + n >= end && cut) {
		*why = "no: the #! line's interpreter does not end within the 256 bytes the "
		       "kernel reads, so it refuses to run the script";
		return false;
	}
	if (p + n > end)
		n = (size_t)(end - p);
	if (n == 0 || n >= size || memchr(p, 0, n)) {
		*why = "no: a script whose #! line names no interpreter";
		return false;
	}
	snprintf(interp, size, "%.*s", (int)n, p);
	snprintf(target, size, "%s", interp);
	arg = p + n;
	arg += strspn(arg, " \t");
	if (arg >= end || strcmp(strrchr(interp, '/') ? strrchr(interp, '/') + 1 : interp, "env"))
		return true;
	/* #!/usr/bin/env python3, and env -S "python3 -u" (env splits it). */
	if (!strncmp(arg, "-S", 2)) {
		arg += 2;
		arg += strspn(arg, " \t");
	} else if (arg[0] == '-') {
		return true; /* other env options: env is what runs */
	}
	n = strcspn(arg, " \t\n");
	if (arg + n > end)
		n = (size_t)(end - arg);
	if (n > 0 && n < size && !memchr(arg, 0, n))
		snprintf(target, size, "%.*s", (int)n, arg);
	return true;
}

static bool examine(const char *program, struct doctor_verdict *v, int depth);

static bool examine_script(const char *head, size_t len, bool longer, struct doctor_verdict *v,
			   int depth)
{
	char interp[256], target[256], path[sizeof v->path], inner[sizeof v->reason];
	char shown[ESCAPED_PATH_MAX];
	const char *why;

	if (!parse_shebang(head, len, longer, interp, target, sizeof interp, &why)) {
		verdict(v, false, "%s", why);
		return true;
	}
	if (depth >= MAX_SCRIPT_DEPTH) {
		verdict(v, false, "no: #! interpreters nested more than %s deep (a loop?); "
			"the kernel refuses to run it (ELOOP)", "4");
		return true;
	}
	snprintf(path, sizeof path, "%s", v->path);
	if (!examine(target, v, depth + 1))
		return false;
	/* Prefix what we found about the interpreter. */
	snprintf(inner, sizeof inner, "%s", v->reason);
	snprintf(v->reason, sizeof v->reason, "a script run by %.2048s: %.4096s",
		 escaped(v->path, shown, sizeof shown), inner);
	snprintf(v->path, sizeof v->path, "%s", path);
	return true;
}

static bool examine(const char *program, struct doctor_verdict *v, int depth)
{
	struct stat st;
	char head[256], why[256];
	ssize_t len;
	int fd;
	bool ok;

	if (!find_in_path(program, v->path, sizeof v->path)) {
		if (errno != ENOENT && strchr(program, '/'))
			return cannot_read(v, strerror(errno));
		char shown[ESCAPED_PATH_MAX];
		snprintf(v->reason, sizeof v->reason, "%.4096s: not found%s",
			 escaped(program, shown, sizeof shown), strchr(program, '/') ? "" : " in PATH");
		v->reachable = false;
		return false;
	}
	fd = open_regular(v->path, &st, why, sizeof why);
	if (fd < 0)
		return cannot_read(v, why);
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		verdict(v, false, "no: %s, so the loader ignores LD_PRELOAD for it (secure "
			"execution); use a systemd socket unit's KeepAlive= or the sysctls",
			st.st_mode & S_ISUID ? "setuid" : "setgid");
		close(fd);
		return true;
	}
	if (fgetxattr(fd, "security.capability", NULL, 0) > 0) {
		verdict(v, false, "no: it has file capabilities, so the loader ignores "
			"LD_PRELOAD for it (secure execution)%s", "");
		close(fd);
		return true;
	}
	len = read_at_most(fd, head, sizeof head, why, sizeof why);
	if (len <= 0) {
		close(fd);
		return cannot_read(v, len < 0 ? why : "cannot read it: empty");
	}
	if (len >= 2 && head[0] == '#' && head[1] == '!') {
		close(fd);
		return examine_script(head, (size_t)len, st.st_size > len, v, depth);
	}
	if (len < SELFMAG || memcmp(head, ELFMAG, SELFMAG) != 0) {
		close(fd);
		verdict(v, false, "no: neither an ELF executable nor a #! script%s", "");
		return true;
	}
	ok = examine_elf_file(fd, &st, v);
	close(fd);
	return ok;
}

bool doctor_examine(const char *program, struct doctor_verdict *v)
{
	memset(v, 0, sizeof *v);
	return examine(program, v, 0);
}

/* What the cgroup mode cannot reach, said wherever it is proposed. */
static const char listener_note[] =
	"note: the cgroup mode covers the connections a program makes in the cgroup and\n"
	"those it accepts on listeners created there; a listener created elsewhere\n"
	"(inherited from a parent, inetd, a server moved into the cgroup by pid)\n"
	"keeps its creator's cgroup, and so do the connections accepted on it: attach\n"
	"kashim to that cgroup too (systemd makes a socket unit's listeners in the\n"
	"socket unit's own cgroup: kashim dropin --cgroup --socket), and check with\n"
	"kashim audit\n";

int cmd_doctor(int argc, char **argv)
{
	static char shown[ESCAPED_PATH_MAX];
	struct doctor_verdict v;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: kashim doctor [--] PROGRAM\n\n"
		       "Says whether LD_PRELOAD (and so kashim) can reach PROGRAM, and why.\n"
		       "Reads the file; never runs it.  Exit status: 0 reachable, 1 not\n"
		       "reachable, not readable, or cannot tell (a truncated or damaged\n"
		       "file), 2 usage.\n");
		return EXIT_OK;
	}
	if (argc == 3 && !strcmp(argv[1], "--")) /* the operand position takes "--" */
		argc--, argv++;
	if (argc != 2) {
		fprintf(stderr, "usage: kashim doctor [--] PROGRAM\n");
		return EXIT_USAGE;
	}
	if (!doctor_examine(argv[1], &v)) {
		fprintf(stderr, "kashim doctor: %s\n", v.reason);
		return EXIT_PROBLEM;
	}
	printf("%s: %s\n", escaped(v.path, shown, sizeof shown), v.reason);
	if (!v.reachable)
		printf("hint: %s\n%s", cgroup_hint(), listener_note);
	return v.reachable ? EXIT_OK : EXIT_PROBLEM;
}
