/* docscan.c: the fast path for loads. One pass over a stored file checks
 * the whole of it, JSON syntax and the session document's fields and types,
 * without building a tree, so that load can answer with the file's bytes
 * as they are. It answers 1 only when it is sure the bytes are a document
 * that sd_doc_parse_stored accepts; when it is not sure (a rare construct
 * it does not decode, such as escapes in object names, or a number at the
 * edge of what the parser takes) or the file is damaged, it answers 0 and
 * the caller parses in full, which gives the exact verdict and the reason.
 *
 * Duplicate names inside an object are refused by the parser, so the scan
 * must see them too: each nesting level keeps a small bit set of name
 * hashes; a hit is checked exactly by walking the object's earlier names,
 * and after a few such walks the scan leaves the file to the parser, so a
 * crafted document costs at most a few passes.
 *
 * The same pieces serve the save fast path's canonical writer
 * (sd_doccanon.h), at the end of this file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "sd_doc.h"
#include "sd_doccanon.h"
#include "sd_time.h"

#define SCAN_DEPTH SD_DOC_MAX_DEPTH  /* deeper than any body may nest */
#define SET_WORDS 16                  /* 1024 bits of name hashes per level */
#define MAX_RECHECKS 16               /* exact duplicate checks per file */

typedef struct scan {
	const char *p, *end;
	int rechecks;
	const char *obj[SCAN_DEPTH + 2];  /* where the object at each level opens */
	uint64_t seen[SCAN_DEPTH + 2][SET_WORDS];
} scan;

static void ws(scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at p (bounded by end) into *u. */
static int hex4(const char *p, const char *end, unsigned *u)
{
	if (end - p < 4)
		return 0;
	*u = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return 0;
		*u = *u << 4 | (unsigned)h;
	}
	return 1;
}

/* One UTF-8 sequence at s->p (first byte >= 0x80): well formed, shortest
 * form, no surrogates, at most U+10FFFF. */
static int utf8(scan *s)
{
	const unsigned char *p = (const unsigned char *)s->p;
	size_t room = (size_t)(s->end - s->p);
	unsigned c = p[0], n, min, cp;
	if (c >= 0xC2 && c <= 0xDF)
		n = 1, min = 0x80, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 2, min = 0x800, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 3, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (room < n + 1)
		return 0;
	for (unsigned i = 1; i <= n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	s->p += n + 1;
	return 1;
}

/* The four hex digits of a \u escape at s->p, and a second one after a
 * high surrogate: *u the code point. 0 for a surrogate that is not in a
 * pair, which jansson refuses. */
static int unicode_escape(scan *s, unsigned *u)
{
	unsigned lo;
	if (!hex4(s->p, s->end, u))
		return 0;
	s->p += 4;
	if (*u >= 0xDC00 && *u <= 0xDFFF)
		return 0; /* a low surrogate alone */
	if (*u >= 0xD800 && *u <= 0xDBFF) {
		if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !hex4(s->p + 2, s->end, &lo) ||
		    lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		s->p += 6;
		*u = 0x10000 + ((*u - 0xD800) << 10) + (lo - 0xDC00);
	}
	return 1;
}

/* A string at s->p (its opening quote). raw and rawlen get the bytes
 * between the quotes, escaped whether any backslash occurs. */
static int string(scan *s, const char **raw, size_t *rawlen, int *escaped)
{
	if (s->p >= s->end || *s->p != '"')
		return 0;
	s->p++;
	*raw = s->p;
	*escaped = 0;
	while (s->p < s->end) {
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') {
			*rawlen = (size_t)(s->p - *raw);
			s->p++;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c >= 0x80) {
			if (!utf8(s))
				return 0;
			continue;
		}
		if (c != '\\') {
			s->p++;
			continue;
		}
		*escaped = 1;
		if (s->end - s->p < 2)
			return 0;
		char e = s->p[1];
		s->p += 2;
		unsigned u;
		if (e == 'u') {
			if (!unicode_escape(s, &u))
				return 0;
		} else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
			return 0;
		}
	}
	return 0;
}

static int digits(scan *s)
{
	const char *b = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return (int)(s->p - b);
}

/* The syntax of a number at s->p (RFC 8259: an optional minus, digits
 * without a leading zero, a fraction, an exponent): *ib and *nd its integer
 * digits, *frac and *ed whether it has a fraction and its exponent's digits
 * (-1: no exponent). 0 when it is not a number. */
static int number_syntax(scan *s, const char **ib, int *nd, int *frac, int *ed)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	*ib = s->p;
	*nd = digits(s);
	if (*nd == 0 || (*nd > 1 && **ib == '0'))
		return 0;
	*frac = 0;
	*ed = -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) == 0)
			return 0;
		*frac = 1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if ((*ed = digits(s)) == 0)
			return 0;
	}
	return 1;
}

/* A number. *integer: it has no fraction and no exponent; then *v is its
 * value when it has at most 18 digits (*big otherwise). Numbers the parser
 * might refuse as out of range (an integer past 64 bits, a real past
 * DBL_MAX) are left to it: 0. */
static int number(scan *s, int *integer, int64_t *v)
{
	int neg = s->p < s->end && *s->p == '-', nd, frac, ed;
	const char *ib;
	if (!number_syntax(s, &ib, &nd, &frac, &ed) || ed > 2)
		return 0; /* an exponent of 100 or more: possibly out of range */
	*integer = !frac && ed < 0;
	if (*integer) {
		if (nd > 18)
			return 0; /* maybe past 64 bits */
		int64_t n = 0;
		for (const char *q = ib; q < ib + nd; q++)
			n = n * 10 + (*q - '0');
		*v = neg ? -n : n;
	} else if (nd > 200) {
		return 0;
	}
	return 1;
}

static int value(scan *s, int depth);

/* Skip a value that was already checked (used by the exact duplicate
 * check): only brackets and strings matter. */
static void skip(scan *s)
{
	int level = 0;
	while (s->p < s->end) {
		char c = *s->p;
		if (c == '"') {
			s->p++;
			while (s->p < s->end && *s->p != '"')
				s->p += *s->p == '\\' ? 2 : 1;
			s->p++;
		} else if (c == '{' || c == '[') {
			level++;
			s->p++;
		} else if (c == '}' || c == ']') {
			if (level == 0)
				return;
			level--;
			s->p++;
			if (level == 0)
				return;
		} else if (c == ',' && level == 0) {
			return;
		} else {
			s->p++;
		}
	}
}

/* Is the name (raw, unescaped) already among the names of the object that
 * opened at 'open', before 'stop'? */
static int seen_before(const char *open, const char *stop, const char *name, size_t n)
{
	scan t = {.p = open + 1, .end = stop};
	for (;;) {
		ws(&t);
		const char *raw;
		size_t len;
		int esc;
		if (t.p >= stop || !string(&t, &raw, &len, &esc))
			return 0;
		if (raw < name && len == n && memcmp(raw, name, n) == 0)
			return 1;
		ws(&t);
		t.p++; /* ':' */
		ws(&t);
		skip(&t);
		ws(&t);
		if (t.p >= stop || *t.p != ',')
			return 0;
		t.p++;
	}
}

/* Record a member name of the object at depth; 0 when it repeats one (or
 * the scan cannot tell cheaply). The earlier names are looked for between
 * s->obj[depth] and name: the names, as written there, are compared byte
 * for byte. */
static int name_ok(scan *s, int depth, const char *name, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	h %= SET_WORDS * 64;
	uint64_t bit = 1ULL << (h % 64), *w = &s->seen[depth][h / 64];
	if (*w & bit) {
		if (++s->rechecks > MAX_RECHECKS)
			return 0;
		if (seen_before(s->obj[depth], name, name, n))
			return 0;
	}
	*w |= bit;
	return 1;
}

static int object(scan *s, int depth)
{
	s->obj[depth] = s->p;
	memset(s->seen[depth], 0, sizeof s->seen[depth]);
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 1;
	}
	for (;;) {
		const char *raw;
		size_t n;
		int esc;
		ws(s);
		if (!string(s, &raw, &n, &esc) || esc || !name_ok(s, depth, raw, n))
			return 0;
		ws(s);
		if (s->p >= s->end || *s->p != ':')
			return 0;
		s->p++;
		if (!value(s, depth + 1))
			return 0;
		ws(s);
		if (s->p >= s->end)
			return 0;
		if (*s->p == '}') {
			s->p++;
			return 1;
		}
		if (*s->p++ != ',')
			return 0;
	}
}

static int array(scan *s, int depth)
{
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 1;
	}
	for (;;) {
		if (!value(s, depth + 1))
			return 0;
		ws(s);
		if (s->p >= s->end)
			return 0;
		if (*s->p == ']') {
			s->p++;
			return 1;
		}
		if (*s->p++ != ',')
			return 0;
	}
}

static int literal(scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return 0;
	s->p += n;
	return 1;
}

/* Any JSON value; depth is the level it sits at (the document is 1). */
static int value(scan *s, int depth)
{
	ws(s);
	if (s->p >= s->end || depth > SCAN_DEPTH)
		return 0;
	const char *raw;
	size_t n;
	int esc, integer;
	int64_t v;
	switch (*s->p) {
	case '{': return object(s, depth);
	case '[': return array(s, depth);
	case '"': return string(s, &raw, &n, &esc);
	case 't': return literal(s, "true");
	case 'f': return literal(s, "false");
	case 'n': return literal(s, "null");
	default: return number(s, &integer, &v);
	}
}

/* The document's own fields, each at most once; all but "expires" required. */
enum { F_KEY, F_VERSION, F_CREATED, F_UPDATED, F_META, F_DATA, F_EXPIRES, F__N };
static const char *const fields[F__N] = {"key", "version", "created", "updated", "meta", "data", "expires"};
#define F_REQUIRED ((1u << F_EXPIRES) - 1)

static int field_of(const char *name, size_t n)
{
	for (int f = 0; f < F__N; f++)
		if (strlen(fields[f]) == n && memcmp(fields[f], name, n) == 0)
			return f;
	return -1;
}

static int time_string(scan *s)
{
	const char *raw;
	size_t n;
	int esc;
	char t[48];
	int64_t ms;
	if (!string(s, &raw, &n, &esc) || esc || n >= sizeof t)
		return 0;
	memcpy(t, raw, n);
	t[n] = '\0';
	return sd_time_parse(t, &ms) == 0;
}

/* One field's value, checked for its type. */
static int field_value(scan *s, int f, const char *key, int64_t *version)
{
	const char *raw;
	size_t n;
	int esc, integer;
	ws(s);
	switch (f) {
	case F_KEY:
		return string(s, &raw, &n, &esc) && !esc && n == SD_KEY_LEN && memcmp(raw, key, n) == 0;
	case F_VERSION:
		if (s->p >= s->end || *s->p == '-' || !number(s, &integer, version))
			return 0;
		return integer && *version >= SD_DOC_FIRST_VERSION && *version <= SD_DOC_MAX_VERSION;
	case F_CREATED:
	case F_UPDATED:
	case F_EXPIRES:
		return time_string(s);
	case F_META:
		return s->p < s->end && *s->p == '{' && value(s, 2);
	default:
		return value(s, 2);
	}
}

int sd_doc_peek(const char *buf, size_t len, const char *key, int64_t *version)
{
	static __thread scan st; /* 17 KB: kept off the worker's stack */
	scan *s = &st;
	s->p = buf;
	s->end = buf + len;
	s->rechecks = 0;
	unsigned have = 0;
	int64_t v = 0;
	ws(s);
	if (!buf || !key || s->p >= s->end || *s->p != '{')
		return 0;
	s->p++;
	for (int i = 0; i < F__N; i++) {
		const char *raw;
		size_t n;
		int esc;
		ws(s);
		if (!string(s, &raw, &n, &esc) || esc)
			return 0;
		int f = field_of(raw, n);
		if (f < 0 || (have & (1u << f)))
			return 0; /* unknown or repeated field */
		have |= 1u << f;
		ws(s);
		if (s->p >= s->end || *s->p != ':')
			return 0;
		s->p++;
		if (!field_value(s, f, key, &v))
			return 0;
		ws(s);
		if (s->p < s->end && *s->p == '}')
			break;
		if (s->p >= s->end || *s->p != ',' || i == F__N - 1)
			return 0;
		s->p++;
	}
	if (s->p >= s->end || *s->p != '}' || (have & F_REQUIRED) != F_REQUIRED)
		return 0;
	s->p++;
	ws(s);
	if (s->p != s->end)
		return 0;
	*version = v;
	return 1;
}

/* sd_doc_canon (sd_doccanon.h): the value is read with the scan above (its
 * white space, UTF-8 and number syntax, and the per-level sets of names)
 * and written as it goes. Names are compared as written, in the canonical
 * form, which is one text for one string whatever escapes the input used:
 * the output holds the earlier names of each open object, so name_ok's
 * exact check walks the output rather than the input. */
typedef struct canon {
	scan s;
	char *out;
	size_t n, cap, limit;
	size_t obj[SCAN_DEPTH + 2]; /* where each open object's '{' is in out */
	void *(*alloc)(size_t);
	void (*release)(void *);
} canon;

/* Room for k more bytes (and a NUL) in out, within the limit. */
static int room(canon *c, size_t k)
{
	if (k > c->limit || c->n + k > c->limit)
		return 0;
	if (c->n + k < c->cap)
		return 1;
	/* The first block is about the input's size (the canonical layout
	 * of compact text is somewhat larger), then it doubles. */
	size_t cap = c->cap ? c->cap * 2 : (size_t)(c->s.end - c->s.p) / 4 * 5 + 64;
	if (cap < c->n + k + 1)
		cap = c->n + k + 1;
	if (c->limit < SIZE_MAX && cap > c->limit + 1)
		cap = c->limit + 1;
	char *t = c->alloc(cap);
	if (!t)
		return 0;
	if (c->n)
		memcpy(t, c->out, c->n);
	c->release(c->out);
	c->out = t;
	c->cap = cap;
	return 1;
}

static int put(canon *c, const char *b, size_t k)
{
	if (!room(c, k))
		return 0;
	memcpy(c->out + c->n, b, k);
	c->n += k;
	return 1;
}

#define PUT(c, s) put(c, s, sizeof s - 1)

/* A newline and two spaces per level. */
static int newline(canon *c, int depth)
{
	size_t k = 1 + 2 * (size_t)depth;
	if (!room(c, k))
		return 0;
	c->out[c->n] = '\n';
	memset(c->out + c->n + 1, ' ', k - 1);
	c->n += k;
	return 1;
}

/* A code point as jansson writes it inside a string: the short escapes,
 * \u00XX (upper case) for the other control characters, UTF-8 otherwise. */
static int put_code(canon *c, unsigned u)
{
	char b[8];
	switch (u) {
	case '"': return PUT(c, "\\\"");
	case '\\': return PUT(c, "\\\\");
	case '\b': return PUT(c, "\\b");
	case '\f': return PUT(c, "\\f");
	case '\n': return PUT(c, "\\n");
	case '\r': return PUT(c, "\\r");
	case '\t': return PUT(c, "\\t");
	}
	if (u < 0x20) {
		static const char hex[] = "0123456789ABCDEF";
		b[0] = '\\', b[1] = 'u', b[2] = '0', b[3] = '0', b[4] = hex[u >> 4], b[5] = hex[u & 15];
		return put(c, b, 6);
	}
	if (u < 0x80) {
		b[0] = (char)u;
		return put(c, b, 1);
	}
	if (u < 0x800) {
		b[0] = (char)(0xC0 | u >> 6), b[1] = (char)(0x80 | (u & 0x3F));
		return put(c, b, 2);
	}
	if (u < 0x10000) {
		b[0] = (char)(0xE0 | u >> 12), b[1] = (char)(0x80 | (u >> 6 & 0x3F)), b[2] = (char)(0x80 | (u & 0x3F));
		return put(c, b, 3);
	}
	b[0] = (char)(0xF0 | u >> 18), b[1] = (char)(0x80 | (u >> 12 & 0x3F)), b[2] = (char)(0x80 | (u >> 6 & 0x3F)),
	b[3] = (char)(0x80 | (u & 0x3F));
	return put(c, b, 4);
}

/* The bytes a string copies as they are: printable ASCII but " and \. */
static const unsigned char plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1};

/* A string at s->p, decoded and written again; a name may not hold a NUL
 * (jansson refuses one in a name). */
static int cstring(canon *c, int name)
{
	scan *s = &c->s;
	if (s->p >= s->end || *s->p != '"' || !PUT(c, "\""))
		return 0;
	s->p++;
	for (;;) {
		const char *run = s->p;
		while (s->p < s->end && plain[(unsigned char)*s->p])
			s->p++;
		if (s->p > run && !put(c, run, (size_t)(s->p - run)))
			return 0;
		if (s->p >= s->end)
			return 0;
		unsigned char ch = (unsigned char)*s->p;
		if (ch == '"') {
			s->p++;
			return PUT(c, "\"");
		}
		if (ch >= 0x80) {
			run = s->p;
			if (!utf8(s) || !put(c, run, (size_t)(s->p - run)))
				return 0;
			continue;
		}
		if (ch != '\\' || s->end - s->p < 2)
			return 0; /* a control character, or the text ends */
		char e = s->p[1];
		s->p += 2;
		unsigned u;
		switch (e) {
		case '"': u = '"'; break;
		case '\\': u = '\\'; break;
		case '/': u = '/'; break;
		case 'b': u = '\b'; break;
		case 'f': u = '\f'; break;
		case 'n': u = '\n'; break;
		case 'r': u = '\r'; break;
		case 't': u = '\t'; break;
		case 'u':
			if (!unicode_escape(s, &u) || (u == 0 && name))
				return 0; /* jansson refuses a NUL in a name */
			break;
		default: return 0;
		}
		if (!put_code(c, u))
			return 0;
	}
}

/* A number as jansson reads and writes it. An integer is its own text
 * (there are no leading zeros), but "-0" is 0; one past 64 bits is refused
 * by jansson: 0. A real is strtod's double printed as jsonp_dtostr does:
 * "%.17g", ".0" added when that has neither '.' nor 'e', and the
 * exponent's '+' and leading zeros dropped; past DBL_MAX jansson refuses
 * it: 0. */
static int cnumber(canon *c)
{
	scan *s = &c->s;
	const char *b = s->p, *ib;
	int nd, frac, ed;
	if (!number_syntax(s, &ib, &nd, &frac, &ed))
		return 0;
	size_t n = (size_t)(s->p - b);
	if (!frac && ed < 0) {
		if (nd == 1 && *ib == '0')
			return PUT(c, "0");
		if (nd > 19 || (nd == 19 && memcmp(ib, b == ib ? "9223372036854775807" : "9223372036854775808", 19) > 0))
			return 0;
		return put(c, b, n);
	}
	char t[64], o[40];
	if (n >= sizeof t)
		return 0; /* long reals are left to jansson */
	memcpy(t, b, n);
	t[n] = '\0';
	char *stop;
	double d = strtod(t, &stop);
	/* (strtod stops short under a locale whose decimal point is not '.':
	 * sessiond sets none, but then jansson decides.) */
	if (stop != t + n || isinf(d) || isnan(d))
		return 0;
	int k = snprintf(o, sizeof o, "%.17g", d);
	if (k <= 0 || (size_t)k >= sizeof o - 3 || strchr(o, ','))
		return 0;
	char *e = strchr(o, 'e');
	if (!e && !strchr(o, '.')) {
		memcpy(o + k, ".0", 3);
		k += 2;
	}
	if (e) {
		char *from = e + 1, *to = e + 1;
		if (*from == '-')
			from++, to++;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1])
			from++;
		memmove(to, from, strlen(from) + 1);
		k = (int)strlen(o);
	}
	return put(c, o, (size_t)k);
}

static int cliteral(canon *c, const char *word) { return literal(&c->s, word) && put(c, word, strlen(word)); }

static int cvalue(canon *c, int level, int depth);

/* An object or array at level (the outermost value is at 1), written at
 * depth. */
static int ccontainer(canon *c, int level, int depth)
{
	scan *s = &c->s;
	char open = *s->p, close = open == '{' ? '}' : ']';
	if (level > SCAN_DEPTH)
		return 0;
	s->p++;
	ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		char e[2] = {open, close};
		return put(c, e, 2);
	}
	if (!put(c, &open, 1))
		return 0;
	if (open == '{') {
		c->obj[level] = c->n - 1;
		memset(s->seen[level], 0, sizeof s->seen[level]);
	}
	for (;;) {
		if (!newline(c, depth + 1))
			return 0;
		if (open == '{') {
			ws(s);
			size_t at = c->n + 1;
			if (!cstring(c, 1))
				return 0;
			s->obj[level] = c->out + c->obj[level];
			if (!name_ok(s, level, c->out + at, c->n - 1 - at))
				return 0;
			ws(s);
			if (s->p >= s->end || *s->p != ':' || !PUT(c, ": "))
				return 0;
			s->p++;
		}
		if (!cvalue(c, level + 1, depth + 1))
			return 0;
		ws(s);
		if (s->p >= s->end)
			return 0;
		if (*s->p == ',') {
			s->p++;
			if (!PUT(c, ","))
				return 0;
			continue;
		}
		if (*s->p++ != close)
			return 0;
		return newline(c, depth) && put(c, &close, 1);
	}
}

static int cvalue(canon *c, int level, int depth)
{
	scan *s = &c->s;
	ws(s);
	if (s->p >= s->end)
		return 0;
	switch (*s->p) {
	case '{':
	case '[': return ccontainer(c, level, depth);
	case '"': return cstring(c, 0);
	case 't': return cliteral(c, "true");
	case 'f': return cliteral(c, "false");
	case 'n': return cliteral(c, "null");
	default: return cnumber(c);
	}
}

static __thread canon canon_st; /* 17 KB: kept off the worker's stack */

static canon *canon_start(const char *buf, size_t len, size_t limit)
{
	canon *c = &canon_st;
	c->s.p = buf;
	c->s.end = buf + len;
	c->s.rechecks = 0;
	c->out = NULL;
	c->n = c->cap = 0;
	c->limit = limit;
	json_get_alloc_funcs(&c->alloc, &c->release);
	return c;
}

/* The value at c->s.p, at level and depth, into a new c->out. */
static int canon_value(canon *c, int level, int depth, char **out, size_t *out_len)
{
	c->out = NULL;
	c->n = c->cap = 0;
	if (!cvalue(c, level, depth) || !room(c, 0)) {
		c->release(c->out);
		c->out = NULL;
		return 0;
	}
	c->out[c->n] = '\0';
	*out = c->out;
	*out_len = c->n;
	c->out = NULL;
	return 1;
}

int sd_doc_canon(const char *v, size_t n, int depth, size_t limit, char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (!v || depth < 0 || depth > 1024)
		return 0;
	canon *c = canon_start(v, n, limit);
	if (!canon_value(c, 1, depth, out, out_len))
		return 0;
	ws(&c->s);
	if (c->s.p != c->s.end) {
		sd_doc_canon_free(*out);
		*out = NULL;
		*out_len = 0;
		return 0;
	}
	return 1;
}

void sd_doc_canon_free(char *out)
{
	if (!out)
		return;
	void (*release)(void *);
	json_get_alloc_funcs(NULL, &release);
	release(out);
}

/* One member's value (not the canonical one) at level 2: checked by the
 * scan, with its kind. */
static int member_value(scan *s, sd_doc_member *m)
{
	const char *raw;
	size_t n;
	int esc, integer;
	ws(s);
	m->value = s->p;
	m->kind = '?';
	if (s->p < s->end && *s->p == '"') {
		if (!string(s, &raw, &n, &esc))
			return 0;
		if (!esc) {
			m->kind = 's';
			m->value = raw;
			m->value_len = n;
			return 1;
		}
	} else if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
		if (!number(s, &integer, &m->num))
			return 0;
		if (integer)
			m->kind = 'i';
	} else {
		if (s->p < s->end && *s->p == '{')
			m->kind = '{';
		else if (literal(s, "null"))
			m->kind = 'n';
		if (m->kind != 'n' && !value(s, 2))
			return 0;
	}
	m->value_len = (size_t)(s->p - m->value);
	return 1;
}

int sd_doc_canon_members(const char *buf, size_t len, const char *cname, int depth, size_t limit,
			 sd_doc_member *m, int max, int *count, char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	*count = 0;
	if (!buf)
		return 0;
	canon *c = canon_start(buf, len, limit);
	scan *s = &c->s;
	ws(s);
	if (s->p >= s->end || *s->p != '{')
		return 0;
	s->p++;
	ws(s);
	int ok = 1, k = 0;
	if (s->p < s->end && *s->p == '}')
		s->p++;
	else
		for (ok = 0;;) {
			const char *raw;
			size_t n;
			int esc;
			ws(s);
			if (k == max || !string(s, &raw, &n, &esc) || esc)
				break;
			for (int i = 0; i < k; i++)
				if (m[i].name_len == n && memcmp(m[i].name, raw, n) == 0)
					goto done; /* a repeated member */
			m[k] = (sd_doc_member){.name = raw, .name_len = n};
			ws(s);
			if (s->p >= s->end || *s->p != ':')
				break;
			s->p++;
			if (cname && !*out && strlen(cname) == n && memcmp(cname, raw, n) == 0) {
				ws(s);
				m[k].value = s->p;
				m[k].kind = 'c';
				if (!canon_value(c, 2, depth, out, out_len))
					break;
				m[k].value_len = (size_t)(s->p - m[k].value);
			} else if (!member_value(s, &m[k])) {
				break;
			}
			k++;
			ws(s);
			if (s->p < s->end && *s->p == '}') {
				s->p++;
				ok = 1;
				break;
			}
			if (s->p >= s->end || *s->p++ != ',')
				break;
		}
done:
	ws(s);
	if (!ok || s->p != s->end) {
		sd_doc_canon_free(*out);
		*out = NULL;
		*out_len = 0;
		return 0;
	}
	*count = k;
	return 1;
}
