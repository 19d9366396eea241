/* fuzz_http.c: whole requests through the public handler, sd_http_handle,
 * against a real store (fuzz_app.h). Input layout: byte 0 picks the
 * method, byte 1 the path; the rest is cut at newlines into the query,
 * Content-Type, If-Match, If-None-Match and Origin (a header value stops
 * at its first NUL, as a C string from FastCGI does), and everything after
 * the fifth newline is the body, byte for byte. Missing fields are absent
 * headers. The checks are fuzz_app.h's: well-formed answers, JSON errors,
 * validated loads, refused writes that write nothing, accepted writes that
 * read back through the fast path. */
#include "fuzz_app.h"

static const char *const methods[] = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "post", ""};
static const char *const paths[] = {"/api/instantiate", "/api/load", "/api/save", "/api/health",
				    "/api/metrics", "/api/delete", "/api/loadx", "/"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_app_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_app_init();
	if (size < 2)
		return 0;
	sd_request req = {.method = methods[data[0] % (sizeof methods / sizeof methods[0])],
			  .path = paths[data[1] % (sizeof paths / sizeof paths[0])]};
	const char **fields[] = {&req.query, &req.content_type, &req.if_match, &req.if_none_match, &req.origin};
	char *owned[5] = {0};
	const char *p = (const char *)data + 2, *end = (const char *)data + size;
	size_t i = 0;
	for (; i < 5 && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		owned[i] = fuzz_copy(p, (size_t)(nl - p)); /* strlen stops at a NUL */
		*fields[i] = owned[i];
		p = nl + 1;
	}
	char *body = NULL;
	if (i == 5) {
		body = fuzz_copy(p, (size_t)(end - p));
		req.body = body;
		req.body_len = (size_t)(end - p);
	}
	fuzz_app_request(&req);
	for (i = 0; i < 5; i++)
		free(owned[i]);
	free(body);
	return 0;
}
