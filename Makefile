# SPDX-License-Identifier: MIT
# kashim: TCP keepalive for unmodified programs, by LD_PRELOAD.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wconversion -Werror=implicit-function-declaration
HARDEN  := -fno-common -D_FORTIFY_SOURCE=2 -fstack-protector-strong
KCFLAGS := -std=gnu11 $(WARN) $(HARDEN) $(CPPFLAGS) $(CFLAGS)
SHLIB_FLAGS := -fPIC -fvisibility=hidden
LDHARDEN := -Wl,-z,relro,-z,now -Wl,--as-needed

VERSION := 0.1.0
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
MUSLLIBDIR ?= $(LIBDIR)
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

LIB := libkashim.so
CLI := kashim
CLI_SRC := cli/kashim.c cli/inspect.c cli/sockread.c cli/audit.c cli/doctor.c cli/files.c cli/cgroup.c cli/cgbpf.c cli/cgroupfs.c cli/outfile.c config.c
TEST_BINS := tests/test_config tests/probe tests/sockpeek tests/libearly.so tests/libwrap.so \
             tests/libfailbig.so tests/libexitmid.so tests/hostile tests/libhostile.so tests/tcphold \
             tests/libtear.so

.PHONY: all check check-kernels demo bench musl fuzz detect-report install uninstall clean deb version man

all: $(LIB) $(CLI)

$(CLI): $(CLI_SRC) cli/cli.h cli/sockread.h cli/cgbpf.h config.h
	$(CC) $(KCFLAGS) -DKASHIM_VERSION='"$(VERSION)"' -DKASHIM_LIBDIR='"$(LIBDIR)"' \
		-DKASHIM_MUSL_LIBDIR='"$(MUSLLIBDIR)"' -o $@ $(CLI_SRC) $(LDHARDEN) $(LDFLAGS)

$(LIB): shim.c config.c config.h
	$(CC) $(KCFLAGS) $(SHLIB_FLAGS) -shared -Wl,-soname,libkashim.so -o $@ shim.c config.c \
		$(LDHARDEN) $(LDFLAGS) -Wl,--no-undefined -ldl

tests/test_config: tests/test_config.c config.c config.h
	$(CC) $(KCFLAGS) -I. -o $@ tests/test_config.c config.c

tests/probe: tests/probe.c
	$(CC) $(KCFLAGS) -o $@ tests/probe.c -pthread

tests/sockpeek: tests/sockpeek.c
	$(CC) $(KCFLAGS) -o $@ tests/sockpeek.c

tests/libearly.so: tests/early.c
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/early.c

# Static on purpose: a program no LD_PRELOAD reaches (t_cgroup.sh).
tests/tcphold: tests/helpers/tcphold.c
	$(CC) $(KCFLAGS) -static -o $@ tests/helpers/tcphold.c

tests/libwrap.so: tests/wrap.c
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/wrap.c -ldl

tests/libfailbig.so: tests/failbig.c
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/failbig.c

tests/libexitmid.so: tests/exitmid.c tests/syscall_args.h
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/exitmid.c -ldl

tests/libtear.so: tests/tear.c tests/syscall_args.h
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/tear.c -ldl

# The hostile calls of tests/t_hostile_lib.sh; the library bound at load
# (-z now), so that no lazy binding runs on its 4 KiB signal stack.
tests/hostile: tests/hostile.c
	$(CC) $(KCFLAGS) -o $@ tests/hostile.c

tests/libhostile.so: tests/hostile_early.c
	$(CC) $(KCFLAGS) -fPIC -shared -Wl,-z,now -o $@ tests/hostile_early.c -pthread

check: $(LIB) $(CLI) $(TEST_BINS)
	@bash tests/run

# The cgroup test files whole, in each kernel of the matrix (qemu, root).
check-kernels: $(LIB) $(CLI) $(TEST_BINS)
	@bash tests/helpers/check_kernels.sh

demo: $(LIB) $(CLI)
	@bash scripts/demo

bench/bench: bench/bench.c
	$(CC) $(KCFLAGS) -o $@ bench/bench.c -ldl

bench/countalloc.so: bench/countalloc.c
	$(CC) -O2 -fPIC -shared -o $@ bench/countalloc.c

# The library for musl programs (Alpine containers): musl-gcc from Debian's
# musl-tools.  Only the kernel's own headers are added to musl's.
MUSL_INC := tests/musl-include
$(MUSL_INC):
	mkdir -p $@
	ln -sfn /usr/include/linux $@/linux
	ln -sfn /usr/include/asm-generic $@/asm-generic
	ln -sfn /usr/include/$$(gcc -print-multiarch)/asm $@/asm

libkashim-musl.so: shim.c config.c config.h
	musl-gcc -std=gnu11 $(WARN) -O2 -g $(SHLIB_FLAGS) -shared -o $@ shim.c config.c -Wl,-z,relro,-z,now -Wl,--build-id

tests/probe-musl: tests/probe.c | $(MUSL_INC)
	musl-gcc -std=gnu11 -O2 -I$(MUSL_INC) -o $@ tests/probe.c -pthread

musl: libkashim-musl.so tests/probe-musl

# What kashim costs against the hand-set floor (see bench/run.py).
bench: $(LIB) $(CLI) bench/bench bench/countalloc.so
	@python3 bench/run.py
	@python3 bench/audit.py
	@python3 bench/containers.py

# A longer fuzzing run than make check's 20 s; new inputs that reach new
# code are merged into tests/fuzz/corpus.  FUZZ_SECONDS=300 by default.
FUZZ_SECONDS ?= 300
tests/fuzz/fuzz_config: tests/fuzz/fuzz_config.c config.c config.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
		-o $@ tests/fuzz/fuzz_config.c config.c

# The ELF reader of kashim doctor, its corpus in tests/fuzz/corpus_elf (inputs up
# to 8 KiB, which keeps the corpus small).
tests/fuzz/fuzz_elf: tests/fuzz/fuzz_elf.c cli/doctor.c cli/files.c cli/cgroupfs.c cli/cli.h config.c config.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
		-o $@ tests/fuzz/fuzz_elf.c cli/doctor.c cli/files.c cli/cgroupfs.c config.c

fuzz: tests/fuzz/fuzz_config tests/fuzz/fuzz_elf
	@d=$$(mktemp -d) && ./tests/fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) \
		-print_final_stats=1 $$d tests/fuzz/corpus && \
		./tests/fuzz/fuzz_config -merge=1 tests/fuzz/corpus $$d; rm -rf $$d
	@d=$$(mktemp -d) && ./tests/fuzz/fuzz_elf -max_total_time=$(FUZZ_SECONDS) -timeout=5 -max_len=8192 \
		-print_final_stats=1 $$d tests/fuzz/corpus_elf && \
		./tests/fuzz/fuzz_elf -merge=1 tests/fuzz/corpus_elf $$d; rm -rf $$d

# Every dead-peer scenario with and without kashim, as a table (root).
detect-report: $(LIB) tests/sockpeek
	@python3 tests/deadpeer.py report

# Man pages and the entrypoint get the version and the library directory
# of this build, so the installed files agree with `kashim --version`.
INSTALL_SED := sed -e '/^\.TH/s/"kashim [^"]*"/"kashim $(VERSION)"/' -e 's|/usr/local/lib|$(LIBDIR)|g'
MANS := man/kashim.1 man/kashim-entrypoint.1 man/libkashim.7
# The units, enabled by nothing: the cgroup mode's template, and audit on
# a timer for node_exporter's textfile collector.
UNITS := kashim-attach@.service kashim-audit.service kashim-audit.timer

install: $(LIB) $(CLI)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/$(LIB)
	if [ -f libkashim-musl.so ]; then install -d $(DESTDIR)$(MUSLLIBDIR) && \
		install -m 0644 libkashim-musl.so $(DESTDIR)$(MUSLLIBDIR)/; fi
	install -m 0755 $(CLI) $(DESTDIR)$(BINDIR)/$(CLI)
	sed 's|^libdir=.*|libdir=$(LIBDIR)|' scripts/kashim-entrypoint > $(DESTDIR)$(BINDIR)/kashim-entrypoint
	chmod 0755 $(DESTDIR)$(BINDIR)/kashim-entrypoint
	for m in $(MANS); do \
		$(INSTALL_SED) $$m > $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/} || exit 1; \
		chmod 0644 $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in $(UNITS); do \
		sed 's|/usr/local/bin/kashim|$(BINDIR)/kashim|g' scripts/systemd/$$u \
			> $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; done

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(LIB) $(DESTDIR)$(MUSLLIBDIR)/libkashim-musl.so $(DESTDIR)$(BINDIR)/$(CLI) \
		$(DESTDIR)$(BINDIR)/kashim-entrypoint $(DESTDIR)$(MANDIR)/man1/kashim.1 \
		$(DESTDIR)$(MANDIR)/man1/kashim-entrypoint.1 $(DESTDIR)$(MANDIR)/man7/libkashim.7 \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS))

# The Debian package, built by dpkg-buildpackage from a copy of this tree
# in build/deb (see debian/); the last line is the path of the .deb.
deb:
	@bash scripts/deb

version:
	@echo $(VERSION)

# man/libkashim.7's variable list, generated from the tables of
# docs/configuration.md (tests/t_docs.sh checks that they agree).
man:
	@python3 tests/helpers/docvars.py --write

clean:
	rm -f $(LIB) $(CLI) $(TEST_BINS) bench/bench bench/countalloc.so libkashim-musl.so tests/probe-musl \
		tests/fuzz/fuzz_config tests/fuzz/fuzz_elf
	rm -rf $(MUSL_INC) build
