/* fuzz_import.c: `sessionctl import` input, cut into lines as import cuts
 * stdin (getline: each line keeps its newline), blank lines skipped, each
 * other line through ctl_import_prepare.
 *
 * Invariants checked:
 * - a line is either refused as corrupt with a reason, or accepted;
 * - an accepted line's canonical bytes validate as its key's file, equal
 *   the document, and are taken by the load fast path at its version, so
 *   what import writes, load and save read back. */
#include <ctype.h>
#include "fuzz.h"
#include "sd_ctl.h"
#include "sd_doc.h"

static void one_line(const char *line, size_t n)
{
	int blank = 1;
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)line[i]))
			blank = 0;
	if (blank)
		return;
	char *copy = fuzz_copy(line, n), msg[SD_MSG_MAX] = "", *bytes;
	json_t *doc = NULL;
	size_t len;
	sd_err e = ctl_import_prepare(copy, n, &doc, &bytes, &len, msg);
	FUZZ_CHECK(e == SD_OK || e == SD_ERR_CORRUPT, "import: %d", e);
	FUZZ_CHECK(e == SD_OK || msg[0], "a refused line without a reason");
	if (e == SD_OK) {
		const char *key = json_string_value(json_object_get(doc, "key"));
		FUZZ_CHECK(key && sd_key_is_canonical(key), "imported key not canonical");
		fuzz_check_file(bytes, len, doc, key, sd_doc_version(doc));
		free(bytes);
		json_decref(doc);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		one_line(p, n);
		p += n;
	}
	return 0;
}
