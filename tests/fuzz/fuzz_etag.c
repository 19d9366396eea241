/* fuzz_etag.c: If-Match and If-None-Match lists through the public
 * handler (fuzz_app.h). The input, up to its first NUL, is the header
 * value; each run sends it
 * - as If-None-Match on loads of sessions at versions 1 and 12 (a tag list
 *   longer than 8 is needed to reach 12 among "1".."12");
 * - as If-Match on saves of those sessions;
 * - as If-Match on a save of a session that does not exist.
 * Against fuzz_etag_match, a small RFC 9110 reference: when the header is a
 * well-formed list, a load answers 304 exactly when it matches (weak
 * comparison), a save is refused with 412 exactly when it does not
 * (strong comparison, character by character: "01" is not "1"); 400 is
 * always allowed (an absurd list may be refused). If-Match: * on a missing
 * session is 412 (RFC 9110, 13.1.1). */
#include "fuzz_app.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_app_init();
	return 0;
}

static void one_save(const char *key, const char *h, int exists, long long version)
{
	char body[64];
	snprintf(body, sizeof body, "{\"key\":\"%s\",\"data\":{\"n\":2}}", key);
	sd_request req = {.method = "POST", .path = "/api/save", .content_type = "application/json",
			  .if_match = h, .body = body, .body_len = strlen(body)};
	int st = fuzz_app_request(&req);
	if (!exists) {
		FUZZ_CHECK(st != 200, "a save of a missing session answered 200");
		const char *p = h + strspn(h, " \t");
		if (*p == '*' && !p[1 + strspn(p + 1, " \t")])
			FUZZ_CHECK(st == 412, "If-Match: %s on a missing session answered %d, not 412", h, st);
		return;
	}
	int m = fuzz_etag_match(h, version, 0);
	if (m == 1)
		FUZZ_CHECK(st == 200 || st == 400, "If-Match: %s matches version %lld but the save answered %d", h,
			   version, st);
	if (m == 0)
		FUZZ_CHECK(st == 412 || st == 400, "If-Match: %s does not match version %lld but the save answered %d", h,
			   version, st);
}

static void one_load(const char *key, const char *h, long long version)
{
	char query[32];
	snprintf(query, sizeof query, "key=%s", key);
	sd_request req = {.method = "GET", .path = "/api/load", .query = query, .if_none_match = h};
	int st = fuzz_app_request(&req);
	int m = fuzz_etag_match(h, version, 1);
	if (m == 1)
		FUZZ_CHECK(st == 304 || st == 400, "If-None-Match: %s matches version %lld but load answered %d", h,
			   version, st);
	if (m == 0)
		FUZZ_CHECK(st == 200 || st == 400, "If-None-Match: %s does not match version %lld but load answered %d",
			   h, version, st);
	if (m == -1)
		FUZZ_CHECK(st == 200 || st == 304 || st == 400, "load answered %d", st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_app_init();
	char *h = fuzz_copy(data, size); /* as a C string: up to the first NUL */
	one_load("ABCDEFGH", h, 1);
	one_load("TWELVE12", h, 12);
	one_save("ABCDEFGH", h, 1, 1);
	one_save("TWELVE12", h, 1, 12);
	one_save(FUZZ_MISSING, h, 0, -1);
	free(h);
	return 0;
}
