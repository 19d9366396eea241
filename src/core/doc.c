/* doc.c: the session document and the request bodies that change it.
 * Validation, RFC 7386 merge patch, the save rules and the canonical
 * serialisation. No I/O. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_doc.h"
#include "sd_doccanon.h"
#include "sd_mem.h"
#include "sd_time.h"

/* Line and column (1-based, in bytes) of offset off in buf. */
static void position(const char *buf, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* What jansson 2.14 allocates to parse a body, as sd_mem counts it
 * (malloc_usable_size + 8 a block: the request and glibc's 8-byte header
 * rounded up to 16, and 16 more when glibc hands out a whole free chunk
 * rather than split off a remainder under 32), per kind of thing in the
 * text. Each is an upper bound, derived from jansson's structures; the
 * test "parse memory stays under the bound" in tests/unit/test_mem.c
 * parses the worst shape of each kind and checks it. */
#define BLOCK(n) ((((n) + 8 + 15) / 16) * 16 + 16)
enum {
	/* An object: its struct (72) and its first 8 hash buckets (16 each);
	 * a larger bucket array replaces them. */
	COST_OBJECT = BLOCK(72) + BLOCK(128),
	/* A member (one ':'): buckets double when there are as many members
	 * as buckets (< 2 a member), and while rehashing the old half is held
	 * too, in one object at a time (16 a member of the largest object).
	 * The pair holding its key is counted with the string. */
	COST_MEMBER = 2 * 16,
	COST_MEMBER_REHASH = 16,
	/* A string, besides the bytes of its token (quotes included): as a
	 * value, a struct (32) and a copy of the token (+1); as a key, a pair
	 * (56) with the key inline (+1), its token's copy held until then. */
	COST_STRING = BLOCK(32) + BLOCK(1),
	/* A number or a literal: a struct (24; literals take nothing). */
	COST_SCALAR = BLOCK(24),
	/* An array: its struct (40) and its first table of 8 slots (8 each);
	 * a larger table replaces it. */
	COST_ARRAY = BLOCK(40) + BLOCK(64),
	/* A value in an array: tables double when full (< 2 slots a value),
	 * and the old one is held while growing, in one array at a time (8 a
	 * value of the largest array). */
	COST_ELEMENT = 2 * 8,
	COST_ELEMENT_GROW = 8,
	/* The lexer's buffer holds the longest token and its NUL: it doubles
	 * from 16 (< 2 bytes a byte), old and new held together while
	 * growing; or it is held beside one copy of the token (a key's). */
	COST_TOKEN_BYTE = 3,
	COST_LEXER = 3 * BLOCK(16),
};

/* One pass over a body before it is parsed. */
struct scan {
	size_t nul;   /* offset of the first NUL byte, or the length */
	int deep;     /* nests deeper than SD_DOC_MAX_DEPTH */
	size_t bound; /* an upper bound of the memory jansson takes to parse it */
};

static int blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* What ends a number or literal token (a NUL too, which is refused), and
 * what the scan of a string stops at: tables, as most bytes are in one. */
static const unsigned char ends_token[256] = {
	[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
	[','] = 1, [':'] = 1, ['"'] = 1, ['\0'] = 1,
};
static const unsigned char ends_run[256] = {['"'] = 1, ['\\'] = 1, ['\0'] = 1};

/* The open containers, by depth (1 is the root). */
struct open {
	unsigned char in_array[SD_DOC_MAX_DEPTH + 1];
	size_t n[SD_DOC_MAX_DEPTH + 1];   /* its values (array) or members (object) so far */
	size_t max_elements, max_members; /* in the largest array and object */
};

static void close_container(struct open *o, int depth)
{
	size_t *m = o->in_array[depth] ? &o->max_elements : &o->max_members;
	if (o->n[depth] > *m)
		*m = o->n[depth];
}

/* A raw NUL byte is never valid JSON, but the parser ends some tokens at
 * one ({"data":123<NUL>} would read as 123): it is refused before parsing.
 * So is a value deeper than SD_DOC_MAX_DEPTH anywhere in buf (the root is
 * at depth 1), counted over the bytes, so that one rule holds whatever the
 * parser's own limit: brackets outside strings, and anything but white
 * space inside a container that is already at the limit. The same pass
 * counts what the parser will allocate. Counts only grow: on text that is
 * not JSON, jansson stops at the first error, and its tokens and ours
 * agree up to there (its tokens never cross a delimiter or a string's
 * end), so the bound still covers what it allocated. */
static void scan(const char *buf, size_t len, struct scan *s)
{
	size_t objects = 0, arrays = 0, members = 0, strings = 0, bytes = 0, scalars = 0, elements = 0,
	       longest = 0;
	struct open o;
	int depth = 0;
	size_t i = 0;
	o.max_elements = o.max_members = 0;
	s->deep = 0;
	while (i < len) {
		unsigned char c = (unsigned char)buf[i];
		if (blank(c)) {
			i++;
			continue;
		}
		if (c == '\0')
			break;
		if (depth == SD_DOC_MAX_DEPTH && c != '}' && c != ']') {
			s->deep = 1;
			break;
		}
		if (c == '}' || c == ']') {
			if (depth >= 1)
				close_container(&o, depth);
			depth--;
			i++;
			continue;
		}
		if (c == ',' || c == ':') {
			if (c == ':') {
				members++;
				if (depth >= 1 && !o.in_array[depth])
					o.n[depth]++;
			}
			i++;
			continue;
		}
		/* A value starts here. */
		if (depth >= 1 && o.in_array[depth]) {
			elements++;
			o.n[depth]++;
		}
		size_t j = i + 1;
		if (c == '{' || c == '[') {
			if (++depth > SD_DOC_MAX_DEPTH) {
				s->deep = 1;
				break;
			}
			if (depth >= 1) {
				o.in_array[depth] = c == '[';
				o.n[depth] = 0;
			}
			objects += c == '{';
			arrays += c == '[';
			i = j;
			continue;
		}
		if (c == '"') {
			for (;;) { /* j grows on every turn */
				while (j < len && !ends_run[(unsigned char)buf[j]])
					j++;
				if (j >= len || buf[j] != '\\' || ++j >= len || buf[j] == '\0')
					break; /* the end, the closing quote, a NUL, or an escaped NUL */
				j++;
			}
			if (j < len && buf[j] == '\0') {
				i = j;
				break;
			}
			j = j < len ? j + 1 : len; /* the closing quote, if any */
			strings++;
			bytes += j - i;
		} else {
			while (j < len && !ends_token[(unsigned char)buf[j]])
				j++;
			scalars++;
		}
		if (j - i > longest)
			longest = j - i;
		i = j;
	}
	/* Containers left open (the text ends, or stops being counted). */
	for (int d = depth < SD_DOC_MAX_DEPTH ? depth : SD_DOC_MAX_DEPTH; d >= 1; d--)
		close_container(&o, d);
	/* Stopped early (too deep): only a NUL later on can still matter. */
	const char *z = i < len ? memchr(buf + i, '\0', len - i) : NULL;
	s->nul = z ? (size_t)(z - buf) : len;
	size_t b = objects * COST_OBJECT + members * COST_MEMBER + o.max_members * COST_MEMBER_REHASH +
		   strings * COST_STRING + bytes + scalars * COST_SCALAR + arrays * COST_ARRAY +
		   elements * COST_ELEMENT + o.max_elements * COST_ELEMENT_GROW + (longest + 1) * COST_TOKEN_BYTE +
		   COST_LEXER;
	/* Blocks of 128 KiB or more are mapped: rounded up to a page, and a
	 * header of 16 (together < 1/16). */
	s->bound = b + b / 16;
}

size_t sd_doc_parse_bound(const char *buf, size_t len)
{
	struct scan s;
	scan(buf, buf ? len : 0, &s);
	return s.bound;
}

json_t *sd_doc_loadb(const char *buf, size_t len, size_t flags, json_error_t *je)
{
	struct scan s;
	scan(buf, len, &s);
	/* Past the depth limit the scan stops early: no bound. */
	if (sd_mem_reserve(s.deep ? SIZE_MAX : s.bound) != 0)
		return NULL;
	json_t *v = json_loadb(buf, len, flags, je);
	sd_mem_release();
	return v;
}

sd_err sd_doc_parse_object(const char *buf, size_t len, json_t **out, char msg[SD_MSG_MAX])
{
	json_error_t je;
	struct scan s;
	*out = NULL;
	if (!buf)
		len = 0;
	scan(buf, len, &s);
	if (s.nul < len) {
		int line, col;
		position(buf, s.nul, &line, &col);
		sd_msgf(msg, "Invalid JSON at line %d, column %d (byte %zu): a NUL byte.", line, col, s.nul);
		return SD_ERR_BAD_JSON;
	}
	if (s.deep) {
		sd_msgf(msg, "The body nests deeper than %d levels.", SD_DOC_MAX_DEPTH);
		return SD_ERR_BAD_REQUEST;
	}
	/* Nothing may be refused while jansson parses (see sd_mem.h). */
	if (sd_mem_reserve(s.bound) != 0) {
		sd_msgf(msg, "%s", sd_mem_message());
		return sd_mem_error(SD_ERR_INTERNAL);
	}
	json_t *v = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	sd_mem_release();
	if (!v) {
		sd_msgf(msg, "Invalid JSON at line %d, column %d: %s.", je.line,
			 je.column, je.text);
		return SD_ERR_BAD_JSON;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		sd_msgf(msg, "The body must be a JSON object.");
		return SD_ERR_BAD_REQUEST;
	}
	*out = v;
	return SD_OK;
}

/* A key field of a body: a string that normalises, else bad_key. */
static sd_err body_key(json_t *root, const char *field, char out[SD_KEY_LEN + 1], char msg[SD_MSG_MAX])
{
	json_t *k = json_object_get(root, field);
	if (!k) {
		sd_msgf(msg, "The body has no \"%s\" field.", field);
		return SD_ERR_BAD_KEY;
	}
	if (!json_is_string(k) ||
	    sd_key_normalize(json_string_value(k), json_string_length(k), out) != SD_OK) {
		sd_msgf(msg, "\"%s\" must be exactly 8 letters or digits.", field);
		return SD_ERR_BAD_KEY;
	}
	return SD_OK;
}

/* The key of a request: from the URL (url, already normalised, may be
 * NULL) and/or the body's field; both present and different is bad_key. */
static sd_err url_or_body_key(json_t *root, const char *field, const char *url, char out[SD_KEY_LEN + 1],
			      char msg[SD_MSG_MAX])
{
	if (!url || !json_object_get(root, field))
		return url ? (memcpy(out, url, SD_KEY_LEN + 1), SD_OK) : body_key(root, field, out, msg);
	sd_err e = body_key(root, field, out, msg);
	if (e == SD_OK && strcmp(out, url) != 0) {
		if (msg)
			snprintf(msg, SD_MSG_MAX, "The URL names %s but the body's \"%s\" is %s; send one key.", url,
				 field, out);
		e = SD_ERR_BAD_KEY;
	}
	return e;
}

/* The optional "token" member: a string, borrowed from root. */
static sd_err token_field(json_t *root, const char **tok, size_t *len, char msg[SD_MSG_MAX])
{
	json_t *t = json_object_get(root, "token");
	if (!t)
		return SD_OK;
	if (!json_is_string(t)) {
		sd_msgf(msg, "\"token\" must be a string.");
		return SD_ERR_BAD_REQUEST;
	}
	*tok = json_string_value(t);
	*len = json_string_length(t);
	return SD_OK;
}

/* Refuse any field of root not listed in allowed (NULL-terminated). */
static sd_err only_fields(json_t *root, const char *const *allowed, char msg[SD_MSG_MAX])
{
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = 1;
		if (!ok) {
			/* Quote at most 40 bytes of the name, cut at a UTF-8
			 * character boundary so the message stays valid JSON text. */
			size_t n = strlen(k);
			if (n > 40) {
				n = 40;
				while (n > 0 && ((unsigned char)k[n] & 0xC0) == 0x80)
					n--;
			}
			char name[64];
			snprintf(name, sizeof name, "%.*s%s", (int)n, k, n < strlen(k) ? "..." : "");
			sd_msgf(msg, "Unknown field \"%s\" in the body.", name);
			return SD_ERR_BAD_REQUEST;
		}
	}
	return SD_OK;
}

static sd_err meta_field(json_t *root, json_t **out, char msg[SD_MSG_MAX])
{
	json_t *m = json_object_get(root, "meta");
	if (m && !json_is_object(m)) {
		sd_msgf(msg, "\"meta\" must be a JSON object.");
		return SD_ERR_BAD_REQUEST;
	}
	*out = m;
	return SD_OK;
}

/* An optional "version": a positive integer. */
static sd_err version_field(json_t *root, int *has, int64_t *out, char msg[SD_MSG_MAX])
{
	json_t *v = json_object_get(root, "version");
	if (!v)
		return SD_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		sd_msgf(msg, "\"version\" must be a positive integer.");
		return SD_ERR_BAD_REQUEST;
	}
	*has = 1;
	*out = json_integer_value(v);
	return SD_OK;
}

/* An optional "expires_in": whole seconds, or null. Bounds are checked
 * later by sd_doc_check_ttl, which knows the configured limits. */
static sd_err ttl_field(json_t *root, sd_ttl_req *t, char msg[SD_MSG_MAX])
{
	json_t *v = json_object_get(root, "expires_in");
	memset(t, 0, sizeof *t);
	if (!v)
		return SD_OK;
	t->present = 1;
	if (json_is_null(v)) {
		t->clear = 1;
		return SD_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		sd_msgf(msg, "\"expires_in\" must be a positive whole number of seconds, or null.");
		return SD_ERR_BAD_REQUEST;
	}
	t->seconds = json_integer_value(v);
	return SD_OK;
}

/* What a request body may hold: its fields, and the message for an empty
 * one (NULL where the caller handles an empty body itself). */
typedef struct body_form {
	const char *const *allowed;
	const char *empty;
} body_form;

/* The first steps of every body's parser: refuse an empty body, parse an
 * object into *root, refuse fields the form does not allow and, with key
 * set, take the key from the URL and/or the body's "key". On error *root
 * may hold the parsed object; the caller's free releases it. */
static sd_err parse_body(const char *buf, size_t len, const body_form *form, const char *url_key,
			 char key[SD_KEY_LEN + 1], json_t **root, char msg[SD_MSG_MAX])
{
	if (len == 0 && form->empty) {
		sd_msgf(msg, "%s", form->empty);
		return SD_ERR_BAD_REQUEST;
	}
	sd_err e = sd_doc_parse_object(buf, len, root, msg);
	if (e == SD_OK)
		e = only_fields(*root, form->allowed, msg);
	if (e == SD_OK && key)
		e = url_or_body_key(*root, "key", url_key, key, msg);
	return e;
}

/* Release a parsed body's root, once. */
static void root_free(json_t **root)
{
	json_decref(*root);
	*root = NULL;
}

/* The fields of a save body. */
enum { SAVE_KEY, SAVE_VERSION, SAVE_DATA, SAVE_META, SAVE_EXPIRES_IN, SAVE_TOKEN, SAVE__N };
static const char *const save_fields[SAVE__N + 1] = {"key", "version", "data", "meta", "expires_in", "token", NULL};

sd_err sd_doc_parse_save_at(const char *buf, size_t len, const char *url_key, sd_save_body *b,
			    char msg[SD_MSG_MAX])
{
	static const body_form form = {
		.allowed = save_fields,
		.empty = "The save body is empty; send {\"key\": ..., \"data\": ...}.",
	};
	memset(b, 0, sizeof *b);
	sd_err e = parse_body(buf, len, &form, url_key, b->key, &b->root, msg);
	if (e == SD_OK)
		e = meta_field(b->root, &b->meta, msg);
	if (e == SD_OK)
		e = token_field(b->root, &b->token, &b->token_len, msg);
	if (e == SD_OK)
		e = version_field(b->root, &b->has_version, &b->version, msg);
	if (e == SD_OK)
		e = ttl_field(b->root, &b->ttl, msg);
	if (e == SD_OK)
		b->data = json_object_get(b->root, "data");
	if (e != SD_OK)
		sd_save_body_free(b);
	return e;
}

/* The members the save and instantiate fast paths share, each into its
 * place; 0 when the fast path is not sure of it (then the full path gives
 * the verdict). meta is parsed under the caller's reservation: nothing is
 * refused half-way. */
static int meta_member(const sd_doc_member *m, json_t **root, json_t **meta)
{
	*root = m->kind == '{' ? json_loadb(m->value, m->value_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL)
			       : NULL;
	*meta = *root;
	return json_is_object(*root);
}

static int ttl_member(const sd_doc_member *m, sd_ttl_req *t)
{
	t->present = 1;
	t->clear = m->kind == 'n';
	t->seconds = m->num;
	return m->kind == 'n' || (m->kind == 'i' && m->num >= 1);
}

/* Which of fields (NULL-terminated) m names; the count of fields when none. */
static int field_of(const sd_doc_member *m, const char *const *fields)
{
	int f = 0;
	while (fields[f] && !(strlen(fields[f]) == m->name_len && memcmp(fields[f], m->name, m->name_len) == 0))
		f++;
	return f;
}

/* One member of a save body as the fast path found it (m, sd_doccanon.h)
 * into b; 0 when the fast path is not sure of it. */
static int save_member(const sd_doc_member *m, sd_save_body *b, char *body_key)
{
	switch (field_of(m, save_fields)) {
	case SAVE_KEY:
		return m->kind == 's' && sd_key_normalize(m->value, m->value_len, body_key) == SD_OK;
	case SAVE_VERSION:
		b->has_version = 1;
		b->version = m->num;
		return m->kind == 'i' && m->num >= 1;
	case SAVE_DATA:
		return m->kind == 'c';
	case SAVE_META:
		return meta_member(m, &b->root, &b->meta);
	case SAVE_EXPIRES_IN:
		return ttl_member(m, &b->ttl);
	case SAVE_TOKEN:
		b->token = m->value;
		b->token_len = m->value_len;
		return m->kind == 's';
	default: return 0; /* unknown: refused with its name by the full path */
	}
}

/* The first steps of a fast path: buf scanned, the full parse's memory
 * bound reserved (its refusal is left to the full parse, to give the same
 * answer: the canonical data may not take more memory than the bound of
 * the tree it stands for), and its members found, with data's canonical
 * bytes. 1 with the reservation held (the caller reads the members, then
 * sd_mem_release()); 0 with nothing held. */
static int fast_members(const char *buf, size_t len, sd_doc_member *m, int max, int *k, char **data,
			size_t *data_len)
{
	struct scan s;
	if (!buf || len == 0)
		return 0;
	scan(buf, len, &s);
	if (s.nul < len || s.deep || sd_mem_reserve(s.bound) != 0)
		return 0;
	if (sd_doc_canon_members(buf, len, "data", 1, s.bound, m, max, k, data, data_len))
		return 1;
	sd_mem_release();
	return 0;
}

/* The save fast path: 1 with b filled in when the body is one it is sure
 * of; 0, with nothing held, when sd_doc_parse_save_at must decide. */
static int save_fast(const char *buf, size_t len, const char *url_key, sd_save_body *b)
{
	sd_doc_member m[SAVE__N];
	int k;
	char body_key[SD_KEY_LEN + 1] = "";
	int ok = fast_members(buf, len, m, SAVE__N, &k, &b->data_canon, &b->data_canon_len);
	if (!ok)
		return 0;
	for (int i = 0; ok && i < k; i++)
		ok = save_member(&m[i], b, body_key);
	sd_mem_release();
	if (ok && url_key)
		ok = !body_key[0] || strcmp(body_key, url_key) == 0;
	else if (ok)
		ok = body_key[0] != '\0';
	if (ok)
		memcpy(b->key, url_key ? url_key : body_key, SD_KEY_LEN + 1);
	else
		sd_save_body_free(b);
	return ok;
}

sd_err sd_doc_parse_save_canon_at(const char *buf, size_t len, const char *url_key, sd_save_body *b,
				  char msg[SD_MSG_MAX])
{
	memset(b, 0, sizeof *b);
	return save_fast(buf, len, url_key, b) ? SD_OK : sd_doc_parse_save_at(buf, len, url_key, b, msg);
}

void sd_save_body_free(sd_save_body *b)
{
	if (!b)
		return;
	root_free(&b->root);
	sd_doc_canon_free(b->data_canon);
	b->data_canon = NULL;
	b->data_canon_len = 0;
}

sd_err sd_doc_parse_inst_at(const char *buf, size_t len, const char *url_from, sd_inst_body *b,
			    char msg[SD_MSG_MAX])
{
	static const char *const allowed[] = {"data", "meta", "from", "expires_in", "token", NULL};
	/* No .empty: an empty instantiate body is not parsed at all. */
	static const body_form form = {
		.allowed = allowed,
	};
	memset(b, 0, sizeof *b);
	if (len == 0 && url_from) {
		b->has_from = 1;
		memcpy(b->from, url_from, SD_KEY_LEN + 1);
	}
	if (len == 0)
		return SD_OK;
	/* The key ("from") comes last: it is refused beside data or meta. */
	sd_err e = parse_body(buf, len, &form, NULL, NULL, &b->root, msg);
	if (e == SD_OK)
		e = meta_field(b->root, &b->meta, msg);
	if (e == SD_OK)
		e = ttl_field(b->root, &b->ttl, msg);
	if (e == SD_OK)
		e = token_field(b->root, &b->token, &b->token_len, msg);
	if (e == SD_OK && b->token && !url_from && !json_object_get(b->root, "from")) {
		sd_msgf(msg, "\"token\" is the token of the \"from\" session; send it with \"from\".");
		e = SD_ERR_BAD_REQUEST;
	}
	if (e == SD_OK) {
		b->data = json_object_get(b->root, "data");
		if (url_from || json_object_get(b->root, "from")) {
			if (b->data || b->meta) {
				sd_msgf(msg, "\"from\" copies data and meta; do not send them too.");
				e = SD_ERR_BAD_REQUEST;
			} else {
				e = url_or_body_key(b->root, "from", url_from, b->from, msg);
				b->has_from = e == SD_OK;
			}
		}
	}
	if (e != SD_OK)
		sd_inst_body_free(b);
	return e;
}

void sd_inst_body_free(sd_inst_body *b)
{
	if (!b)
		return;
	root_free(&b->root);
	sd_doc_canon_free(b->data_canon);
	b->data_canon = NULL;
	b->data_canon_len = 0;
}

/* The fields an instantiate's fast path takes; "from" and "token" (a copy)
 * are left to the full path. */
enum { INST_DATA, INST_META, INST_EXPIRES_IN, INST__N };
static const char *const inst_fast_fields[INST__N + 1] = {"data", "meta", "expires_in", NULL};

/* The instantiate fast path, as save_fast: 1 with b filled in, or 0 with
 * nothing held when sd_doc_parse_inst_at must decide. */
static int inst_fast(const char *buf, size_t len, const char *url_from, sd_inst_body *b)
{
	sd_doc_member m[INST__N];
	int k;
	if (url_from || !fast_members(buf, len, m, INST__N, &k, &b->data_canon, &b->data_canon_len))
		return 0;
	int ok = 1;
	for (int i = 0; ok && i < k; i++) {
		switch (field_of(&m[i], inst_fast_fields)) {
		case INST_DATA: ok = m[i].kind == 'c'; break;
		case INST_META: ok = meta_member(&m[i], &b->root, &b->meta); break;
		case INST_EXPIRES_IN: ok = ttl_member(&m[i], &b->ttl); break;
		default: ok = 0; /* from, token, or unknown: the full path */
		}
	}
	sd_mem_release();
	if (!ok)
		sd_inst_body_free(b);
	return ok;
}

sd_err sd_doc_parse_inst_canon_at(const char *buf, size_t len, const char *url_from, sd_inst_body *b,
				  char msg[SD_MSG_MAX])
{
	memset(b, 0, sizeof *b);
	return inst_fast(buf, len, url_from, b) ? SD_OK : sd_doc_parse_inst_at(buf, len, url_from, b, msg);
}

sd_err sd_doc_parse_delete_at(const char *buf, size_t len, const char *url_key, sd_delete_body *b,
			      char msg[SD_MSG_MAX])
{
	static const char *const allowed[] = {"key", "version", "token", NULL};
	static const body_form form = {
		.allowed = allowed,
		.empty = "The delete body is empty; send {\"key\": ...}.",
	};
	memset(b, 0, sizeof *b);
	sd_err e = parse_body(buf, len, &form, url_key, b->key, &b->root, msg);
	if (e == SD_OK)
		e = version_field(b->root, &b->has_version, &b->version, msg);
	if (e == SD_OK)
		e = token_field(b->root, &b->token, &b->token_len, msg);
	if (e != SD_OK)
		sd_delete_body_free(b);
	return e;
}

void sd_delete_body_free(sd_delete_body *b)
{
	if (b)
		root_free(&b->root);
}

sd_err sd_doc_check_ttl(sd_ttl_req *t, const sd_ttl_limits *lim, int creating, char msg[SD_MSG_MAX])
{
	if (!t->present && creating && lim->default_s > 0) {
		t->present = 1;
		t->seconds = lim->default_s;
		return SD_OK;
	}
	if (!t->present || t->clear)
		return SD_OK;
	if (t->seconds < lim->min_s || t->seconds > lim->max_s) {
		sd_msgf(msg, "\"expires_in\" must be from %lld to %lld seconds.",
			 (long long)lim->min_s, (long long)lim->max_s);
		return SD_ERR_BAD_REQUEST;
	}
	return SD_OK;
}

sd_err sd_doc_set_expiry(json_t *doc, const sd_ttl_req *t, int64_t now_ms)
{
	if (!t->present)
		return SD_OK;
	if (t->clear) {
		json_object_del(doc, "expires");
		return SD_OK;
	}
	char when[SD_TIME_LEN];
	sd_time_format(now_ms + t->seconds * 1000, when);
	return json_object_set_new(doc, "expires", json_string(when)) ? SD_ERR_INTERNAL : SD_OK;
}

int64_t sd_doc_expires(const json_t *doc)
{
	int64_t ms;
	json_t *x = json_object_get(doc, "expires");
	if (!json_is_string(x) || sd_time_parse(json_string_value(x), &ms) != 0)
		return 0;
	return ms;
}

int sd_doc_expired(const json_t *doc, int64_t now_ms)
{
	int64_t x = sd_doc_expires(doc);
	return x != 0 && x <= now_ms;
}

/* Build the canonical object: fields in their fixed order, "expires" only
 * when not NULL. Steals nothing; takes new references to meta and data. */
static json_t *doc_build(const char *key, json_int_t version, const char *created,
			 const char *updated, const char *expires, json_t *meta, json_t *data)
{
	json_t *d = json_object();
	if (!d)
		return NULL;
	if (json_object_set_new(d, "key", json_string(key)) ||
	    json_object_set_new(d, "version", json_integer(version)) ||
	    json_object_set_new(d, "created", json_string(created)) ||
	    json_object_set_new(d, "updated", json_string(updated)) ||
	    (expires && json_object_set_new(d, "expires", json_string(expires))) ||
	    json_object_set(d, "meta", meta) || json_object_set(d, "data", data)) {
		json_decref(d);
		return NULL;
	}
	return d;
}

json_t *sd_doc_new(const char *key, const json_t *meta, const json_t *data, const char *now)
{
	/* Shared, not copied: a copy of a 3 KB body's tree was 13% of an
	 * instantiate's time, and nothing changes them while the doc lives. */
	json_t *m = meta ? json_incref((json_t *)meta) : json_object();
	json_t *d = data ? json_incref((json_t *)data) : json_object();
	json_t *doc = (m && d) ? doc_build(key, SD_DOC_FIRST_VERSION, now, now, NULL, m, d) : NULL;
	json_decref(m);
	json_decref(d);
	return doc;
}

/* A string with no escaped NUL inside: the C-string checks below would
 * stop at one, and the canonical dump would then drop the rest. */
static int is_c_string(const json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int is_time(const json_t *v)
{
	int64_t ms;
	return is_c_string(v) && sd_time_parse(json_string_value(v), &ms) == 0;
}

sd_err sd_doc_validate(const json_t *doc, const char *expect_key, char msg[SD_MSG_MAX])
{
	static const char *const allowed[] = {"key", "version", "created", "updated", "expires", "meta", "data", NULL};
	if (!json_is_object(doc)) {
		sd_msgf(msg, "the document is not a JSON object");
		return SD_ERR_CORRUPT;
	}
	json_t *k = json_object_get(doc, "key");
	if (!is_c_string(k) || !sd_key_is_canonical(json_string_value(k))) {
		sd_msgf(msg, "\"key\" is missing or not a canonical key");
		return SD_ERR_CORRUPT;
	}
	if (expect_key && strcmp(json_string_value(k), expect_key) != 0) {
		sd_msgf(msg, "\"key\" inside the file is not the file's key %s", expect_key);
		return SD_ERR_CORRUPT;
	}
	json_t *v = json_object_get(doc, "version");
	if (!json_is_integer(v) || json_integer_value(v) < SD_DOC_FIRST_VERSION || json_integer_value(v) > SD_DOC_MAX_VERSION) {
		sd_msgf(msg, "\"version\" is missing or not an integer from 1 to 2^53-1");
		return SD_ERR_CORRUPT;
	}
	if (!is_time(json_object_get(doc, "created")) || !is_time(json_object_get(doc, "updated"))) {
		sd_msgf(msg, "\"created\" or \"updated\" is missing or not an RFC 3339 time");
		return SD_ERR_CORRUPT;
	}
	json_t *x = json_object_get(doc, "expires");
	int64_t xms, cms;
	if (x && (!json_is_string(x) || sd_time_parse(json_string_value(x), &xms) != 0 ||
		  sd_time_parse(json_string_value(json_object_get(doc, "created")), &cms) != 0 || xms <= cms)) {
		sd_msgf(msg, "\"expires\" is not an RFC 3339 time after \"created\"");
		return SD_ERR_CORRUPT;
	}
	if (!json_is_object(json_object_get(doc, "meta"))) {
		sd_msgf(msg, "\"meta\" is missing or not an object");
		return SD_ERR_CORRUPT;
	}
	if (!json_object_get(doc, "data")) {
		sd_msgf(msg, "\"data\" is missing");
		return SD_ERR_CORRUPT;
	}
	if (only_fields((json_t *)doc, allowed, NULL) != SD_OK) {
		sd_msgf(msg, "the document has an unknown field");
		return SD_ERR_CORRUPT;
	}
	return SD_OK;
}

sd_err sd_doc_parse_stored(const char *buf, size_t len, const char *expect_key, json_t **out,
			   char msg[SD_MSG_MAX])
{
	json_error_t je;
	*out = NULL;
	if (memchr(buf, '\0', len)) {
		sd_msgf(msg, "a NUL byte in the file");
		return SD_ERR_CORRUPT;
	}
	json_t *v = sd_doc_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v) {
		if (sd_mem_exceeded()) {
			sd_msgf(msg, "%s", sd_mem_message());
			return sd_mem_error(SD_ERR_INTERNAL);
		}
		sd_msgf(msg, "not valid JSON (line %d, column %d: %s)", je.line,
			 je.column, je.text);
		return SD_ERR_CORRUPT;
	}
	sd_err e = sd_doc_validate(v, expect_key, msg);
	if (e != SD_OK) {
		json_decref(v);
		return e;
	}
	*out = v;
	return SD_OK;
}

int sd_doc_peek_expires(const char *buf, size_t len, int64_t *expires_ms)
{
	/* After the version line: "created" and "updated", each a fixed-width
	 * timestamp as sd_time_format writes it, then "expires" or "meta". */
	static const char created[] = ",\n  \"created\": \"", updated[] = "\",\n  \"updated\": \"",
			  expires[] = "\",\n  \"expires\": \"", meta[] = "\",\n  \"meta\": ";
	const size_t T = SD_TIME_LEN - 1;
	const char *p = memmem(buf, len < 96 ? len : 96, created, sizeof created - 1);
	const char *end = buf + len;
	if (!p)
		return -1;
	p += sizeof created - 1 + T;
	if ((size_t)(end - p) < sizeof updated - 1 + T || memcmp(p, updated, sizeof updated - 1) != 0)
		return -1;
	p += sizeof updated - 1 + T;
	if ((size_t)(end - p) >= sizeof meta - 1 && memcmp(p, meta, sizeof meta - 1) == 0)
		return 0;
	if ((size_t)(end - p) < sizeof expires - 1 + T + 1 || memcmp(p, expires, sizeof expires - 1) != 0)
		return -1;
	p += sizeof expires - 1;
	char when[SD_TIME_LEN];
	memcpy(when, p, T);
	when[T] = '\0';
	if (p[T] != '"' || sd_time_parse(when, expires_ms) != 0)
		return -1;
	return 1;
}

int64_t sd_doc_version(const json_t *doc)
{
	return (int64_t)json_integer_value(json_object_get(doc, "version"));
}

json_t *sd_merge_patch(const json_t *target, const json_t *patch)
{
	if (!json_is_object(patch))
		return json_deep_copy(patch);
	json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
	if (!out)
		return NULL;
	const char *k;
	json_t *pv;
	json_object_foreach((json_t *)patch, k, pv)
	{
		if (json_is_null(pv)) {
			json_object_del(out, k);
			continue;
		}
		json_t *nv = sd_merge_patch(json_object_get(out, k), pv);
		if (!nv || json_object_set_new(out, k, nv)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

sd_err sd_doc_apply_save(json_t *doc, const sd_save_body *b, const char *now)
{
	if (sd_doc_version(doc) >= SD_DOC_MAX_VERSION)
		return SD_ERR_VERSION_LIMIT; /* no version left to give */
	json_t *nmeta = b->meta ? sd_merge_patch(json_object_get(doc, "meta"), b->meta) : NULL;
	if (b->meta && !nmeta)
		return SD_ERR_INTERNAL;
	/* Data the fast path gave as bytes (valid JSON) becomes a tree here. */
	json_t *data = b->data_canon ? sd_doc_loadb(b->data_canon, b->data_canon_len,
						    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
				     : json_incref(b->data);
	if (b->data_canon && !data) {
		json_decref(nmeta);
		return SD_ERR_INTERNAL;
	}
	/* Replacing a member keeps its place, so the order stays canonical.
	 * (json_object_set_new takes the value, also when it fails.) */
	int bad = nmeta && json_object_set_new(doc, "meta", nmeta);
	bad |= data && json_object_set_new(doc, "data", data);
	if (bad ||
	    json_object_set_new(doc, "version", json_integer(sd_doc_version(doc) + 1)) ||
	    json_object_set_new(doc, "updated", json_string(now)))
		return SD_ERR_INTERNAL;
	return SD_OK;
}

/* The serialised bytes go to a plain malloc'd buffer (json_dumps would
 * hand out memory from jansson's allocator, which sd_mem counts). */
struct out {
	char *s;
	size_t n, cap;
};

static int out_put(const char *b, size_t n, void *ctx)
{
	struct out *o = ctx;
	if (o->n + n + 2 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (o->n + n + 2 > cap)
			cap *= 2;
		char *t = realloc(o->s, cap);
		if (!t)
			return -1;
		o->s = t;
		o->cap = cap;
	}
	memcpy(o->s + o->n, b, n);
	o->n += n;
	return 0;
}

static char *dump(const json_t *doc, size_t flags, int newline, size_t *len)
{
	struct out o = {0};
	if (json_dump_callback(doc, out_put, &o, flags) != 0 || !o.s) {
		free(o.s);
		return NULL;
	}
	if (newline)
		o.s[o.n++] = '\n';
	o.s[o.n] = '\0';
	if (len)
		*len = o.n;
	return o.s;
}

char *sd_doc_dump(const json_t *doc, size_t *len)
{
	/* Canonical order, whatever order doc was parsed in. */
	json_t *c = doc_build(json_string_value(json_object_get(doc, "key")),
			      json_integer_value(json_object_get(doc, "version")),
			      json_string_value(json_object_get(doc, "created")),
			      json_string_value(json_object_get(doc, "updated")),
			      json_string_value(json_object_get(doc, "expires")),
			      json_object_get(doc, "meta"), json_object_get(doc, "data"));
	if (!c)
		return NULL;
	char *s = dump(c, JSON_INDENT(2), 1, len);
	json_decref(c);
	return s;
}

char *sd_doc_dump_compact(const json_t *doc, size_t *len) { return dump(doc, JSON_COMPACT, 0, len); }

/* The body-only forms: the key (or from) must be in the body. */
sd_err sd_doc_parse_save(const char *buf, size_t len, sd_save_body *b, char msg[SD_MSG_MAX])
{
	return sd_doc_parse_save_at(buf, len, NULL, b, msg);
}

sd_err sd_doc_parse_inst(const char *buf, size_t len, sd_inst_body *b, char msg[SD_MSG_MAX])
{
	return sd_doc_parse_inst_at(buf, len, NULL, b, msg);
}

sd_err sd_doc_parse_delete(const char *buf, size_t len, sd_delete_body *b, char msg[SD_MSG_MAX])
{
	return sd_doc_parse_delete_at(buf, len, NULL, b, msg);
}
