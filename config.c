/* kashim configuration parsing and validation.  See config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The text so far as a C string (line_putc always leaves a byte free). */
static const char *line_cstr(struct kashim_line *l)
{
	l->buf[l->len] = 0;
	return l->buf;
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
	V_RULE,
	V_TOO_MANY,
	V_EMPTY_ITEM,
	V_NOT_IN_FILE,
	V_GLOB_LONG,
	V_GLOB_SLASH,
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
	[V_RULE] = "not an address, network or port",
	[V_TOO_MANY] = "more than 32 rules",
	[V_EMPTY_ITEM] = "an empty item",
	[V_NOT_IN_FILE] = "only accepted in the environment",
	[V_GLOB_LONG] = "a program name or glob longer than 255 bytes",
	[V_GLOB_SLASH] = "a program name has no '/' (names are matched, not paths)",
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

/* ---- address and port rules (KASHIM_ONLY, KASHIM_SKIP) ---------------- */

static bool parse_port(const char *s, size_t len, unsigned short *out)
{
	unsigned long n = 0;
	size_t i;

	if (!len || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		n = n * 10 + (unsigned)(s[i] - '0');
	}
	if (n < 1 || n > 65535)
		return false;
	*out = (unsigned short)n;
	return true;
}

/* ":5432" or ":8000-8999" (after the colon) */
static bool parse_ports(const char *s, size_t len, struct kashim_rule *r)
{
	const char *dash = memchr(s, '-', len);

	if (!dash)
		return parse_port(s, len, &r->port_lo) && (r->port_hi = r->port_lo, true);
	return parse_port(s, (size_t)(dash - s), &r->port_lo) &&
	       parse_port(dash + 1, len - (size_t)(dash - s) - 1, &r->port_hi) &&
	       r->port_lo <= r->port_hi;
}

static const unsigned char v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool is_v4_mapped(const unsigned char *addr)
{
	return !memcmp(addr, v4_mapped_prefix, sizeof v4_mapped_prefix);
}

/* "10.0.0.0/8", "::1", "fd00::/8" */
static bool parse_network(const char *s, size_t len, struct kashim_rule *r)
{
	char text[64];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned long bits;
	int i;

	if (!alen || alen >= sizeof text)
		return false;
	memcpy(text, s, alen);
	text[alen] = 0;
	if (inet_pton(AF_INET, text, r->addr) == 1)
		r->family = AF_INET, bits = 32;
	else if (inet_pton(AF_INET6, text, r->addr) == 1)
		r->family = AF_INET6, bits = 128;
	else
		return false;
	if (slash) {
		unsigned long max = bits;
		size_t plen = len - alen - 1;
		bits = 0;
		if (!plen || plen > 3)
			return false;
		for (i = 0; i < (int)plen; i++) {
			if (!is_digit(slash[1 + i]))
				return false;
			bits = bits * 10 + (unsigned)(slash[1 + i] - '0');
		}
		if (bits > max)
			return false;
	}
	/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d: connections are matched
	 * as IPv4 (kashim_rules_match), so the rule is kept as one. */
	if (r->family == AF_INET6 && bits >= 96 && is_v4_mapped(r->addr)) {
		memmove(r->addr, r->addr + 12, 4);
		memset(r->addr + 4, 0, 12);
		r->family = AF_INET;
		bits -= 96;
	}
	r->prefix = (unsigned char)bits;
	/* Clear host bits, so 10.1.2.3/8 means 10.0.0.0/8. */
	for (i = 0; i < 16; i++) {
		int keep = (int)bits - 8 * i;
		if (keep <= 0)
			r->addr[i] = 0;
		else if (keep < 8)
			r->addr[i] &= (unsigned char)(0xff << (8 - keep));
	}
	return true;
}

static enum verdict parse_rule(const char *s, size_t len, struct kashim_rule *r)
{
	const char *colon;

	memset(r, 0, sizeof *r);
	r->port_lo = 1;
	r->port_hi = 65535;
	if (s[0] == ':' && (len < 2 || s[1] != ':')) /* ":5432", not "::1" */
		return parse_ports(s + 1, len - 1, r) ? V_OK : V_RULE;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || !memchr(s, ':', (size_t)(close - s)) ||
		    !parse_network(s + 1, (size_t)(close - s) - 1, r))
			return V_RULE;
		if ((size_t)(close - s) + 1 == len)
			return V_OK;
		if (close[1] != ':')
			return V_RULE;
		return parse_ports(close + 2, len - (size_t)(close - s) - 2, r) ? V_OK : V_RULE;
	}
	colon = memchr(s, ':', len);
	if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)) {
		/* one colon: IPv4 address or network with a port */
		if (!parse_network(s, (size_t)(colon - s), r) || r->family != AF_INET)
			return V_RULE;
		return parse_ports(colon + 1, len - (size_t)(colon - s) - 1, r) ? V_OK : V_RULE;
	}
	return parse_network(s, len, r) ? V_OK : V_RULE;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The next item of a comma-separated list, without surrounding blanks:
 * *cursor moves past it and its comma, and is NULL after the last one. */
static bool list_next(const char **cursor, const char **item, size_t *len)
{
	const char *s = *cursor;
	size_t n;

	if (!s)
		return false;
	n = strcspn(s, ",");
	*item = s;
	*len = n;
	while (*len && is_space(**item))
		(*item)++, (*len)--;
	while (*len && is_space((*item)[*len - 1]))
		(*len)--;
	*cursor = s[n] ? s + n + 1 : NULL;
	return true;
}

static enum verdict parse_rules(const char *s, struct kashim_rules *out)
{
	const char *item;
	size_t len;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	out->n = 0;
	while (list_next(&s, &item, &len)) {
		enum verdict v;
		if (!len)
			return V_EMPTY_ITEM;
		if (out->n == KASHIM_MAX_RULES)
			return V_TOO_MANY;
		v = parse_rule(item, len, &out->rule[out->n]);
		if (v != V_OK)
			return v;
		out->n++;
	}
	return V_OK;
}

bool kashim_rules_match(const struct kashim_rules *rules, int family,
			const unsigned char *addr, unsigned port)
{
	int i;

	if (family == AF_INET6 && is_v4_mapped(addr)) {
		family = AF_INET; /* ::ffff:a.b.c.d matches IPv4 rules */
		addr += 12;
	}
	for (i = 0; i < rules->n; i++) {
		const struct kashim_rule *r = &rules->rule[i];
		unsigned full = r->prefix / 8u, rest = r->prefix % 8u;
		if (port < r->port_lo || port > r->port_hi)
			continue;
		if (!r->family)
			return true;
		if (r->family != family || memcmp(addr, r->addr, full))
			continue;
		if (rest && ((addr[full] ^ r->addr[full]) & (0xff << (8 - rest))))
			continue;
		return true;
	}
	return false;
}

bool kashim_config_covers(const struct kashim_config *cfg, bool server, int family,
			  const unsigned char *addr, unsigned port)
{
	if (cfg->scope == (server ? KASHIM_SCOPE_CLIENT : KASHIM_SCOPE_SERVER))
		return false;
	if (cfg->has_only && !kashim_rules_match(&cfg->only, family, addr, port))
		return false;
	return !kashim_rules_match(&cfg->skip, family, addr, port);
}

bool kashim_config_deferred(const struct kashim_config *cfg)
{
	return cfg->scope != KASHIM_SCOPE_ALL || cfg->has_only || cfg->skip.n > 0;
}

/* ---- the variables ----------------------------------------------------- */

enum var_id { VAR_SWITCH, VAR_IDLE, VAR_INTERVAL, VAR_COUNT, VAR_USER_TIMEOUT,
	      VAR_DEBUG, VAR_SCOPE, VAR_ONLY, VAR_SKIP, VAR_PROGRAMS, VAR_SKIP_PROGRAMS,
	      VAR_MODE, VAR_CONFIG, VAR_COUNT_ };

enum kind { K_SWITCH, K_SECONDS, K_COUNT, K_USER_TIMEOUT, K_SCOPE, K_RULES, K_GLOBS,
	    K_MODE, K_PATH };

struct var {
	const char *name;
	const char *key; /* in a configuration file */
	enum kind kind;
	const char *accepted;    /* shown after "accepted: " */
	const char *default_txt; /* shown after "using the default " */
};

#define DURATION_FORM "1s to 32767s, as 45, 45s, 2m or 1h"
#define SWITCH_FORM "on/off, 1/0, yes/no, true/false"
#define RULES_FORM "comma-separated addresses, networks and ports, as 10.0.0.0/8, ::1, :5432, :8000-8999, 10.1.2.3:5432, [fd00::/8]:443"
#define GLOBS_FORM "comma-separated program names or shell globs, as java,python3*"

static const struct var vars[VAR_COUNT_] = {
	[VAR_SWITCH] = { "KASHIM", "kashim", K_SWITCH, SWITCH_FORM, "on" },
	[VAR_IDLE] = { "KASHIM_IDLE", "idle", K_SECONDS, DURATION_FORM, "15s" },
	[VAR_INTERVAL] = { "KASHIM_INTERVAL", "interval", K_SECONDS, DURATION_FORM, "15s" },
	[VAR_COUNT] = { "KASHIM_COUNT", "count", K_COUNT, "a whole number from 1 to 127", "9" },
	[VAR_USER_TIMEOUT] = { "KASHIM_USER_TIMEOUT", "user_timeout", K_USER_TIMEOUT,
			       "auto, off, or 1ms to 2147483647ms, as 30, 30s, 1500ms, 2m or 1h",
			       "auto" },
	[VAR_DEBUG] = { "KASHIM_DEBUG", "debug", K_SWITCH, SWITCH_FORM, "off" },
	[VAR_SCOPE] = { "KASHIM_SCOPE", "scope", K_SCOPE, "all, client or server", "all" },
	[VAR_ONLY] = { "KASHIM_ONLY", "only", K_RULES, RULES_FORM, "(none: every connection)" },
	[VAR_SKIP] = { "KASHIM_SKIP", "skip", K_RULES, RULES_FORM, "(none)" },
	[VAR_PROGRAMS] = { "KASHIM_PROGRAMS", "programs", K_GLOBS, GLOBS_FORM, "(none: every program)" },
	[VAR_SKIP_PROGRAMS] = { "KASHIM_SKIP_PROGRAMS", "skip_programs", K_GLOBS, GLOBS_FORM,
				"(none)" },
	[VAR_MODE] = { "KASHIM_MODE", "mode", K_MODE, "respect or force", "respect" },
	[VAR_CONFIG] = { "KASHIM_CONFIG", NULL, K_PATH, "the path of a readable file", "(none)" },
};

/* The variables of libkeepalive and libdontdie, honoured when the KASHIM_*
 * equivalent is not set. */
static const struct {
	const char *name;
	enum var_id id;
	const char *off_word; /* a value meaning "do nothing", for switches */
} compat[] = {
	{ "KEEPIDLE", VAR_IDLE, NULL },
	{ "KEEPINTVL", VAR_INTERVAL, NULL },
	{ "KEEPCNT", VAR_COUNT, NULL },
	{ "KEEPALIVE", VAR_SWITCH, "skip" },
	{ "DD_TCP_KEEPALIVE_TIME", VAR_IDLE, NULL },
	{ "DD_TCP_KEEPALIVE_INTVL", VAR_INTERVAL, NULL },
	{ "DD_TCP_KEEPALIVE_PROBES", VAR_COUNT, NULL },
	{ "DD_USE_KEEPALIVE", VAR_SWITCH, NULL },
	{ "DD_DEBUG", VAR_DEBUG, NULL },
};
#define COMPAT_COUNT (sizeof compat / sizeof compat[0])

/* Settings from one source; set has a bit per var_id. */
struct layer {
	unsigned set;
	struct kashim_config v;
	bool programs_match, skip_programs_match;
	const char *label[VAR_COUNT_]; /* where each came from, for messages: */
	unsigned line[VAR_COUNT_];     /* a variable's name, or a file and line */
};

/* The scratch of one load, kept off the stack: the library loads once,
 * from whichever thread calls first, and that thread may have a 16 KiB
 * stack.  So kashim_config_load_from is not reentrant (see config.h). */
static struct load_scratch {
	struct layer merged, file_global, file_sections, compat, env, unmatched;
	struct kashim_line where, fallback;
} load;

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

#define KASHIM_GLOB_MAX 256

static bool globs_match(const char *s, const char *const *names)
{
	const char *item;
	char glob[KASHIM_GLOB_MAX];
	size_t len;

	while (names && list_next(&s, &item, &len)) {
		const char *const *n;
		if (!len || len >= sizeof glob)
			continue;
		memcpy(glob, item, len);
		glob[len] = 0;
		for (n = names; *n; n++)
			if (fnmatch(glob, *n, 0) == 0)
				return true;
	}
	return false;
}

static enum verdict parse_globs(const char *s)
{
	const char *item;
	size_t len;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	while (list_next(&s, &item, &len)) {
		if (!len)
			return V_EMPTY_ITEM;
		if (len >= KASHIM_GLOB_MAX)
			return V_GLOB_LONG;
		if (memchr(item, '/', len))
			return V_GLOB_SLASH;
	}
	return V_OK;
}

static enum verdict parse_word(const char *s, const char *const *words, int n, int *out)
{
	int i;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	for (i = 0; i < n; i++)
		if (ascii_equal_nocase(s, words[i])) {
			*out = i;
			return V_OK;
		}
	return V_WORD;
}

/* Parses value as variable id into the layer. */
static enum verdict parse_into(enum var_id id, const char *value, struct layer *l,
			       const char *const *program_names)
{
	static const char *const scopes[] = { "all", "client", "server" };
	static const char *const modes[] = { "respect", "force" };
	unsigned long long n;
	enum verdict v = V_OK;
	int word;

	switch (vars[id].kind) {
	case K_SWITCH:
		v = parse_switch(value, id == VAR_SWITCH ? &l->v.enabled : &l->v.debug);
		break;
	case K_SECONDS:
		v = parse_duration_ms(value, false, KASHIM_SECONDS_MIN * 1000ULL,
				      KASHIM_SECONDS_MAX * 1000ULL, &n);
		if (v == V_OK)
			*(id == VAR_IDLE ? &l->v.idle_s : &l->v.interval_s) = (int)(n / 1000);
		break;
	case K_COUNT:
		v = parse_count(value, &n);
		if (v == V_OK)
			l->v.count = (int)n;
		break;
	case K_USER_TIMEOUT:
		if (ascii_equal_nocase(value, "auto")) {
			l->v.user_timeout_mode = KASHIM_UT_AUTO;
		} else if (ascii_equal_nocase(value, "off")) {
			l->v.user_timeout_mode = KASHIM_UT_OFF;
		} else {
			v = parse_duration_ms(value, true, KASHIM_USER_TIMEOUT_MIN_MS,
					      KASHIM_USER_TIMEOUT_MAX_MS, &n);
			if (v == V_OK) {
				l->v.user_timeout_mode = KASHIM_UT_FIXED;
				l->v.user_timeout_ms = (unsigned)n;
			}
		}
		break;
	case K_SCOPE:
		v = parse_word(value, scopes, 3, &word);
		if (v == V_OK)
			l->v.scope = (enum kashim_scope)word;
		break;
	case K_MODE:
		v = parse_word(value, modes, 2, &word);
		if (v == V_OK)
			l->v.mode = (enum kashim_mode)word;
		break;
	case K_RULES:
		v = parse_rules(value, id == VAR_ONLY ? &l->v.only : &l->v.skip);
		break;
	case K_GLOBS:
		v = parse_globs(value);
		if (v == V_OK)
			*(id == VAR_PROGRAMS ? &l->programs_match : &l->skip_programs_match) =
				globs_match(value, program_names);
		break;
	case K_PATH:
		break;
	}
	if (v == V_OK)
		l->set |= 1u << id;
	return v;
}

/* Copies the settings src has onto dst. */
static void layer_apply(struct layer *dst, const struct layer *src)
{
	int id;

	for (id = 0; id < VAR_COUNT_; id++) {
		if (!(src->set & (1u << id)))
			continue;
		dst->set |= 1u << id;
		dst->label[id] = src->label[id];
		dst->line[id] = src->line[id];
		switch (id) {
		case VAR_SWITCH: dst->v.enabled = src->v.enabled; break;
		case VAR_DEBUG: dst->v.debug = src->v.debug; break;
		case VAR_IDLE: dst->v.idle_s = src->v.idle_s; break;
		case VAR_INTERVAL: dst->v.interval_s = src->v.interval_s; break;
		case VAR_COUNT: dst->v.count = src->v.count; break;
		case VAR_USER_TIMEOUT:
			dst->v.user_timeout_mode = src->v.user_timeout_mode;
			dst->v.user_timeout_ms = src->v.user_timeout_ms;
			break;
		case VAR_SCOPE: dst->v.scope = src->v.scope; break;
		case VAR_MODE: dst->v.mode = src->v.mode; break;
		case VAR_ONLY: dst->v.only = src->v.only; break;
		case VAR_SKIP: dst->v.skip = src->v.skip; break;
		case VAR_PROGRAMS: dst->programs_match = src->programs_match; break;
		case VAR_SKIP_PROGRAMS: dst->skip_programs_match = src->skip_programs_match; break;
		}
	}
}

/* "kashim: WHERE=VALUE ignored (WHY); accepted: FORM; FALLBACK" */
static void report_bad(struct reporter *r, const char *where, enum var_id id, const char *value,
		       enum verdict v, const char *fallback)
{
	struct kashim_line l;

	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	kashim_line_put(&l, where); /* a name, or escaped by file_where */
	kashim_line_put(&l, "=");
	kashim_line_put_value(&l, value);
	kashim_line_put(&l, " ignored (");
	kashim_line_put(&l, verdict_text[v]);
	kashim_line_put(&l, "); accepted: ");
	kashim_line_put(&l, vars[id].accepted);
	if (fallback) {
		kashim_line_put(&l, "; ");
		kashim_line_put(&l, fallback);
	}
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

/* The closest known name (variable or file key) within two edits, or -1. */
static int closest(const char *name, size_t len, bool file_key)
{
	int id, best = -1;
	size_t best_d = 3;

	for (id = 0; id < VAR_COUNT_; id++) {
		const char *known = file_key ? vars[id].key : vars[id].name;
		size_t d;
		if (!known)
			continue;
		d = edit_distance(name, len, known);
		if (d < best_d) {
			best_d = d;
			best = id;
		}
	}
	return best;
}

static void report_unknown(struct reporter *r, const char *name, size_t len)
{
	struct kashim_line l;
	char shown[48];
	size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
	int id, best = closest(name, len, false);

	memcpy(shown, name, n);
	shown[n] = 0;
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

/* The first value of each known KASHIM_* variable; unknown names reported
 * when r is given.  Returns whether any KASHIM_* variable is set at all. */
static bool collect(char *const *envp, const char *values[VAR_COUNT_], struct reporter *r)
{
	char *const *e;
	bool any = false;

	for (e = envp; *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t len;
		int id;

		if (!eq)
			continue;
		len = (size_t)(eq - *e);
		if (!ours(*e, len))
			continue;
		any = true;
		if (eq[1] == 0) /* empty means unset */
			continue;
		for (id = 0; id < VAR_COUNT_; id++)
			if (strlen(vars[id].name) == len && !strncmp(*e, vars[id].name, len))
				break;
		if (id == VAR_COUNT_) {
			if (r)
				report_unknown(r, *e, len);
		} else if (!values[id]) {
			values[id] = eq + 1;
		}
	}
	return any;
}

static const char *env_value(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	char *const *e;

	for (e = envp; *e; e++)
		if (!strncmp(*e, name, len) && (*e)[len] == '=')
			return (*e)[len + 1] ? *e + len + 1 : NULL;
	return NULL;
}

/* ---- the configuration file ------------------------------------------ */

#define KASHIM_FILE_MAX (64 * 1024)

struct file_text {
	char *text; /* NUL-terminated, owned */
	const char *path;
};

static void file_problem(struct reporter *r, const struct file_text *f, unsigned line,
			 const char *what, const char *detail, size_t detail_len,
			 const char *suggestion);

/* A NUL byte would silently end the text there: each line holding one is
 * reported and turned into a comment, and the lines after it still count. */
static void blank_nul_lines(struct file_text *f, size_t total, struct reporter *r)
{
	char *p = f->text, *end = f->text + total, *nul;

	while ((nul = memchr(p, 0, (size_t)(end - p))) != NULL) {
		char *start = nul, *stop = nul;
		unsigned lineno = 1;
		char *c;
		while (start > f->text && start[-1] != '\n')
			start--;
		while (stop < end && *stop != '\n')
			stop++;
		for (c = f->text; c < start; c++)
			lineno += *c == '\n';
		file_problem(r, f, lineno, "a NUL byte", "", 0, NULL);
		for (c = start; c < stop; c++)
			if (!*c)
				*c = ' ';
		*start = '#';
		p = stop;
	}
}

static bool read_file(const char *path, bool quiet_if_missing, struct file_text *f,
		      struct reporter *r)
{
	struct kashim_line l;
	ssize_t n = 0, total = 0;
	int fd, err = 0;

	struct stat st;

	f->text = NULL;
	f->path = path;
	/* Never blocks (a FIFO, a terminal) and never reads the program's
	 * input: only a regular file is read, and a bounded amount of it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0) {
		if (fstat(fd, &st) != 0)
			err = errno;
		else if (!S_ISREG(st.st_mode))
			err = S_ISDIR(st.st_mode) ? EISDIR : ENODEV;
		else
			f->text = malloc(KASHIM_FILE_MAX + 1);
		if (!err && !f->text)
			err = ENOMEM;
		while (f->text && total <= KASHIM_FILE_MAX &&
		       (n = read(fd, f->text + total, (size_t)(KASHIM_FILE_MAX + 1 - total))) > 0)
			total += n;
		if (f->text && n < 0)
			err = errno;
		close(fd);
		if (f->text && !err && total <= KASHIM_FILE_MAX) {
			f->text[total] = 0;
			blank_nul_lines(f, (size_t)total, r);
			return true;
		}
		if (!err)
			err = EFBIG;
		free(f->text);
		f->text = NULL;
	} else {
		err = errno;
		if (quiet_if_missing && err == ENOENT)
			return false;
	}
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: cannot read the configuration file ");
	kashim_line_put_value(&l, path);
	kashim_line_put(&l, err == EFBIG ? ": larger than 64 KiB" :
			err == ENOMEM ? ": out of memory" :
			err == ENOENT ? ": no such file" : err == EACCES ? ": permission denied" :
			err == EISDIR ? ": a directory" : err == ENODEV ? ": not a regular file" :
			err == ELOOP ? ": too many symbolic links" : ": unreadable");
	kashim_line_put(&l, "; it is ignored");
	emit(r, &l);
	return false;
}

static void file_problem(struct reporter *r, const struct file_text *f, unsigned line,
			 const char *what, const char *detail, size_t detail_len,
			 const char *suggestion)
{
	struct kashim_line l;
	char shown[48];
	size_t n = detail_len < sizeof shown - 1 ? detail_len : sizeof shown - 1;

	memcpy(shown, detail, n);
	shown[n] = 0;
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	line_put_escaped(&l, f->path, 200);
	kashim_line_put(&l, ":");
	kashim_line_put_uint(&l, line);
	kashim_line_put(&l, ": ");
	kashim_line_put(&l, what);
	if (detail_len) {
		kashim_line_put(&l, " \"");
		line_put_escaped(&l, shown, sizeof shown - 1);
		kashim_line_put(&l, detail_len > n ? "...\"" : "\"");
	}
	if (suggestion) {
		kashim_line_put(&l, " (did you mean ");
		kashim_line_put(&l, suggestion);
		kashim_line_put(&l, "?)");
	}
	kashim_line_put(&l, "; line ignored");
	emit(r, &l);
}

/* "FILE:LINE: key", the file's name escaped, for report_bad. */
static const char *file_where(const char *path, unsigned lineno, const char *key)
{
	struct kashim_line *l = &load.where;

	kashim_line_start(l);
	line_put_escaped(l, path, 200);
	kashim_line_put(l, ":");
	kashim_line_put_uint(l, lineno);
	kashim_line_put(l, ": ");
	kashim_line_put(l, key);
	return line_cstr(l);
}

/* Parses the file into two layers: its global settings, and the settings
 * of the [program ...] sections that match this program (the last wins).
 * Every line is checked, matching or not. */
static void parse_file(struct file_text *f, const char *const *names, struct layer *global,
		       struct layer *sections, struct reporter *r)
{
	char *line = f->text, *next;
	unsigned lineno = 0;
	bool in_section = false, section_matches = false;

	for (; line && *line; line = next) {
		char *end, *eq, *key, *value;
		const char *where;
		size_t klen;
		int id;
		struct layer *into;
		enum verdict v;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		end = line + strlen(line);
		while (end > line && (is_space(end[-1]) || end[-1] == '\r'))
			*--end = 0;
		while (is_space(*line))
			line++;
		if (!*line || *line == '#')
			continue;
		if (*line == '[') {
			char *name = line + 1;
			if (end[-1] != ']' || strncmp(name, "program", 7) || !is_space(name[7])) {
				file_problem(r, f, lineno, "not a [program NAME] section", line,
					     strlen(line), NULL);
				in_section = true, section_matches = false;
				continue;
			}
			end[-1] = 0;
			name += 8;
			while (is_space(*name))
				name++;
			in_section = true;
			v = parse_globs(name);
			section_matches = *name && v == V_OK && globs_match(name, names);
			if (!*name)
				file_problem(r, f, lineno, "a [program] section needs a name", "", 0,
					     NULL);
			else if (v != V_OK)
				file_problem(r, f, lineno, verdict_text[v], name, strlen(name), NULL);
			continue;
		}
		eq = strchr(line, '=');
		if (!eq) {
			file_problem(r, f, lineno, "not a \"key = value\" line", line, strlen(line),
				     NULL);
			continue;
		}
		key = line;
		klen = (size_t)(eq - line);
		while (klen && is_space(key[klen - 1]))
			klen--;
		value = eq + 1;
		while (is_space(*value))
			value++;
		for (id = 0; id < VAR_COUNT_; id++)
			if (vars[id].key && strlen(vars[id].key) == klen && !strncmp(key, vars[id].key, klen))
				break;
		if (id == VAR_COUNT_) {
			int best = closest(key, klen, true);
			file_problem(r, f, lineno, "unknown setting", key, klen,
				     best >= 0 ? vars[best].key : NULL);
			continue;
		}
		where = file_where(f->path, lineno, vars[id].key);
		into = !in_section ? global : section_matches ? sections : &load.unmatched;
		memset(&load.unmatched, 0, sizeof load.unmatched);
		if (!*value) {
			report_bad(r, where, (enum var_id)id, value, V_NOT_NUMBER, "line ignored");
			continue;
		}
		v = parse_into((enum var_id)id, value, into, names);
		if (v != V_OK) {
			report_bad(r, where, (enum var_id)id, value, v, "line ignored");
			continue;
		}
		into->label[id] = f->path;
		into->line[id] = lineno;
	}
}

/* ---- putting it together ------------------------------------------------ */

void kashim_config_defaults(struct kashim_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->enabled = true;
	cfg->debug = false;
	cfg->idle_s = KASHIM_IDLE_DEFAULT_S;
	cfg->interval_s = KASHIM_INTERVAL_DEFAULT_S;
	cfg->count = KASHIM_COUNT_DEFAULT;
	cfg->user_timeout_mode = KASHIM_UT_AUTO;
	cfg->user_timeout_ms = 0;
	cfg->scope = KASHIM_SCOPE_ALL;
	cfg->mode = KASHIM_MODE_RESPECT;
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

/* The variables of libkeepalive and libdontdie, as one layer. */
static void compat_layer(char *const *envp, struct layer *l, struct reporter *r,
			 const char *const *names)
{
	size_t i;

	for (i = 0; i < COMPAT_COUNT; i++) {
		const char *value = env_value(envp, compat[i].name);
		enum verdict v;
		if (!value || (l->set & (1u << compat[i].id)))
			continue;
		if (compat[i].off_word && (ascii_equal_nocase(value, compat[i].off_word) ||
					   ascii_equal_nocase(value, "off"))) {
			l->v.enabled = false;
			l->set |= 1u << compat[i].id;
			l->label[compat[i].id] = compat[i].name;
			continue;
		}
		v = parse_into(compat[i].id, value, l, names);
		if (v == V_OK)
			l->label[compat[i].id] = compat[i].name;
		else
			report_bad(r, compat[i].name, compat[i].id, value, v, "it is ignored");
	}
}

unsigned kashim_config_load_from(struct kashim_config *cfg, const struct kashim_source *src,
				 kashim_report_fn *report, void *ctx)
{
	struct reporter r = { report, ctx, 0 };
	const char *values[VAR_COUNT_] = { 0 };
	struct layer *merged = &load.merged, *file_global = &load.file_global,
		     *file_sections = &load.file_sections, *compat_l = &load.compat,
		     *env_l = &load.env;
	struct kashim_line *fallback = &load.fallback;
	struct file_text file = { 0 };
	bool any;
	int id;

	kashim_config_defaults(cfg);
	if (src->secure || !src->envp) {
		resolve_user_timeout(cfg);
		return 0;
	}
	memset(&load, 0, sizeof load);
	merged->v = *cfg;

	/* KASHIM=off in the environment means nothing at all happens, so it
	 * is looked at before anything can produce a message. */
	any = collect(src->envp, values, NULL);
	if (values[VAR_SWITCH] && parse_switch(values[VAR_SWITCH], &env_l->v.enabled) == V_OK &&
	    !env_l->v.enabled) {
		cfg->enabled = false;
		resolve_user_timeout(cfg); /* consistent, even though unused */
		return 0;
	}
	memset(values, 0, sizeof values);
	collect(src->envp, values, &r);

	if (values[VAR_CONFIG]) {
		if (read_file(values[VAR_CONFIG], false, &file, &r))
			parse_file(&file, src->program_names, file_global, file_sections, &r);
	} else if (!any && src->default_file && read_file(src->default_file, true, &file, &r)) {
		parse_file(&file, src->program_names, file_global, file_sections, &r);
	}
	compat_layer(src->envp, compat_l, &r, src->program_names);

	layer_apply(merged, file_global);
	layer_apply(merged, file_sections);
	layer_apply(merged, compat_l);
	for (id = 0; id < VAR_COUNT_; id++) {
		enum verdict v;
		if (!values[id] || id == VAR_CONFIG)
			continue;
		v = parse_into((enum var_id)id, values[id], env_l, src->program_names);
		if (v == V_OK) {
			env_l->label[id] = vars[id].name;
			continue;
		}
		kashim_line_start(fallback);
		if (merged->set & (1u << id)) {
			kashim_line_put(fallback, "using the value from ");
			line_put_escaped(fallback, merged->label[id], 300);
			if (merged->line[id]) {
				kashim_line_put(fallback, ":");
				kashim_line_put_uint(fallback, merged->line[id]);
			}
		} else {
			kashim_line_put(fallback, "using the default ");
			kashim_line_put(fallback, vars[id].default_txt);
		}
		report_bad(&r, vars[id].name, (enum var_id)id, values[id], v, line_cstr(fallback));
	}
	layer_apply(merged, env_l);
	free(file.text);

	*cfg = merged->v;
	cfg->has_only = (merged->set & (1u << VAR_ONLY)) != 0;
	if (!cfg->has_only)
		cfg->only.n = 0;
	cfg->program_filtered = (merged->set & (1u << VAR_PROGRAMS | 1u << VAR_SKIP_PROGRAMS)) != 0;
	if ((merged->set & (1u << VAR_PROGRAMS)) && !merged->programs_match)
		cfg->enabled = false;
	if ((merged->set & (1u << VAR_SKIP_PROGRAMS)) && merged->skip_programs_match)
		cfg->enabled = false;
	cfg->deferred = kashim_config_deferred(cfg);
	resolve_user_timeout(cfg);
	return r.problems;
}

unsigned kashim_config_load(struct kashim_config *cfg, char *const *envp,
			    bool secure, kashim_report_fn *report, void *ctx)
{
	struct kashim_source src = { envp, NULL, secure, NULL };

	return kashim_config_load_from(cfg, &src, report, ctx);
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
