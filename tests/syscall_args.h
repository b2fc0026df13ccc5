/* SPDX-License-Identifier: MIT */
/* For the test libraries that wrap syscall(): the next syscall() (libc's)
 * and the wrapped call's arguments.  syscall() is variadic; reading six
 * longs is what x86-64 and aarch64 pass in registers, so every call can be
 * forwarded as real(n, a[0], ..., a[5]) whatever its number. */
#ifndef KASHIM_TEST_SYSCALL_ARGS_H
#define KASHIM_TEST_SYSCALL_ARGS_H
#include <dlfcn.h>
#include <stdarg.h>

typedef long syscall_fn(long, ...);

/* SYSCALL_ARGS(n, a): in long syscall(long n, ...), a[0..5] := its arguments. */
#define SYSCALL_ARGS(n, a)                   \
	do {                                 \
		va_list ap_;                 \
		int i_;                      \
		va_start(ap_, n);            \
		for (i_ = 0; i_ < 6; i_++)   \
			(a)[i_] = va_arg(ap_, long); \
		va_end(ap_);                 \
	} while (0)

/* The syscall() after this library's (libc's), looked up once. */
static inline syscall_fn *next_syscall(void)
{
	static syscall_fn *real;

	if (!real)
		real = (syscall_fn *)dlsym(RTLD_NEXT, "syscall");
	return real;
}
#endif
