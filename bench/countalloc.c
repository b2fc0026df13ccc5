/* SPDX-License-Identifier: MIT */
/* Preloaded with the benchmark: counts every malloc, calloc and realloc in
 * the process, so the benchmark can show that kashim allocates nothing
 * after load.  Forwards to glibc's own entry points. */
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

__attribute__((visibility("default"))) unsigned long countalloc_total;

__attribute__((visibility("default"))) void *malloc(size_t n)
{
	__atomic_fetch_add(&countalloc_total, 1, __ATOMIC_RELAXED);
	return __libc_malloc(n);
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t size)
{
	__atomic_fetch_add(&countalloc_total, 1, __ATOMIC_RELAXED);
	return __libc_calloc(n, size);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
	__atomic_fetch_add(&countalloc_total, 1, __ATOMIC_RELAXED);
	return __libc_realloc(p, n);
}
