/* kashim configuration parsing and validation.  See config.h. */
#include "config.h"

#include <string.h>

/* ---- line builder ------------------------------------------------------ */

void kashim_line_start(struct kashim_line *l)
{
	l->len = 0;
}

static void line_putc(struct kashim_line *l, char c)
{
	/* keep one byte for the closing newline */
	if (l->len + 1 < sizeof l->buf)
		l->buf[l->len++] = c;
}

void kashim_line_put(struct kashim_line *l, const char *s)
{
	while (*s)
		line_putc(l, *s++);
}

void kashim_line_put_uint(struct kashim_line *l, unsigned long v)
{
	char digits[24];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		line_putc(l, digits[--n]);
}

static void line_put_escaped(struct kashim_line *l, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			line_putc(l, (char)c);
		} else {
			line_putc(l, '\\');
			line_putc(l, 'x');
			line_putc(l, hex[c >> 4]);
			line_putc(l, hex[c & 15]);
		}
	}
	if (s[i])
		kashim_line_put(l, "...");
}

void kashim_line_put_value(struct kashim_line *l, const char *v)
{
	line_putc(l, '"');
	line_put_escaped(l, v, 40);
	line_putc(l, '"');
}

size_t kashim_line_end(struct kashim_line *l)
{
	l->buf[l->len++] = '\n';
	return l->len;
}

/* ---- value parsers ----------------------------------------------------- */

enum verdict {
	V_OK,
	V_NOT_UTF8,
	V_NEGATIVE,
	V_NOT_NUMBER,
	V_JUNK,
	V_RANGE,
	V_NO_MS,
	V_WORD,
};

static const char *const verdict_text[] = {
	[V_OK] = "valid",
	[V_NOT_UTF8] = "not valid UTF-8",
	[V_NEGATIVE] = "negative",
	[V_NOT_NUMBER] = "not a number",
	[V_JUNK] = "unexpected characters after the number",
	[V_RANGE] = "out of range",
	[V_NO_MS] = "the kernel takes whole seconds here, not ms",
	[V_WORD] = "not a recognised word",
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned char c = *p++;
		int more;
		unsigned long cp, min;

		if (c < 0x80)
			continue;
		if ((c & 0xe0) == 0xc0) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		while (more--) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* Leading decimal digits.  Values past any limit we accept saturate at
 * PARSE_BIG, so overflow reads as "out of range", never as a wrapped value. */
#define PARSE_BIG 1000000000000ULL

static enum verdict parse_digits(const char **sp, unsigned long long *out)
{
	const char *s = *sp;
	unsigned long long n = 0;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	if (s[0] == '-' && is_digit(s[1]))
		return V_NEGATIVE;
	if (!is_digit(*s))
		return V_NOT_NUMBER;
	for (; is_digit(*s); s++)
		n = n >= PARSE_BIG ? PARSE_BIG : n * 10 + (unsigned)(*s - '0');
	*sp = s;
	*out = n;
	return V_OK;
}

/* A duration in milliseconds: a bare number is seconds; s, m, h and (when
 * allow_ms) ms suffixes. */
static enum verdict parse_duration_ms(const char *s, bool allow_ms,
				      unsigned long long min_ms,
				      unsigned long long max_ms,
				      unsigned long long *out)
{
	unsigned long long n, unit;
	enum verdict v = parse_digits(&s, &n);

	if (v != V_OK)
		return v;
	if (!strcmp(s, "") || !strcmp(s, "s"))
		unit = 1000;
	else if (!strcmp(s, "m"))
		unit = 60 * 1000;
	else if (!strcmp(s, "h"))
		unit = 60 * 60 * 1000;
	else if (!strcmp(s, "ms"))
		unit = 1;
	else
		return V_JUNK;
	if (unit == 1 && !allow_ms)
		return V_NO_MS;
	n *= unit; /* n <= PARSE_BIG, unit <= 3.6e6: no overflow */
	if (n < min_ms || n > max_ms)
		return V_RANGE;
	*out = n;
	return V_OK;
}

/* A whole decimal number and nothing else. */
static enum verdict parse_uint(const char *s, unsigned long long *out)
{
	enum verdict v = parse_digits(&s, out);

	if (v == V_OK && *s)
		return V_JUNK;
	return v;
}

static enum verdict parse_count(const char *s, unsigned long long *out)
{
	enum verdict v = parse_uint(s, out);

	if (v == V_OK && (*out < KASHIM_COUNT_MIN || *out > KASHIM_COUNT_MAX))
		return V_RANGE;
	return v;
}

static bool ascii_equal_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
		if (x != *b)
			return false;
	}
	return *a == *b;
}

static enum verdict parse_switch(const char *s, bool *out)
{
	static const char *const on[] = { "on", "1", "yes", "true" };
	static const char *const off[] = { "off", "0", "no", "false" };
	size_t i;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	for (i = 0; i < sizeof on / sizeof on[0]; i++) {
		if (ascii_equal_nocase(s, on[i])) {
			*out = true;
			return V_OK;
		}
		if (ascii_equal_nocase(s, off[i])) {
			*out = false;
			return V_OK;
		}
	}
	return V_WORD;
}

/* ---- the variables ----------------------------------------------------- */

enum var_id { VAR_SWITCH, VAR_IDLE, VAR_INTERVAL, VAR_COUNT, VAR_USER_TIMEOUT,
	      VAR_DEBUG, VAR_COUNT_ };

struct var {
	const char *name;
	const char *accepted;    /* shown after "accepted: " */
	const char *default_txt; /* shown after "using the default " */
};

static const struct var vars[VAR_COUNT_] = {
	[VAR_SWITCH] = { "KASHIM", "on/off, 1/0, yes/no, true/false", "on" },
	[VAR_IDLE] = { "KASHIM_IDLE", "1s to 32767s, as 45, 45s, 2m or 1h", "15s" },
	[VAR_INTERVAL] = { "KASHIM_INTERVAL", "1s to 32767s, as 45, 45s, 2m or 1h", "15s" },
	[VAR_COUNT] = { "KASHIM_COUNT", "a whole number from 1 to 127", "9" },
	[VAR_USER_TIMEOUT] = { "KASHIM_USER_TIMEOUT",
			       "auto, off, or 1ms to 2147483647ms, as 30, 30s, 1500ms, 2m or 1h",
			       "auto" },
	[VAR_DEBUG] = { "KASHIM_DEBUG", "on/off, 1/0, yes/no, true/false", "off" },
};

struct reporter {
	kashim_report_fn *fn;
	void *ctx;
	unsigned problems;
};

static void emit(struct reporter *r, struct kashim_line *l)
{
	size_t len = kashim_line_end(l);

	r->problems++;
	if (r->fn)
		r->fn(r->ctx, l->buf, len);
}

static void report_bad_value(struct reporter *r, enum var_id id,
			     const char *value, enum verdict v)
{
	struct kashim_line l;

	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	kashim_line_put(&l, vars[id].name);
	kashim_line_put(&l, "=");
	kashim_line_put_value(&l, value);
	kashim_line_put(&l, " ignored (");
	kashim_line_put(&l, verdict_text[v]);
	kashim_line_put(&l, "); accepted: ");
	kashim_line_put(&l, vars[id].accepted);
	kashim_line_put(&l, "; using the default ");
	kashim_line_put(&l, vars[id].default_txt);
	emit(r, &l);
}

/* Edit distance, for "did you mean"; names past 63 bytes never match. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), i, j;
	size_t row[64];

	if (la >= 64 || lb >= 64)
		return 64;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void report_unknown(struct reporter *r, const char *name, size_t len)
{
	struct kashim_line l;
	char shown[48];
	size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
	int id, best = -1;
	size_t best_d = 3; /* suggest only at distance 1 or 2 */

	memcpy(shown, name, n);
	shown[n] = 0;
	for (id = 0; id < VAR_COUNT_; id++) {
		size_t d = edit_distance(name, len, vars[id].name);
		if (d < best_d) {
			best_d = d;
			best = id;
		}
	}
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	line_put_escaped(&l, shown, sizeof shown - 1);
	if (len > n)
		kashim_line_put(&l, "...");
	kashim_line_put(&l, " is not a kashim variable, ignored");
	if (best >= 0) {
		kashim_line_put(&l, " (did you mean ");
		kashim_line_put(&l, vars[best].name);
		kashim_line_put(&l, "?)");
	} else {
		kashim_line_put(&l, " (known: ");
		for (id = 0; id < VAR_COUNT_; id++) {
			kashim_line_put(&l, id ? ", " : "");
			kashim_line_put(&l, vars[id].name);
		}
		kashim_line_put(&l, ")");
	}
	emit(r, &l);
}

static bool ours(const char *entry, size_t name_len)
{
	return strncmp(entry, "KASHIM", 6) == 0 &&
	       (name_len == 6 || entry[6] == '_');
}

/* The first value of each known variable; unknown KASHIM_* names reported. */
static void collect(char *const *envp, const char *values[VAR_COUNT_],
		    struct reporter *r)
{
	char *const *e;

	for (e = envp; *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t len;
		int id;

		if (!eq)
			continue;
		len = (size_t)(eq - *e);
		if (!ours(*e, len) || eq[1] == 0) /* empty means unset */
			continue;
		for (id = 0; id < VAR_COUNT_; id++)
			if (strlen(vars[id].name) == len &&
			    !strncmp(*e, vars[id].name, len))
				break;
		if (id == VAR_COUNT_) {
			if (r)
				report_unknown(r, *e, len);
		} else if (!values[id]) {
			values[id] = eq + 1;
		}
	}
}

static void load_switch(struct reporter *r, enum var_id id, const char *value,
			bool *out)
{
	enum verdict v;

	if (!value)
		return;
	v = parse_switch(value, out);
	if (v != V_OK)
		report_bad_value(r, id, value, v);
}

static void load_seconds(struct reporter *r, enum var_id id, const char *value,
			 int *out)
{
	unsigned long long ms;
	enum verdict v;

	if (!value)
		return;
	v = parse_duration_ms(value, false, KASHIM_SECONDS_MIN * 1000ULL,
			      KASHIM_SECONDS_MAX * 1000ULL, &ms);
	if (v == V_OK)
		*out = (int)(ms / 1000);
	else
		report_bad_value(r, id, value, v);
}

static void load_user_timeout(struct reporter *r, const char *value,
			      struct kashim_config *cfg)
{
	unsigned long long ms;
	enum verdict v;

	if (!value)
		return;
	if (ascii_equal_nocase(value, "auto")) {
		cfg->user_timeout_mode = KASHIM_UT_AUTO;
		return;
	}
	if (ascii_equal_nocase(value, "off")) {
		cfg->user_timeout_mode = KASHIM_UT_OFF;
		return;
	}
	v = parse_duration_ms(value, true, KASHIM_USER_TIMEOUT_MIN_MS,
			      KASHIM_USER_TIMEOUT_MAX_MS, &ms);
	if (v == V_OK) {
		cfg->user_timeout_mode = KASHIM_UT_FIXED;
		cfg->user_timeout_ms = (unsigned)ms;
	} else {
		report_bad_value(r, VAR_USER_TIMEOUT, value, v);
	}
}

void kashim_config_defaults(struct kashim_config *cfg)
{
	cfg->enabled = true;
	cfg->debug = false;
	cfg->idle_s = KASHIM_IDLE_DEFAULT_S;
	cfg->interval_s = KASHIM_INTERVAL_DEFAULT_S;
	cfg->count = KASHIM_COUNT_DEFAULT;
	cfg->user_timeout_mode = KASHIM_UT_AUTO;
	cfg->user_timeout_ms = 0;
}

static void resolve_user_timeout(struct kashim_config *cfg)
{
	unsigned long long ms;

	switch (cfg->user_timeout_mode) {
	case KASHIM_UT_AUTO:
		ms = ((unsigned long long)cfg->idle_s +
		      (unsigned long long)cfg->interval_s * (unsigned)cfg->count) * 1000;
		cfg->user_timeout_ms = ms > KASHIM_USER_TIMEOUT_MAX_MS ?
				       KASHIM_USER_TIMEOUT_MAX_MS : (unsigned)ms;
		break;
	case KASHIM_UT_OFF:
		cfg->user_timeout_ms = 0;
		break;
	case KASHIM_UT_FIXED:
		break;
	}
}

unsigned kashim_config_load(struct kashim_config *cfg, char *const *envp,
			    bool secure, kashim_report_fn *report, void *ctx)
{
	struct reporter r = { report, ctx, 0 };
	const char *values[VAR_COUNT_] = { 0 };

	kashim_config_defaults(cfg);
	if (secure || !envp) {
		resolve_user_timeout(cfg);
		return 0;
	}
	/* KASHIM=off means do nothing at all, so look at it before anything
	 * else can produce a message. */
	collect(envp, values, NULL);
	load_switch(&r, VAR_SWITCH, values[VAR_SWITCH], &cfg->enabled);
	if (!cfg->enabled)
		return r.problems;

	memset(values, 0, sizeof values);
	collect(envp, values, &r);
	load_switch(&r, VAR_DEBUG, values[VAR_DEBUG], &cfg->debug);
	load_seconds(&r, VAR_IDLE, values[VAR_IDLE], &cfg->idle_s);
	load_seconds(&r, VAR_INTERVAL, values[VAR_INTERVAL], &cfg->interval_s);
	if (values[VAR_COUNT]) {
		unsigned long long n;
		enum verdict v = parse_count(values[VAR_COUNT], &n);
		if (v == V_OK)
			cfg->count = (int)n;
		else
			report_bad_value(&r, VAR_COUNT, values[VAR_COUNT], v);
	}
	load_user_timeout(&r, values[VAR_USER_TIMEOUT], cfg);
	resolve_user_timeout(cfg);
	return r.problems;
}

int kashim_listen_fds(char *const *envp, long pid)
{
	const char *fds = NULL, *lpid = NULL;
	char *const *e;
	unsigned long long n, owner;

	if (!envp)
		return 0;
	for (e = envp; *e; e++) {
		if (!strncmp(*e, "LISTEN_FDS=", 11) && !fds)
			fds = *e + 11;
		else if (!strncmp(*e, "LISTEN_PID=", 11) && !lpid)
			lpid = *e + 11;
	}
	if (!fds || parse_uint(fds, &n) != V_OK || n == 0 || n > 4096)
		return 0;
	if (lpid && (parse_uint(lpid, &owner) != V_OK ||
		     owner != (unsigned long long)pid))
		return 0;
	return (int)n;
}
