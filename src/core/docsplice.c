/* docsplice.c: a save without parsing the stored data (see sd_docsplice.h).
 * The canonical layout is jansson's JSON_INDENT(2) output of the document
 * built by sd_doc_dump: each member on its own line, two spaces per level,
 * ": " between name and value, "{}" and "[]" for empty containers, strings
 * with only the escapes jansson writes (\" \\ \b \f \n \r \t and \u00XX in
 * upper case for other control characters; everything else as UTF-8),
 * integers in decimal, reals as jansson prints them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_docsplice.h"
#include "sd_time.h"

/* Flags of sd_doc_parse_stored's parse, for the parts parsed alone. */
#define STORED_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

typedef struct cur {
	const char *p, *end;
} cur;

static int lit(cur *c, const char *s, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

#define LIT(c, s) lit(c, s, sizeof s - 1)

/* A newline and two spaces per level. */
static int indent(cur *c, int depth)
{
	if (c->p >= c->end || *c->p != '\n' || (size_t)(c->end - c->p) < 1 + 2 * (size_t)depth)
		return 0;
	for (int i = 1; i <= 2 * depth; i++)
		if (c->p[i] != ' ')
			return 0;
	c->p += 1 + 2 * depth;
	return 1;
}

static int upper_hex(char h) { return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'); }

/* A string as jansson writes it (its UTF-8 was checked by sd_doc_peek). */
static int cstring(cur *c)
{
	if (c->p >= c->end || *c->p != '"')
		return 0;
	for (c->p++; c->p < c->end; c->p++) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			return 1;
		}
		if (ch < 0x20)
			return 0;
		if (ch != '\\')
			continue;
		if (c->end - c->p < 2)
			return 0;
		char e = c->p[1];
		if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
			c->p++;
			continue;
		}
		/* \u only for the control characters without a short escape. */
		if (e != 'u' || c->end - c->p < 6 || c->p[2] != '0' || c->p[3] != '0' || (c->p[4] != '0' && c->p[4] != '1') ||
		    !upper_hex(c->p[5]))
			return 0;
		if (c->p[4] == '0' && strchr("89ACD", c->p[5]))
			return 0; /* \b \t \n \f \r */
		c->p += 5;
	}
	return 0;
}

/* A number as jansson prints it: an integer of at most 18 digits (longer
 * ones are left to the parser), or a real that reads back to its bytes. */
static int cnumber(cur *c)
{
	const char *b = c->p;
	int real = 0;
	while (c->p < c->end && strchr("0123456789-+.eE", *c->p) && *c->p) {
		if (*c->p == '.' || *c->p == 'e' || *c->p == 'E')
			real = 1;
		c->p++;
	}
	size_t n = (size_t)(c->p - b);
	if (!real) {
		int neg = n > 0 && *b == '-';
		return n > (size_t)neg && n - neg <= 18 && !(neg && b[1] == '0');
	}
	char out[64];
	if (n >= sizeof out)
		return 0;
	json_t *v = sd_doc_loadb(b, n, JSON_DECODE_ANY, NULL);
	size_t m = json_is_real(v) ? json_dumpb(v, out, sizeof out, JSON_ENCODE_ANY) : 0;
	json_decref(v);
	return m == n && memcmp(out, b, n) == 0;
}

static int cvalue(cur *c, int depth)
{
	if (c->p >= c->end || depth > SD_DOC_MAX_DEPTH)
		return 0;
	char open = *c->p;
	if (open == '{' || open == '[') {
		char close = open == '{' ? '}' : ']';
		c->p++;
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 1;
		}
		for (;;) {
			if (!indent(c, depth + 1))
				return 0;
			if (open == '{' && !(cstring(c) && LIT(c, ": ")))
				return 0;
			if (!cvalue(c, depth + 1))
				return 0;
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			return indent(c, depth) && c->p < c->end && *c->p++ == close;
		}
	}
	switch (open) {
	case '"': return cstring(c);
	case 't': return LIT(c, "true");
	case 'f': return LIT(c, "false");
	case 'n': return LIT(c, "null");
	default: return cnumber(c);
	}
}

int sd_doc_canonical(const char *v, size_t n, int depth)
{
	cur c = {v, v + n};
	return v && cvalue(&c, depth) && c.p == c.end;
}

/* A time string's bytes (sd_doc_peek checked it has no escapes). */
static int time_value(cur *c, const char **s, size_t *n)
{
	if (c->p >= c->end || *c->p != '"')
		return 0;
	const char *q = memchr(c->p + 1, '"', (size_t)(c->end - c->p - 1));
	if (!q)
		return 0;
	*s = c->p + 1;
	*n = (size_t)(q - *s);
	c->p = q + 1;
	return 1;
}

static int time_ms(const char *s, size_t n, int64_t *ms)
{
	char t[64];
	if (n >= sizeof t)
		return 0;
	memcpy(t, s, n);
	t[n] = '\0';
	return sd_time_parse(t, ms) == 0;
}

/* Past an object that sd_doc_peek checked: brackets outside strings. */
static int skip_object(cur *c)
{
	int level = 0;
	while (c->p < c->end) {
		char ch = *c->p++;
		if (ch == '"') {
			while (c->p < c->end && *c->p != '"')
				c->p += *c->p == '\\' ? 2 : 1;
			c->p++;
		} else if (ch == '{' || ch == '[') {
			level++;
		} else if ((ch == '}' || ch == ']') && --level == 0) {
			return 1;
		}
	}
	return 0;
}

int sd_doc_split(const char *buf, size_t len, const char *key, sd_doc_parts *p)
{
	memset(p, 0, sizeof *p);
	if (!sd_doc_peek(buf, len, key, &p->version))
		return 0;
	char head[96];
	int hn = snprintf(head, sizeof head, "{\n  \"key\": \"%s\",\n  \"version\": %lld,\n  \"created\": ", key,
			  (long long)p->version);
	cur c = {buf, buf + len};
	int64_t created_ms;
	if (hn <= 0 || !lit(&c, head, (size_t)hn) || !time_value(&c, &p->created, &p->created_len) ||
	    !LIT(&c, ",\n  \"updated\": ") || !time_value(&c, &p->updated, &p->updated_len) || !LIT(&c, ",\n  "))
		return 0;
	if (LIT(&c, "\"expires\": ")) {
		/* sd_doc_validate's rule, which the scan does not check. */
		if (!time_value(&c, &p->expires, &p->expires_len) || !LIT(&c, ",\n  ") ||
		    !time_ms(p->expires, p->expires_len, &p->expires_ms) ||
		    !time_ms(p->created, p->created_len, &created_ms) || p->expires_ms <= created_ms)
			return 0;
	}
	if (!LIT(&c, "\"meta\": "))
		return 0;
	p->meta = c.p;
	if (!skip_object(&c))
		return 0;
	p->meta_len = (size_t)(c.p - p->meta);
	/* data is the last member: the rest up to the closing line. */
	if (!LIT(&c, ",\n  \"data\": ") || c.end - c.p < 4 || memcmp(c.end - 3, "\n}\n", 3) != 0)
		return 0;
	p->data = c.p;
	p->data_len = (size_t)(c.end - 3 - c.p);
	memcpy(p->key, key, SD_KEY_LEN);
	p->key[SD_KEY_LEN] = '\0';
	return 1;
}

/* The new document's fields; data as given (a new reference is taken). */
static json_t *build(const sd_doc_parts *old, json_t *meta, json_t *data, const sd_save_body *b, const char *now,
		     int64_t now_ms)
{
	json_t *d = json_object();
	if (!d || json_object_set_new(d, "key", json_string(old->key)) ||
	    json_object_set_new(d, "version", json_integer(old->version + 1)) ||
	    json_object_set_new(d, "created", json_stringn(old->created, old->created_len)) ||
	    json_object_set_new(d, "updated", json_string(now)) ||
	    (old->expires && json_object_set_new(d, "expires", json_stringn(old->expires, old->expires_len))) ||
	    json_object_set(d, "meta", meta) || json_object_set(d, "data", data) ||
	    sd_doc_set_expiry(d, &b->ttl, now_ms) != SD_OK) {
		json_decref(d);
		return NULL;
	}
	return d;
}

/* bytes (ending in "null\n}\n", the placeholder for data) with the n
 * bytes at data (canonical at depth 1) in place of null. Frees bytes. */
static char *put_data(char *bytes, size_t *len, const char *data, size_t n)
{
	static const char tail[] = "null\n}\n";
	size_t keep = *len - (sizeof tail - 1);
	char *s = NULL;
	if (*len >= sizeof tail - 1 && memcmp(bytes + keep, tail, sizeof tail - 1) == 0)
		s = malloc(keep + n + 4);
	if (s) {
		memcpy(s, bytes, keep);
		memcpy(s + keep, data, n);
		memcpy(s + keep + n, "\n}\n", 4);
		*len = keep + n + 3;
	}
	free(bytes);
	return s;
}

char *sd_doc_dump_canon_data(json_t *doc, const char *canon, size_t canon_len, size_t *len)
{
	char *bytes = json_object_set_new(doc, "data", json_null()) == 0 ? sd_doc_dump(doc, len) : NULL;
	if (bytes)
		bytes = put_data(bytes, len, canon, canon_len);
	json_object_del(doc, "data");
	return bytes;
}

sd_err sd_doc_splice_save(const sd_doc_parts *old, const sd_save_body *b, const char *now, int64_t now_ms,
			  json_t **doc, char **out, size_t *out_len)
{
	*doc = NULL;
	*out = NULL;
	if (old->version >= SD_DOC_MAX_VERSION)
		return SD_ERR_VERSION_LIMIT; /* no version left to give */
	json_t *meta = sd_doc_loadb(old->meta, old->meta_len, STORED_FLAGS, NULL);
	if (meta && b->meta) {
		json_t *m = sd_merge_patch(meta, b->meta);
		json_decref(meta);
		meta = m;
	}
	/* Data written as bytes: the body's, when the fast path gave it so,
	 * or else, when the body has none, the old data when it is canonical. */
	const char *bytes_of = b->data_canon;
	size_t bytes_len = b->data_canon_len;
	if (!bytes_of && !b->data && sd_doc_canonical(old->data, old->data_len, 1)) {
		bytes_of = old->data;
		bytes_len = old->data_len;
	}
	int keep_data = bytes_of != NULL;
	json_t *data = b->data ? json_incref(b->data)
		       : keep_data ? json_null()
				   : sd_doc_loadb(old->data, old->data_len, STORED_FLAGS, NULL);
	json_t *d = meta && data ? build(old, meta, data, b, now, now_ms) : NULL;
	json_decref(meta);
	json_decref(data);
	char *bytes = !d ? NULL
		    : keep_data ? sd_doc_dump_canon_data(d, bytes_of, bytes_len, out_len)
				: sd_doc_dump(d, out_len);
	if (!bytes) {
		json_decref(d);
		return SD_ERR_INTERNAL;
	}
	*doc = d;
	*out = bytes;
	return SD_OK;
}


sd_err sd_doc_splice_new(const char *key, const json_t *meta, const json_t *data, const char *canon,
			 size_t canon_len, const sd_ttl_req *ttl, const char *now, int64_t now_ms, json_t **doc,
			 char **out, size_t *out_len)
{
	json_t *d = sd_doc_new(key, meta, canon ? NULL : data, now);
	char *bytes = !d || sd_doc_set_expiry(d, ttl, now_ms) != SD_OK ? NULL
		      : canon ? sd_doc_dump_canon_data(d, canon, canon_len, out_len)
			      : sd_doc_dump(d, out_len);
	if (!bytes) {
		json_decref(d);
		*doc = NULL;
		*out = NULL;
		return SD_ERR_INTERNAL;
	}
	*doc = d;
	*out = bytes;
	return SD_OK;
}
