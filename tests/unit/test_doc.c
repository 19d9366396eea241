/* test_doc.c: the session document (sd_doc).
 *
 * - sd_merge_patch: every example of RFC 7386 Appendix A, plus nested
 *   deletes and the rule that neither argument changes;
 * - request bodies: tables of save and instantiate bodies with the error
 *   each must give (and, for the good ones, what was parsed), the depth
 *   limit at its boundary, and absurdly deep input that must not crash;
 * - sd_doc_apply_save: version + 1, data replaced only when sent, meta
 *   merged, created kept, updated set;
 * - sd_doc_dump: the exact canonical bytes, whatever the input order;
 * - sd_doc_parse_stored / sd_doc_validate: what a stored file must be;
 * - expiry: "expires_in" parsing and bounds, keep/remove/extend on save,
 *   "expires" placed right after "updated" in the canonical bytes, its
 *   validation, the load fast path reading it, and the delete body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_doc.h"
#include "sd_time.h"

static json_t *J(const char *text)
{
	json_error_t je;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
	if (!v)
		fail_msg("test JSON does not parse: %s: %s", text, je.text);
	return v;
}

/* ---- RFC 7386 merge patch ---------------------------------------------- */

static const struct {
	const char *target, *patch, *result;
} merge_cases[] = {
	/* RFC 7386, Appendix A, in order. */
	{"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
	{"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
	{"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
	{"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
	{"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
	{"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
	{"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
	{"{\"a\":\"foo\"}", "null", "null"},
	{"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
	{"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
	{"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
	{"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
	/* Nested deletes. */
	{"{\"a\":{\"b\":{\"c\":1,\"d\":2}},\"x\":1}", "{\"a\":{\"b\":{\"c\":null}}}",
	 "{\"a\":{\"b\":{\"d\":2}},\"x\":1}"},
	{"{\"a\":{\"b\":{\"c\":1}},\"x\":1}", "{\"a\":{\"b\":null}}", "{\"a\":{},\"x\":1}"},
	{"{\"a\":{\"b\":{\"c\":{\"d\":1,\"e\":2}}}}", "{\"a\":{\"b\":{\"c\":{\"d\":null,\"f\":3}}}}",
	 "{\"a\":{\"b\":{\"c\":{\"e\":2,\"f\":3}}}}"},
	{"{\"a\":{\"b\":1},\"c\":{\"d\":2}}", "{\"a\":{\"b\":null},\"c\":null}", "{\"a\":{}}"},
	/* Deleting what is not there is a no-op, also deep down. */
	{"{\"a\":1}", "{\"zz\":null,\"b\":{\"c\":null}}", "{\"a\":1,\"b\":{}}"},
	/* Replacing a scalar by an object applies the object as a patch to {}. */
	{"{\"a\":1}", "{\"a\":{\"b\":null,\"c\":2}}", "{\"a\":{\"c\":2}}"},
	/* Arrays are values: a null inside one is kept, not a delete. */
	{"{\"a\":1}", "{\"b\":[null,{\"c\":null}]}", "{\"a\":1,\"b\":[null,{\"c\":null}]}"},
	/* The empty patch changes nothing. */
	{"{\"a\":{\"b\":[1,2]}}", "{}", "{\"a\":{\"b\":[1,2]}}"},
};

static void test_merge_patch_gives_the_tabled_results(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof merge_cases / sizeof merge_cases[0]; i++) {
		json_t *t = J(merge_cases[i].target), *p = J(merge_cases[i].patch);
		json_t *want = J(merge_cases[i].result);
		json_t *t0 = json_deep_copy(t), *p0 = json_deep_copy(p);
		json_t *got = sd_merge_patch(t, p);
		if (!got || !json_equal(got, want)) {
			char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
			fail_msg("case %zu: %s + %s gave %s, want %s", i, merge_cases[i].target,
				 merge_cases[i].patch, g ? g : "(null)", merge_cases[i].result);
		}
		/* Neither argument changes, and the result shares nothing mutable. */
		assert_true(json_equal(t, t0));
		assert_true(json_equal(p, p0));
		assert_true(got != t);
		json_decref(got);
		json_decref(t0);
		json_decref(p0);
		json_decref(t);
		json_decref(p);
		json_decref(want);
	}
}

static void test_merge_patch_onto_nothing_drops_nulls(void **state)
{
	(void)state;
	json_t *p = J("{\"a\":{\"b\":null,\"c\":1},\"d\":null}");
	json_t *got = sd_merge_patch(NULL, p);
	json_t *want = J("{\"a\":{\"c\":1}}");
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	json_decref(p);
}

/* The result must be a copy: changing it later must not reach the target. */
static void test_merge_patch_result_shares_nothing_with_its_target(void **state)
{
	(void)state;
	json_t *t = J("{\"a\":{\"b\":1},\"l\":[1]}"), *p = J("{\"c\":2}");
	json_t *got = sd_merge_patch(t, p);
	json_object_set_new(json_object_get(got, "a"), "b", json_integer(99));
	json_array_append_new(json_object_get(got, "l"), json_integer(2));
	json_t *t0 = J("{\"a\":{\"b\":1},\"l\":[1]}");
	assert_true(json_equal(t, t0));
	json_decref(t0);
	json_decref(got);
	json_decref(t);
	json_decref(p);
}

/* ---- save bodies -------------------------------------------------------- */

typedef struct body_case {
	const char *body;  /* NUL-terminated, except where len says otherwise */
	size_t len;        /* 0: strlen(body) */
	sd_err want;
	const char *msg_has[2]; /* substrings the message must contain */
} body_case;

#define K "\"key\":\"ABCDEFGH\""

static const body_case save_cases[] = {
	/* Empty body. */
	{"", 0, SD_ERR_BAD_REQUEST, {"empty", NULL}},
	/* Malformed JSON: the message names line and column. */
	{"{", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\"key\":", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\"key\":\"ABCDEFGH\",}", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\n  \"key\": \"ABCDEFGH\"\n  \"data\": 1\n}", 0, SD_ERR_BAD_JSON, {"line 3", "column"}},
	{"not json", 0, SD_ERR_BAD_JSON, {"line 1", "column"}},
	{"{'key':'ABCDEFGH'}", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{" K "} trailing", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{" K ",\"key\":\"ABCDEFGH\"}", 0, SD_ERR_BAD_JSON, {"line", "column"}}, /* duplicate */
	{"   ", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	/* Valid JSON but not an object. */
	{"[]", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"[" "{" K "}" "]", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"\"ABCDEFGH\"", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"42", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"null", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"true", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	/* meta must be an object. */
	{"{" K ",\"meta\":[]}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	{"{" K ",\"meta\":\"x\"}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	{"{" K ",\"meta\":1}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	{"{" K ",\"meta\":null}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	/* version must be a positive integer. */
	{"{" K ",\"version\":1.5}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":\"3\"}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":true}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":0}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":-1}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":null}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":1.0}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{" K ",\"version\":[1]}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	/* Unknown fields. */
	{"{" K ",\"dta\":{}}", 0, SD_ERR_BAD_REQUEST, {"dta", NULL}},
	{"{" K ",\"created\":\"2020-01-01T00:00:00Z\"}", 0, SD_ERR_BAD_REQUEST, {"created", NULL}},
	{"{\"Key\":\"ABCDEFGH\"}", 0, SD_ERR_BAD_REQUEST, {"Key", NULL}},
	/* Missing or bad key. */
	{"{}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"data\":{}}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"ABCDEFG\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"ABCDEFGHI\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"../ABCDE\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"%2e%2e/AB\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"ABCDEFG\\u00e9\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"ABCDEF\\u00e9\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}}, /* 8 bytes */
	{"{\"key\":\"ABCDEF\xc3\xa9\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":\"\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":12345678}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	{"{\"key\":null}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	/* A raw NUL byte in the body is not JSON; an escaped one is a bad key. */
	{"{\"key\":\"ABCDEFGH\"}\0", 19, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\"key\":\"ABC\0EFGH\"}", 18, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\"key\":\"ABC\\u0000EFG\"}", 0, SD_ERR_BAD_KEY, {"key", NULL}},
	/* Good ones. */
	{"{" K "}", 0, SD_OK, {NULL, NULL}},
	{"{\"key\":\"abcdefgh\",\"version\":3,\"data\":[1],\"meta\":{\"a\":null}}", 0, SD_OK, {NULL, NULL}},
	{"{" K ",\"data\":null}", 0, SD_OK, {NULL, NULL}},
	{"{" K ",\"version\":9007199254740993}", 0, SD_OK, {NULL, NULL}},
};

static void check_msg(size_t i, const char *msg, const char *const has[2])
{
	for (int j = 0; j < 2; j++)
		if (has[j] && !strstr(msg, has[j]))
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, msg, has[j]);
}

static void test_save_bodies_are_accepted_or_refused_as_tabled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof save_cases / sizeof save_cases[0]; i++) {
		const body_case *c = &save_cases[i];
		size_t len = c->len ? c->len : strlen(c->body);
		sd_save_body b;
		char msg[SD_MSG_MAX] = "";
		sd_err e = sd_doc_parse_save(c->body, len, &b, msg);
		if (e != c->want)
			fail_msg("case %zu (%s): got %s, want %s (%s)", i, c->body, sd_err_code(e),
				 sd_err_code(c->want), msg);
		if (e != SD_OK) {
			assert_null(b.root); /* released on error */
			assert_true(strlen(msg) > 0);
			check_msg(i, msg, c->msg_has);
		} else {
			assert_non_null(b.root);
			assert_true(sd_key_is_canonical(b.key));
		}
		sd_save_body_free(&b);
		sd_save_body_free(&b); /* idempotent */
	}
}

static void test_save_body_fields_are_read_and_the_key_normalised(void **state)
{
	(void)state;
	const char *s = "{\"meta\":{\"a\":null,\"b\":1},\"data\":{\"x\":[1,2]},\"version\":3,\"key\":\"abCD1234\"}";
	sd_save_body b;
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_doc_parse_save(s, strlen(s), &b, msg), SD_OK);
	assert_string_equal(b.key, "ABCD1234");
	assert_true(b.has_version);
	assert_int_equal(b.version, 3);
	json_t *d = J("{\"x\":[1,2]}"), *m = J("{\"a\":null,\"b\":1}");
	assert_true(json_equal(b.data, d));
	assert_true(json_equal(b.meta, m));
	json_decref(d);
	json_decref(m);
	sd_save_body_free(&b);
	assert_null(b.root);

	/* Absent fields stay absent: no version, no data, no meta. */
	s = "{\"key\":\"ABCD1234\"}";
	assert_int_equal(sd_doc_parse_save(s, strlen(s), &b, msg), SD_OK);
	assert_false(b.has_version);
	assert_null(b.data);
	assert_null(b.meta);
	sd_save_body_free(&b);

	/* data: null is present (it replaces data with null). */
	s = "{\"key\":\"ABCD1234\",\"data\":null}";
	assert_int_equal(sd_doc_parse_save(s, strlen(s), &b, msg), SD_OK);
	assert_non_null(b.data);
	assert_true(json_is_null(b.data));
	sd_save_body_free(&b);

	/* msg may be NULL. */
	assert_int_equal(sd_doc_parse_save("{", 1, &b, NULL), SD_ERR_BAD_JSON);
	assert_int_equal(sd_doc_parse_save("", 0, &b, NULL), SD_ERR_BAD_REQUEST);
}

/* {"key":"ABCDEFGH","data": then n nested arrays: the deepest value sits
 * at depth 1 + n (the root object is depth 1). */
static char *nested_save(int n, char open, char close)
{
	const char *head = "{" K ",\"data\":";
	size_t hl = strlen(head);
	char *s = malloc(hl + 2 * (size_t)n + 2);
	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, open, (size_t)n);
	memset(s + hl + n, close, (size_t)n);
	s[hl + 2 * (size_t)n] = '}';
	s[hl + 2 * (size_t)n + 1] = '\0';
	return s;
}

static void test_nesting_to_the_limit_passes_and_one_deeper_is_bad_request(void **state)
{
	(void)state;
	sd_save_body b;
	char msg[SD_MSG_MAX];
	/* Exactly SD_DOC_MAX_DEPTH levels: accepted. */
	char *s = nested_save(SD_DOC_MAX_DEPTH - 1, '[', ']');
	assert_int_equal(sd_doc_parse_save(s, strlen(s), &b, msg), SD_OK);
	sd_save_body_free(&b);
	free(s);
	/* One more: refused as bad_request (valid JSON, too deep). */
	s = nested_save(SD_DOC_MAX_DEPTH, '[', ']');
	msg[0] = '\0';
	assert_int_equal(sd_doc_parse_save(s, strlen(s), &b, msg), SD_ERR_BAD_REQUEST);
	assert_non_null(strstr(msg, "deeper"));
	assert_null(b.root);
	free(s);

	/* The same with objects, through sd_doc_parse_object. */
	char buf[2048] = "";
	size_t n = 0;
	for (int i = 0; i < SD_DOC_MAX_DEPTH; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"a\":");
	n += (size_t)snprintf(buf + n, sizeof buf - n, "1");
	for (int i = 0; i < SD_DOC_MAX_DEPTH; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	/* SD_DOC_MAX_DEPTH objects: the 1 sits at depth MAX + 1. */
	json_t *v;
	assert_int_equal(sd_doc_parse_object(buf, n, &v, msg), SD_ERR_BAD_REQUEST);
	assert_null(v);
	/* Replace the innermost {"a":1} by 1: exactly MAX levels. */
	char *inner = strstr(buf, "{\"a\":1}");
	assert_non_null(inner);
	memmove(inner, "1", 1);
	memmove(inner + 1, inner + 7, strlen(inner + 7) + 1);
	assert_int_equal(sd_doc_parse_object(buf, strlen(buf), &v, msg), SD_OK);
	json_decref(v);
}

static void test_nesting_100000_deep_is_refused_by_both_parsers(void **state)
{
	(void)state;
	const int n = 100000;
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	memset(s, '[', (size_t)n);
	s[n] = '\0';
	sd_save_body b;
	char msg[SD_MSG_MAX] = "";
	sd_err e = sd_doc_parse_save(s, (size_t)n, &b, msg);
	assert_true(e == SD_ERR_BAD_JSON || e == SD_ERR_BAD_REQUEST);
	assert_null(b.root);
	free(s);

	/* Balanced and very deep, inside a valid body. */
	s = nested_save(n, '[', ']');
	e = sd_doc_parse_save(s, strlen(s), &b, msg);
	assert_true(e == SD_ERR_BAD_JSON || e == SD_ERR_BAD_REQUEST);
	assert_null(b.root);
	free(s);

	/* Deep objects, and the instantiate parser too. */
	size_t cap = (size_t)n * 6 + 16, len = 0;
	s = malloc(cap);
	assert_non_null(s);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "{\"a\":");
	sd_inst_body ib;
	e = sd_doc_parse_inst(s, len, &ib, msg);
	assert_true(e == SD_ERR_BAD_JSON || e == SD_ERR_BAD_REQUEST);
	assert_null(ib.root);
	free(s);
}

/* Parser corners. A raw NUL byte anywhere is bad_json with its position
 * (before: {"data":123<NUL>} was taken as 123). Nesting past 64 is
 * bad_request however deep (before: from 2049 levels on, the parser's own
 * limit answered bad_json). Repeated names are refused. */
static void test_nul_bytes_deep_nesting_and_repeated_names_are_refused(void **state)
{
	(void)state;
	static const char nul_after_number[] = "{\"key\":\"ABCDEFGH\",\"data\":123\0}";
	static const char nul_in_string[] = "{\"key\":\"ABCDEFGH\",\n\"data\":\"a\0b\"}";
	static const char nul_after_literal[] = "{\"key\":\"ABCDEFGH\",\"data\":true\0}";
	sd_save_body b;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_save(nul_after_number, sizeof nul_after_number - 1, &b, msg), SD_ERR_BAD_JSON);
	assert_non_null(strstr(msg, "byte 28"));
	assert_non_null(strstr(msg, "line 1, column 29"));
	assert_null(b.root);
	assert_int_equal(sd_doc_parse_save(nul_in_string, sizeof nul_in_string - 1, &b, msg), SD_ERR_BAD_JSON);
	assert_non_null(strstr(msg, "line 2, column 10"));
	assert_int_equal(sd_doc_parse_save(nul_after_literal, sizeof nul_after_literal - 1, &b, msg), SD_ERR_BAD_JSON);
	sd_inst_body ib;
	assert_int_equal(sd_doc_parse_inst("{}\0", 3, &ib, msg), SD_ERR_BAD_JSON);

	static const int depths[] = {65, 2048, 2049, 5000};
	for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
		char *s = nested_save(depths[i], '[', ']');
		msg[0] = '\0';
		sd_err e = sd_doc_parse_save(s, strlen(s), &b, msg);
		if (e != SD_ERR_BAD_REQUEST)
			fail_msg("%d levels: %d (%s)", depths[i] + 1, e, msg);
		assert_non_null(strstr(msg, "deeper"));
		free(s);
	}
	/* Brackets inside strings do not count. */
	char deep_text[300] = "{\"key\":\"ABCDEFGH\",\"data\":\"";
	memset(deep_text + strlen(deep_text), '[', 200);
	strcat(deep_text, "\"}");
	assert_int_equal(sd_doc_parse_save(deep_text, strlen(deep_text), &b, msg), SD_OK);
	sd_save_body_free(&b);

	static const char dup[] = "{\"key\":\"ABCDEFGH\",\"data\":{\"a\":1,\"a\":2}}";
	assert_int_equal(sd_doc_parse_save(dup, strlen(dup), &b, msg), SD_ERR_BAD_JSON);
	assert_non_null(strstr(msg, "duplicate"));
}

/* ---- instantiate bodies ------------------------------------------------- */

static const body_case inst_cases[] = {
	{"", 0, SD_OK, {NULL, NULL}},
	{"{}", 0, SD_OK, {NULL, NULL}},
	{"{\"data\":{\"a\":1}}", 0, SD_OK, {NULL, NULL}},
	{"{\"data\":[1,2,3]}", 0, SD_OK, {NULL, NULL}},
	{"{\"meta\":{\"u\":\"x\"}}", 0, SD_OK, {NULL, NULL}},
	{"{\"data\":1,\"meta\":{}}", 0, SD_OK, {NULL, NULL}},
	{"{\"from\":\"abcdefgh\"}", 0, SD_OK, {NULL, NULL}},
	{"{", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"{\"data\":}", 0, SD_ERR_BAD_JSON, {"line", "column"}},
	{"[]", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"\"x\"", 0, SD_ERR_BAD_REQUEST, {"object", NULL}},
	{"{\"meta\":[]}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	{"{\"meta\":null}", 0, SD_ERR_BAD_REQUEST, {"meta", NULL}},
	{"{\"key\":\"ABCDEFGH\"}", 0, SD_ERR_BAD_REQUEST, {"key", NULL}},
	{"{\"version\":1}", 0, SD_ERR_BAD_REQUEST, {"version", NULL}},
	{"{\"from\":\"ABCDEFGH\",\"data\":{}}", 0, SD_ERR_BAD_REQUEST, {"from", NULL}},
	{"{\"from\":\"ABCDEFGH\",\"meta\":{}}", 0, SD_ERR_BAD_REQUEST, {"from", NULL}},
	{"{\"from\":\"ABCDEFGH\",\"data\":null}", 0, SD_ERR_BAD_REQUEST, {"from", NULL}},
	{"{\"from\":\"ABCDEFG\"}", 0, SD_ERR_BAD_KEY, {"from", NULL}},
	{"{\"from\":\"../ABCDE\"}", 0, SD_ERR_BAD_KEY, {"from", NULL}},
	{"{\"from\":1}", 0, SD_ERR_BAD_KEY, {"from", NULL}},
	{"{\"from\":null}", 0, SD_ERR_BAD_KEY, {"from", NULL}},
};

static void test_instantiate_bodies_are_accepted_or_refused_as_tabled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof inst_cases / sizeof inst_cases[0]; i++) {
		const body_case *c = &inst_cases[i];
		size_t len = c->len ? c->len : strlen(c->body);
		sd_inst_body b;
		char msg[SD_MSG_MAX] = "";
		sd_err e = sd_doc_parse_inst(c->body, len, &b, msg);
		if (e != c->want)
			fail_msg("case %zu (%s): got %s, want %s (%s)", i, c->body, sd_err_code(e),
				 sd_err_code(c->want), msg);
		if (e != SD_OK) {
			assert_null(b.root);
			assert_false(b.has_from);
			check_msg(i, msg, c->msg_has);
		}
		sd_inst_body_free(&b);
	}
}

static void test_instantiate_body_fields_are_read_an_empty_body_included(void **state)
{
	(void)state;
	sd_inst_body b;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_inst(NULL, 0, &b, msg), SD_OK);
	assert_null(b.root);
	assert_null(b.data);
	assert_null(b.meta);
	assert_false(b.has_from);
	sd_inst_body_free(&b);

	const char *s = "{\"from\":\"abcd1234\"}";
	assert_int_equal(sd_doc_parse_inst(s, strlen(s), &b, msg), SD_OK);
	assert_true(b.has_from);
	assert_string_equal(b.from, "ABCD1234");
	assert_null(b.data);
	sd_inst_body_free(&b);

	s = "{\"data\":{\"x\":1},\"meta\":{\"m\":2}}";
	assert_int_equal(sd_doc_parse_inst(s, strlen(s), &b, msg), SD_OK);
	assert_false(b.has_from);
	assert_int_equal(json_integer_value(json_object_get(b.data, "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(b.meta, "m")), 2);
	sd_inst_body_free(&b);
	assert_null(b.root);
}

/* ---- sd_doc_new / sd_doc_apply_save ----------------------------------- */

#define T0 "2026-01-01T00:00:00.000Z"
#define T1 "2026-01-02T03:04:05.678Z"

static void test_new_document_is_valid_at_version_1(void **state)
{
	(void)state;
	json_t *meta = J("{\"m\":1}"), *data = J("[1,2]");
	json_t *d = sd_doc_new("ABCDEFGH", meta, data, T0);
	assert_non_null(d);
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_validate(d, "ABCDEFGH", msg), SD_OK);
	assert_int_equal(sd_doc_version(d), 1);
	assert_string_equal(json_string_value(json_object_get(d, "created")), T0);
	assert_string_equal(json_string_value(json_object_get(d, "updated")), T0);
	assert_true(json_equal(json_object_get(d, "meta"), meta));
	assert_true(json_equal(json_object_get(d, "data"), data));
	/* Shared, not copied (the body's tree is not copied per instantiate). */
	assert_ptr_equal(json_object_get(d, "meta"), meta);
	assert_ptr_equal(json_object_get(d, "data"), data);
	json_decref(d);

	d = sd_doc_new("ABCDEFGH", NULL, NULL, T0);
	json_t *empty = json_object();
	assert_true(json_equal(json_object_get(d, "meta"), empty));
	assert_true(json_equal(json_object_get(d, "data"), empty));
	json_decref(empty);
	json_decref(d);
	json_decref(meta);
	json_decref(data);
}

static json_t *stored_doc(void)
{
	return J("{\"key\":\"ABCDEFGH\",\"version\":4,\"created\":\"" T0 "\",\"updated\":\"" T0 "\","
		 "\"meta\":{\"keep\":1,\"drop\":2,\"deep\":{\"a\":1,\"b\":2}},\"data\":{\"old\":true}}");
}

static void apply(json_t *doc, const char *body)
{
	sd_save_body b;
	char msg[SD_MSG_MAX] = "";
	if (sd_doc_parse_save(body, strlen(body), &b, msg) != SD_OK)
		fail_msg("body %s: %s", body, msg);
	assert_int_equal(sd_doc_apply_save(doc, &b, T1), SD_OK);
	sd_save_body_free(&b); /* doc must not depend on the body afterwards */
}

static void test_save_replaces_data_merges_meta_and_bumps_the_version(void **state)
{
	(void)state;
	char msg[SD_MSG_MAX];
	/* data and meta both sent. */
	json_t *doc = stored_doc();
	apply(doc, "{\"key\":\"ABCDEFGH\",\"version\":4,\"data\":{\"new\":[1]},"
		   "\"meta\":{\"drop\":null,\"add\":3,\"deep\":{\"a\":null,\"c\":3}}}");
	json_t *want = J("{\"key\":\"ABCDEFGH\",\"version\":5,\"created\":\"" T0 "\",\"updated\":\"" T1 "\","
			 "\"meta\":{\"keep\":1,\"deep\":{\"b\":2,\"c\":3},\"add\":3},\"data\":{\"new\":[1]}}");
	assert_true(json_equal(doc, want));
	assert_int_equal(sd_doc_validate(doc, "ABCDEFGH", msg), SD_OK);
	json_decref(want);

	/* Another save: version increments again, data kept when absent. */
	apply(doc, "{\"key\":\"ABCDEFGH\",\"meta\":{\"keep\":null}}");
	assert_int_equal(sd_doc_version(doc), 6);
	want = J("{\"new\":[1]}");
	assert_true(json_equal(json_object_get(doc, "data"), want));
	json_decref(want);
	want = J("{\"deep\":{\"b\":2,\"c\":3},\"add\":3}");
	assert_true(json_equal(json_object_get(doc, "meta"), want));
	json_decref(want);
	assert_string_equal(json_string_value(json_object_get(doc, "created")), T0);
	json_decref(doc);

	/* Neither data nor meta: only version and updated move. */
	doc = stored_doc();
	json_t *before = stored_doc();
	apply(doc, "{\"key\":\"ABCDEFGH\"}");
	assert_int_equal(sd_doc_version(doc), 5);
	assert_string_equal(json_string_value(json_object_get(doc, "updated")), T1);
	assert_string_equal(json_string_value(json_object_get(doc, "created")), T0);
	assert_true(json_equal(json_object_get(doc, "meta"), json_object_get(before, "meta")));
	assert_true(json_equal(json_object_get(doc, "data"), json_object_get(before, "data")));
	json_decref(doc);

	/* data replaced wholesale (not merged), including by a scalar or null. */
	doc = stored_doc();
	apply(doc, "{\"key\":\"ABCDEFGH\",\"data\":{\"other\":1}}");
	want = J("{\"other\":1}");
	assert_true(json_equal(json_object_get(doc, "data"), want));
	json_decref(want);
	assert_true(json_equal(json_object_get(doc, "meta"), json_object_get(before, "meta")));
	apply(doc, "{\"key\":\"ABCDEFGH\",\"data\":null}");
	assert_true(json_is_null(json_object_get(doc, "data")));
	assert_int_equal(sd_doc_version(doc), 6);
	assert_int_equal(sd_doc_validate(doc, NULL, msg), SD_OK);

	/* The field order stays canonical after a save. */
	const char *order[] = {"key", "version", "created", "updated", "meta", "data"};
	void *it = json_object_iter(doc);
	for (int i = 0; i < 6; i++, it = json_object_iter_next(doc, it)) {
		assert_non_null(it);
		assert_string_equal(json_object_iter_key(it), order[i]);
	}
	assert_null(it);
	json_decref(doc);
	json_decref(before);
}

/* ---- canonical dump ------------------------------------------------------- */

static const char canonical[] =
	"{\n"
	"  \"key\": \"ABCDEFGH\",\n"
	"  \"version\": 3,\n"
	"  \"created\": \"2026-01-01T00:00:00.000Z\",\n"
	"  \"updated\": \"2026-01-02T03:04:05.006Z\",\n"
	"  \"meta\": {\n"
	"    \"z\": null,\n"
	"    \"u\": \"x\"\n"
	"  },\n"
	"  \"data\": {\n"
	"    \"b\": [\n"
	"      1,\n"
	"      2.5,\n"
	"      {}\n"
	"    ],\n"
	"    \"a\": \"caf\xc3\xa9 \\\"q\\\"\",\n"
	"    \"e\": [],\n"
	"    \"t\": true\n"
	"  }\n"
	"}\n";

/* sd_doc_peek: the load fast path scans the whole file. It may answer 1
 * only for bytes sd_doc_parse_stored accepts; damaged files, wherever the
 * damage sits, answer 0 (and the full parse then calls them damaged).
 * Before the scan, the fast path looked at the head and the tail only, and
 * every "middle" case below was served (seen failing: 9 of these cases
 * answered 1 with the old sd_doc_peek). */
#define HEAD "{\n  \"key\": \"ABCDEFGH\",\n  \"version\": 3,\n  \"created\": \"2026-01-01T00:00:00.000Z\",\n" \
	     "  \"updated\": \"2026-01-02T03:04:05.006Z\",\n"
#define LIT(s) s, sizeof(s) - 1 /* for text holding NUL bytes */
static const struct {
	const char *name, *text;
	size_t len;   /* 0: strlen(text) */
	int valid;    /* sd_doc_parse_stored accepts it */
	int fast;     /* sd_doc_peek must answer 1 (valid files the scan decodes) */
} peek_cases[] = {
	{"canonical", canonical, 0, 1, 1},
	{"no final newline", HEAD "  \"meta\": {},\n  \"data\": 1\n}", 0, 1, 1},
	{"compact, hand-edited", "{\"key\":\"ABCDEFGH\",\"version\":3,\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":[1,-2,3.5e10,\"\\u00e9\\ud83d\\ude00\",null,false]}", 0, 1, 1},
	{"fields in another order", "{\"data\":{},\"meta\":{\"a\":{\"b\":[]}},\"updated\":\"2026-01-01T00:00:00Z\","
	 "\"created\":\"2026-01-01T00:00:00Z\",\"version\":7,\"key\":\"ABCDEFGH\"}", 0, 1, 1},
	{"escaped names (left to the parser)", HEAD "  \"meta\": {},\n  \"data\": {\"\\u0061\": 1}\n}\n", 0, 1, 0},
	{"huge integer (left to the parser)", HEAD "  \"meta\": {},\n  \"data\": 12345678901234567890123\n}\n", 0, 0, 0},
	{"extra [[ in the middle", HEAD "  \"meta\": {},\n  \"data\": [[ {\"a\": 1}\n}\n", 0, 0, 0},
	{"trailing comma in an array", HEAD "  \"meta\": {},\n  \"data\": [1, 2,]\n}\n", 0, 0, 0},
	{"trailing comma in an object", HEAD "  \"meta\": {\"a\": 1,},\n  \"data\": 1\n}\n", 0, 0, 0},
	{"trailing comma after the fields", HEAD "  \"meta\": {},\n  \"data\": 1,\n}\n", 0, 0, 0},
	{"NUL bytes in a string", LIT(HEAD "  \"meta\": {},\n  \"data\": \"a\0\0b\"\n}\n"), 0, 0},
	{"NUL byte after a number", LIT(HEAD "  \"meta\": {},\n  \"data\": 123\0\n}\n"), 0, 0},
	{"meta not an object", HEAD "  \"meta\": [],\n  \"data\": 1\n}\n", 0, 0, 0},
	{"meta a string", HEAD "  \"meta\": \"{}\",\n  \"data\": 1\n}\n", 0, 0, 0},
	{"data missing", HEAD "  \"meta\": {}\n}\n", 0, 0, 0},
	{"unknown field", HEAD "  \"meta\": {},\n  \"data\": 1,\n  \"extra\": 2\n}\n", 0, 0, 0},
	{"field twice", HEAD "  \"meta\": {},\n  \"meta\": {},\n  \"data\": 1\n}\n", 0, 0, 0},
	{"name twice inside data", HEAD "  \"meta\": {},\n  \"data\": {\"a\": 1, \"b\": 2, \"a\": 3}\n}\n", 0, 0, 0},
	{"other key", "{\"key\":\"ABCDEFGX\",\"version\":3,\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"version 0", "{\"key\":\"ABCDEFGH\",\"version\":0,\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"version a string", "{\"key\":\"ABCDEFGH\",\"version\":\"3\",\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"version a real", "{\"key\":\"ABCDEFGH\",\"version\":3.0,\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"version past 2^53-1", "{\"key\":\"ABCDEFGH\",\"version\":9007199254740992,\"created\":\"2026-01-01T00:00:00Z\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"created not a time", "{\"key\":\"ABCDEFGH\",\"version\":3,\"created\":\"yesterday\","
	 "\"updated\":\"2026-01-01T00:00:00Z\",\"meta\":{},\"data\":1}", 0, 0, 0},
	{"garbage after the end", HEAD "  \"meta\": {},\n  \"data\": 1\n}\n}\n", 0, 0, 0},
	{"two documents", HEAD "  \"meta\": {},\n  \"data\": 1\n}\n{}", 0, 0, 0},
	{"invalid UTF-8", HEAD "  \"meta\": {},\n  \"data\": \"\xc3\x28\"\n}\n", 0, 0, 0},
	{"overlong UTF-8", HEAD "  \"meta\": {},\n  \"data\": \"\xc0\xaf\"\n}\n", 0, 0, 0},
	{"lone surrogate escape", HEAD "  \"meta\": {},\n  \"data\": \"\\ud800x\"\n}\n", 0, 0, 0},
	{"raw newline in a string", HEAD "  \"meta\": {},\n  \"data\": \"a\nb\"\n}\n", 0, 0, 0},
	{"bad escape", HEAD "  \"meta\": {},\n  \"data\": \"\\x\"\n}\n", 0, 0, 0},
	{"leading zero", HEAD "  \"meta\": {},\n  \"data\": 012\n}\n", 0, 0, 0},
	{"bare word", HEAD "  \"meta\": {},\n  \"data\": tru\n}\n", 0, 0, 0},
	{"single quotes", HEAD "  \"meta\": {},\n  \"data\": 'a'\n}\n", 0, 0, 0},
	{"not an object", "[1]", 0, 0, 0},
	{"empty", "", 0, 0, 0},
};

static void test_fast_path_serves_only_files_the_parser_accepts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof peek_cases / sizeof peek_cases[0]; i++) {
		const char *t = peek_cases[i].text;
		size_t n = peek_cases[i].len ? peek_cases[i].len : strlen(t);
		int64_t v = -1;
		int fast = sd_doc_peek(t, n, "ABCDEFGH", &v);
		json_t *doc;
		char msg[SD_MSG_MAX] = "";
		sd_err e = sd_doc_parse_stored(t, n, "ABCDEFGH", &doc, msg);
		if (peek_cases[i].valid != (e == SD_OK))
			fail_msg("%s: parse_stored says %d (%s)", peek_cases[i].name, e, msg);
		if (fast && e != SD_OK)
			fail_msg("%s: the fast path serves a file the parser refuses", peek_cases[i].name);
		if (fast != peek_cases[i].fast)
			fail_msg("%s: sd_doc_peek answered %d", peek_cases[i].name, fast);
		if (fast)
			assert_int_equal(v, sd_doc_version(doc));
		json_decref(doc);
	}
	/* Every proper prefix of a canonical file is refused by the scan. */
	size_t n = strlen(canonical);
	int64_t v;
	for (size_t cut = 0; cut + 1 < n; cut++)
		if (sd_doc_peek(canonical, cut, "ABCDEFGH", &v))
			fail_msg("prefix of %zu bytes passes the scan", cut);
	/* What sd_doc_dump writes always passes. */
	json_t *d = sd_doc_new("K7Q2M9XZ", NULL, NULL, "2026-11-26T20:28:57.123Z");
	size_t len;
	char *s = sd_doc_dump(d, &len);
	assert_int_equal(sd_doc_peek(s, len, "K7Q2M9XZ", &v), 1);
	assert_int_equal(v, 1);
	free(s);
	json_decref(d);
}

/* An object with many names still passes the scan (hash hits are checked
 * exactly), and a repeated name among many is still found. */
static void test_fast_path_handles_many_names_and_finds_a_repeated_one(void **state)
{
	(void)state;
	size_t cap = 200000, n = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	n += (size_t)snprintf(s + n, cap - n, HEAD "  \"meta\": {},\n  \"data\": {");
	for (int i = 0; i < 5000; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\": %d", i ? ", " : "", i, i);
	size_t open_end = n;
	n += (size_t)snprintf(s + n, cap - n, "}\n}\n");
	int64_t v;
	json_t *doc;
	assert_int_equal(sd_doc_parse_stored(s, n, "ABCDEFGH", &doc, NULL), SD_OK);
	json_decref(doc);
	/* Many names may exceed the exact checks the scan allows: then it
	 * leaves the file to the parser, which is also right. Either way it
	 * never answers 1 for a repeated name. */
	int fast_ok = sd_doc_peek(s, n, "ABCDEFGH", &v);
	(void)fast_ok;
	n = open_end + (size_t)snprintf(s + open_end, cap - open_end, ", \"k4321\": 0}\n}\n");
	assert_int_equal(sd_doc_peek(s, n, "ABCDEFGH", &v), 0);
	assert_int_equal(sd_doc_parse_stored(s, n, "ABCDEFGH", &doc, NULL), SD_ERR_CORRUPT);
	/* A small object with a repeat found by its hash. */
	n = (size_t)snprintf(s, cap, HEAD "  \"meta\": {\"x\": {\"p\": 1, \"q\": 2, \"r\": 3, \"q\": 4}},\n  \"data\": 1\n}\n");
	assert_int_equal(sd_doc_peek(s, n, "ABCDEFGH", &v), 0);
	free(s);
}

static void test_dump_writes_the_canonical_order_and_form(void **state)
{
	(void)state;
	/* Fields in reverse order, one line. */
	const char *in = "{\"data\":{\"b\":[1,2.5,{}],\"a\":\"caf\xc3\xa9 \\\"q\\\"\",\"e\":[],\"t\":true},"
			 "\"meta\":{\"z\":null,\"u\":\"x\"},\"updated\":\"2026-01-02T03:04:05.006Z\","
			 "\"created\":\"2026-01-01T00:00:00.000Z\",\"version\":3,\"key\":\"ABCDEFGH\"}";
	json_t *d = J(in);
	size_t n = 0;
	char *s = sd_doc_dump(d, &n);
	assert_non_null(s);
	/* Non-ASCII stays UTF-8 (no JSON_ENSURE_ASCII). */
	assert_int_equal(n, strlen(s));
	assert_string_equal(s, canonical);
	assert_int_equal(s[n - 1], '\n');
	assert_int_not_equal(s[n - 2], '\n');

	/* Dumping the dump's parse gives the same bytes (a fixed point). */
	json_t *again;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_stored(s, n, "ABCDEFGH", &again, msg), SD_OK);
	size_t n2;
	char *s2 = sd_doc_dump(again, &n2);
	assert_int_equal(n2, n);
	assert_memory_equal(s2, s, n);
	/* The input is not reordered in place. */
	assert_string_equal(json_object_iter_key(json_object_iter(d)), "data");

	/* Compact form: one line, no trailing newline, input order. */
	size_t cn;
	char *c = sd_doc_dump_compact(again, &cn);
	assert_non_null(c);
	assert_int_equal(cn, strlen(c));
	assert_null(strchr(c, '\n'));
	assert_true(strncmp(c, "{\"key\":\"ABCDEFGH\",\"version\":3,", 30) == 0);
	json_t *back = J(c);
	assert_true(json_equal(back, d));
	json_decref(back);
	free(c);
	free(s2);
	json_decref(again);
	free(s);
	json_decref(d);
}

static void test_dump_of_an_empty_document_is_exact(void **state)
{
	(void)state;
	json_t *d = sd_doc_new("ZZZZ0000", NULL, NULL, T0);
	size_t n;
	char *s = sd_doc_dump(d, &n);
	const char *want = "{\n  \"key\": \"ZZZZ0000\",\n  \"version\": 1,\n  \"created\": \"" T0
			   "\",\n  \"updated\": \"" T0 "\",\n  \"meta\": {},\n  \"data\": {}\n}\n";
	assert_string_equal(s, want);
	assert_int_equal(n, strlen(want));
	free(s);
	/* len may be NULL. */
	s = sd_doc_dump(d, NULL);
	assert_string_equal(s, want);
	free(s);
	json_decref(d);
}

/* ---- stored documents --------------------------------------------------- */

#define GOOD_META "\"meta\":{}"
#define GOOD_TIMES "\"created\":\"" T0 "\",\"updated\":\"" T1 "\""

static const struct {
	const char *text;
	const char *expect_key;
	sd_err want;
} stored_cases[] = {
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_OK},
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", NULL, SD_OK},
	{"{\"data\":null," GOOD_META "," GOOD_TIMES ",\"version\":99,\"key\":\"ABCDEFGH\"}", "ABCDEFGH", SD_OK},
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T01:00:00+01:00\",\"updated\":\"" T1
	 "\"," GOOD_META ",\"data\":1}", "ABCDEFGH", SD_OK},
	/* wrong key */
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGX", SD_ERR_CORRUPT},
	{"{\"key\":\"abcdefgh\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"abcdefgh\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", NULL, SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFG\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", NULL, SD_ERR_CORRUPT},
	{"{\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", NULL, SD_ERR_CORRUPT},
	{"{\"key\":1,\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{}}", NULL, SD_ERR_CORRUPT},
	/* version */
	{"{\"key\":\"ABCDEFGH\",\"version\":0," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":-3," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":\"1\"," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1.0," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\"," GOOD_TIMES "," GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	/* meta */
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES ",\"meta\":[],\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES ",\"meta\":null,\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	/* data missing */
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES "," GOOD_META "}", "ABCDEFGH", SD_ERR_CORRUPT},
	/* timestamps */
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"yesterday\",\"updated\":\"" T1 "\"," GOOD_META
	 ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"" T0 "\",\"updated\":\"2026-13-01T00:00:00Z\","
	 GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"" T0 "\",\"updated\":\"2026-01-01T00:00:00\","
	 GOOD_META ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":1767225600000,\"updated\":\"" T1 "\"," GOOD_META
	 ",\"data\":{}}", "ABCDEFGH", SD_ERR_CORRUPT},
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"updated\":\"" T1 "\"," GOOD_META ",\"data\":{}}", "ABCDEFGH",
	 SD_ERR_CORRUPT},
	/* unknown field */
	{"{\"key\":\"ABCDEFGH\",\"version\":1," GOOD_TIMES "," GOOD_META ",\"data\":{},\"extra\":0}", "ABCDEFGH",
	 SD_ERR_CORRUPT},
	/* duplicate field */
	{"{\"key\":\"ABCDEFGH\",\"version\":1,\"version\":2," GOOD_TIMES "," GOOD_META ",\"data\":{}}",
	 "ABCDEFGH", SD_ERR_CORRUPT},
	/* not an object */
	{"[]", NULL, SD_ERR_CORRUPT},
	{"\"ABCDEFGH\"", NULL, SD_ERR_CORRUPT},
	{"", NULL, SD_ERR_CORRUPT},
};

static void test_stored_documents_are_accepted_or_refused_as_tabled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof stored_cases / sizeof stored_cases[0]; i++) {
		json_t *out = (json_t *)&out; /* must be overwritten */
		char msg[SD_MSG_MAX] = "";
		const char *t = stored_cases[i].text;
		sd_err e = sd_doc_parse_stored(t, strlen(t), stored_cases[i].expect_key, &out, msg);
		if (e != stored_cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s): %s", i, sd_err_code(e),
				 sd_err_code(stored_cases[i].want), msg, t);
		if (e == SD_OK) {
			assert_non_null(out);
			assert_int_equal(sd_doc_validate(out, stored_cases[i].expect_key, NULL), SD_OK);
			json_decref(out);
		} else {
			assert_null(out);
			assert_true(strlen(msg) > 0);
		}
	}
}

/* Every proper prefix of a good canonical document is refused. */
static void test_every_truncated_stored_document_is_refused(void **state)
{
	(void)state;
	json_t *d = sd_doc_new("ABCDEFGH", NULL, NULL, T0);
	size_t n;
	char *s = sd_doc_dump(d, &n);
	json_decref(d);
	json_t *out;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_stored(s, n, "ABCDEFGH", &out, msg), SD_OK);
	json_decref(out);
	/* Dropping the trailing newline is still whole JSON; one more is not. */
	for (size_t cut = 0; cut + 1 < n; cut++) {
		msg[0] = '\0';
		sd_err e = sd_doc_parse_stored(s, cut, "ABCDEFGH", &out, msg);
		if (e != SD_ERR_CORRUPT)
			fail_msg("prefix of %zu bytes accepted", cut);
		assert_null(out);
		assert_non_null(strstr(msg, "line"));
	}
	free(s);
}


/* ---- expiry -------------------------------------------------------------- */

static void test_expires_in_parses_or_is_refused_as_tabled(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		sd_err want;
		int present, clear;
		int64_t seconds;
	} cases[] = {
		{"{\"key\":\"ABCDEFGH\",\"data\":1}", SD_OK, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":3600}", SD_OK, 1, 0, 3600},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":null}", SD_OK, 1, 1, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":\"3600\"}", SD_ERR_BAD_REQUEST, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":0}", SD_ERR_BAD_REQUEST, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":-60}", SD_ERR_BAD_REQUEST, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":90.5}", SD_ERR_BAD_REQUEST, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires_in\":true}", SD_ERR_BAD_REQUEST, 0, 0, 0},
		{"{\"key\":\"ABCDEFGH\",\"expires\":\"2030-01-01T00:00:00.000Z\"}", SD_ERR_BAD_REQUEST, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sd_save_body b;
		char msg[SD_MSG_MAX] = "";
		sd_err e = sd_doc_parse_save(cases[i].body, strlen(cases[i].body), &b, msg);
		if (e != cases[i].want)
			fail_msg("%s: got %s (%s)", cases[i].body, sd_err_code(e), msg);
		if (e == SD_OK) {
			assert_int_equal(b.ttl.present, cases[i].present);
			assert_int_equal(b.ttl.clear, cases[i].clear);
			assert_int_equal(b.ttl.seconds, cases[i].seconds);
			sd_save_body_free(&b);
		}
	}
	/* instantiate takes it too, with and without "from". */
	sd_inst_body ib;
	const char *ok1 = "{\"expires_in\":120,\"data\":{}}", *ok2 = "{\"from\":\"ABCDEFGH\",\"expires_in\":null}";
	assert_int_equal(sd_doc_parse_inst(ok1, strlen(ok1), &ib, NULL), SD_OK);
	assert_int_equal(ib.ttl.seconds, 120);
	sd_inst_body_free(&ib);
	assert_int_equal(sd_doc_parse_inst(ok2, strlen(ok2), &ib, NULL), SD_OK);
	assert_true(ib.ttl.present && ib.ttl.clear && ib.has_from);
	sd_inst_body_free(&ib);
	const char *bad = "{\"expires_in\":[60]}";
	assert_int_equal(sd_doc_parse_inst(bad, strlen(bad), &ib, NULL), SD_ERR_BAD_REQUEST);
}

static void test_lifetimes_outside_min_and_max_are_bad_request(void **state)
{
	(void)state;
	sd_ttl_limits lim = {.min_s = 60, .max_s = 86400, .default_s = 0};
	char msg[SD_MSG_MAX];
	sd_ttl_req t = {.present = 1, .seconds = 59};
	assert_int_equal(sd_doc_check_ttl(&t, &lim, 0, msg), SD_ERR_BAD_REQUEST);
	assert_non_null(strstr(msg, "60 to 86400"));
	t.seconds = 60;
	assert_int_equal(sd_doc_check_ttl(&t, &lim, 0, msg), SD_OK);
	t.seconds = 86400;
	assert_int_equal(sd_doc_check_ttl(&t, &lim, 1, msg), SD_OK);
	t.seconds = 86401;
	assert_int_equal(sd_doc_check_ttl(&t, &lim, 1, msg), SD_ERR_BAD_REQUEST);
	sd_ttl_req clear = {.present = 1, .clear = 1};
	assert_int_equal(sd_doc_check_ttl(&clear, &lim, 0, msg), SD_OK);
	/* --default-ttl: only a new session that asks for nothing gets it. */
	lim.default_s = 3600;
	sd_ttl_req none = {0};
	assert_int_equal(sd_doc_check_ttl(&none, &lim, 0, msg), SD_OK);
	assert_int_equal(none.present, 0); /* a save keeps what the session has */
	assert_int_equal(sd_doc_check_ttl(&none, &lim, 1, msg), SD_OK);
	assert_true(none.present && !none.clear && none.seconds == 3600);
	sd_ttl_req cl2 = {.present = 1, .clear = 1};
	assert_int_equal(sd_doc_check_ttl(&cl2, &lim, 1, msg), SD_OK);
	assert_true(cl2.clear); /* null on instantiate: no expiry despite the default */
}

static const char with_expires[] =
	"{\n"
	"  \"key\": \"ABCDEFGH\",\n"
	"  \"version\": 2,\n"
	"  \"created\": \"2026-01-01T00:00:00.000Z\",\n"
	"  \"updated\": \"2026-01-01T00:00:10.000Z\",\n"
	"  \"expires\": \"2026-01-01T01:00:10.000Z\",\n"
	"  \"meta\": {},\n"
	"  \"data\": {\n"
	"    \"n\": 2\n"
	"  }\n"
	"}\n";

/* Save rules for expiry, on one document: set, keep, extend, remove. */
static void test_save_sets_keeps_extends_or_removes_the_expiry(void **state)
{
	(void)state;
	int64_t t0, t10, t20;
	assert_int_equal(sd_time_parse("2026-01-01T00:00:00.000Z", &t0), 0);
	t10 = t0 + 10000;
	t20 = t0 + 20000;
	json_t *doc = J("{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T00:00:00.000Z\","
			"\"updated\":\"2026-01-01T00:00:00.000Z\",\"meta\":{},\"data\":{\"n\":1}}");
	assert_int_equal(sd_doc_expires(doc), 0);
	assert_int_equal(sd_doc_expired(doc, INT64_MAX), 0); /* no expiry: never */

	/* A save with expires_in 3600 at t10: expires placed after updated. */
	sd_save_body b;
	const char *body = "{\"key\":\"ABCDEFGH\",\"data\":{\"n\":2},\"expires_in\":3600}";
	assert_int_equal(sd_doc_parse_save(body, strlen(body), &b, NULL), SD_OK);
	char now[SD_TIME_LEN];
	sd_time_format(t10, now);
	assert_int_equal(sd_doc_apply_save(doc, &b, now), SD_OK);
	assert_int_equal(sd_doc_set_expiry(doc, &b.ttl, t10), SD_OK);
	sd_save_body_free(&b);
	size_t n;
	char *s = sd_doc_dump(doc, &n);
	assert_string_equal(s, with_expires);
	free(s);
	assert_int_equal(sd_doc_expires(doc), t10 + 3600000);
	assert_int_equal(sd_doc_expired(doc, t10 + 3600000 - 1), 0);
	assert_int_equal(sd_doc_expired(doc, t10 + 3600000), 1); /* at the instant: expired */

	/* A save without expires_in keeps it. */
	body = "{\"key\":\"ABCDEFGH\",\"meta\":{\"a\":1}}";
	assert_int_equal(sd_doc_parse_save(body, strlen(body), &b, NULL), SD_OK);
	sd_time_format(t20, now);
	assert_int_equal(sd_doc_apply_save(doc, &b, now), SD_OK);
	assert_int_equal(sd_doc_set_expiry(doc, &b.ttl, t20), SD_OK);
	sd_save_body_free(&b);
	assert_int_equal(sd_doc_expires(doc), t10 + 3600000);

	/* A longer one extends it, from the save's time. */
	body = "{\"key\":\"ABCDEFGH\",\"expires_in\":86400}";
	assert_int_equal(sd_doc_parse_save(body, strlen(body), &b, NULL), SD_OK);
	assert_int_equal(sd_doc_set_expiry(doc, &b.ttl, t20), SD_OK);
	sd_save_body_free(&b);
	assert_int_equal(sd_doc_expires(doc), t20 + 86400000LL);

	/* null removes it; the dump has no expires line. */
	body = "{\"key\":\"ABCDEFGH\",\"expires_in\":null}";
	assert_int_equal(sd_doc_parse_save(body, strlen(body), &b, NULL), SD_OK);
	assert_int_equal(sd_doc_set_expiry(doc, &b.ttl, t20), SD_OK);
	sd_save_body_free(&b);
	assert_null(json_object_get(doc, "expires"));
	s = sd_doc_dump(doc, &n);
	assert_null(strstr(s, "expires"));
	free(s);
	json_decref(doc);
}

/* Stored "expires": optional, an RFC 3339 time after "created". */
static void test_stored_expires_must_be_a_time_after_created(void **state)
{
	(void)state;
	json_t *d;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_stored(with_expires, strlen(with_expires), "ABCDEFGH", &d, msg), SD_OK);
	json_decref(d);
	static const char *const bad[] = {
		"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
		"\"2026-01-01T00:00:00.000Z\",\"expires\":\"tomorrow\",\"meta\":{},\"data\":{}}",
		"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
		"\"2026-01-01T00:00:00.000Z\",\"expires\":1767225600000,\"meta\":{},\"data\":{}}",
		"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
		"\"2026-01-01T00:00:00.000Z\",\"expires\":\"2025-12-31T23:59:59.000Z\",\"meta\":{},\"data\":{}}",
		"{\"key\":\"ABCDEFGH\",\"version\":1,\"created\":\"2026-01-01T00:00:00.000Z\",\"updated\":"
		"\"2026-01-01T00:00:00.000Z\",\"expires\":null,\"meta\":{},\"data\":{}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(sd_doc_parse_stored(bad[i], strlen(bad[i]), "ABCDEFGH", &d, msg), SD_ERR_CORRUPT);
		assert_non_null(strstr(msg, "expires"));
	}
}

/* The load fast path reads "expires" from canonical bytes without a parse. */
static void test_fast_path_reads_expires_without_a_parse(void **state)
{
	(void)state;
	int64_t v, x = 0, want;
	assert_int_equal(sd_time_parse("2026-01-01T01:00:10.000Z", &want), 0);
	assert_int_equal(sd_doc_peek(with_expires, strlen(with_expires), "ABCDEFGH", &v), 1);
	assert_int_equal(sd_doc_peek_expires(with_expires, strlen(with_expires), &x), 1);
	assert_int_equal(x, want);
	assert_int_equal(sd_doc_peek_expires(canonical, strlen(canonical), &x), 0);
	/* "expires" anywhere but right after "updated" is not the canonical form. */
	static const char late[] = "{\n  \"key\": \"ABCDEFGH\",\n  \"version\": 2,\n"
				   "  \"created\": \"2026-01-01T00:00:00.000Z\",\n"
				   "  \"updated\": \"2026-01-01T00:00:10.000Z\",\n"
				   "  \"data\": {},\n  \"expires\": \"2026-01-01T01:00:10.000Z\"\n}\n";
	assert_int_equal(sd_doc_peek_expires(late, strlen(late), &x), -1);
	/* A timestamp of another width (an offset instead of Z) is parsed in full. */
	static const char offs[] = "{\n  \"key\": \"ABCDEFGH\",\n  \"version\": 2,\n"
				   "  \"created\": \"2026-01-01T00:00:00+00:00\",\n"
				   "  \"updated\": \"2026-01-01T00:00:10.000Z\",\n"
				   "  \"expires\": \"2026-01-01T01:00:10.000Z\",\n  \"meta\": {},\n  \"data\": {}\n}\n";
	assert_int_equal(sd_doc_peek_expires(offs, strlen(offs), &x), -1);
	assert_int_equal(sd_doc_peek_expires(with_expires, 100, &x), -1); /* cut short */
}

static void test_delete_bodies_are_accepted_or_refused_as_tabled(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		sd_err want;
	} cases[] = {
		{"{\"key\":\"abcdefgh\"}", SD_OK},
		{"{\"key\":\"ABCDEFGH\",\"version\":3,\"token\":\"t\"}", SD_OK},
		{"", SD_ERR_BAD_REQUEST},
		{"{}", SD_ERR_BAD_KEY},
		{"{\"key\":\"../../etc\"}", SD_ERR_BAD_KEY},
		{"{\"key\":\"ABCDEFGH\",\"version\":0}", SD_ERR_BAD_REQUEST},
		{"{\"key\":\"ABCDEFGH\",\"token\":7}", SD_ERR_BAD_REQUEST},
		{"{\"key\":\"ABCDEFGH\",\"data\":{}}", SD_ERR_BAD_REQUEST},
		{"[\"ABCDEFGH\"]", SD_ERR_BAD_REQUEST},
		{"{\"key\":", SD_ERR_BAD_JSON},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sd_delete_body b;
		char msg[SD_MSG_MAX] = "";
		sd_err e = sd_doc_parse_delete(cases[i].body, strlen(cases[i].body), &b, msg);
		if (e != cases[i].want)
			fail_msg("%s: got %s (%s)", cases[i].body, sd_err_code(e), msg);
		if (e == SD_OK) {
			assert_string_equal(b.key, "ABCDEFGH");
			if (b.has_version) {
				assert_int_equal(b.version, 3);
				assert_string_equal(b.token, "t");
			} else {
				assert_null(b.token);
			}
			sd_delete_body_free(&b);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_patch_gives_the_tabled_results),
		cmocka_unit_test(test_merge_patch_onto_nothing_drops_nulls),
		cmocka_unit_test(test_merge_patch_result_shares_nothing_with_its_target),
		cmocka_unit_test(test_save_bodies_are_accepted_or_refused_as_tabled),
		cmocka_unit_test(test_save_body_fields_are_read_and_the_key_normalised),
		cmocka_unit_test(test_nesting_to_the_limit_passes_and_one_deeper_is_bad_request),
		cmocka_unit_test(test_nesting_100000_deep_is_refused_by_both_parsers),
		cmocka_unit_test(test_nul_bytes_deep_nesting_and_repeated_names_are_refused),
		cmocka_unit_test(test_instantiate_bodies_are_accepted_or_refused_as_tabled),
		cmocka_unit_test(test_instantiate_body_fields_are_read_an_empty_body_included),
		cmocka_unit_test(test_new_document_is_valid_at_version_1),
		cmocka_unit_test(test_save_replaces_data_merges_meta_and_bumps_the_version),
		cmocka_unit_test(test_dump_writes_the_canonical_order_and_form),
		cmocka_unit_test(test_fast_path_serves_only_files_the_parser_accepts),
		cmocka_unit_test(test_fast_path_handles_many_names_and_finds_a_repeated_one),
		cmocka_unit_test(test_dump_of_an_empty_document_is_exact),
		cmocka_unit_test(test_stored_documents_are_accepted_or_refused_as_tabled),
		cmocka_unit_test(test_every_truncated_stored_document_is_refused),
		cmocka_unit_test(test_expires_in_parses_or_is_refused_as_tabled),
		cmocka_unit_test(test_lifetimes_outside_min_and_max_are_bad_request),
		cmocka_unit_test(test_save_sets_keeps_extends_or_removes_the_expiry),
		cmocka_unit_test(test_stored_expires_must_be_a_time_after_created),
		cmocka_unit_test(test_fast_path_reads_expires_without_a_parse),
		cmocka_unit_test(test_delete_bodies_are_accepted_or_refused_as_tabled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
