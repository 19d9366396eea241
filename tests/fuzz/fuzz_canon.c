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
 *   object jansson takes, and its "data" bytes are sd_doc_canon's. */
#include "fuzz.h"
#include "sd_doccanon.h"

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
	sd_doc_canon_free(c);
	json_decref(v);
	free(t);
	return 0;
}
