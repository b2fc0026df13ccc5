/* SPDX-License-Identifier: MIT */
/* kashim configuration parsing and validation.  See config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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

/* Bytes outside printable ASCII, and the quote and backslash, as \xHH, so no
 * text from the environment or a file can end a message or start another;
 * cut with "..." past max bytes. */
static void line_put_escaped_n(struct kashim_line *l, const char *s, size_t len, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len && i < max; i++) {
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
	if (len > max)
		kashim_line_put(l, "...");
}

/* The same escaping for the kashim command's messages (one escaper for the
 * library and the command). */
void kashim_line_put_escaped(struct kashim_line *l, const char *s, size_t len, size_t max)
{
	line_put_escaped_n(l, s, len, max);
}

static void line_put_escaped(struct kashim_line *l, const char *s, size_t max)
{
	line_put_escaped_n(l, s, strnlen(s, max + 1), max);
}

void kashim_line_put_value(struct kashim_line *l, const char *v)
{
	line_putc(l, '"');
	line_put_escaped(l, v, 40);
	line_putc(l, '"');
}

/* A path, escaped like a value but cut only past 200 bytes. */
#define PATH_SHOWN 200
static void line_put_path(struct kashim_line *l, const char *path)
{
	line_putc(l, '"');
	line_put_escaped(l, path, PATH_SHOWN);
	line_putc(l, '"');
}

size_t kashim_line_end(struct kashim_line *l)
{
	l->buf[l->len++] = '\n';
	return l->len;
}

/* A function that builds a message: never inlined, so its line buffer
 * (KASHIM_LINE_MAX bytes) is on the stack only while it runs, not in every
 * frame of the parser that calls it (see README, Reliability). */
#define MESSAGE __attribute__((noinline, cold))

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
	V_GLOB_SLASH,
	V_GLOB_BRACKET,
};

#define TEXT_OF_(x) #x
#define TEXT_OF(x) TEXT_OF_(x) /* a constant's value as a string */

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
	[V_TOO_MANY] = "more than " TEXT_OF(KASHIM_MAX_RULES) " rules",
	[V_EMPTY_ITEM] = "an empty item",
	[V_NOT_IN_FILE] = "only accepted in the environment",
	[V_GLOB_SLASH] = "a program is matched by its file name, without '/', as python3",
	[V_GLOB_BRACKET] = "a [ without its ] or with an unknown [:class:]; \\[ is the character [",
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
		if (!close || !parse_network(s + 1, (size_t)(close - s) - 1, r) ||
		    r->family != AF_INET6)
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

static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* A connection with an IPv4-mapped address (::ffff:a.b.c.d, on a dual-stack
 * socket) is matched as the IPv4 connection it is, so a rule written with
 * such an address is turned into the IPv4 rule it means. */
static void rule_unmap(struct kashim_rule *r)
{
	if (r->family != AF_INET6 || r->prefix < 96 || memcmp(r->addr, v4_mapped, sizeof v4_mapped))
		return;
	r->family = AF_INET;
	r->prefix = (unsigned char)(r->prefix - 96);
	memmove(r->addr, r->addr + 12, 4);
	memset(r->addr + 4, 0, 12);
}

/* Checks the whole list before out (NULL: check only) is written, so a bad
 * list leaves the rules in force untouched. */
static enum verdict parse_rules(const char *s, struct kashim_rules *out)
{
	const char *cursor = s, *item;
	struct kashim_rule one;
	size_t len;
	int n = 0;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	while (list_next(&cursor, &item, &len)) {
		enum verdict v;
		if (!len)
			return V_EMPTY_ITEM;
		if (n == KASHIM_MAX_RULES)
			return V_TOO_MANY;
		v = parse_rule(item, len, &one);
		if (v != V_OK)
			return v;
		n++;
	}
	if (!out)
		return V_OK;
	for (out->n = 0, cursor = s; list_next(&cursor, &item, &len); out->n++) {
		parse_rule(item, len, &out->rule[out->n]);
		rule_unmap(&out->rule[out->n]);
	}
	return V_OK;
}

void kashim_line_put_rule(struct kashim_line *l, const struct kashim_rule *r)
{
	char host[64]; /* INET6_ADDRSTRLEN, without <netinet/in.h> */
	bool any_port = r->port_lo == 1 && r->port_hi == 65535;
	bool bracket = r->family == AF_INET6 && !any_port;

	if (r->family) {
		if (!inet_ntop(r->family, r->addr, host, sizeof host))
			host[0] = 0;
		kashim_line_put(l, bracket ? "[" : "");
		kashim_line_put(l, host);
		kashim_line_put(l, "/");
		kashim_line_put_uint(l, r->prefix);
		kashim_line_put(l, bracket ? "]" : "");
	}
	/* No address and every port (":1-65535") is written out: an empty
	 * rule would read as no rule at all. */
	if (any_port && r->family)
		return;
	kashim_line_put(l, ":");
	kashim_line_put_uint(l, r->port_lo);
	if (r->port_hi != r->port_lo) {
		kashim_line_put(l, "-");
		kashim_line_put_uint(l, r->port_hi);
	}
}

/* Is addr in the rule's network?  Byte by byte, stopping at the first
 * that differs (most rules differ in their first byte): a scan of 256
 * rules with memcmp, a call each, cost twice as much. */
static bool rule_covers(const struct kashim_rule *r, const unsigned char *addr)
{
	unsigned full = r->prefix / 8u, rest = r->prefix % 8u, k;

	for (k = 0; k < full; k++)
		if (addr[k] != r->addr[k])
			return false;
	return !rest || !((addr[full] ^ r->addr[full]) & (0xff << (8 - rest)));
}

bool kashim_rules_match(const struct kashim_rules *rules, int family,
			const unsigned char *addr, unsigned port)
{
	int i;

	if (family == AF_INET6 && !memcmp(addr, v4_mapped, sizeof v4_mapped)) {
		family = AF_INET; /* ::ffff:a.b.c.d matches IPv4 rules */
		addr += 12;
	}
	for (i = 0; i < rules->n; i++) {
		const struct kashim_rule *r = &rules->rule[i];
		if (port < r->port_lo || port > r->port_hi)
			continue;
		if (!r->family)
			return true;
		if (r->family == family && rule_covers(r, addr))
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
	[VAR_SCOPE] = { "KASHIM_SCOPE", "scope", K_SCOPE, "all (or both), client or server", "all" },
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

/* ---- program names and globs ----------------------------------------- */

/* Shell-glob matching of one program name, written here rather than taken
 * from fnmatch(3): it needs no NUL-terminated copy of the pattern (so no
 * length limit and no buffer), uses a few bytes of stack, and takes at most
 * pattern x name steps, where fnmatch recurses at each '*'. */

static int glob_class(const char *name, size_t len)
{
	static const char *const classes[] = { "alnum", "alpha", "blank", "cntrl", "digit", "graph",
					       "lower", "print", "punct", "space", "upper", "xdigit" };
	int i;

	for (i = 0; i < (int)(sizeof classes / sizeof classes[0]); i++)
		if (strlen(classes[i]) == len && !memcmp(classes[i], name, len))
			return i;
	return -1;
}

/* The ASCII classes; a byte past 0x7f is in none. */
static bool glob_class_has(int class, unsigned char c)
{
	bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
	bool digit = c >= '0' && c <= '9', print = c >= 0x20 && c < 0x7f;

	switch (class) {
	case 0: return lower || upper || digit;
	case 1: return lower || upper;
	case 2: return c == ' ' || c == '\t';
	case 3: return c < 0x20 || c == 0x7f;
	case 4: return digit;
	case 5: return print && c != ' ';
	case 6: return lower;
	case 7: return print;
	case 8: return print && c != ' ' && !lower && !upper && !digit;
	case 9: return c == ' ' || (c >= '\t' && c <= '\r');
	case 10: return upper;
	default: return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
	}
}

/* The bracket expression at p[0] == '[': its length, with *match telling
 * whether c is in it; 0 when it has no closing ']' or names an unknown
 * class (then the '[' is an ordinary character, as for fnmatch). */
static size_t glob_bracket(const char *p, size_t plen, unsigned char c, bool *match)
{
	size_t i = 1, first;
	bool negate = false, hit = false;

	if (i < plen && (p[i] == '!' || p[i] == '^'))
		negate = true, i++;
	for (first = i; i < plen && (p[i] != ']' || i == first);) {
		unsigned char lo, hi;
		if (p[i] == '[' && i + 1 < plen && p[i + 1] == ':') {
			size_t end = i + 2;
			int class;
			while (end + 1 < plen && !(p[end] == ':' && p[end + 1] == ']'))
				end++;
			if (end + 1 >= plen || (class = glob_class(p + i + 2, end - i - 2)) < 0)
				return 0;
			hit |= glob_class_has(class, c);
			i = end + 2;
			continue;
		}
		if (p[i] == '\\' && i + 1 < plen)
			i++;
		lo = hi = (unsigned char)p[i++];
		if (i + 1 < plen && p[i] == '-' && p[i + 1] != ']') {
			i++;
			if (p[i] == '\\' && i + 1 < plen)
				i++;
			hi = (unsigned char)p[i++];
		}
		hit |= lo <= c && c <= hi;
	}
	if (i >= plen)
		return 0;
	*match = hit != negate;
	return i + 1;
}

/* One pattern element other than '*' at p: its length, and whether it
 * matches c. */
static size_t glob_one(const char *p, size_t plen, unsigned char c, bool *match)
{
	size_t n;

	if (p[0] == '?') {
		*match = true;
		return 1;
	}
	if (p[0] == '[' && (n = glob_bracket(p, plen, c, match)))
		return n;
	if (p[0] == '\\' && plen > 1) {
		*match = (unsigned char)p[1] == c;
		return 2;
	}
	*match = (unsigned char)p[0] == c;
	return 1;
}

/* The classic backtracking to the last '*' only: enough, since every other
 * element matches exactly one byte. */
static bool glob_match(const char *p, size_t plen, const char *name)
{
	size_t i = 0, star = 0;
	const char *star_name = NULL;

	while (*name) {
		bool match = false;
		size_t n = 0;
		if (i < plen && p[i] == '*') {
			star = ++i;
			star_name = name;
			continue;
		}
		if (i < plen)
			n = glob_one(p + i, plen - i, (unsigned char)*name, &match);
		if (match) {
			i += n;
			name++;
			continue;
		}
		if (!star_name)
			return false;
		i = star;
		name = ++star_name;
	}
	while (i < plen && p[i] == '*')
		i++;
	return i == plen;
}

/* A glob that could never match a program's file name is an error, not a
 * filter that silently matches nothing. */
static enum verdict glob_check(const char *p, size_t plen)
{
	size_t i;
	bool match;

	if (memchr(p, '/', plen))
		return V_GLOB_SLASH;
	for (i = 0; i < plen; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '[' && !glob_bracket(p + i, plen - i, 0, &match))
			return V_GLOB_BRACKET;
	}
	return V_OK;
}

static enum verdict parse_globs(const char *s)
{
	const char *item;
	size_t len;

	if (!valid_utf8(s))
		return V_NOT_UTF8;
	while (list_next(&s, &item, &len)) {
		enum verdict v = len ? glob_check(item, len) : V_EMPTY_ITEM;
		if (v != V_OK)
			return v;
	}
	return V_OK;
}

static bool globs_match(const char *s, const char *const *names)
{
	const char *item;
	size_t len;

	while (names && list_next(&s, &item, &len)) {
		const char *const *n;
		for (n = names; len && *n; n++)
			if (glob_match(item, len, *n))
				return true;
	}
	return false;
}

/* ---- building the configuration -------------------------------------- */

/* Where a setting came from, for messages: a variable's name (line 0), or
 * a file and line. */
struct origin {
	const char *label;
	unsigned line;
};

struct reporter {
	kashim_report_fn *fn;
	void *ctx;
	unsigned problems;
};

/* The configuration being built.  Sources are read from the lowest
 * precedence to the highest (the file's global settings, its sections in
 * file order, the compatibility variables, KASHIM_*), each writing over the
 * ones before; a value is written only once it is known to be valid.  This
 * is all the loader keeps: a few hundred bytes of stack, where a layer per
 * source (each a whole struct kashim_config) took kilobytes. */
struct build {
	struct kashim_config *cfg;
	unsigned set; /* a bit per var_id */
	bool programs_match, skip_programs_match;
	struct origin from[VAR_COUNT_];
	const char *const *names;
	struct reporter r;
	kashim_report_fn *unapplied; /* see kashim_config_load_unnamed */
	const char *unapplied_why;
};

static void emit(struct reporter *r, struct kashim_line *l)
{
	size_t len = kashim_line_end(l);

	r->problems++;
	if (r->fn)
		r->fn(r->ctx, l->buf, len);
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

static enum verdict parse_user_timeout(const char *value, enum kashim_user_timeout_mode *mode,
				       unsigned long long *ms)
{
	if (ascii_equal_nocase(value, "auto")) {
		*mode = KASHIM_UT_AUTO;
		return V_OK;
	}
	if (ascii_equal_nocase(value, "off")) {
		*mode = KASHIM_UT_OFF;
		return V_OK;
	}
	*mode = KASHIM_UT_FIXED;
	return parse_duration_ms(value, true, KASHIM_USER_TIMEOUT_MIN_MS, KASHIM_USER_TIMEOUT_MAX_MS,
				 ms);
}

/* Parses value as variable id; when valid and b is given, writes it into
 * the configuration being built (b NULL: check only). */
static enum verdict parse_into(enum var_id id, const char *value, struct build *b)
{
	/* "both" is "all": one set of words for the variable, the file and
	 * kashim attach --scope (whose word it was first). */
	static const char *const scopes[] = { "all", "client", "server", "both" };
	static const char *const modes[] = { "respect", "force" };
	struct kashim_config *c = b ? b->cfg : NULL;
	enum kashim_user_timeout_mode ut_mode;
	unsigned long long n = 0;
	enum verdict v = V_OK;
	bool on = false;
	int word = 0;

	switch (vars[id].kind) {
	case K_SWITCH:
		v = parse_switch(value, &on);
		if (v == V_OK && c)
			*(id == VAR_SWITCH ? &c->enabled : &c->debug) = on;
		break;
	case K_SECONDS:
		v = parse_duration_ms(value, false, KASHIM_SECONDS_MIN * 1000ULL,
				      KASHIM_SECONDS_MAX * 1000ULL, &n);
		if (v == V_OK && c)
			*(id == VAR_IDLE ? &c->idle_s : &c->interval_s) = (int)(n / 1000);
		break;
	case K_COUNT:
		v = parse_count(value, &n);
		if (v == V_OK && c)
			c->count = (int)n;
		break;
	case K_USER_TIMEOUT:
		v = parse_user_timeout(value, &ut_mode, &n);
		if (v == V_OK && c) {
			c->user_timeout_mode = ut_mode;
			c->user_timeout_ms = (unsigned)n;
		}
		break;
	case K_SCOPE:
		v = parse_word(value, scopes, 4, &word);
		if (v == V_OK && c)
			c->scope = word == 3 ? KASHIM_SCOPE_ALL : (enum kashim_scope)word;
		break;
	case K_MODE:
		v = parse_word(value, modes, 2, &word);
		if (v == V_OK && c)
			c->mode = (enum kashim_mode)word;
		break;
	case K_RULES:
		v = parse_rules(value, !c ? NULL : id == VAR_ONLY ? &c->only : &c->skip);
		break;
	case K_GLOBS:
		v = parse_globs(value);
		if (v == V_OK && b)
			*(id == VAR_PROGRAMS ? &b->programs_match : &b->skip_programs_match) =
				globs_match(value, b->names);
		break;
	case K_PATH:
		break;
	}
	if (v == V_OK && b)
		b->set |= 1u << id;
	return v;
}

/* A file and line, or a variable's name: the file's path escaped. */
static void put_origin(struct kashim_line *l, const struct origin *o)
{
	if (!o->line) {
		kashim_line_put(l, o->label); /* one of ours: a variable's name */
		return;
	}
	line_put_escaped(l, o->label, PATH_SHOWN);
	kashim_line_put(l, ":");
	kashim_line_put_uint(l, o->line);
}

/* "kashim: [FILE:LINE: ]NAME=VALUE ignored (WHY); accepted: FORM; THEN",
 * where THEN is "using the value from ORIGIN" when fallback is given, tail
 * when given, or else the default. */
MESSAGE static void report_bad(struct reporter *r, const struct origin *at, const char *name,
		       enum var_id id, const char *value, enum verdict v,
		       const struct origin *fallback, const char *tail)
{
	struct kashim_line l;

	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	if (at) {
		put_origin(&l, at);
		kashim_line_put(&l, ": ");
	}
	kashim_line_put(&l, name);
	kashim_line_put(&l, "=");
	kashim_line_put_value(&l, value);
	kashim_line_put(&l, " ignored (");
	kashim_line_put(&l, verdict_text[v]);
	kashim_line_put(&l, "); accepted: ");
	kashim_line_put(&l, vars[id].accepted);
	kashim_line_put(&l, "; ");
	if (fallback) {
		kashim_line_put(&l, "using the value from ");
		put_origin(&l, fallback);
	} else if (tail) {
		kashim_line_put(&l, tail);
	} else {
		kashim_line_put(&l, "using the default ");
		kashim_line_put(&l, vars[id].default_txt);
	}
	emit(r, &l);
}

/* Edit distance, for "did you mean"; names past 63 bytes never match. */
static size_t edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), i, j;
	unsigned char row[64]; /* distances are below 64 */

	if (la >= 64 || lb >= 64)
		return 64;
	for (j = 0; j <= lb; j++)
		row[j] = (unsigned char)j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = (unsigned char)i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1u < best)
				best = row[j - 1] + 1u;
			row[j] = (unsigned char)best;
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

#define NAME_SHOWN 47

MESSAGE static void report_unknown(struct reporter *r, const char *name, size_t len)
{
	struct kashim_line l;
	int id, best = closest(name, len, false);

	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	line_put_escaped_n(&l, name, len, NAME_SHOWN);
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
/* Past this many problems in one file, one line says so and the rest are
 * counted but not shown: a binary file named by mistake is not 4,000 lines
 * on the stderr of every program. */
#define FILE_PROBLEMS_SHOWN 20

struct file_text {
	char *text; /* len bytes and a NUL, owned */
	size_t len;
	const char *path;
	unsigned problems;
	const char *why; /* why it was not read, or 0 and err */
	int err;
};

/* What a file that is not a regular one is, for the message. */
static const char *file_kind(mode_t mode)
{
	return S_ISDIR(mode) ? "not a regular file (a directory)" :
	       S_ISFIFO(mode) ? "not a regular file (a FIFO)" :
	       S_ISCHR(mode) ? "not a regular file (a character device)" :
	       S_ISBLK(mode) ? "not a regular file (a block device)" :
	       S_ISSOCK(mode) ? "not a regular file (a socket)" : "not a regular file";
}

/* Files of the kernel's interfaces look regular but are not: /proc/kmsg
 * blocks and consumes the kernel's messages, /proc/self/mem fails, sizes
 * are 0 or 4096 whatever the content.  f_type values from linux/magic.h,
 * spelled out because the musl build has no kernel headers. */
static bool pseudo_file(int fd)
{
	static const unsigned long kinds[] = {
		0x9fa0,     /* proc */
		0x62656572, /* sysfs */
		0x64626720, /* debugfs */
		0x74726163, /* tracefs */
		0x73636673, /* securityfs */
		0x27e0eb,   /* cgroup */
		0x63677270, /* cgroup2 */
		0x62656570, /* configfs */
		0xde5e81e4, /* efivarfs */
		0x6165676c, /* pstore */
		0xcafe4a11, /* bpf */
	};
	struct statfs fs;
	size_t i;

	if (fstatfs(fd, &fs) != 0)
		return false;
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if ((unsigned long)fs.f_type == kinds[i])
			return true;
	return false;
}

/* Reads the regular file open on fd, which stat said was `was`: at most its
 * size, never more than KASHIM_FILE_MAX.  Returns NULL, or why not. */
static __attribute__((noinline)) const char *read_regular(int fd, const struct stat *was,
							  struct file_text *f, int *err)
{
	struct stat st;
	size_t size;
	int interrupted = 0;

	if (fstat(fd, &st) != 0)
		return *err = errno, NULL;
	if (!S_ISREG(st.st_mode) || st.st_dev != was->st_dev || st.st_ino != was->st_ino)
		return S_ISREG(st.st_mode) ? "replaced while it was being opened" : file_kind(st.st_mode);
	if (pseudo_file(fd))
		return "a file of a kernel interface (/proc, /sys), not a configuration file";
	if (st.st_size > KASHIM_FILE_MAX)
		return "larger than 64 KiB";
	size = (size_t)st.st_size;
	f->text = malloc(size + 1);
	if (!f->text)
		return *err = ENOMEM, NULL;
	while (f->len < size) {
		ssize_t n = read(fd, f->text + f->len, size - f->len);
		if (n < 0 && errno == EINTR && ++interrupted < 100)
			continue;
		if (n < 0) /* EAGAIN too: a regular file that would block is not one to wait for */
			return *err = errno, NULL;
		if (n == 0) /* shrunk since fstat: what there is */
			break;
		f->len += (size_t)n;
	}
	f->text[f->len] = 0;
	return NULL;
}

static const char *errno_text(int err)
{
	switch (err) {
	case ENOENT: return "no such file";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case ELOOP: return "too many symbolic links (a loop?)";
	case ENAMETOOLONG: return "the name is too long";
	case ENOTDIR: return "a part of the path is not a directory";
	case ENOMEM: return "out of memory";
	case EIO: return "input/output error";
	case EAGAIN: return "reading it would block";
	default: return NULL;
	}
}

/* "kashim: cannot read the configuration file PATH: WHY; it is ignored" */
MESSAGE static void read_problem(struct reporter *r, const char *path, const char *why, int err)
{
	struct kashim_line l;

	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: cannot read the configuration file ");
	line_put_path(&l, path);
	kashim_line_put(&l, ": ");
	if (!why)
		why = errno_text(err);
	if (why) {
		kashim_line_put(&l, why);
	} else {
		kashim_line_put(&l, "unreadable (errno ");
		kashim_line_put_uint(&l, (unsigned long)err);
		kashim_line_put(&l, ")");
	}
	kashim_line_put(&l, "; it is ignored");
	emit(r, &l);
}

/* Opens the file only once stat has said it is a regular one (opening a
 * device can have effects of its own: a tape rewinds, a terminal becomes
 * the controlling one), without blocking, and reads a bounded amount. */
static __attribute__((noinline)) bool read_file(const char *path, struct file_text *f)
{
	struct stat st;
	int fd;

	memset(f, 0, sizeof *f);
	f->path = path;
	if (stat(path, &st) != 0) {
		f->err = errno;
	} else if (!S_ISREG(st.st_mode)) {
		f->why = file_kind(st.st_mode);
	} else if (st.st_size > KASHIM_FILE_MAX) {
		f->why = "larger than 64 KiB";
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		f->err = errno;
	} else {
		f->why = read_regular(fd, &st, f, &f->err);
		close(fd);
	}
	if (!f->why && !f->err)
		return true;
	free(f->text);
	f->text = NULL;
	return false;
}


/* Whether one more problem of this file is shown (see file_summary). */
static bool file_may_report(struct file_text *f)
{
	return ++f->problems <= FILE_PROBLEMS_SHOWN;
}

/* After the file: how many problems were not shown. */
MESSAGE static void file_summary(struct reporter *r, const struct file_text *f)
{
	struct kashim_line l;

	if (f->problems <= FILE_PROBLEMS_SHOWN)
		return;
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	line_put_escaped(&l, f->path, PATH_SHOWN);
	kashim_line_put(&l, ": ");
	kashim_line_put_uint(&l, f->problems);
	kashim_line_put(&l, " problems, the first 20 shown; is it a kashim configuration file?");
	emit(r, &l);
}

MESSAGE static void file_problem(struct reporter *r, struct file_text *f, unsigned line,
			 const char *what, const char *detail, size_t detail_len,
			 const char *suggestion)
{
	struct origin at = { f->path, line };
	struct kashim_line l;

	if (!file_may_report(f))
		return;
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	put_origin(&l, &at);
	kashim_line_put(&l, ": ");
	kashim_line_put(&l, what);
	if (detail_len) {
		kashim_line_put(&l, " \"");
		line_put_escaped_n(&l, detail, detail_len, NAME_SHOWN);
		kashim_line_put(&l, "\"");
	}
	if (suggestion) {
		kashim_line_put(&l, " (did you mean ");
		kashim_line_put(&l, suggestion);
		kashim_line_put(&l, "?)");
	}
	kashim_line_put(&l, "; line ignored");
	emit(r, &l);
}

struct section {
	bool in_section, matches;
	const char *name; /* NULL: not a valid [program] section */
};

/* "kashim: FILE:LINE: KEY in [program NAME] not applied (WHY)", or for a
 * global setting (section NULL) "kashim: FILE:LINE: KEY not applied (WHY)";
 * not counted as a problem. */
MESSAGE static void report_unapplied(struct build *b, const struct origin *at, const char *key,
				     const char *section)
{
	struct kashim_line l;

	if (!b->unapplied)
		return;
	kashim_line_start(&l);
	kashim_line_put(&l, "kashim: ");
	if (at->line) { /* a file's line; a variable is named by key */
		put_origin(&l, at);
		kashim_line_put(&l, ": ");
	}
	kashim_line_put(&l, key);
	if (section) {
		kashim_line_put(&l, " in [program ");
		line_put_escaped(&l, section, NAME_SHOWN);
		kashim_line_put(&l, "]");
	}
	kashim_line_put(&l, " not applied (");
	kashim_line_put(&l, b->unapplied_why ? b->unapplied_why : "no program name");
	kashim_line_put(&l, ")");
	kashim_line_end(&l);
	b->unapplied(b->r.ctx, l.buf, l.len);
}

/* "[program NAME-OR-GLOB, ...]": whether it is one, and whether it names
 * this program.  A name that could never match is reported. */
static void parse_section(struct build *b, struct file_text *f, unsigned lineno, char *line,
			  char *end, struct section *s)
{
	char *name = line + 1;
	enum verdict v;

	s->in_section = true;
	s->matches = false;
	s->name = NULL;
	if (end[-1] != ']' || strncmp(name, "program", 7) || !is_space(name[7])) {
		file_problem(&b->r, f, lineno, "not a [program NAME] section", line, strlen(line),
			     NULL);
		return;
	}
	end[-1] = 0;
	name += 8;
	while (is_space(*name))
		name++;
	if (!*name) {
		file_problem(&b->r, f, lineno, "a [program] section needs a name", "", 0, NULL);
		return;
	}
	v = parse_globs(name);
	if (v != V_OK) {
		file_problem(&b->r, f, lineno, verdict_text[v], name, strlen(name), NULL);
		return;
	}
	s->matches = globs_match(name, b->names);
	s->name = name;
}

/* One line, without its newline and NUL-free. */
static void parse_line(struct build *b, struct file_text *f, unsigned lineno, char *line,
		       struct section *s)
{
	char *end = line + strlen(line), *eq, *value;
	size_t klen;
	int id;
	enum verdict v;

	while (end > line && (is_space(end[-1]) || end[-1] == '\r'))
		*--end = 0;
	while (is_space(*line))
		line++;
	if (!*line || *line == '#')
		return;
	if (*line == '[') {
		parse_section(b, f, lineno, line, end, s);
		return;
	}
	eq = strchr(line, '=');
	if (!eq) {
		file_problem(&b->r, f, lineno, "not a \"key = value\" line", line, strlen(line), NULL);
		return;
	}
	klen = (size_t)(eq - line);
	while (klen && is_space(line[klen - 1]))
		klen--;
	value = eq + 1;
	while (is_space(*value))
		value++;
	for (id = 0; id < VAR_COUNT_; id++)
		if (vars[id].key && strlen(vars[id].key) == klen && !strncmp(line, vars[id].key, klen))
			break;
	if (id == VAR_COUNT_) {
		int best = closest(line, klen, true);
		file_problem(&b->r, f, lineno, "unknown setting", line, klen,
			     best >= 0 ? vars[best].key : NULL);
		return;
	}
	/* Lines of sections for other programs are checked, not applied. */
	v = *value ? parse_into((enum var_id)id, value, s->in_section && !s->matches ? NULL : b) :
		     V_NOT_NUMBER;
	if (v != V_OK) {
		struct origin at = { f->path, lineno };
		if (file_may_report(f))
			report_bad(&b->r, &at, vars[id].key, (enum var_id)id, value, v, NULL,
				   "line ignored");
		return;
	}
	if (!s->in_section || s->matches)
		b->from[id] = (struct origin){ f->path, lineno };
	if (s->in_section && s->name) {
		struct origin at = { f->path, lineno };
		report_unapplied(b, &at, vars[id].key, s->name);
	}
}

/* The file's global settings, then the settings of the [program ...]
 * sections that match this program, in file order (the INI form puts every
 * global line before the first section).  Every line is checked, matching
 * or not; a line with a NUL byte is reported, and the lines after it
 * still count. */
static void parse_file(struct build *b, struct file_text *f)
{
	char *line = f->text, *stop = f->text + f->len;
	struct section s = { false, false, NULL };
	unsigned lineno = 0;

	while (line < stop) {
		char *nl = memchr(line, '\n', (size_t)(stop - line));
		char *eol = nl ? nl : stop, *next = nl ? nl + 1 : stop;
		lineno++;
		if (memchr(line, 0, (size_t)(eol - line))) {
			file_problem(&b->r, f, lineno, "a NUL byte in the line", NULL, 0, NULL);
		} else {
			*eol = 0; /* the newline, or the NUL after the text */
			parse_line(b, f, lineno, line, &s);
		}
		line = next;
	}
	file_summary(&b->r, f);
}

/* ---- putting it together ------------------------------------------------ */

/* The rule lists come last and only their counts are cleared: the rules
 * (KASHIM_MAX_RULES of each, 11 KiB) are written as parsed and never read
 * past n, so a process without rules does not get pages for them. */
_Static_assert(offsetof(struct kashim_config, skip) + sizeof(struct kashim_rules) ==
	       sizeof(struct kashim_config), "the rule lists end struct kashim_config");
_Static_assert(offsetof(struct kashim_config, only) + sizeof(struct kashim_rules) ==
	       offsetof(struct kashim_config, skip), "only, then skip");

void kashim_config_defaults(struct kashim_config *cfg)
{
	memset(cfg, 0, offsetof(struct kashim_config, only));
	cfg->only.n = 0;
	cfg->skip.n = 0;
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

/* The variables of libkeepalive and libdontdie: for each setting, the first
 * of them that is set. */
static void compat_apply(struct build *b, char *const *envp)
{
	unsigned done = 0;
	size_t i;

	for (i = 0; i < COMPAT_COUNT; i++) {
		const char *value = env_value(envp, compat[i].name);
		unsigned bit = 1u << compat[i].id;
		enum verdict v;
		if (!value || (done & bit))
			continue;
		if (compat[i].off_word && (ascii_equal_nocase(value, compat[i].off_word) ||
					   ascii_equal_nocase(value, "off"))) {
			b->cfg->enabled = false;
			b->set |= bit;
			v = V_OK;
		} else {
			v = parse_into(compat[i].id, value, b);
		}
		if (v == V_OK) {
			done |= bit;
			b->from[compat[i].id] = (struct origin){ compat[i].name, 0 };
		} else {
			report_bad(&b->r, NULL, compat[i].name, compat[i].id, value, v, NULL,
				   "it is ignored");
		}
	}
}

/* The KASHIM_* variables, over everything else.  A bad one says what is
 * used instead: the value from the file or a compatibility variable, or the
 * default. */
static void env_apply(struct build *b, const char *const values[VAR_COUNT_])
{
	int id;

	for (id = 0; id < VAR_COUNT_; id++) {
		bool had = (b->set & (1u << id)) != 0;
		enum verdict v;
		if (!values[id] || id == VAR_CONFIG)
			continue;
		v = parse_into((enum var_id)id, values[id], b);
		if (v == V_OK)
			b->from[id] = (struct origin){ vars[id].name, 0 };
		else
			report_bad(&b->r, NULL, vars[id].name, (enum var_id)id, values[id], v,
				   had ? &b->from[id] : NULL, NULL);
	}
}

static void read_config_file(struct build *b, const char *path, bool quiet_if_missing)
{
	struct file_text file;

	if (read_file(path, &file))
		parse_file(b, &file);
	else if (!quiet_if_missing || file.err != ENOENT)
		read_problem(&b->r, path, file.why, file.err);
	free(file.text);
}

/* validate (kashim check): read and report every setting even where
 * KASHIM=off in the environment makes the library skip them silently (a
 * program that has kashim off gets no message; a check of a file must
 * still see the file). */
static unsigned config_load(struct kashim_config *cfg, const struct kashim_source *src,
			    kashim_report_fn *report, kashim_report_fn *unapplied,
			    const char *why, bool validate, void *ctx)
{
	struct build b;
	const char *values[VAR_COUNT_] = { 0 };
	bool any, off = false;
	int saved_errno = errno; /* a failed stat or open is not the program's */

	kashim_config_defaults(cfg);
	if (src->secure || !src->envp) {
		resolve_user_timeout(cfg);
		return 0;
	}
	memset(&b, 0, sizeof b);
	b.cfg = cfg;
	b.names = src->program_names;
	b.r = (struct reporter){ report, ctx, 0 };
	b.unapplied = unapplied;
	b.unapplied_why = why;

	/* KASHIM=off in the environment means nothing at all happens, so it
	 * is looked at before anything can produce a message (kashim check
	 * reads on: the variable still wins, in env_apply). */
	any = collect(src->envp, values, NULL);
	if (values[VAR_SWITCH] && parse_switch(values[VAR_SWITCH], &off) == V_OK && !off &&
	    !validate) {
		cfg->enabled = false;
		resolve_user_timeout(cfg); /* consistent, even though unused */
		return 0;
	}
	memset(values, 0, sizeof values);
	collect(src->envp, values, &b.r);

	if (values[VAR_CONFIG])
		read_config_file(&b, values[VAR_CONFIG], false);
	else if (!any && src->default_file)
		read_config_file(&b, src->default_file, true);
	compat_apply(&b, src->envp);
	env_apply(&b, values);

	cfg->has_only = (b.set & (1u << VAR_ONLY)) != 0;
	cfg->program_filtered = (b.set & (1u << VAR_PROGRAMS | 1u << VAR_SKIP_PROGRAMS)) != 0;
	if (unapplied) {
		int id;
		for (id = VAR_PROGRAMS; id <= VAR_SKIP_PROGRAMS; id++)
			if (b.set & (1u << id))
				report_unapplied(&b, &b.from[id], b.from[id].line ? vars[id].key :
								   vars[id].name, NULL);
	} else if ((b.set & (1u << VAR_PROGRAMS)) && !b.programs_match)
		cfg->enabled = false;
	if ((b.set & (1u << VAR_SKIP_PROGRAMS)) && b.skip_programs_match)
		cfg->enabled = false;
	cfg->deferred = kashim_config_deferred(cfg);
	resolve_user_timeout(cfg);
	errno = saved_errno;
	return b.r.problems;
}

unsigned kashim_config_load_from(struct kashim_config *cfg, const struct kashim_source *src,
				 kashim_report_fn *report, void *ctx)
{
	return config_load(cfg, src, report, NULL, NULL, false, ctx);
}

unsigned kashim_config_check_from(struct kashim_config *cfg, const struct kashim_source *src,
				  kashim_report_fn *report, void *ctx)
{
	return config_load(cfg, src, report, NULL, NULL, true, ctx);
}

unsigned kashim_config_load_unnamed(struct kashim_config *cfg, const struct kashim_source *src,
				    kashim_report_fn *report, kashim_report_fn *unapplied,
				    const char *why, void *ctx)
{
	return config_load(cfg, src, report, unapplied, why, false, ctx);
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
