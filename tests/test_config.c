/* Unit tests of config.c, linked without the shim.  Prints one
 * "ok - NAME" or "not ok - NAME: why" line per check. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int cond, const char *name, const char *detail)
{
	if (cond) {
		printf("ok - config: %s\n", name);
	} else {
		printf("not ok - config: %s: %s\n", name, detail);
		failures++;
	}
}

/* Collected report lines. */
static char reports[8][KASHIM_LINE_MAX + 1];
static unsigned nreports;

static void collect(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	if (nreports < 8) {
		memcpy(reports[nreports], line, len);
		reports[nreports][len] = 0;
	}
	nreports++;
}

static unsigned load(struct kashim_config *cfg, const char *a, const char *b,
		     const char *c)
{
	char *env[4] = { 0 };
	int n = 0;

	if (a)
		env[n++] = (char *)a;
	if (b)
		env[n++] = (char *)b;
	if (c)
		env[n++] = (char *)c;
	nreports = 0;
	return kashim_config_load(cfg, env, false, collect, NULL);
}

struct good_case {
	const char *env;
	int idle, interval, count;
	enum kashim_user_timeout_mode mode;
	unsigned ut_ms;
};

static const struct good_case good[] = {
	{ "KASHIM_IDLE=45", 45, 15, 9, KASHIM_UT_AUTO, 180000 },
	{ "KASHIM_IDLE=45s", 45, 15, 9, KASHIM_UT_AUTO, 180000 },
	{ "KASHIM_IDLE=2m", 120, 15, 9, KASHIM_UT_AUTO, 255000 },
	{ "KASHIM_IDLE=1h", 3600, 15, 9, KASHIM_UT_AUTO, 3735000 },
	{ "KASHIM_IDLE=1", 1, 15, 9, KASHIM_UT_AUTO, 136000 },
	{ "KASHIM_IDLE=32767", 32767, 15, 9, KASHIM_UT_AUTO, 32902000 },
	{ "KASHIM_IDLE=007", 7, 15, 9, KASHIM_UT_AUTO, 142000 },
	{ "KASHIM_INTERVAL=5", 15, 5, 9, KASHIM_UT_AUTO, 60000 },
	{ "KASHIM_INTERVAL=1m", 15, 60, 9, KASHIM_UT_AUTO, 555000 },
	{ "KASHIM_INTERVAL=32767s", 15, 32767, 9, KASHIM_UT_AUTO, 294918000 },
	{ "KASHIM_COUNT=1", 15, 15, 1, KASHIM_UT_AUTO, 30000 },
	{ "KASHIM_COUNT=127", 15, 15, 127, KASHIM_UT_AUTO, 1920000 },
	{ "KASHIM_USER_TIMEOUT=auto", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
	{ "KASHIM_USER_TIMEOUT=AUTO", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
	{ "KASHIM_USER_TIMEOUT=off", 15, 15, 9, KASHIM_UT_OFF, 0 },
	{ "KASHIM_USER_TIMEOUT=Off", 15, 15, 9, KASHIM_UT_OFF, 0 },
	{ "KASHIM_USER_TIMEOUT=30", 15, 15, 9, KASHIM_UT_FIXED, 30000 },
	{ "KASHIM_USER_TIMEOUT=30s", 15, 15, 9, KASHIM_UT_FIXED, 30000 },
	{ "KASHIM_USER_TIMEOUT=1500ms", 15, 15, 9, KASHIM_UT_FIXED, 1500 },
	{ "KASHIM_USER_TIMEOUT=1ms", 15, 15, 9, KASHIM_UT_FIXED, 1 },
	{ "KASHIM_USER_TIMEOUT=2m", 15, 15, 9, KASHIM_UT_FIXED, 120000 },
	{ "KASHIM_USER_TIMEOUT=1h", 15, 15, 9, KASHIM_UT_FIXED, 3600000 },
	{ "KASHIM_USER_TIMEOUT=2147483647ms", 15, 15, 9, KASHIM_UT_FIXED, 2147483647u },
	{ "KASHIM_IDLE=", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
	{ "KASHIM_COUNT=", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
	{ "KASHIM_USER_TIMEOUT=", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
	{ "KASHIMX=1", 15, 15, 9, KASHIM_UT_AUTO, 150000 },  /* not our prefix */
	{ "PATH=/usr/bin", 15, 15, 9, KASHIM_UT_AUTO, 150000 },
};

static void test_good(void)
{
	size_t i;
	char name[160], detail[200];

	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct kashim_config cfg;
		unsigned problems = load(&cfg, good[i].env, NULL, NULL);
		snprintf(name, sizeof name, "accepts %s", good[i].env);
		snprintf(detail, sizeof detail,
			 "got problems=%u idle=%d interval=%d count=%d mode=%d ut=%u",
			 problems, cfg.idle_s, cfg.interval_s, cfg.count,
			 cfg.user_timeout_mode, cfg.user_timeout_ms);
		check(problems == 0 && nreports == 0 && cfg.enabled && !cfg.debug &&
		      cfg.idle_s == good[i].idle && cfg.interval_s == good[i].interval &&
		      cfg.count == good[i].count &&
		      cfg.user_timeout_mode == good[i].mode &&
		      cfg.user_timeout_ms == good[i].ut_ms, name, detail);
	}
}

static void test_defaults_and_auto(void)
{
	struct kashim_config cfg;
	char *empty[] = { NULL };

	check(kashim_config_load(&cfg, empty, false, collect, NULL) == 0 &&
	      cfg.enabled && !cfg.debug && cfg.idle_s == 15 && cfg.interval_s == 15 &&
	      cfg.count == 9 && cfg.user_timeout_mode == KASHIM_UT_AUTO &&
	      cfg.user_timeout_ms == 150000,
	      "defaults are 15s/15s/9 with user timeout 150000ms", "wrong defaults");

	load(&cfg, "KASHIM_IDLE=30", "KASHIM_INTERVAL=5", "KASHIM_COUNT=3");
	check(cfg.user_timeout_ms == 45000, "auto user timeout is idle + interval x count",
	      "not 45000");

	load(&cfg, "KASHIM_IDLE=32767", "KASHIM_INTERVAL=32767", "KASHIM_COUNT=127");
	check(cfg.user_timeout_ms == 2147483647u,
	      "auto user timeout is capped at 2147483647ms", "not capped");

	load(&cfg, "KASHIM_USER_TIMEOUT=7s", "KASHIM_IDLE=100", NULL);
	check(cfg.user_timeout_ms == 7000 && cfg.idle_s == 100,
	      "a fixed user timeout does not follow idle", "changed");
}

static void test_switches(void)
{
	static const struct { const char *env; int enabled, debug; } cases[] = {
		{ "KASHIM=on", 1, 0 }, { "KASHIM=1", 1, 0 }, { "KASHIM=yes", 1, 0 },
		{ "KASHIM=TRUE", 1, 0 }, { "KASHIM=off", 0, 0 }, { "KASHIM=0", 0, 0 },
		{ "KASHIM=No", 0, 0 }, { "KASHIM=false", 0, 0 }, { "KASHIM=OFF", 0, 0 },
		{ "KASHIM_DEBUG=1", 1, 1 }, { "KASHIM_DEBUG=on", 1, 1 },
		{ "KASHIM_DEBUG=YES", 1, 1 }, { "KASHIM_DEBUG=0", 1, 0 },
		{ "KASHIM_DEBUG=", 1, 0 }, { "KASHIM=", 1, 0 },
	};
	size_t i;
	char name[120];

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kashim_config cfg;
		unsigned problems = load(&cfg, cases[i].env, NULL, NULL);
		snprintf(name, sizeof name, "switch %s", cases[i].env);
		check(problems == 0 && cfg.enabled == cases[i].enabled &&
		      cfg.debug == cases[i].debug, name, "wrong value or a report");
	}
}

/* Each bad value: exactly one line, naming the variable and the value,
 * starting with "kashim:", and the default in force. */
struct bad_case {
	const char *env;
	const char *message; /* exact line, or NULL to check the shape only */
};

static const struct bad_case bad[] = {
	{ "KASHIM_IDLE=10x",
	  "kashim: KASHIM_IDLE=\"10x\" ignored (unexpected characters after the number); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=1e3",
	  "kashim: KASHIM_IDLE=\"1e3\" ignored (unexpected characters after the number); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=-5",
	  "kashim: KASHIM_IDLE=\"-5\" ignored (negative); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=0",
	  "kashim: KASHIM_IDLE=\"0\" ignored (out of range); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=32768",
	  "kashim: KASHIM_IDLE=\"32768\" ignored (out of range); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=10h", NULL },
	{ "KASHIM_IDLE=1500ms",
	  "kashim: KASHIM_IDLE=\"1500ms\" ignored (the kernel takes whole seconds here, not ms); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=99999999999999999999",
	  "kashim: KASHIM_IDLE=\"99999999999999999999\" ignored (out of range); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=abc",
	  "kashim: KASHIM_IDLE=\"abc\" ignored (not a number); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE= 5", NULL },
	{ "KASHIM_IDLE=5 ", NULL },
	{ "KASHIM_IDLE=4.5", NULL },
	{ "KASHIM_IDLE=+5", NULL },
	{ "KASHIM_IDLE=5S", NULL },
	{ "KASHIM_IDLE=\xff\xfe",
	  "kashim: KASHIM_IDLE=\"\\xff\\xfe\" ignored (not valid UTF-8); "
	  "accepted: 1s to 32767s, as 45, 45s, 2m or 1h; using the default 15s\n" },
	{ "KASHIM_IDLE=\xc3\xa9", NULL },
	{ "KASHIM_INTERVAL=0s", NULL },
	{ "KASHIM_INTERVAL=x", NULL },
	{ "KASHIM_INTERVAL=9999h", NULL },
	{ "KASHIM_COUNT=0",
	  "kashim: KASHIM_COUNT=\"0\" ignored (out of range); "
	  "accepted: a whole number from 1 to 127; using the default 9\n" },
	{ "KASHIM_COUNT=128", NULL },
	{ "KASHIM_COUNT=5s",
	  "kashim: KASHIM_COUNT=\"5s\" ignored (unexpected characters after the number); "
	  "accepted: a whole number from 1 to 127; using the default 9\n" },
	{ "KASHIM_COUNT=-1", NULL },
	{ "KASHIM_USER_TIMEOUT=0",
	  "kashim: KASHIM_USER_TIMEOUT=\"0\" ignored (out of range); accepted: auto, off, "
	  "or 1ms to 2147483647ms, as 30, 30s, 1500ms, 2m or 1h; using the default auto\n" },
	{ "KASHIM_USER_TIMEOUT=2147483648ms", NULL },
	{ "KASHIM_USER_TIMEOUT=600h", NULL },
	{ "KASHIM_USER_TIMEOUT=never", NULL },
	{ "KASHIM_USER_TIMEOUT=1.5s", NULL },
	{ "KASHIM=maybe",
	  "kashim: KASHIM=\"maybe\" ignored (not a recognised word); "
	  "accepted: on/off, 1/0, yes/no, true/false; using the default on\n" },
	{ "KASHIM_DEBUG=2",
	  "kashim: KASHIM_DEBUG=\"2\" ignored (not a recognised word); "
	  "accepted: on/off, 1/0, yes/no, true/false; using the default off\n" },
	{ "KASHIM_DEBUG=onn", NULL },
	{ "KASHIM_IDEL=30",
	  "kashim: KASHIM_IDEL is not a kashim variable, ignored (did you mean KASHIM_IDLE?)\n" },
	{ "KASHIM_FOO=1",
	  "kashim: KASHIM_FOO is not a kashim variable, ignored (known: KASHIM, KASHIM_IDLE, "
	  "KASHIM_INTERVAL, KASHIM_COUNT, KASHIM_USER_TIMEOUT, KASHIM_DEBUG, KASHIM_SCOPE, "
	  "KASHIM_ONLY, KASHIM_SKIP, KASHIM_PROGRAMS, KASHIM_SKIP_PROGRAMS, KASHIM_MODE, "
	  "KASHIM_CONFIG)\n" },
	{ "KASHIM_idle=30", NULL },
};

static void test_bad(void)
{
	size_t i;
	char name[200], detail[KASHIM_LINE_MAX + 200];

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct kashim_config cfg, def;
		const char *eq = strchr(bad[i].env, '=');
		char var[64];
		int ok;

		snprintf(var, sizeof var, "%.*s", (int)(eq - bad[i].env), bad[i].env);
		load(&cfg, bad[i].env, NULL, NULL);
		kashim_config_defaults(&def);
		snprintf(name, sizeof name, "rejects %s with one line", bad[i].env);
		ok = nreports == 1 && !strncmp(reports[0], "kashim: ", 8) &&
		     strstr(reports[0], var) && strchr(reports[0], '\n') ==
		     reports[0] + strlen(reports[0]) - 1;
		if (bad[i].message)
			ok = ok && !strcmp(reports[0], bad[i].message);
		ok = ok && cfg.enabled == def.enabled && cfg.idle_s == def.idle_s &&
		     cfg.interval_s == def.interval_s && cfg.count == def.count &&
		     cfg.user_timeout_mode == def.user_timeout_mode &&
		     cfg.user_timeout_ms == 150000 && cfg.debug == def.debug;
		snprintf(detail, sizeof detail, "%u line(s), first: %s", nreports,
			 nreports ? reports[0] : "(none)");
		check(ok, name, detail);
	}
}

static void test_huge_and_mixed(void)
{
	struct kashim_config cfg;
	size_t big = 100 * 1024;
	char *digits = malloc(big + 20), *junk = malloc(big + 20);

	strcpy(digits, "KASHIM_IDLE=");
	memset(digits + 12, '9', big);
	digits[12 + big] = 0;
	strcpy(junk, "KASHIM_COUNT=");
	memset(junk + 13, 'x', big);
	junk[13 + big] = 0;
	load(&cfg, digits, junk, NULL);
	check(nreports == 2 && strlen(reports[0]) < 300 && strstr(reports[0], "9...\"") &&
	      strstr(reports[0], "out of range") && strstr(reports[1], "x...\"") &&
	      cfg.idle_s == 15 && cfg.count == 9,
	      "100 KB values get one short line each, value cut", reports[0]);
	free(digits);
	free(junk);

	load(&cfg, "KASHIM_IDLE=bogus", "KASHIM_COUNT=4", "KASHIM_INTERVAL=2");
	check(nreports == 1 && cfg.idle_s == 15 && cfg.count == 4 && cfg.interval_s == 2 &&
	      cfg.user_timeout_ms == 23000,
	      "a bad variable leaves the others in force", "others lost");

	load(&cfg, "KASHIM=off", "KASHIM_IDLE=bogus", "KASHIM_TYPO=1");
	check(nreports == 0 && !cfg.enabled, "KASHIM=off reports nothing at all",
	      "reported or enabled");

	load(&cfg, "KASHIM_IDLE=20", "KASHIM_IDLE=30", NULL);
	check(nreports == 0 && cfg.idle_s == 20, "the first of two definitions wins (as getenv)",
	      "second won");

	load(&cfg, "KASHIM_IDEL=1", "KASHIM_COUNTT=2", "KASHIM_DEBUG=yes");
	check(nreports == 2 && cfg.debug && strstr(reports[1], "did you mean KASHIM_COUNT?"),
	      "each unknown variable gets its own line", reports[1]);
}

static void test_secure(void)
{
	struct kashim_config cfg;
	char *env[] = { "KASHIM_IDLE=99", "KASHIM=off", "KASHIM_BAD=1", NULL };

	nreports = 0;
	check(kashim_config_load(&cfg, env, true, collect, NULL) == 0 && nreports == 0 &&
	      cfg.enabled && cfg.idle_s == 15 && cfg.user_timeout_ms == 150000,
	      "a setuid/setgid process ignores the environment", "environment was read");
}

static void test_listen_fds(void)
{
	char *a[] = { "LISTEN_FDS=2", "LISTEN_PID=1234", NULL };
	char *b[] = { "LISTEN_FDS=2", NULL };
	char *c[] = { "LISTEN_FDS=2x", "LISTEN_PID=1234", NULL };
	char *d[] = { "LISTEN_PID=1234", NULL };
	char *e[] = { "LISTEN_FDS=99999", NULL };

	check(kashim_listen_fds(a, 1234) == 2, "LISTEN_FDS for this pid", "not 2");
	check(kashim_listen_fds(a, 999) == 0, "LISTEN_FDS for another pid is ignored", "not 0");
	check(kashim_listen_fds(b, 999) == 2, "LISTEN_FDS without LISTEN_PID", "not 2");
	check(kashim_listen_fds(c, 1234) == 0, "a malformed LISTEN_FDS is ignored", "not 0");
	check(kashim_listen_fds(d, 1234) == 0, "no LISTEN_FDS, no listeners", "not 0");
	check(kashim_listen_fds(e, 1234) == 0, "an absurd LISTEN_FDS is ignored", "not 0");
}

static void test_line(void)
{
	struct kashim_line l;
	size_t len;
	char big[2000];

	kashim_line_start(&l);
	kashim_line_put(&l, "a ");
	kashim_line_put_uint(&l, 0);
	kashim_line_put(&l, " ");
	kashim_line_put_uint(&l, 4294967295UL);
	kashim_line_put(&l, " ");
	kashim_line_put_value(&l, "q\"\\\n");
	len = kashim_line_end(&l);
	check(len == strlen("a 0 4294967295 \"q\\x22\\x5c\\x0a\"\n") &&
	      !memcmp(l.buf, "a 0 4294967295 \"q\\x22\\x5c\\x0a\"\n", len),
	      "line builder formats numbers and escapes values", "wrong text");

	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	kashim_line_start(&l);
	kashim_line_put(&l, big);
	len = kashim_line_end(&l);
	check(len == KASHIM_LINE_MAX && l.buf[len - 1] == '\n',
	      "line builder cuts an overlong line and still ends it", "overflow");
}

int main(void)
{
	test_defaults_and_auto();
	test_good();
	test_switches();
	test_bad();
	test_huge_and_mixed();
	test_secure();
	test_listen_fds();
	test_line();
	return failures ? 1 : 0;
}
