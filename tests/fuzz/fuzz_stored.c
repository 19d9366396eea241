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
 *   fixed point of parse + dump, and is taken by the fast path. */
#include "fuzz.h"
#include "sd_doc.h"

static const char KEY[] = "ABCDEFGH";

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
