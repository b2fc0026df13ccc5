/* SPDX-License-Identifier: MIT */
/* Memory pressure at load: every allocation of 32 KiB or more fails, as it
 * may in a container at its memory limit.  kashim's only large allocation
 * is the configuration file's buffer, at load. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);

__attribute__((visibility("default"))) void *malloc(size_t n)
{
	if (n >= 32 * 1024) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}
