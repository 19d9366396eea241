/* test_docsplice.c: the save that splices the stored bytes (docsplice.c)
 * writes exactly the bytes of the full path (parse the whole file,
 * sd_doc_apply_save, sd_doc_set_expiry, sd_doc_dump), over a table of
 * stored documents (escapes, unicode, big and real numbers, expires,
 * nested meta) crossed with a table of save bodies (data, meta only,
 * neither, lifetimes); files the splice must not take are left to the full
 * path; and the canonical check of a value agrees with jansson's own
 * output. Seen failing: with cstring() accepting lower-case \u escapes,
 * test_canonical_agrees_with_jansson fails on "\u001f"; with the data
 * bytes taken one byte short (data_len - 1 in sd_doc_split), and with the
 * old data kept as bytes without sd_doc_canonical's check,
 * test_splice_equals_full_path fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_doc.h"
#include "sd_docsplice.h"
#include "sd_time.h"

#define KEY "SPLICE01"
#define CREATED "2026-01-02T03:04:05.678Z"

/* Stored data and meta values (as JSON text; dumped canonically below).
 * The data values after the first PEEKED are ones sd_doc_peek leaves to
 * the parser (an integer past 18 digits, an exponent past two digits):
 * such files are not split, and take the full path. */
#define PEEKED 15
static const char *const datas[] = {
	"{}",
	"[]",
	"null",
	"0",
	"\"\"",
	"{\"cart\":[{\"sku\":\"A-1\",\"qty\":2,\"price\":19.99},{\"sku\":\"B/2\",\"qty\":1,\"price\":5}],\"total\":44.98}",
	"{\"esc\":\"quote\\\" back\\\\ slash\\/ \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f \\u0000 end\"}",
	"{\"uni\":\"caf\\u00e9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \\ud83d\\ude00 \\u2028\"}",
	"{\"big\":[9007199254740993,-922337203685477580,123456789012345678,-0]}",
	"{\"real\":[0.1,1e30,1.5e-30,-0.0,1E2,3.0,2.5,1e-7,123456.789,4.9e-5]}",
	"{\"deep\":{\"a\":{\"b\":{\"c\":[[[{\"d\":[1,[2,[3,{}]]]}]]],\"e\":[]}}},\"t\":true,\"f\":false}",
	"[1,\"two\",{\"three\":3},[4,[5]],null,true]",
	"\"just a string\"",
	"-12.5e-3",
	"{\"list\":[1,2,3]}",
	"{\"big\":-9223372036854775807}",
	"{\"real\":1e300}",
};

static const char *const metas[] = {
	"{}",
	"{\"user\":{\"id\":42,\"roles\":[\"admin\",\"buyer\"],\"name\":\"Jos\\u00e9\"},\"flags\":{},\"n\":1.25}",
	"{\"tab\":\"a\\tb\",\"list\":[{\"x\":null}]}",
};

/* Save bodies; %s is the key. */
static const char *const bodies[] = {
	"{\"key\":\"%s\",\"data\":{\"new\":[1,2,3],\"s\":\"\\u00e9\\n\"}}",
	"{\"key\":\"%s\",\"data\":null}",
	"{\"key\":\"%s\",\"data\":[]}",
	"{\"key\":\"%s\",\"data\":1e400}", /* refused by the parser: skipped */
	"{\"key\":\"%s\",\"data\":{\"r\":0.30000000000000004,\"big\":-9223372036854775808}}",
	"{\"key\":\"%s\",\"meta\":{\"user\":{\"roles\":null,\"seen\":3}}}",
	"{\"key\":\"%s\",\"meta\":{\"user\":null,\"new\":{\"deep\":[{}]}}}",
	"{\"key\":\"%s\",\"meta\":{}}",
	"{\"key\":\"%s\"}",
	"{\"key\":\"%s\",\"version\":7}",
	"{\"key\":\"%s\",\"expires_in\":3600}",
	"{\"key\":\"%s\",\"expires_in\":null}",
	"{\"key\":\"%s\",\"meta\":{\"a\":1},\"data\":\"x\",\"expires_in\":60}",
	"{\"key\":\"%s\",\"meta\":{\"tab\":\"c\\u0000d\"},\"expires_in\":null}",
};

/* A stored document as sd_doc_dump writes it. */
static char *stored(const char *meta, const char *data, int64_t version, const char *expires, size_t *len)
{
	json_t *m = json_loads(meta, JSON_ALLOW_NUL, NULL);
	json_t *d = json_loads(data, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	assert_non_null(m);
	assert_non_null(d);
	json_t *doc = sd_doc_new(KEY, m, d, CREATED);
	assert_non_null(doc);
	json_object_set_new(doc, "version", json_integer(version));
	json_object_set_new(doc, "updated", json_string("2026-01-03T00:00:00Z"));
	if (expires)
		json_object_set_new(doc, "expires", json_string(expires));
	char *s = sd_doc_dump(doc, len);
	assert_non_null(s);
	json_decref(m);
	json_decref(d);
	json_decref(doc);
	return s;
}

/* Today's path: parse everything, apply, dump. NULL when it refuses. */
static char *full_path(const char *file, size_t len, const sd_save_body *b, const char *now, int64_t now_ms,
		       size_t *out_len)
{
	json_t *doc;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_stored(file, len, KEY, &doc, msg), SD_OK);
	char *s = NULL;
	if (sd_doc_apply_save(doc, b, now) == SD_OK && sd_doc_set_expiry(doc, &b->ttl, now_ms) == SD_OK)
		s = sd_doc_dump(doc, out_len);
	json_decref(doc);
	return s;
}

/* Data in the file as given: a canonical header, data not as jansson
 * writes it (a hand-made or imported file). */
static const char *const raw_datas[] = {
	"{\"a\":1}",
	"{\n    \"a\":1\n  }",
	"{\n    \"a\": 1\n}",
	"[ ]",
	"\"caf\\u00e9\"",
	"\"a\\/b\"",
	"\"\\u001f\"",
	"0.1",
	"1.50",
	"-0",
	"1E2",
	"{\n    \"a\": [1, 2]\n  }",
};

static char *stored_raw(const char *data, size_t *len)
{
	size_t n;
	char *s = stored(metas[1], "null", 3, NULL, &n);
	const char *tail = "null\n}\n";
	assert_true(n > strlen(tail) && strcmp(s + n - strlen(tail), tail) == 0);
	char *t = malloc(n + strlen(data) + 4);
	assert_non_null(t);
	memcpy(t, s, n - strlen(tail));
	strcpy(t + n - strlen(tail), data);
	strcat(t, "\n}\n");
	*len = strlen(t);
	free(s);
	return t;
}

/* One body on one split file: both paths write the same bytes. Returns 1
 * when the splice kept the old data as bytes. */
static int compare(const char *file, size_t len, const sd_doc_parts *parts, const char *fmt, const char *now,
		   int64_t now_ms, int *compared)
{
	char body[512];
	snprintf(body, sizeof body, fmt, KEY);
	sd_save_body b;
	if (sd_doc_parse_save(body, strlen(body), &b, NULL) != SD_OK)
		return 0;
	size_t want_len = 0, got_len = 0;
	char *want = full_path(file, len, &b, now, now_ms, &want_len);
	assert_non_null(want);
	json_t *doc;
	char *got;
	assert_int_equal(sd_doc_splice_save(parts, &b, now, now_ms, &doc, &got, &got_len), SD_OK);
	if (got_len != want_len || memcmp(got, want, want_len) != 0)
		fail_msg("file:\n%s\nbody %s:\n--- full path\n%s\n--- splice\n%.*s", file, body, want, (int)got_len,
			 got);
	/* What the answer needs. */
	json_t *back;
	assert_int_equal(sd_doc_parse_stored(want, want_len, KEY, &back, NULL), SD_OK);
	assert_int_equal(sd_doc_version(doc), sd_doc_version(back));
	assert_string_equal(json_string_value(json_object_get(doc, "updated")), now);
	assert_true(json_equal(json_object_get(doc, "expires"), json_object_get(back, "expires")) ||
		    (!json_object_get(doc, "expires") && !json_object_get(back, "expires")));
	int kept = !b.data && !json_object_get(doc, "data");
	(*compared)++;
	json_decref(back);
	json_decref(doc);
	free(want);
	free(got);
	sd_save_body_free(&b);
	return kept;
}

static void test_splice_equals_full_path(void **state)
{
	(void)state;
	static const char *const expiries[] = {NULL, "2027-06-01T00:00:00.000Z", "2030-01-01T00:00:00Z"};
	int64_t now_ms = 1800000000123LL;
	char now[SD_TIME_LEN];
	sd_time_format(now_ms, now);
	int compared = 0, kept = 0;
	for (size_t di = 0; di < sizeof datas / sizeof *datas; di++)
		for (size_t mi = 0; mi < sizeof metas / sizeof *metas; mi++)
			for (size_t xi = 0; xi < sizeof expiries / sizeof *expiries; xi++) {
				size_t len;
				char *file = stored(metas[mi], datas[di], 7 + (int64_t)di * 1000003, expiries[xi], &len);
				sd_doc_parts parts;
				/* Every file sd_doc_dump writes takes the splice. */
				int split = sd_doc_split(file, len, KEY, &parts);
				if (split != (di < PEEKED))
					fail_msg("data %zu meta %zu expires %zu: split %d:\n%s", di, mi, xi, split, file);
				if (!split) {
					free(file);
					continue;
				}
				for (size_t bi = 0; bi < sizeof bodies / sizeof *bodies; bi++)
					kept += compare(file, len, &parts, bodies[bi], now, now_ms, &compared);
				free(file);
			}
	/* Saves without data kept the old bytes. */
	assert_true(compared > 500);
	assert_true(kept > compared / 3);
	/* Data not as jansson writes it: parsed and written anew, never
	 * kept as bytes. */
	for (size_t ri = 0; ri < sizeof raw_datas / sizeof *raw_datas; ri++) {
		size_t len;
		char *file = stored_raw(raw_datas[ri], &len);
		sd_doc_parts parts;
		assert_int_equal(sd_doc_split(file, len, KEY, &parts), 1);
		assert_int_equal(sd_doc_canonical(parts.data, parts.data_len, 1), 0);
		for (size_t bi = 0; bi < sizeof bodies / sizeof *bodies; bi++)
			assert_int_equal(compare(file, len, &parts, bodies[bi], now, now_ms, &compared), 0);
		free(file);
	}
}

/* Files the splice leaves to the full path: not in the canonical layout,
 * damaged, or refused by sd_doc_validate for a reason the scan does not
 * see. */
static void test_split_refuses(void **state)
{
	(void)state;
	static const char *const files[] = {
		/* compact */
		"{\"key\":\"SPLICE01\",\"version\":1,\"created\":\"2026-01-02T03:04:05.678Z\","
		"\"updated\":\"2026-01-02T03:04:05.678Z\",\"meta\":{},\"data\":{}}\n",
		/* fields in another order */
		"{\n  \"version\": 1,\n  \"key\": \"SPLICE01\",\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"meta\": {},\n  \"data\": {}\n}\n",
		/* no trailing newline */
		"{\n  \"key\": \"SPLICE01\",\n  \"version\": 1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"meta\": {},\n  \"data\": {}\n}",
		/* expires before created: sd_doc_validate refuses it */
		"{\n  \"key\": \"SPLICE01\",\n  \"version\": 1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"expires\": \"2026-01-01T00:00:00.000Z\",\n"
		"  \"meta\": {},\n  \"data\": {}\n}\n",
		/* damaged data */
		"{\n  \"key\": \"SPLICE01\",\n  \"version\": 1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"meta\": {},\n  \"data\": {\"a\": }\n}\n",
		/* another key */
		"{\n  \"key\": \"SPLICE02\",\n  \"version\": 1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"meta\": {},\n  \"data\": {}\n}\n",
		/* a version with a leading plus sign is not JSON */
		"{\n  \"key\": \"SPLICE01\",\n  \"version\": +1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
		"  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"meta\": {},\n  \"data\": {}\n}\n",
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		sd_doc_parts p;
		if (sd_doc_split(files[i], strlen(files[i]), KEY, &p) != 0)
			fail_msg("file %zu was split", i);
	}
	/* The canonical one of the same shape is split. */
	const char *ok = "{\n  \"key\": \"SPLICE01\",\n  \"version\": 1,\n  \"created\": \"2026-01-02T03:04:05.678Z\",\n"
			 "  \"updated\": \"2026-01-02T03:04:05.678Z\",\n  \"expires\": \"2026-02-01T00:00:00.000Z\",\n"
			 "  \"meta\": {\"a\": \"}\"},\n  \"data\": {}\n}\n";
	sd_doc_parts p;
	assert_int_equal(sd_doc_split(ok, strlen(ok), KEY, &p), 1);
	assert_int_equal(p.meta_len, strlen("{\"a\": \"}\"}"));
	assert_int_equal(p.data_len, 2);
	assert_true(p.expires_ms > 0);
}

/* sd_doc_canonical(v) says 1 only for bytes jansson writes for v, at the
 * depth data sits in the file. */
static void test_canonical_agrees_with_jansson(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int canonical;
	} t[] = {
		{"{}", 1},
		{"[]", 1},
		{"{ }", 0},
		{"{\n    \"a\": 1\n  }", 1},
		{"{\n    \"a\": 1\n}", 0},
		{"{\n    \"a\":1\n  }", 0},
		{"{\"a\": 1}", 0},
		{"[\n    1,\n    2\n  ]", 1},
		{"[\n    1, 2\n  ]", 0},
		{"\"\\u001F\"", 1},
		{"\"\\u001f\"", 0},
		{"\"\\u000A\"", 0},
		{"\"\\n\"", 1},
		{"\"\\/\"", 0},
		{"\"/\"", 1},
		{"\"\\u0041\"", 0},
		{"\"\\u00e9\"", 0},
		{"\"\xc3\xa9\"", 1},
		{"\"\\u0000\"", 1},
		{"1.5", 1},
		{"1.50", 0},
		{"0.1", 0},
		{"0.10000000000000001", 1},
		{"1E2", 0},
		{"100.0", 1},
		{"1e+300", 0},
		{"1.0000000000000001e+300", 0},
		{"-0", 0},
		{"0", 1},
		{"-5", 1},
		{"123456789012345678", 1},
		{"1234567890123456789", 0}, /* canonical, but left to the parser */
		{"true", 1},
		{"null", 1},
		{"nul", 0},
		{"1 ", 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		int got = sd_doc_canonical(t[i].text, strlen(t[i].text), 1);
		if (got != t[i].canonical)
			fail_msg("%s: canonical %d, expected %d", t[i].text, got, t[i].canonical);
		/* Never canonical where jansson writes other bytes. */
		json_t *v = json_loads(t[i].text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (!got || !v) {
			json_decref(v);
			continue;
		}
		size_t len;
		json_t *doc = sd_doc_new(KEY, NULL, v, CREATED);
		char *file = sd_doc_dump(doc, &len);
		sd_doc_parts p;
		assert_int_equal(sd_doc_split(file, len, KEY, &p), 1);
		assert_int_equal(p.data_len, strlen(t[i].text));
		assert_memory_equal(p.data, t[i].text, p.data_len);
		free(file);
		json_decref(doc);
		json_decref(v);
	}
}

/* The largest version: refused, as sd_doc_apply_save refuses it. */
static void test_splice_max_version(void **state)
{
	(void)state;
	size_t len;
	char *file = stored("{}", "{}", SD_DOC_MAX_VERSION, NULL, &len);
	sd_doc_parts p;
	assert_int_equal(sd_doc_split(file, len, KEY, &p), 1);
	sd_save_body b;
	const char *body = "{\"key\":\"" KEY "\",\"data\":1}";
	assert_int_equal(sd_doc_parse_save(body, strlen(body), &b, NULL), SD_OK);
	json_t *doc;
	char *out;
	size_t n;
	assert_int_equal(sd_doc_splice_save(&p, &b, "2026-01-04T00:00:00.000Z", 0, &doc, &out, &n), SD_ERR_VERSION_LIMIT);
	assert_null(doc);
	assert_null(out);
	sd_save_body_free(&b);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splice_equals_full_path),
		cmocka_unit_test(test_split_refuses),
		cmocka_unit_test(test_canonical_agrees_with_jansson),
		cmocka_unit_test(test_splice_max_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
