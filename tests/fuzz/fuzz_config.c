/* SPDX-License-Identifier: MIT */
/* libFuzzer target for config.c: every variable, the duration, switch, rule
 * and program-list grammars, and the configuration file.  The input is
 * split at newlines into environment entries; a line "--file--" ends them,
 * and what follows is the configuration file (given by KASHIM_CONFIG).
 * Every run checks what must always hold: each message is one line
 * starting with "kashim: ", and every setting is within its range. */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_ENV 64

static void check_line(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	if (len < 9 || len > KASHIM_LINE_MAX || memcmp(line, "kashim: ", 8) ||
	    line[len - 1] != '\n' || memchr(line, '\n', len - 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "python3.11", "java", NULL };
	char *text = malloc(size + 1), *env[MAX_ENV + 2], *p, *file = NULL;
	char config_var[64];
	struct kashim_config cfg;
	struct kashim_source src = { env, names, false, NULL };
	int n = 0, fd = -1;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	for (p = text; p && n < MAX_ENV;) {
		char *next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		if (!strcmp(p, "--file--")) {
			file = next ? next : p + strlen(p);
			break;
		}
		env[n++] = p;
		p = next;
	}
	if (file) {
		fd = memfd_create("kashim-fuzz", MFD_CLOEXEC);
		if (fd >= 0 && write(fd, file, strlen(file)) >= 0) {
			snprintf(config_var, sizeof config_var, "KASHIM_CONFIG=/proc/self/fd/%d", fd);
			env[n++] = config_var;
		}
	}
	env[n] = NULL;
	kashim_config_load_from(&cfg, &src, check_line, NULL);
	if (cfg.idle_s < KASHIM_SECONDS_MIN || cfg.idle_s > KASHIM_SECONDS_MAX ||
	    cfg.interval_s < KASHIM_SECONDS_MIN || cfg.interval_s > KASHIM_SECONDS_MAX ||
	    cfg.count < KASHIM_COUNT_MIN || cfg.count > KASHIM_COUNT_MAX ||
	    cfg.user_timeout_ms > KASHIM_USER_TIMEOUT_MAX_MS ||
	    (cfg.user_timeout_mode != KASHIM_UT_OFF && cfg.user_timeout_ms == 0) ||
	    cfg.only.n > KASHIM_MAX_RULES || cfg.skip.n > KASHIM_MAX_RULES)
		abort();
	{
		static const unsigned char v4[4] = { 127, 0, 0, 1 };
		static const unsigned char v6[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3 };
		(void)kashim_config_covers(&cfg, false, 2, v4, 80);
		(void)kashim_config_covers(&cfg, true, 10, v6, 65535);
	}
	if (fd >= 0)
		close(fd);
	free(text);
	return 0;
}
