# kashim: TCP keepalive for unmodified programs, by LD_PRELOAD.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wconversion -Werror=implicit-function-declaration
HARDEN  := -fno-common -D_FORTIFY_SOURCE=2 -fstack-protector-strong
KCFLAGS := -std=gnu11 $(WARN) $(HARDEN) $(CFLAGS)
SHLIB_FLAGS := -fPIC -fvisibility=hidden
LDHARDEN := -Wl,-z,relro,-z,now -Wl,--as-needed

LIB := libkashim.so
TEST_BINS := tests/test_config tests/probe tests/sockpeek tests/libearly.so

.PHONY: all check demo detect-report clean

all: $(LIB)

$(LIB): shim.c config.c config.h
	$(CC) $(KCFLAGS) $(SHLIB_FLAGS) -shared -o $@ shim.c config.c \
		$(LDHARDEN) -Wl,--no-undefined -ldl

tests/test_config: tests/test_config.c config.c config.h
	$(CC) $(KCFLAGS) -I. -o $@ tests/test_config.c config.c

tests/probe: tests/probe.c
	$(CC) $(KCFLAGS) -o $@ tests/probe.c -pthread

tests/sockpeek: tests/sockpeek.c
	$(CC) $(KCFLAGS) -o $@ tests/sockpeek.c

tests/libearly.so: tests/early.c
	$(CC) $(KCFLAGS) -fPIC -shared -o $@ tests/early.c

check: $(LIB) $(TEST_BINS)
	@bash tests/run

demo: $(LIB) tests/sockpeek
	@bash scripts/demo

# Every dead-peer scenario with and without kashim, as a table (root).
detect-report: $(LIB) tests/sockpeek
	@python3 tests/deadpeer.py report

clean:
	rm -f $(LIB) $(TEST_BINS)
