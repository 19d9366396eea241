/* fuzz_stored.c: a session file as read from disk, through the load fast
 * path (sd_doc_peek) and the full parse (sd_doc_parse_stored), with the
 * file's key ABCDEFGH and with no expected key (as import reads).
 *
 * Invariants checked:
 * - what the fast path takes, the full parse takes too, at the same
 *   version: load must never serve bytes that are not a valid document
 *   (issue 8, defect 2);
 * - a document that validates for its key validates without a key;
 * - the canonical dump of a valid document validates, equals it, is a
 *   fixed point of parse + dump, and is taken by the fast path;
 * - a file the save's splice takes (sd_doc_split) validates, and a save
 *   through the splice writes the same bytes as the full path (parse,
 *   sd_doc_apply_save, sd_doc_set_expiry, sd_doc_dump). */
#include "fuzz.h"
#include "sd_doc.h"
#include "sd_docsplice.h"

static const char KEY[] = "ABCDEFGH";

/* Each save body through both paths on a validated, split file. */
static void check_splice(const json_t *doc, const sd_doc_parts *parts)
{
	static const char *const bodies[] = {
		"{\"key\":\"ABCDEFGH\",\"data\":{\"a\":[1,\"\\u00e9\"]}}",
		"{\"key\":\"ABCDEFGH\",\"meta\":{\"m\":null,\"n\":{\"o\":1.5}}}",
		"{\"key\":\"ABCDEFGH\",\"expires_in\":null}",
		"{\"key\":\"ABCDEFGH\",\"expires_in\":60}",
	};
	const char *now = "2026-11-27T12:00:00.000Z";
	int64_t now_ms = 1795780800000LL;
	for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
		sd_save_body b;
		FUZZ_CHECK(sd_doc_parse_save(bodies[i], strlen(bodies[i]), &b, NULL) == SD_OK, "body %zu", i);
		json_t *full = json_deep_copy(doc), *sdoc = NULL;
		sd_err fe = sd_doc_apply_save(full, &b, now);
		if (fe == SD_OK)
			fe = sd_doc_set_expiry(full, &b.ttl, now_ms);
		size_t fn = 0, sn = 0;
		char *fb = fe == SD_OK ? sd_doc_dump(full, &fn) : NULL, *sb = NULL;
		sd_err se = sd_doc_splice_save(parts, &b, now, now_ms, &sdoc, &sb, &sn);
		FUZZ_CHECK(se == fe, "body %zu: splice %d, full path %d", i, se, fe);
		FUZZ_CHECK(fe != SD_OK || (fn == sn && memcmp(fb, sb, fn) == 0), "body %zu: the splice wrote other bytes", i);
		free(fb);
		free(sb);
		json_decref(full);
		json_decref(sdoc);
		sd_save_body_free(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_copy(data, size);
	char msg[SD_MSG_MAX];
	int64_t pv = 0;
	int fast = sd_doc_peek(buf, size, KEY, &pv);
	json_t *doc = NULL, *any = NULL;
	sd_err e = sd_doc_parse_stored(buf, size, KEY, &doc, msg);
	FUZZ_CHECK(e == SD_OK || e == SD_ERR_CORRUPT, "parse_stored: %d", e);
	FUZZ_CHECK(!fast || e == SD_OK, "the fast path serves a file that does not validate: %s", msg);
	FUZZ_CHECK(!fast || sd_doc_version(doc) == pv, "fast path version %lld, document %lld", (long long)pv,
		   (long long)sd_doc_version(doc));
	sd_doc_parts parts;
	int split = sd_doc_split(buf, size, KEY, &parts);
	FUZZ_CHECK(!split || e == SD_OK, "the splice takes a file that does not validate: %s", msg);
	if (split)
		check_splice(doc, &parts);
	sd_err e2 = sd_doc_parse_stored(buf, size, NULL, &any, msg);
	FUZZ_CHECK(e != SD_OK || e2 == SD_OK, "valid for its key but not without one");
	if (e2 == SD_OK) {
		const char *k = json_string_value(json_object_get(any, "key"));
		fuzz_check_canonical(any, k, sd_doc_version(any));
	}
	json_decref(any);
	json_decref(doc);
	free(buf);
	return 0;
}
