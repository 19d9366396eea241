/* fuzz_query.c: the query string of GET /api/load through the public
 * handler (fuzz_app.h). The input, up to its first NUL, is the query.
 * Besides fuzz_app.h's checks on every answer: a 200 is only ever the
 * session a key=VALUE parameter of the query names (letters in any case),
 * and a query that is exactly key=KEY for a valid stored session loads it. */
#include <strings.h>
#include "fuzz_app.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_app_init();
	return 0;
}

/* 1 when some &-separated parameter of q is key=KEY (case-insensitive). */
static int names_key(const char *q, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = q; p;) {
		size_t n = strcspn(p, "&");
		if (n == 4 + kl && strncmp(p, "key=", 4) == 0 && strncasecmp(p + 4, key, kl) == 0)
			return 1;
		p = p[n] ? p + n + 1 : NULL;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_app_init();
	char *q = fuzz_copy(data, size);
	sd_request req = {.method = "GET", .path = "/api/load", .query = q};
	sd_response r;
	sd_http_handle(&fa.app, &req, &r);
	json_t *b = fuzz_check_response(&req, &r);
	if (r.status == 200) {
		const char *key = json_string_value(json_object_get(b, "key"));
		FUZZ_CHECK(key && names_key(q, key), "query %s loaded session %s", q, key ? key : "(none)");
	}
	if (strncmp(q, "key=", 4) == 0) {
		const struct fuzz_seed *s = fuzz_seed_of(q + 4);
		if (s && s->version)
			FUZZ_CHECK(r.status == 200, "query %s answered %d", q, r.status);
	}
	json_decref(b);
	sd_response_free(&r);
	free(q);
	return 0;
}
