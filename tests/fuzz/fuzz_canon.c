/* fuzz_canon.c: the canonical writer of the save fast path (sd_doc_canon,
 * docscan.c). The input's first byte picks the depth (0 to 3), the rest is
 * the JSON text.
 *
 * Invariants checked:
 * - when the fast path answers yes, its bytes are exactly jansson's dump
 *   (JSON_INDENT(2)) of json_loadb's tree at that depth;
 * - when jansson refuses the text, the fast path never answers yes;
 * - with the limit set to its own output's length it answers the same,
 *   one byte less and it answers 0 (the output never passes the limit);
 * - sd_doc_canon_members on the text as a body agrees: it takes only an
 *   object jansson takes, and its "data" bytes are sd_doc_canon's;
 * - the text as a save body and as an instantiate body (the depth byte's
 *   next bits pick the key or "from" in the URL: none, the body's, another)
 *   gets the same answer and message from the fast parses
 *   (sd_doc_parse_save_canon_at, sd_doc_parse_inst_canon_at) as from the
 *   full ones, the same fields, and, for an instantiate, the same new file
 *   from sd_doc_splice_new. */
#include "fuzz.h"
#include "sd_doccanon.h"
#include "sd_docsplice.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* jansson's bytes for v at depth: v wrapped in depth arrays, dumped, the
 * wrapping cut off. */
static char *dump_at(json_t *v, int depth, size_t *len)
{
	json_t *w = json_incref(v);
	for (int i = 0; i < depth; i++) {
		json_t *a = json_array();
		json_array_append_new(a, w);
		w = a;
	}
	char *s = json_dumps(w, JSON_INDENT(2) | JSON_ENCODE_ANY);
	json_decref(w);
	FUZZ_CHECK(s, "jansson could not dump a value it parsed");
	size_t pre = 0, post = 0, all = strlen(s);
	for (int i = 0; i < depth; i++) {
		pre += 2 + 2 * (size_t)(i + 1);
		post += 2 + 2 * (size_t)i;
	}
	FUZZ_CHECK(all >= pre + post, "short dump");
	*len = all - pre - post;
	memmove(s, s + pre, *len);
	s[*len] = '\0';
	return s;
}

static void same_ttl(const sd_ttl_req *a, const sd_ttl_req *b)
{
	FUZZ_CHECK(a->present == b->present && a->clear == b->clear && a->seconds == b->seconds, "expires_in differs");
}

/* data as the full parse has it (a tree) and as the fast one may (bytes). */
static void same_data(const json_t *tree, const json_t *fast, const char *canon, size_t canon_len)
{
	if (!canon) {
		FUZZ_CHECK((!tree && !fast) || (tree && fast && json_equal(tree, fast)), "data differs");
		return;
	}
	FUZZ_CHECK(tree && !fast, "data found by one parse only");
	size_t jl;
	char *j = dump_at((json_t *)tree, 1, &jl);
	FUZZ_CHECK(jl == canon_len && memcmp(j, canon, jl) == 0, "the data bytes differ from the tree's");
	free(j);
}

static void same_save(const char *t, size_t n, const char *url)
{
	sd_save_body a, b;
	char ma[SD_MSG_MAX] = "", mb[SD_MSG_MAX] = "";
	sd_err ea = sd_doc_parse_save_at(t, n, url, &a, ma);
	sd_err eb = sd_doc_parse_save_canon_at(t, n, url, &b, mb);
	FUZZ_CHECK(ea == eb && strcmp(ma, mb) == 0, "save (url %s): full %d %s, fast %d %s: %.80s", url ? url : "-",
		   ea, ma, eb, mb, t);
	if (ea == SD_OK) {
		FUZZ_CHECK(strcmp(a.key, b.key) == 0 && a.has_version == b.has_version && a.version == b.version,
			   "save: key or version differs");
		FUZZ_CHECK(a.token_len == b.token_len && !a.token == !b.token &&
				   (!a.token || memcmp(a.token, b.token, a.token_len) == 0),
			   "save: token differs");
		FUZZ_CHECK((!a.meta && !b.meta) || (a.meta && b.meta && json_equal(a.meta, b.meta)), "save: meta differs");
		same_ttl(&a.ttl, &b.ttl);
		same_data(a.data, b.data, b.data_canon, b.data_canon_len);
	}
	sd_save_body_free(&a);
	sd_save_body_free(&b);
}

static void same_inst(const char *t, size_t n, const char *from)
{
	sd_inst_body a, b;
	char ma[SD_MSG_MAX] = "", mb[SD_MSG_MAX] = "";
	sd_err ea = sd_doc_parse_inst_at(t, n, from, &a, ma);
	sd_err eb = sd_doc_parse_inst_canon_at(t, n, from, &b, mb);
	FUZZ_CHECK(ea == eb && strcmp(ma, mb) == 0, "instantiate (from %s): full %d %s, fast %d %s: %.80s",
		   from ? from : "-", ea, ma, eb, mb, t);
	if (ea == SD_OK) {
		FUZZ_CHECK(a.has_from == b.has_from && strcmp(a.from, b.from) == 0, "instantiate: from differs");
		FUZZ_CHECK(a.token_len == b.token_len && !a.token == !b.token &&
				   (!a.token || memcmp(a.token, b.token, a.token_len) == 0),
			   "instantiate: token differs");
		FUZZ_CHECK((!a.meta && !b.meta) || (a.meta && b.meta && json_equal(a.meta, b.meta)),
			   "instantiate: meta differs");
		same_ttl(&a.ttl, &b.ttl);
		same_data(a.data, b.data, b.data_canon, b.data_canon_len);
		/* The new session's file, as sd_api_instantiate writes it. */
		static const char now[] = "2026-02-03T04:05:06.789Z";
		const int64_t now_ms = 1770091506789;
		json_t *da, *db;
		char *oa, *ob;
		size_t la, lb;
		sd_err fa = sd_doc_splice_new("CANON001", a.meta, a.data, NULL, 0, &a.ttl, now, now_ms, &da, &oa, &la);
		sd_err fb = sd_doc_splice_new("CANON001", b.meta, b.data, b.data_canon, b.data_canon_len, &b.ttl, now,
					      now_ms, &db, &ob, &lb);
		FUZZ_CHECK(fa == fb, "instantiate: the new file made by one only");
		if (fa == SD_OK) {
			FUZZ_CHECK(la == lb && memcmp(oa, ob, la) == 0, "instantiate: the files differ:\n%s\n---\n%.*s",
				   oa, (int)lb, ob);
			free(oa), free(ob);
			json_decref(da), json_decref(db);
		}
	}
	sd_inst_body_free(&a);
	sd_inst_body_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int depth = data[0] % 4;
	size_t n = size - 1;
	char *t = fuzz_copy(data + 1, n);
	json_t *v = json_loadb(t, n, FLAGS, NULL);
	char *c;
	size_t cl;
	int yes = sd_doc_canon(t, n, depth, SIZE_MAX, &c, &cl);
	FUZZ_CHECK(v || !yes, "jansson refuses what the fast path took: %.80s", t);
	if (yes) {
		size_t jl;
		char *j = dump_at(v, depth, &jl);
		FUZZ_CHECK(jl == cl && memcmp(j, c, jl) == 0, "the bytes differ at depth %d:\n%s\n--- fast path\n%s",
			   depth, j, c);
		free(j);
		char *c2;
		size_t cl2;
		FUZZ_CHECK(sd_doc_canon(t, n, depth, cl, &c2, &cl2) == 1 && cl2 == cl, "the exact limit refused");
		sd_doc_canon_free(c2);
		if (cl > 0) {
			FUZZ_CHECK(sd_doc_canon(t, n, depth, cl - 1, &c2, &cl2) == 0 && !c2, "the limit passed");
		}
	}
	sd_doc_member m[8];
	int k;
	char *d;
	size_t dl;
	if (sd_doc_canon_members(t, n, "data", depth, SIZE_MAX, m, 8, &k, &d, &dl)) {
		FUZZ_CHECK(json_is_object(v) && json_object_size(v) == (size_t)k, "members of what jansson does not take");
		json_t *dv = json_object_get(v, "data");
		FUZZ_CHECK(!dv == !d, "data found by one only");
		if (dv) {
			size_t jl;
			char *j = dump_at(dv, depth, &jl);
			FUZZ_CHECK(jl == dl && memcmp(j, d, jl) == 0, "the data bytes differ");
			free(j);
		}
		for (int i = 0; i < k; i++) {
			json_t *mv = NULL;
			char name[64];
			if (m[i].name_len < sizeof name) {
				memcpy(name, m[i].name, m[i].name_len);
				name[m[i].name_len] = '\0';
				mv = json_object_get(v, name);
				FUZZ_CHECK(mv, "member %s not in jansson's object", name);
			}
			if (mv && m[i].kind == 'i')
				FUZZ_CHECK(json_is_integer(mv) && json_integer_value(mv) == m[i].num, "integer %s", name);
			if (mv && m[i].kind == 's')
				FUZZ_CHECK(json_is_string(mv) && json_string_length(mv) == m[i].value_len &&
						   memcmp(json_string_value(mv), m[i].value, m[i].value_len) == 0,
					   "string %s", name);
			if (mv && m[i].kind == 'n')
				FUZZ_CHECK(json_is_null(mv), "null %s", name);
			if (mv && m[i].kind == '{')
				FUZZ_CHECK(json_is_object(mv), "object %s", name);
		}
		sd_doc_canon_free(d);
	}
	static const char *const urls[] = {NULL, "CANON001", "OTHER001"};
	same_save(t, n, urls[data[0] / 4 % 3]);
	same_inst(t, n, urls[data[0] / 4 % 3]);
	sd_doc_canon_free(c);
	json_decref(v);
	free(t);
	return 0;
}
