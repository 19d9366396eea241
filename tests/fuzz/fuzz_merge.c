/* fuzz_merge.c: the RFC 7386 merge patch of save's "meta". The input is
 * two JSON texts separated by the first NUL byte: the stored target, then
 * the patch.
 *
 * Invariants checked (RFC 7386, section 2):
 * - neither argument changes;
 * - a patch that is not an object replaces the target;
 * - an object patch gives an object where every null member of the patch
 *   is gone, every other member is the merge of the target's member with
 *   it, and every member the patch does not name is the target's;
 * - applying the same patch again changes nothing (idempotence);
 * - through the save rules (sd_doc_apply_save on a document whose meta is
 *   the target, when both are objects): the new meta is that merge, and the
 *   canonical dump validates, round-trips and is taken by the fast path. */
#include "fuzz.h"
#include "sd_doc.h"

static const char T0[] = "2026-01-01T00:00:00.000Z", T1[] = "2026-01-02T00:00:00.000Z";

static void check_merge(const json_t *target, const json_t *patch, const json_t *r, int level)
{
	if (!json_is_object(patch)) {
		FUZZ_CHECK(json_equal(r, patch), "a non-object patch did not replace the target");
		return;
	}
	FUZZ_CHECK(json_is_object(r), "an object patch gave a non-object");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v)
	{
		json_t *rv = json_object_get(r, k);
		if (json_is_null(v)) {
			FUZZ_CHECK(!rv, "member \"%s\" survived a null", k);
		} else {
			FUZZ_CHECK(rv, "member \"%s\" is missing", k);
			if (level < 4) /* deeper levels: the same code, already checked */
				check_merge(json_is_object(target) ? json_object_get(target, k) : NULL, v, rv,
					    level + 1);
		}
	}
	if (json_is_object(target))
		json_object_foreach((json_t *)target, k, v) if (!json_object_get(patch, k))
			FUZZ_CHECK(json_equal(json_object_get(r, k), v), "untouched member \"%s\" changed", k);
	json_object_foreach((json_t *)r, k, v)
		FUZZ_CHECK(json_object_get(patch, k) || (json_is_object(target) && json_object_get(target, k)),
			   "member \"%s\" came from nowhere", k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, '\0', size);
	if (!sep)
		return 0;
	size_t tn = (size_t)(sep - data), pn = size - tn - 1;
	char *tb = fuzz_copy(data, tn), *pb = fuzz_copy(sep + 1, pn);
	size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL;
	json_t *target = json_loadb(tb, tn, flags, NULL), *patch = json_loadb(pb, pn, flags, NULL);
	if (target && patch) {
		json_t *t0 = json_deep_copy(target), *p0 = json_deep_copy(patch);
		json_t *r = sd_merge_patch(target, patch);
		FUZZ_CHECK(r && t0 && p0, "merge failed");
		FUZZ_CHECK(json_equal(target, t0) && json_equal(patch, p0), "merge changed an argument");
		check_merge(target, patch, r, 0);
		json_t *r2 = sd_merge_patch(r, patch);
		FUZZ_CHECK(r2 && json_equal(r, r2), "merging the same patch twice changed the result");
		if (json_is_object(target) && json_is_object(patch)) {
			json_t *doc = sd_doc_new("MERGE0AB", target, json_null(), T0);
			sd_save_body b = {.root = NULL, .meta = patch};
			memcpy(b.key, "MERGE0AB", SD_KEY_LEN + 1);
			FUZZ_CHECK(doc && sd_doc_apply_save(doc, &b, T1) == SD_OK, "apply_save failed");
			FUZZ_CHECK(json_equal(json_object_get(doc, "meta"), r), "save's meta is not the merge");
			fuzz_check_canonical(doc, "MERGE0AB", 2);
			json_decref(doc);
		}
		json_decref(r2);
		json_decref(r);
		json_decref(t0);
		json_decref(p0);
	}
	json_decref(target);
	json_decref(patch);
	free(tb);
	free(pb);
	return 0;
}
