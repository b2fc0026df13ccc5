/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the ELF reader of kashim doctor (cli/doctor.c):
 * the input is the file.  Besides ASan and UBSan, every run checks what the
 * verdict relies on: a state other than ELF_OK comes with a reason and
 * nothing else, and every string handed back lies inside the input and
 * ends there with a NUL. */
#include "cli/cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_string(const char *s, const uint8_t *data, size_t size)
{
	const uint8_t *p = (const uint8_t *)s;

	if (p < data || p >= data + size || !memchr(p, 0, (size_t)(data + size - p)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_facts f;
	unsigned i;

	elf_read_facts(data, size, &f);
	if (f.state != ELF_OK) {
		if (!f.problem || !*f.problem || f.interp || f.imports_socket || f.n_needed)
			abort();
		return 0;
	}
	if (f.problem || f.n_needed > ELF_NEEDED_MAX)
		abort();
	if (f.interp)
		check_string(f.interp, data, size);
	for (i = 0; i < f.n_needed; i++)
		check_string(f.needed[i], data, size);
	return 0;
}
