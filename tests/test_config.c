/* Unit tests of config.c, linked without the shim.  Prints one
 * "ok - NAME" or "not ok - NAME: why" line per check. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>
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
	"KASHIM_SCOPE=both", "KASHIM_SCOPE=", "KASHIM_MODE=forced", "KASHIM_PROGRAMS=java,,x",
	"KASHIM_SKIP_PROGRAMS=,",
};

static void test_bad_policy(void)
{
	size_t i;
	char name[160];
	struct kashim_config cfg;
	char many[40 * 12 + 32] = "KASHIM_SKIP=";

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
	for (i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%s:%zu", i ? "," : "", i + 1);
	load(&cfg, many, NULL, NULL);
	check(nreports == 1 && strstr(reports[0], "(more than 32 rules)") && cfg.skip.n == 0,
	      "33 rules are too many", nreports ? reports[0] : "none");
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
	{
		char cmd[64];
		snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			failures++;
	}
	return failures ? 1 : 0;
}
