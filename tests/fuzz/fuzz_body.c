/* fuzz_body.c: the request bodies, sd_doc_parse_object, sd_doc_parse_save
 * and sd_doc_parse_inst, on the same bytes.
 *
 * Invariants checked:
 * - each parser answers only the errors it documents, and the three agree
 *   on whether the bytes are JSON at all;
 * - a raw NUL byte anywhere in a body is bad_json (issue 8);
 * - an accepted body is an object nesting no more than SD_DOC_MAX_DEPTH
 *   objects and arrays, and its
 *   compact dump parses back to an equal value;
 * - an accepted save body has a canonical key, a positive version when it
 *   has one and meta an object; applied to a fresh document it gives a
 *   document whose canonical dump validates, round-trips and is taken by
 *   the load fast path (sd_doc_peek) at version 2;
 * - an accepted instantiate body never mixes "from" with data or meta, and
 *   the document it creates validates and round-trips the same way. */
#include "fuzz.h"
#include "sd_doc.h"

static const char T0[] = "2026-01-01T00:00:00.000Z", T1[] = "2026-01-02T00:00:00.000Z";

/* Levels of objects and arrays (a scalar adds none, whatever the rule
 * counts exactly: the check below holds either way). */
static int depth(const json_t *v)
{
	int d = 0;
	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	const char *k;
	json_t *c;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, c)
		{
			int cd = depth(c);
			d = cd > d ? cd : d;
		}
	} else {
		json_array_foreach(v, i, c)
		{
			int cd = depth(c);
			d = cd > d ? cd : d;
		}
	}
	return d + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_copy(data, size);
	char msg[SD_MSG_MAX];
	json_t *obj;
	sd_err eo = sd_doc_parse_object(buf, size, &obj, msg);
	FUZZ_CHECK(eo == SD_OK || eo == SD_ERR_BAD_JSON || eo == SD_ERR_BAD_REQUEST, "parse_object: %d", eo);
	FUZZ_CHECK(!memchr(buf, '\0', size) || eo == SD_ERR_BAD_JSON, "a raw NUL byte in a body gives %d, not bad_json",
		   eo);
	if (eo == SD_OK) {
		FUZZ_CHECK(json_is_object(obj), "parse_object accepted a non-object");
		FUZZ_CHECK(depth(obj) <= SD_DOC_MAX_DEPTH, "accepted %d levels", depth(obj));
		size_t n;
		char *c = sd_doc_dump_compact(obj, &n);
		FUZZ_CHECK(c, "compact dump failed");
		json_t *again;
		FUZZ_CHECK(sd_doc_parse_object(c, n, &again, msg) == SD_OK, "compact dump does not parse: %s", msg);
		FUZZ_CHECK(json_equal(obj, again), "compact dump does not round-trip");
		json_decref(again);
		free(c);
		json_decref(obj);
	}

	sd_save_body sb;
	sd_err es = sd_doc_parse_save(buf, size, &sb, msg);
	FUZZ_CHECK(es == SD_OK || es == SD_ERR_BAD_JSON || es == SD_ERR_BAD_REQUEST || es == SD_ERR_BAD_KEY,
		   "parse_save: %d", es);
	FUZZ_CHECK(size == 0 || (es == SD_ERR_BAD_JSON) == (eo == SD_ERR_BAD_JSON), "save and object disagree on JSON");
	FUZZ_CHECK(es != SD_OK || eo == SD_OK, "save accepted what parse_object refused");
	if (es == SD_OK) {
		FUZZ_CHECK(sd_key_is_canonical(sb.key), "save key not canonical");
		FUZZ_CHECK(!sb.has_version || sb.version >= 1, "save version %lld", (long long)sb.version);
		FUZZ_CHECK(!sb.meta || json_is_object(sb.meta), "save meta not an object");
		json_t *doc = sd_doc_new(sb.key, NULL, NULL, T0);
		FUZZ_CHECK(doc, "sd_doc_new failed");
		FUZZ_CHECK(sd_doc_apply_save(doc, &sb, T1) == SD_OK, "apply_save failed");
		fuzz_check_canonical(doc, sb.key, 2);
		json_decref(doc);
		sd_save_body_free(&sb);
	}

	sd_inst_body ib;
	sd_err ei = sd_doc_parse_inst(buf, size, &ib, msg);
	FUZZ_CHECK(ei == SD_OK || ei == SD_ERR_BAD_JSON || ei == SD_ERR_BAD_REQUEST || ei == SD_ERR_BAD_KEY,
		   "parse_inst: %d", ei);
	FUZZ_CHECK(size == 0 || (ei == SD_ERR_BAD_JSON) == (eo == SD_ERR_BAD_JSON), "inst and object disagree on JSON");
	FUZZ_CHECK(ei != SD_OK || size == 0 || eo == SD_OK, "inst accepted what parse_object refused");
	if (ei == SD_OK) {
		FUZZ_CHECK(!ib.has_from || (!ib.data && !ib.meta), "from mixed with data or meta");
		FUZZ_CHECK(!ib.has_from || sd_key_is_canonical(ib.from), "from not canonical");
		FUZZ_CHECK(!ib.meta || json_is_object(ib.meta), "inst meta not an object");
		if (!ib.has_from) {
			json_t *doc = sd_doc_new("FUZZ0KEY", ib.meta, ib.data, T0);
			FUZZ_CHECK(doc, "sd_doc_new failed");
			fuzz_check_canonical(doc, "FUZZ0KEY", 1);
			json_decref(doc);
		}
		sd_inst_body_free(&ib);
	}
	free(buf);
	return 0;
}
