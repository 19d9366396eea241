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
 * crafted document costs at most a few passes. */
#include <stdint.h>
#include <string.h>
#include "sd_doc.h"
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
		if (e == 'u') {
			unsigned u, lo;
			if (!hex4(s->p, s->end, &u))
				return 0;
			s->p += 4;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return 0; /* a low surrogate alone */
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
				    !hex4(s->p + 2, s->end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return 0;
				s->p += 6;
			}
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

/* A number. *integer: it has no fraction and no exponent; then *v is its
 * value when it has at most 18 digits (*big otherwise). Numbers the parser
 * might refuse as out of range (an integer past 64 bits, a real past
 * DBL_MAX) are left to it: 0. */
static int number(scan *s, int *integer, int64_t *v)
{
	int neg = 0;
	if (s->p < s->end && *s->p == '-') {
		neg = 1;
		s->p++;
	}
	const char *ib = s->p;
	int nd = digits(s);
	if (nd == 0 || (nd > 1 && *ib == '0'))
		return 0;
	int frac = 0, exp = 0;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) == 0)
			return 0;
		frac = 1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		int ed = digits(s);
		if (ed == 0 || ed > 2)
			return 0; /* exponent of 100 or more: possibly out of range */
		exp = 1;
	}
	*integer = !frac && !exp;
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
 * the scan cannot tell cheaply). */
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
