/* kashim doctor: can LD_PRELOAD reach this program?  Reads the ELF file
 * itself (no ldd, which may run the program). */
#define _GNU_SOURCE
#include "cli.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
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

static bool in_file(const struct elf_file *f, Elf64_Off off, Elf64_Xword len)
{
	return off <= f->size && len <= f->size - off;
}

static const Elf64_Shdr *section(const struct elf_file *f, unsigned i)
{
	const Elf64_Ehdr *eh = f->eh;
	Elf64_Off off = eh->e_shoff + (Elf64_Off)i * eh->e_shentsize;

	if (i >= eh->e_shnum || eh->e_shentsize < sizeof(Elf64_Shdr) ||
	    !in_file(f, off, sizeof(Elf64_Shdr)))
		return NULL;
	return (const Elf64_Shdr *)(f->data + off);
}

static bool has_section(const struct elf_file *f, const char *name)
{
	const Elf64_Shdr *strtab = section(f, f->eh->e_shstrndx);
	unsigned i;

	if (!strtab || !in_file(f, strtab->sh_offset, strtab->sh_size))
		return false;
	for (i = 0; i < f->eh->e_shnum; i++) {
		const Elf64_Shdr *s = section(f, i);
		if (s && s->sh_name < strtab->sh_size &&
		    !strncmp((const char *)f->data + strtab->sh_offset + s->sh_name, name,
			     strtab->sh_size - s->sh_name))
			return true;
	}
	return false;
}

/* The program interpreter (PT_INTERP), or NULL for a static binary. */
static const char *interpreter(const struct elf_file *f)
{
	unsigned i;

	for (i = 0; i < f->eh->e_phnum; i++) {
		Elf64_Off off = f->eh->e_phoff + (Elf64_Off)i * f->eh->e_phentsize;
		const Elf64_Phdr *ph;
		if (!in_file(f, off, sizeof *ph))
			return NULL;
		ph = (const Elf64_Phdr *)(f->data + off);
		if (ph->p_type == PT_INTERP && ph->p_filesz > 1 &&
		    in_file(f, ph->p_offset, ph->p_filesz) &&
		    f->data[ph->p_offset + ph->p_filesz - 1] == 0)
			return (const char *)f->data + ph->p_offset;
	}
	return NULL;
}

/* Does the dynamic symbol table import one of the calls kashim wraps? */
static bool imports_socket_calls(const struct elf_file *f)
{
	static const char *const calls[] = { "socket", "connect", "accept", "accept4" };
	unsigned i;

	for (i = 0; i < f->eh->e_shnum; i++) {
		const Elf64_Shdr *s = section(f, i), *str;
		size_t n, k, c;
		if (!s || s->sh_type != SHT_DYNSYM || s->sh_entsize != sizeof(Elf64_Sym) ||
		    !in_file(f, s->sh_offset, s->sh_size))
			continue;
		str = section(f, s->sh_link);
		if (!str || !in_file(f, str->sh_offset, str->sh_size))
			continue;
		n = s->sh_size / sizeof(Elf64_Sym);
		for (k = 0; k < n; k++) {
			const Elf64_Sym *sym = (const Elf64_Sym *)(f->data + s->sh_offset) + k;
			const char *name;
			if (sym->st_shndx != SHN_UNDEF || sym->st_name >= str->sh_size)
				continue;
			name = (const char *)f->data + str->sh_offset + sym->st_name;
			for (c = 0; c < sizeof calls / sizeof calls[0]; c++)
				if (!strncmp(name, calls[c], str->sh_size - sym->st_name) &&
				    strlen(calls[c]) < str->sh_size - sym->st_name)
					return true;
		}
	}
	return false;
}

static bool map_elf(const char *path, struct elf_file *f, int *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *p;

	*err = 0;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		*err = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		return false;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		*err = errno;
		return false;
	}
	f->data = p;
	f->size = (size_t)st.st_size;
	f->eh = p;
	return true;
}

/* Libraries named by DT_NEEDED, looked up in the usual directories, that
 * import a socket call: the first one's name in out. */
static bool needed_lib_imports(const struct elf_file *f, char *out, size_t size)
{
	static const char *const dirs[] = { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
					    "/lib64", "/usr/lib64", "/lib", "/usr/lib",
					    "/usr/local/lib" };
	unsigned i;

	for (i = 0; i < f->eh->e_shnum; i++) {
		const Elf64_Shdr *s = section(f, i), *str;
		size_t n, k, d;
		if (!s || s->sh_type != SHT_DYNAMIC || !in_file(f, s->sh_offset, s->sh_size))
			continue;
		str = section(f, s->sh_link);
		if (!str || !in_file(f, str->sh_offset, str->sh_size))
			continue;
		n = s->sh_size / sizeof(Elf64_Dyn);
		for (k = 0; k < n; k++) {
			const Elf64_Dyn *dyn = (const Elf64_Dyn *)(f->data + s->sh_offset) + k;
			const char *name;
			if (dyn->d_tag != DT_NEEDED || dyn->d_un.d_val >= str->sh_size)
				continue;
			name = (const char *)f->data + str->sh_offset + dyn->d_un.d_val;
			if (!strncmp(name, "libc.so", 7))
				continue; /* libc defines them */
			for (d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
				char path[4096];
				struct elf_file lib;
				int err;
				bool hit;
				snprintf(path, sizeof path, "%s/%s", dirs[d], name);
				if (!map_elf(path, &lib, &err))
					continue;
				hit = lib.eh->e_ident[EI_CLASS] == ELFCLASS64 &&
				      imports_socket_calls(&lib);
				munmap((void *)lib.data, lib.size);
				if (hit) {
					snprintf(out, size, "%s", name);
					return true;
				}
				break;
			}
		}
	}
	return false;
}

static void verdict(struct doctor_verdict *v, bool reachable, const char *fmt, const char *arg)
{
	v->reachable = reachable;
	snprintf(v->reason, sizeof v->reason, fmt, arg);
}

static bool examine_elf(struct doctor_verdict *v, const struct elf_file *f)
{
	const char *interp;
	char lib[256];

	if (f->eh->e_ident[EI_CLASS] != ELFCLASS64 || f->eh->e_machine != EM_X86_64) {
		verdict(v, false, "no: built for another architecture or word size; "
			"libkashim.so must be built for the same one%s", "");
		return true;
	}
	interp = interpreter(f);
	if (has_section(f, ".go.buildinfo") || has_section(f, ".note.go.buildid")) {
		verdict(v, false, "no: a Go program makes its system calls without libc; "
			"Go enables keepalive itself (15 s), set net.Dialer.KeepAliveConfig in "
			"the program or use the sysctls%s", "");
		return true;
	}
	if (!interp) {
		verdict(v, false, "no: statically linked, so no dynamic loader ever reads "
			"LD_PRELOAD; set keepalive in the program, in a systemd socket unit "
			"(KeepAlive=), or use the sysctls for sockets that enable it%s", "");
		return true;
	}
	if (strstr(interp, "ld-musl")) {
		v->musl = true;
		verdict(v, true, "yes, with the musl build libkashim-musl.so (make musl): linked "
			"against musl (%s); the glibc libkashim.so cannot load into it", interp);
		return true;
	}
	if (imports_socket_calls(f)) {
		verdict(v, true, "yes: dynamically linked (%s) and calls socket/connect/accept "
			"through libc", interp);
	} else if (needed_lib_imports(f, lib, sizeof lib)) {
		verdict(v, true, "yes: dynamically linked; its library %s calls "
			"socket/connect/accept through libc", lib);
	} else {
		verdict(v, true, "yes: dynamically linked (%s); it does not call socket() "
			"itself, but modules it loads at run time (as python and java do) "
			"are reached", interp);
	}
	return true;
}

static bool examine(const char *program, struct doctor_verdict *v, int depth)
{
	struct stat st;
	struct elf_file f;
	int err;
	char head[256] = { 0 };
	FILE *fp;

	if (!find_in_path(program, v->path, sizeof v->path)) {
		snprintf(v->reason, sizeof v->reason, "%s: not found%s", program,
			 strchr(program, '/') ? "" : " in PATH");
		v->reachable = false;
		return false;
	}
	if (stat(v->path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(v->reason, sizeof v->reason, "%s: not a regular file", v->path);
		v->reachable = false;
		return false;
	}
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		verdict(v, false, "no: %s, so the loader ignores LD_PRELOAD for it (secure "
			"execution); use a systemd socket unit's KeepAlive= or the sysctls",
			st.st_mode & S_ISUID ? "setuid" : "setgid");
		return true;
	}
	if (getxattr(v->path, "security.capability", NULL, 0) > 0) {
		verdict(v, false, "no: it has file capabilities, so the loader ignores "
			"LD_PRELOAD for it (secure execution)%s", "");
		return true;
	}
	fp = fopen(v->path, "re");
	if (!fp || !fgets(head, sizeof head, fp)) {
		if (fp)
			fclose(fp);
		snprintf(v->reason, sizeof v->reason, "%s: cannot read it", v->path);
		v->reachable = false;
		return false;
	}
	fclose(fp);
	if (head[0] == '#' && head[1] == '!') {
		char interp[256], arg[256] = "", path[sizeof v->path];
		const char *target = interp;
		int n = sscanf(head + 2, " %255s %255s", interp, arg);
		if (n < 1 || depth >= MAX_SCRIPT_DEPTH) {
			verdict(v, false, "no: a script whose interpreter cannot be found%s", "");
			return true;
		}
		if (n == 2 && !strcmp(strrchr(interp, '/') ? strrchr(interp, '/') + 1 : interp,
				      "env") && arg[0] != '-')
			target = arg; /* #!/usr/bin/env python3 */
		snprintf(path, sizeof path, "%s", v->path);
		if (!examine(target, v, depth + 1))
			return false;
		/* Prefix what we found about the interpreter. */
		{
			char inner[sizeof v->reason];
			snprintf(inner, sizeof inner, "%s", v->reason);
			snprintf(v->reason, sizeof v->reason, "a script run by %.2048s: %.4096s",
				 v->path, inner);
		}
		snprintf(v->path, sizeof v->path, "%s", path);
		return true;
	}
	if (memcmp(head, ELFMAG, SELFMAG) != 0) {
		verdict(v, false, "no: neither an ELF executable nor a #! script%s", "");
		return true;
	}
	if (!map_elf(v->path, &f, &err)) {
		snprintf(v->reason, sizeof v->reason, "%.4096s: cannot read it: %s", v->path,
			 strerror(err));
		v->reachable = false;
		return false;
	}
	examine_elf(v, &f);
	munmap((void *)f.data, f.size);
	return true;
}

bool doctor_examine(const char *program, struct doctor_verdict *v)
{
	memset(v, 0, sizeof *v);
	return examine(program, v, 0);
}

int cmd_doctor(int argc, char **argv)
{
	struct doctor_verdict v;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: kashim doctor PROGRAM\n\n"
		       "Says whether LD_PRELOAD (and so kashim) can reach PROGRAM, and why.\n"
		       "Reads the file; never runs it.  Exit status: 0 reachable, 1 not\n"
		       "reachable or not readable, 2 usage.\n");
		return EXIT_OK;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: kashim doctor PROGRAM\n");
		return EXIT_USAGE;
	}
	if (!doctor_examine(argv[1], &v)) {
		fprintf(stderr, "kashim doctor: %s\n", v.reason);
		return EXIT_PROBLEM;
	}
	printf("%s: %s\n", v.path, v.reason);
	return v.reachable ? EXIT_OK : EXIT_PROBLEM;
}
