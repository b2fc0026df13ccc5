/* SPDX-License-Identifier: MIT */
/* Unit tests of config.c, linked without the shim.  Prints one
 * "ok - NAME" or "not ok - NAME: why" line per check. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
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
#define REPORTS_KEPT 32
static char reports[REPORTS_KEPT][KASHIM_LINE_MAX + 1];
static unsigned nreports;

static void collect(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	if (nreports < REPORTS_KEPT) {
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


/* ---- issue 5: rules, scope, mode, programs, file, compatibility ---- */

static bool match4(const struct kashim_rules *r, const char *ip, unsigned port)
{
	unsigned char a[16];

	inet_pton(AF_INET, ip, a);
	return kashim_rules_match(r, AF_INET, a, port);
}

static bool match6(const struct kashim_rules *r, const char *ip, unsigned port)
{
	unsigned char a[16];

	inet_pton(AF_INET6, ip, a);
	return kashim_rules_match(r, AF_INET6, a, port);
}

static void test_rules(void)
{
	struct kashim_config cfg;
	char detail[KASHIM_LINE_MAX + 64];

	load(&cfg, "KASHIM_ONLY=10.0.0.0/8, ::1 ,fd00::/8,:5432,:8000-8999,10.1.2.3:5432,[fd00::/8]:443,[::1]:80,192.168.1.7/8",
	     NULL, NULL);
	snprintf(detail, sizeof detail, "%u reports, n=%d: %s", nreports, cfg.only.n,
		 nreports ? reports[0] : "");
	check(nreports == 0 && cfg.has_only && cfg.only.n == 9, "every rule form parses", detail);
	check(match4(&cfg.only, "10.200.1.1", 22) && !match4(&cfg.only, "11.0.0.1", 22),
	      "10.0.0.0/8 matches inside, not outside", "wrong");
	check(match4(&cfg.only, "192.1.2.3", 1), "host bits of 192.168.1.7/8 are ignored", "no");
	check(match6(&cfg.only, "::1", 1234) && match6(&cfg.only, "fd12::5", 9) &&
	      !match6(&cfg.only, "fe80::1", 9), "IPv6 addresses and networks", "wrong");
	check(match4(&cfg.only, "8.8.8.8", 5432) && match6(&cfg.only, "2001:db8::1", 8500) &&
	      !match4(&cfg.only, "8.8.8.8", 9000), "port rules match any address", "wrong");
	check(match6(&cfg.only, "::ffff:10.9.9.9", 1), "an IPv4-mapped address matches IPv4 rules",
	      "no");

	load(&cfg, "KASHIM_SKIP=10.1.2.3:5432,[fd00::/8]:443", NULL, NULL);
	check(match4(&cfg.skip, "10.1.2.3", 5432) && !match4(&cfg.skip, "10.1.2.3", 5433) &&
	      match6(&cfg.skip, "fd00::9", 443) && !match6(&cfg.skip, "fd00::9", 80) &&
	      !cfg.has_only, "address with port, in both families", "wrong");

	load(&cfg, "KASHIM_ONLY=127.0.0.0/8", "KASHIM_SKIP=127.0.0.2", NULL);
	{
		unsigned char a1[4] = { 127, 0, 0, 1 }, a2[4] = { 127, 0, 0, 2 }, b[4] = { 10, 0, 0, 1 };
		check(kashim_config_covers(&cfg, false, AF_INET, a1, 80) &&
		      !kashim_config_covers(&cfg, false, AF_INET, a2, 80) &&
		      !kashim_config_covers(&cfg, true, AF_INET, b, 80) && kashim_config_deferred(&cfg),
		      "SKIP wins over ONLY; outside ONLY is not covered", "wrong");
	}
	load(&cfg, "KASHIM_SCOPE=client", NULL, NULL);
	{
		unsigned char a[4] = { 127, 0, 0, 1 };
		check(kashim_config_covers(&cfg, false, AF_INET, a, 1) &&
		      !kashim_config_covers(&cfg, true, AF_INET, a, 1) && kashim_config_deferred(&cfg),
		      "scope client covers connections made, not accepted", "wrong");
	}
	load(&cfg, "KASHIM_SCOPE=SERVER", "KASHIM_MODE=Force", NULL);
	check(nreports == 0 && cfg.scope == KASHIM_SCOPE_SERVER && cfg.mode == KASHIM_MODE_FORCE,
	      "scope and mode words, any case", "wrong");
	load(&cfg, NULL, NULL, NULL);
	check(!kashim_config_deferred(&cfg) && cfg.mode == KASHIM_MODE_RESPECT,
	      "without filters nothing is deferred", "deferred");
}

static const char *const bad_policy[] = {
	"KASHIM_ONLY=10.0.0.0/33", "KASHIM_ONLY=:0", "KASHIM_ONLY=:70000", "KASHIM_ONLY=:9-8",
	"KASHIM_ONLY=[::1", "KASHIM_ONLY=1.2.3", "KASHIM_ONLY=a,,b", "KASHIM_ONLY=10.0.0.1,",
	"KASHIM_SKIP=[10.0.0.1]:80", "KASHIM_SKIP=host.example", "KASHIM_SKIP=::1/129",
	"KASHIM_SKIP=10.0.0.1:80:90", "KASHIM_SKIP=:80x", "KASHIM_SKIP=\xff",
	"KASHIM_SCOPE=clients", "KASHIM_SCOPE=", "KASHIM_MODE=forced", "KASHIM_PROGRAMS=java,,x",
	"KASHIM_SKIP_PROGRAMS=,",
};

static void test_bad_policy(void)
{
	size_t i;
	char name[160];
	struct kashim_config cfg;
	static char many[(KASHIM_MAX_RULES + 1) * 8 + 32];

	for (i = 0; i < sizeof bad_policy / sizeof bad_policy[0]; i++) {
		const char *eq = strchr(bad_policy[i], '=');
		load(&cfg, bad_policy[i], NULL, NULL);
		snprintf(name, sizeof name, "rejects %s with one line", bad_policy[i]);
		if (!eq[1]) { /* empty means unset: no line */
			check(nreports == 0 && cfg.scope == KASHIM_SCOPE_ALL, name, "reported");
			continue;
		}
		check(nreports == 1 && !strncmp(reports[0], "kashim: ", 8) &&
		      !cfg.has_only && cfg.skip.n == 0 && cfg.scope == KASHIM_SCOPE_ALL &&
		      cfg.mode == KASHIM_MODE_RESPECT && cfg.enabled,
		      name, nreports ? reports[0] : "no line");
	}
	/* The most a list takes, KASHIM_MAX_RULES (256), in force down to the
	 * last; one more is refused whole. */
	strcpy(many, "KASHIM_SKIP=");
	for (i = 0; i < 256; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%s:%zu", i ? "," : "", i + 1);
	load(&cfg, many, NULL, NULL);
	check(nreports == 0 && cfg.skip.n == 256 && match4(&cfg.skip, "10.0.0.1", 256) &&
	      !match4(&cfg.skip, "10.0.0.1", 257), "256 rules are taken, the last one matches",
	      nreports ? reports[0] : "not matched");
	snprintf(many + strlen(many), sizeof many - strlen(many), ",:257");
	load(&cfg, many, NULL, NULL);
	check(nreports == 1 && strstr(reports[0], "(more than 256 rules)") && cfg.skip.n == 0,
	      "257 rules are too many", nreports ? reports[0] : "none");
}

static unsigned load_prog(struct kashim_config *cfg, const char *name, char **env)
{
	const char *names[] = { name, NULL };
	struct kashim_source src = { env, names, false, NULL };

	nreports = 0;
	return kashim_config_load_from(cfg, &src, collect, NULL);
}

static void test_programs(void)
{
	struct kashim_config cfg;
	char *only_java[] = { "KASHIM_PROGRAMS=java, python3*", NULL };
	char *skip_sshd[] = { "KASHIM_SKIP_PROGRAMS=sshd,nginx", NULL };
	char *both[] = { "KASHIM_PROGRAMS=python*", "KASHIM_SKIP_PROGRAMS=python2*", NULL };

	load_prog(&cfg, "java", only_java);
	check(cfg.enabled && cfg.program_filtered, "KASHIM_PROGRAMS names this program", "off");
	load_prog(&cfg, "python3.11", only_java);
	check(cfg.enabled, "a glob matches python3.11", "off");
	load_prog(&cfg, "curl", only_java);
	check(!cfg.enabled, "a program not named is left alone", "on");
	load_prog(&cfg, "sshd", skip_sshd);
	check(!cfg.enabled, "KASHIM_SKIP_PROGRAMS leaves sshd alone", "on");
	load_prog(&cfg, "redis-server", skip_sshd);
	check(cfg.enabled, "and covers the others", "off");
	load_prog(&cfg, "python2.7", both);
	check(!cfg.enabled, "SKIP_PROGRAMS wins over PROGRAMS", "on");
}

static char tmpdir[] = "/tmp/kashim-test-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[4][300];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return p;
}

static void test_file(void)
{
	struct kashim_config cfg;
	char envbuf[400], envbuf2[400];
	const char *path = write_file("k.conf",
		"# global\n"
		"idle = 40s\n"
		"  interval=7   \n"
		"skip = 127.0.0.0/8\n"
		"\n"
		"[program java]\n"
		"idle = 10\n"
		"mode = force\n"
		"[program j*]\n"
		"count = 4\n"
		"[program python3*]\n"
		"idle = 20\n");
	char *env[3] = { envbuf, NULL, NULL };

	snprintf(envbuf, sizeof envbuf, "KASHIM_CONFIG=%s", path);
	load_prog(&cfg, "python3", env);
	check(nreports == 0 && cfg.idle_s == 20 && cfg.interval_s == 7 && cfg.count == 9 &&
	      cfg.skip.n == 1 && cfg.mode == KASHIM_MODE_RESPECT,
	      "file: global settings, then the matching section", nreports ? reports[0] : "values");
	load_prog(&cfg, "java", env);
	check(cfg.idle_s == 10 && cfg.count == 4 && cfg.mode == KASHIM_MODE_FORCE,
	      "file: every matching section applies, the later one last", "values");
	load_prog(&cfg, "curl", env);
	check(cfg.idle_s == 40 && cfg.count == 9, "file: a program without a section gets the global ones",
	      "values");
	env[1] = "KASHIM_IDLE=33";
	load_prog(&cfg, "java", env);
	check(cfg.idle_s == 33 && cfg.count == 4, "the environment overrides the file", "values");
	env[1] = "KASHIM_IDLE=bad";
	load_prog(&cfg, "java", env);
	snprintf(envbuf2, sizeof envbuf2, "using the value from %s:7\n", path);
	check(nreports == 1 && cfg.idle_s == 10 && strstr(reports[0], envbuf2),
	      "a bad variable falls back to the file's value, and says so", reports[0]);
	env[1] = "KEEPIDLE=55";
	load_prog(&cfg, "java", env);
	check(cfg.idle_s == 55, "libkeepalive's variable overrides the file", "values");
	env[1] = NULL;

	path = write_file("bad.conf",
		"idle = 10x\n"
		"idel = 5\n"
		"just words\n"
		"[section]\n"
		"[program]\n"
		"config = /x\n"
		"count = 3\n"
		"[program other]\n"
		"interval = 0\n");
	snprintf(envbuf, sizeof envbuf, "KASHIM_CONFIG=%s", path);
	load_prog(&cfg, "python3", env);
	check(nreports == 7 && cfg.idle_s == 15 && cfg.count == 9,
	      "file: seven bad lines, seven messages, the good line in a broken section unused",
	      nreports ? reports[nreports > 7 ? 7 : nreports - 1] : "none");
	snprintf(envbuf2, sizeof envbuf2, "kashim: %s:1: idle=\"10x\" ignored (unexpected characters "
		 "after the number); accepted: 1s to 32767s, as 45, 45s, 2m or 1h; line ignored\n", path);
	check(!strcmp(reports[0], envbuf2), "file message: file, line, key, value, form", reports[0]);
	snprintf(envbuf2, sizeof envbuf2, "kashim: %s:2: unknown setting \"idel\" (did you mean idle?); "
		 "line ignored\n", path);
	check(!strcmp(reports[1], envbuf2), "an unknown key gets a suggestion", reports[1]);
	check(strstr(reports[6], ":9: interval=\"0\" ignored (out of range)") != NULL,
	      "a section that does not match is still checked", reports[6]);

	snprintf(envbuf, sizeof envbuf, "KASHIM_CONFIG=%s/missing.conf", tmpdir);
	load_prog(&cfg, "python3", env);
	check(nreports == 1 && strstr(reports[0], "cannot read the configuration file") &&
	      strstr(reports[0], ": no such file; it is ignored") && cfg.enabled && cfg.idle_s == 15,
	      "an unreadable file: one message, defaults, kashim on", nreports ? reports[0] : "none");
}

/* kashim check reads the file where KASHIM=off makes the library skip it
 * silently (issue 29: check --config passed a file attach refuses). */
static void test_check_reads_under_off(void)
{
	struct kashim_config cfg;
	char envbuf[400];
	const char *path = write_file("offbad.conf", "idle = 10x\n");
	char *env[3] = { "KASHIM=off", envbuf, NULL };
	struct kashim_source src = { env, NULL, false, NULL };
	unsigned problems;

	snprintf(envbuf, sizeof envbuf, "KASHIM_CONFIG=%s", path);
	nreports = 0;
	problems = kashim_config_load_from(&cfg, &src, collect, NULL);
	check(problems == 0 && nreports == 0 && !cfg.enabled,
	      "the library: KASHIM=off, the file not read, no message", nreports ? reports[0] : "values");
	nreports = 0;
	problems = kashim_config_check_from(&cfg, &src, collect, NULL);
	check(problems == 1 && nreports == 1 && strstr(reports[0], "offbad.conf:1: idle=\"10x\"") &&
	      !cfg.enabled, "check: KASHIM=off still wins, the file's bad line is reported",
	      nreports ? reports[0] : "no report");
}

static void test_default_file(void)
{
	struct kashim_config cfg;
	const char *path = write_file("etc-kashim.conf", "idle = 77\n");
	const char *names[] = { "x", NULL };
	char *none[] = { "PATH=/bin", NULL };
	char *some[] = { "KASHIM_COUNT=3", NULL };
	char *mixed[] = { "KEEPCNT=3", NULL };
	struct kashim_source src = { none, names, false, path };
	char big[70 * 1024];
	FILE *f;

	nreports = 0;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(cfg.idle_s == 77, "the default file applies when no KASHIM_* variable is set", "not read");
	src.envp = some;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(cfg.idle_s == 15 && cfg.count == 3, "and not when one is", "read");
	src.envp = mixed;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(cfg.idle_s == 77 && cfg.count == 3, "compatibility variables still combine with it",
	      "wrong");
	src.envp = none;
	src.default_file = "/nonexistent/kashim.conf";
	nreports = 0;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(nreports == 0 && cfg.idle_s == 15, "a missing default file is not a problem", "reported");
	memset(big, '#', sizeof big);
	f = fopen(path, "w");
	fwrite(big, 1, sizeof big, f);
	fclose(f);
	src.default_file = path;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(nreports == 1 && strstr(reports[0], "larger than 64 KiB"), "a 70 KiB file is refused",
	      nreports ? reports[0] : "none");
}

static void test_compat(void)
{
	struct kashim_config cfg;

	load(&cfg, "KEEPIDLE=33", "KEEPINTVL=4", "KEEPCNT=5");
	check(nreports == 0 && cfg.idle_s == 33 && cfg.interval_s == 4 && cfg.count == 5,
	      "libkeepalive's KEEPIDLE, KEEPINTVL, KEEPCNT", "values");
	load(&cfg, "DD_TCP_KEEPALIVE_TIME=44", "DD_TCP_KEEPALIVE_INTVL=6", "DD_TCP_KEEPALIVE_PROBES=2");
	check(nreports == 0 && cfg.idle_s == 44 && cfg.interval_s == 6 && cfg.count == 2,
	      "libdontdie's DD_TCP_KEEPALIVE_*", "values");
	load(&cfg, "KEEPIDLE=33", "KASHIM_IDLE=20", "DD_TCP_KEEPALIVE_TIME=44");
	check(cfg.idle_s == 20, "KASHIM_IDLE wins over both", "values");
	load(&cfg, "KEEPALIVE=skip", NULL, NULL);
	check(!cfg.enabled, "KEEPALIVE=skip leaves sockets alone", "on");
	load(&cfg, "KEEPALIVE=off", NULL, NULL);
	check(!cfg.enabled, "KEEPALIVE=off too", "on");
	load(&cfg, "DD_USE_KEEPALIVE=0", NULL, NULL);
	check(!cfg.enabled, "DD_USE_KEEPALIVE=0", "on");
	load(&cfg, "DD_DEBUG=1", NULL, NULL);
	check(cfg.debug && nreports == 0, "DD_DEBUG=1", "off");
	load(&cfg, "KEEPALIVE=skip", "KASHIM=on", NULL);
	check(cfg.enabled, "KASHIM=on wins over KEEPALIVE=skip", "off");
	load(&cfg, "KEEPIDLE=abc", "KEEPCNT=500", NULL);
	check(nreports == 2 && !strcmp(reports[0],
	      "kashim: KEEPIDLE=\"abc\" ignored (not a number); accepted: 1s to 32767s, as 45, 45s, "
	      "2m or 1h; it is ignored\n") && cfg.idle_s == 15 && cfg.count == 9,
	      "libkeepalive values are validated like ours", reports[0]);
}

/* ---- issue 9: hostile input ------------------------------------------ */

/* Every report is one line: a single '\n', at its end. */
static bool reports_are_lines(void)
{
	unsigned i;

	for (i = 0; i < nreports && i < REPORTS_KEPT; i++) {
		char *nl = strchr(reports[i], '\n');
		if (strncmp(reports[i], "kashim: ", 8) || !nl || nl[1])
			return false;
	}
	return true;
}

static unsigned load_file(struct kashim_config *cfg, const char *path, const char *name,
			  const char *extra)
{
	static char envbuf[700];
	char *env[3] = { envbuf, (char *)extra, NULL };

	snprintf(envbuf, sizeof envbuf, "KASHIM_CONFIG=%s", path);
	return load_prog(cfg, name, env);
}

static const char *write_bytes(const char *name, const char *bytes, size_t len)
{
	static char path[300];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fwrite(bytes, 1, len, f);
	fclose(f);
	return path;
}

static void test_nul_and_crlf(void)
{
	static const char text[] = "idle = 20\r\nco\0unt = 3\r\ncount = 4\r\n";
	struct kashim_config cfg;
	char want[400];
	const char *path = write_bytes("nul.conf", text, sizeof text - 1);

	load_file(&cfg, path, "x", NULL);
	snprintf(want, sizeof want, "kashim: %s:2: a NUL byte in the line; line ignored\n", path);
	check(nreports == 1 && !strcmp(reports[0], want) && cfg.idle_s == 20 && cfg.count == 4,
	      "a NUL byte: its line reported, the lines after it still apply (CRLF too)",
	      nreports ? reports[0] : "no message");
}

static void test_file_sizes_and_kinds(void)
{
	struct kashim_config cfg;
	size_t max = 64 * 1024;
	char *big = malloc(max + 2);
	const char *path;

	memset(big, '#', max + 1);
	memcpy(big, "idle = 21\n", 10);
	path = write_bytes("64k.conf", big, max);
	load_file(&cfg, path, "x", NULL);
	check(nreports == 0 && cfg.idle_s == 21, "a file of exactly 64 KiB is read",
	      nreports ? reports[0] : "not read");
	path = write_bytes("64k1.conf", big, max + 1);
	load_file(&cfg, path, "x", NULL);
	check(nreports == 1 && strstr(reports[0], "\": larger than 64 KiB; it is ignored\n") &&
	      cfg.idle_s == 15, "64 KiB + 1 is refused with one message", nreports ? reports[0] : "read");
	free(big);

	load_file(&cfg, tmpdir, "x", NULL);
	check(nreports == 1 && strstr(reports[0], ": not a regular file (a directory); it is ignored"),
	      "a directory: one message", nreports ? reports[0] : "none");
	load_file(&cfg, "/dev/null", "x", NULL);
	check(nreports == 1 && strstr(reports[0], ": not a regular file (a character device)"),
	      "a character device is not opened", nreports ? reports[0] : "none");
	load_file(&cfg, "/proc/self/environ", "x", NULL);
	check(nreports == 1 && strstr(reports[0], ": a file of a kernel interface (/proc, /sys)"),
	      "a /proc file is not read", nreports ? reports[0] : "none");
}

static void test_errno_kept(void)
{
	struct kashim_config cfg;
	const char *names[] = { "x", NULL };
	char *none[] = { "PATH=/bin", NULL };
	struct kashim_source src = { none, names, false, "/nonexistent/kashim.conf" };

	errno = 12345;
	kashim_config_load_from(&cfg, &src, collect, NULL);
	check(errno == 12345, "a load with no /etc/kashim.conf leaves errno as it was", "changed");
	errno = 12345;
	load_file(&cfg, "/nonexistent/k.conf", "x", NULL);
	check(errno == 12345, "so does one with a missing KASHIM_CONFIG", "changed");
}

static void test_too_many_problems(void)
{
	struct kashim_config cfg;
	char text[40 * 12 + 1] = "", want[400];
	const char *path;
	int i;

	for (i = 0; i < 40; i++)
		strcat(text, "not a line\n");
	path = write_file("junk.conf", text);
	load_file(&cfg, path, "x", NULL);
	snprintf(want, sizeof want, "kashim: %s: 40 problems, the first 20 shown; is it a kashim "
		 "configuration file?\n", path);
	check(nreports == 21 && !strcmp(reports[20], want) && cfg.enabled,
	      "40 bad lines: 20 messages and one that says how many more", reports[20]);
}

static void test_many_sections(void)
{
	struct kashim_config cfg;
	size_t n = 0, cap = 64 * 1024;
	char *text = malloc(cap + 1);
	const char *path;
	int i;

	for (i = 0; i < 5000; i++)
		n += (size_t)snprintf(text + n, cap - n, "[program p%d]\n", i % 10);
	n += (size_t)snprintf(text + n, cap - n, "[program python3*]\nidle = 9\n");
	path = write_bytes("sections.conf", text, n);
	free(text);
	load_file(&cfg, path, "python3", NULL);
	check(nreports == 0 && cfg.idle_s == 9, "5000 [program] sections, the last one matches",
	      nreports ? reports[0] : "not applied");
}

static void test_mapped_rules(void)
{
	struct kashim_config cfg;
	unsigned char lo[4] = { 127, 0, 0, 1 }, ten[4] = { 10, 1, 2, 3 }, other[4] = { 127, 0, 0, 2 };
	unsigned char mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 };

	load(&cfg, "KASHIM_SKIP=::ffff:127.0.0.1,::FFFF:10.0.0.0/104", NULL, NULL);
	check(nreports == 0 && !kashim_config_covers(&cfg, false, AF_INET, lo, 80) &&
	      !kashim_config_covers(&cfg, false, AF_INET6, mapped, 80) &&
	      !kashim_config_covers(&cfg, false, AF_INET, ten, 80) &&
	      kashim_config_covers(&cfg, false, AF_INET, other, 80),
	      "KASHIM_SKIP=::ffff:127.0.0.1 skips 127.0.0.1, plain or mapped; /104 is 10.0.0.0/8",
	      nreports ? reports[0] : "not skipped");
	load(&cfg, "KASHIM_ONLY=[::ffff:127.0.0.1]:80", NULL, NULL);
	check(nreports == 0 && kashim_config_covers(&cfg, false, AF_INET, lo, 80) &&
	      !kashim_config_covers(&cfg, false, AF_INET, lo, 81),
	      "[::ffff:127.0.0.1]:80 matches 127.0.0.1 port 80", nreports ? reports[0] : "no match");
	load(&cfg, "KASHIM_ONLY=::1", "KASHIM_SKIP=10.0.0.1,bad", NULL);
	check(nreports == 1 && cfg.skip.n == 0 && cfg.has_only && cfg.only.n == 1,
	      "a bad rule list leaves no half-written rules", nreports ? reports[0] : "none");
}

/* Every rule prints as text that parses back to the same rule (issue 21:
 * ":1-65535" printed as nothing, and dropin --cgroup wrote "--skip  self"):
 * the grammar's corners, then every prefix of both families. */
static const char *const round_trip[] = {
	":1-65535", ":1", ":65535", ":1-1", ":65535-65535", ":1-2", ":65534-65535", ":5432",
	":8000-8999", "0.0.0.0/0", "0.0.0.0/0:1-65535", "0.0.0.0/0:1", "255.255.255.255",
	"10.1.2.3/8", "10.0.0.0/8:65535", "1.2.3.4:5-6", "1.2.3.0/24:1-65535", "::", "::/0",
	"[::/0]:1-65535", "[::/0]:443", "::1", "[::1]:1", "[::1]:65535", "fd00::/8",
	"[fd00::/8]:8000-8999", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	"::ffff:127.0.0.1", "::ffff:10.0.0.0/104", "[::ffff:127.0.0.1]:80", "::ffff:0:0/96",
	"[::ffff:0.0.0.0/96]:1-65535", "::ffff:1.2.3.4/95", "::1.2.3.4", "[::1.2.3.4/120]:9",
	"[::ffff:1.2.3.4/127]:1-2",
};

static bool same_rule(const struct kashim_rule *a, const struct kashim_rule *b)
{
	return a->family == b->family && a->prefix == b->prefix && a->port_lo == b->port_lo &&
	       a->port_hi == b->port_hi && !memcmp(a->addr, b->addr, sizeof a->addr);
}

/* text parsed as KASHIM_SKIP, each rule printed, the printed list parsed
 * again: the same rules, none printed empty.  Returns false with why. */
static bool rules_round_trip(const char *text, char *why, size_t size)
{
	static struct kashim_config first, again;
	static char env[KASHIM_MAX_RULES * 64];
	struct kashim_line l;
	size_t at = 0;
	int i;

	snprintf(env, sizeof env, "KASHIM_SKIP=%s", text);
	if (load(&first, env, NULL, NULL) != 0 || first.skip.n == 0) {
		snprintf(why, size, "%.200s: does not parse: %s", text, nreports ? reports[0] : "no rule");
		return false;
	}
	at = (size_t)snprintf(env, sizeof env, "KASHIM_SKIP=");
	for (i = 0; i < first.skip.n; i++) {
		kashim_line_start(&l);
		kashim_line_put_rule(&l, &first.skip.rule[i]);
		if (!l.len) {
			snprintf(why, size, "%.200s: rule %d prints as nothing", text, i);
			return false;
		}
		at += (size_t)snprintf(env + at, sizeof env - at, "%s%.*s", i ? "," : "", (int)l.len, l.buf);
	}
	if (load(&again, env, NULL, NULL) != 0 || again.skip.n != first.skip.n) {
		snprintf(why, size, "%.200s printed as %.300s, which %.400s", text, env + 12,
			 nreports ? reports[0] : "has another number of rules");
		return false;
	}
	for (i = 0; i < first.skip.n; i++)
		if (!same_rule(&first.skip.rule[i], &again.skip.rule[i])) {
			snprintf(why, size, "%.200s printed as %.300s: rule %d differs", text, env + 12, i);
			return false;
		}
	return true;
}

static void test_rule_round_trip(void)
{
	static char all[KASHIM_MAX_RULES * 48];
	char why[KASHIM_LINE_MAX * 2], name[160];
	struct kashim_config cfg;
	struct kashim_line l;
	size_t i;
	unsigned bits;
	bool ok = true;

	for (i = 0; i < sizeof round_trip / sizeof round_trip[0]; i++) {
		snprintf(name, sizeof name, "rule %s prints as text that parses back to it", round_trip[i]);
		check(rules_round_trip(round_trip[i], why, sizeof why), name, why);
	}
	load(&cfg, "KASHIM_SKIP=:1-65535", NULL, NULL);
	kashim_line_start(&l);
	kashim_line_put_rule(&l, &cfg.skip.rule[0]);
	snprintf(why, sizeof why, "'%.*s'", (int)l.len, l.buf);
	check(l.len == 8 && !memcmp(l.buf, ":1-65535", 8), "the rule :1-65535 prints as :1-65535", why);
	/* every prefix of each family, with and without ports, as one list */
	for (bits = 0; ok && bits <= 128; bits++) {
		all[0] = 0;
		if (bits <= 32)
			snprintf(all, sizeof all, "255.255.255.255/%u,255.255.255.255/%u:1-65535,"
				 "255.255.255.255/%u:00080,", bits, bits, bits);
		snprintf(all + strlen(all), sizeof all - strlen(all),
			 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/%u,[::ffff:ffff:ffff/%u]:1,"
			 "[f::/%u]:1-65535", bits, bits, bits);
		ok = rules_round_trip(all, why, sizeof why);
	}
	check(ok, "every prefix of both families, with and without ports, round-trips", why);
	/* port 0 is not in the grammar (the kernel has no connection on it) */
	load(&cfg, "KASHIM_SKIP=:0-65535", NULL, NULL);
	check(nreports == 1 && cfg.skip.n == 0, "port 0 is refused, as a range's start too",
	      nreports ? reports[0] : "taken");
}

/* One set of words everywhere: kashim attach --scope both was taken,
 * KASHIM_SCOPE=both and "scope = both" in the file were refused (issue 21). */
static void test_scope_both(void)
{
	struct kashim_config cfg;
	const char *path = write_file("both.conf", "scope = client\n[program p]\nscope = both\n");

	load(&cfg, "KASHIM_SCOPE=Both", NULL, NULL);
	check(nreports == 0 && cfg.scope == KASHIM_SCOPE_ALL && !kashim_config_deferred(&cfg),
	      "KASHIM_SCOPE=both is all, the word kashim attach --scope takes",
	      nreports ? reports[0] : "another scope");
	load_file(&cfg, path, "p", NULL);
	check(nreports == 0 && cfg.scope == KASHIM_SCOPE_ALL,
	      "scope = both in the file is all", nreports ? reports[0] : "another scope");
	load_file(&cfg, path, "q", "KASHIM_SCOPE=both");
	check(nreports == 0 && cfg.scope == KASHIM_SCOPE_ALL,
	      "KASHIM_SCOPE=both wins over the file's scope = client", nreports ? reports[0] : "another scope");
}

static void test_hostile_globs(void)
{
	struct kashim_config cfg;
	char glob[400] = "KASHIM_PROGRAMS=p";
	char *env[] = { glob, NULL };
	static const struct { const char *glob, *name; bool on; } cases[] = {
		{ "python[0-9]*", "python3.11", true }, { "python[!3]*", "python3", false },
		{ "[[:alpha:]]*[[:digit:]]", "java8", true }, { "\\[", "[", true },
		{ "*.sh", "run.sh", true }, { "a?c", "abc", true }, { "a?c", "ac", false },
		{ "[]x]", "]", true }, { "*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	};
	static const char *const bad_globs[] = { "/usr/bin/python3", "bin/java", "py[thon",
						 "[[:word:]]", "x,*/y" };
	size_t i;
	char name[200];

	memset(glob + strlen(glob), '*', 298);
	strcat(glob, "3");
	load_prog(&cfg, "python3", env);
	check(nreports == 0 && cfg.enabled, "a 300-byte glob matches (no length limit)",
	      nreports ? reports[0] : "did not match");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(glob, sizeof glob, "KASHIM_PROGRAMS=%s", cases[i].glob);
		load_prog(&cfg, cases[i].name, env);
		snprintf(name, sizeof name, "glob %s %s %.20s", cases[i].glob,
			 cases[i].on ? "matches" : "does not match", cases[i].name);
		check(nreports == 0 && cfg.enabled == cases[i].on, name,
		      nreports ? reports[0] : "wrong");
	}
	for (i = 0; i < sizeof bad_globs / sizeof bad_globs[0]; i++) {
		snprintf(glob, sizeof glob, "KASHIM_SKIP_PROGRAMS=%s", bad_globs[i]);
		load_prog(&cfg, "python3", env);
		snprintf(name, sizeof name, "KASHIM_SKIP_PROGRAMS=%s gets one line", bad_globs[i]);
		check(nreports == 1 && cfg.enabled && !cfg.program_filtered &&
		      (strstr(reports[0], "without '/'") || strstr(reports[0], "a [ without its ]")),
		      name, nreports ? reports[0] : "accepted");
	}
	{
		const char *path = write_file("slash.conf", "[program /usr/bin/python3]\nidle = 5\n");
		char want[400];
		load_file(&cfg, path, "python3", NULL);
		snprintf(want, sizeof want, "kashim: %s:1: a program is matched by its file name, "
			 "without '/', as python3 \"/usr/bin/python3\"; line ignored\n", path);
		check(nreports == 1 && !strcmp(reports[0], want) && cfg.idle_s == 15,
		      "a [program] section named with a '/' gets a message", nreports ? reports[0] : "none");
	}
}

/* A path or value with a newline or an escape sequence cannot start a line
 * of its own or reach the terminal: every message stays one line. */
static void test_escaping(void)
{
	struct kashim_config cfg;
	char dir[300], path[400];
	unsigned i;
	bool escaped = true;

	snprintf(dir, sizeof dir, "%s/x\nkashim: forged \x1b[31m\xff", tmpdir);
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/k.conf", dir);
	{
		FILE *f = fopen(path, "w");
		fputs("idle = 5\ncount = x\nbogus = 1\n[program a/b]\n", f);
		fclose(f);
	}
	load_file(&cfg, path, "x", "KASHIM_IDLE=bad\n\x1b[2J");
	for (i = 0; i < nreports && i < REPORTS_KEPT; i++)
		escaped = escaped && strstr(reports[i], "x\\x0akashim: forged \\x1b[31m\\xff/k.conf");
	check(nreports == 4 && reports_are_lines() && escaped &&
	      strstr(reports[3], "KASHIM_IDLE=\"bad\\x0a\\x1b[2J\" ignored") &&
	      strstr(reports[3], "; using the value from ") && strstr(reports[3], "/k.conf:1\n"),
	      "paths and values escaped in every message, the fallback's too",
	      nreports > 3 ? reports[3] : nreports ? reports[0] : "none");
	load_file(&cfg, dir, "x", NULL);
	check(nreports == 1 && reports_are_lines() && strstr(reports[0], "forged \\x1b[31m\\xff\""),
	      "and in the message for a file that cannot be read", nreports ? reports[0] : "none");
}

static void test_listen_fds_hostile(void)
{
	static const char *const bad_fds[] = { "LISTEN_FDS=-1", "LISTEN_FDS=", "LISTEN_FDS=0x10",
		"LISTEN_FDS=4097", "LISTEN_FDS=18446744073709551617", "LISTEN_FDS= 1",
		"LISTEN_FDS=1 ", "LISTEN_FDS=+1", "LISTEN_FDS=\xff" };
	char *pid_empty[] = { "LISTEN_FDS=1", "LISTEN_PID=", NULL };
	char *twice[] = { "LISTEN_FDS=2", "LISTEN_FDS=3", NULL };
	size_t i;
	bool all = true;

	for (i = 0; i < sizeof bad_fds / sizeof bad_fds[0]; i++) {
		char *env[] = { (char *)bad_fds[i], NULL };
		all = all && kashim_listen_fds(env, 1) == 0;
	}
	check(all, "hostile LISTEN_FDS values mean no listeners", "accepted one");
	check(kashim_listen_fds(pid_empty, 1) == 0, "an empty LISTEN_PID names no process", "not 0");
	check(kashim_listen_fds(twice, 1) == 2, "the first LISTEN_FDS counts, as getenv", "not 2");
}

/* ---- stack ------------------------------------------------------------- */

/* The worst case the loader meets: a file with sections, rules, globs and
 * bad lines, bad variables whose messages name the file, unknown ones. */
static char worst_env[400];

static void write_worst(void)
{
	static const char text[] =
		"idle = 40s\ncount = x\nbogus = 1\nskip = 10.0.0.0/8, ::ffff:127.0.0.1, [fd00::/8]:443\n"
		"programs = python3*, java, [[:alpha:]]*\n"
		"[program python3*]\nonly = :5432, 10.1.2.3:80\nuser_timeout = 1500ms\n"
		"[program a/b]\nmode = force\n";

	snprintf(worst_env, sizeof worst_env, "KASHIM_CONFIG=%s",
		 write_bytes("worst.conf", text, sizeof text - 1));
}

static __attribute__((noinline)) void load_worst(void)
{
	char *env[] = { worst_env, "KASHIM_IDLE=bad", "KASHIM_IDEL=1", "KEEPCNT=x",
			"KASHIM_SKIP_PROGRAMS=sshd,*a*b*c", NULL };
	const char *names[] = { "python3", "python3.11", NULL };
	struct kashim_source src = { env, names, false, NULL };
	static struct kashim_config cfg; /* the library's is static too */

	kashim_config_load_from(&cfg, &src, collect, NULL);
	src.envp = (char *[]){ "KASHIM_CONFIG=/nonexistent/k.conf", NULL };
	kashim_config_load_from(&cfg, &src, collect, NULL);
}

#ifndef __has_feature
#define __has_feature(x) 0 /* gcc before 14 */
#endif
#define PAINT 0xa5
static uintptr_t stack_low, stack_top; /* what the loader wrote, from where */

static void *painted_thread(void *arg)
{
	unsigned char *base = arg;

	stack_top = (uintptr_t)__builtin_frame_address(0);
	load_worst();
	while (*base == PAINT)
		base++;
	stack_low = (uintptr_t)base;
	return NULL;
}

static void *load_thread(void *arg)
{
	(void)arg;
	load_worst();
	return NULL;
}

/* Threads may have 16 KiB stacks (PTHREAD_STACK_MIN) and call socket() while
 * the configuration loads: the loader, libc's calls included, is measured
 * on a painted stack, and must leave room for the program's own frames and
 * the wrapper that triggered it. */
static void test_stack(void)
{
	size_t size = 64 * 1024, used;
	unsigned char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_attr_t attr;
	pthread_t t;
	pid_t child;
	int status;
	char detail[100];

	write_worst();
	load_worst(); /* binds libc's functions: the library is linked with -z now */
	memset(stack, PAINT, size);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, size);
	if (pthread_create(&t, &attr, painted_thread, stack) || pthread_join(t, NULL)) {
		check(0, "loader on a painted stack", "no thread");
		return;
	}
	used = stack_top - stack_low;
	snprintf(detail, sizeof detail, "%zu bytes", used);
	printf("# kashim_config_load_from, libc included, measured: %zu bytes of stack\n", used);
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	used = 0; /* redzones: the budget is for the real build */
#endif
	check(used <= 2 * 1024, "the loader uses at most 2 KiB of stack, libc included", detail);
	munmap(stack, size);

	/* In a child, so that a crash is one failed check. */
	fflush(stdout);
	child = fork();
	if (child == 0) {
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 16 * 1024);
		_exit(pthread_create(&t, &attr, load_thread, NULL) || pthread_join(t, NULL));
	}
	check(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "a thread with a 16 KiB stack survives a load", "crashed");
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_rules();
	test_bad_policy();
	test_programs();
	test_file();
	test_check_reads_under_off();
	test_default_file();
	test_compat();
	test_defaults_and_auto();
	test_good();
	test_switches();
	test_bad();
	test_huge_and_mixed();
	test_secure();
	test_listen_fds();
	test_line();
	test_nul_and_crlf();
	test_file_sizes_and_kinds();
	test_errno_kept();
	test_too_many_problems();
	test_many_sections();
	test_mapped_rules();
	test_rule_round_trip();
	test_scope_both();
	test_hostile_globs();
	test_escaping();
	test_listen_fds_hostile();
	test_stack();
	{
		char cmd[64];
		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			failures++;
	}
	return failures ? 1 : 0;
}
