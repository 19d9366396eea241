/* fuzz_app.h: the fixture of the harnesses that go through the public
 * request handler (fuzz_http, fuzz_etag, fuzz_query): a store in a fresh
 * $SD_FUZZ_TMP/sd-fuzz.XXXXXX folder (default /tmp; removed at exit) holding a few fixed
 * sessions, a configuration from sd_config_parse (durability none, CORS
 * for any origin, --access open so writes need no token, no disk
 * watermark, no miss limit), and the checks every answer must pass:
 * - a known status; header lines that are "Name: value" with no control
 *   characters (nothing a request sends can split a header);
 * - every body a JSON object; every error one with "error" (a code of
 *   sd_err) and "message"; no body on 204 and 304;
 * - a 200 load is a document that validates for the key asked, at the
 *   version its ETag names;
 * - a refused write leaves every fixed session byte for byte as it was; an
 *   accepted one leaves a file that validates and that load's fast path
 *   takes. After each request the store is put back as it was, so inputs
 *   replay the same way whatever ran before. Header-only, so that each
 *   harness stays one .c file. */
#ifndef SD_FUZZ_APP_H
#define SD_FUZZ_APP_H

#include <errno.h>
#include <ftw.h>
#include <unistd.h>
#include "fuzz.h"
#include "sd_config.h"
#include "sd_doc.h"
#include "sd_http.h"
#include "sd_log.h"
#include "sd_store.h"

/* The fixed sessions. version 0: a damaged file (load answers 500). */
static const struct fuzz_seed {
	const char *key;
	long long version;
	int canonical;
} fuzz_seeds[] = {
	{"ABCDEFGH", 1, 1}, {"VERSION9", 9, 1}, {"TWELVE12", 12, 1}, {"COMPACT3", 3, 0}, {"BROKEN01", 0, 0},
};
#define FUZZ_NSEEDS (sizeof fuzz_seeds / sizeof fuzz_seeds[0])
/* A key that is never stored. */
#define FUZZ_MISSING "MISSING0"

static struct fuzz_app {
	char dir[4096]; /* made by mkdtemp: removed at exit */
	int made;
	sd_config cfg;
	sd_store *store;
	sd_app app;
	sd_secret secret;
	char *bytes[FUZZ_NSEEDS];
	size_t len[FUZZ_NSEEDS];
} fa;

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static inline void fuzz_app_cleanup(void)
{
	if (fa.store)
		sd_store_close(fa.store);
	fa.store = NULL;
	if (fa.made)
		nftw(fa.dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fa.made = 0;
}

/* Write every fixed session back as it was. */
static inline void fuzz_app_restore(void)
{
	for (size_t i = 0; i < FUZZ_NSEEDS; i++)
		FUZZ_CHECK(sd_store_put(fa.store, fuzz_seeds[i].key, fa.bytes[i], fa.len[i]) == SD_OK,
			   "cannot write session %s", fuzz_seeds[i].key);
}

static inline void fuzz_app_init(void)
{
	if (fa.store)
		return;
	/* A process that crashes leaves its folder; run.sh points SD_FUZZ_TMP
	 * into build/fuzz/ and removes what is left there. */
	const char *base = getenv("SD_FUZZ_TMP");
	snprintf(fa.dir, sizeof fa.dir, "%s/sd-fuzz.XXXXXX", base && *base ? base : "/tmp");
	FUZZ_CHECK(mkdtemp(fa.dir), "mkdtemp %s: %s", fa.dir, strerror(errno));
	fa.made = 1;
	atexit(fuzz_app_cleanup);
	static const char *const env[] = {"SESSIOND_DATA_DIR", "SESSIOND_LISTEN", "SESSIOND_THREADS",
					  "SESSIOND_MAX_BODY", "SESSIOND_LOCK_TIMEOUT", "SESSIOND_DURABILITY",
					  "SESSIOND_CORS_ORIGIN", "SESSIOND_LOG_LEVEL", "SESSIOND_BACKLOG",
					  "SESSIOND_ACCESS", "SESSIOND_SECRET_FILE", "SESSIOND_MISS_LIMIT",
					  "SESSIOND_MIN_FREE"};
	for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
		unsetenv(env[i]);
	char *argv[] = {(char *)"sessiond", (char *)"--data-dir", fa.dir, (char *)"--durability",
			(char *)"none", (char *)"--lock-timeout", (char *)"100ms", (char *)"--cors-origin",
			(char *)"*", (char *)"--access", (char *)"open", (char *)"--min-free", (char *)"0", NULL};
	int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
	char msg[SD_MSG_MAX];
	optind = 0;
	FUZZ_CHECK(sd_config_parse(&fa.cfg, argc, argv, msg) == SD_CONFIG_RUN, "config: %s", msg);
	sd_store_opts o = {.data_dir = fa.cfg.data_dir, .durability = fa.cfg.durability,
			   .lock_timeout_ms = fa.cfg.lock_timeout_ms};
	FUZZ_CHECK(sd_store_open(&o, &fa.store, msg) == SD_OK, "store: %s", msg);
	/* A fixed secret (tokens are not what these harnesses test; the miss
	 * limit is off: no limit table). */
	memset(fa.secret.k, 0x5a, sizeof fa.secret.k);
	fa.app = (sd_app){.store = fa.store, .cfg = &fa.cfg, .secret = &fa.secret};
	/* Loads of the damaged session log an error each; nothing else logs. */
	sd_log_set_level(SD_LOG_ERROR);
	for (size_t i = 0; i < FUZZ_NSEEDS; i++) {
		const struct fuzz_seed *s = &fuzz_seeds[i];
		if (!s->version) {
			static const char damaged[] = "{\n  \"key\": \"BROKEN01\",\n  \"version\": 2,\n  \"crea";
			fa.bytes[i] = fuzz_copy(damaged, sizeof damaged - 1);
			fa.len[i] = sizeof damaged - 1;
			continue;
		}
		json_t *meta = json_pack("{s:s, s:i}", "theme", "dark", "n", 1);
		json_t *data = json_pack("{s:[i, i, {s:n}], s:s}", "cart", 1, 2, "x", "note", "caf\xc3\xa9");
		json_t *doc = sd_doc_new(s->key, meta, data, "2026-01-01T00:00:00.000Z");
		FUZZ_CHECK(doc && json_object_set_new(doc, "version", json_integer(s->version)) == 0, "seed doc");
		if (s->canonical) {
			fa.bytes[i] = sd_doc_dump(doc, &fa.len[i]);
		} else { /* valid, hand-written style: one line, load parses it in full */
			char *c = sd_doc_dump_compact(doc, &fa.len[i]);
			FUZZ_CHECK(c, "seed dump");
			fa.bytes[i] = fuzz_copy(c, fa.len[i]);
			free(c);
		}
		FUZZ_CHECK(fa.bytes[i], "seed dump");
		json_decref(meta);
		json_decref(data);
		json_decref(doc);
	}
	fuzz_app_restore();
}

static inline const struct fuzz_seed *fuzz_seed_of(const char *key)
{
	for (size_t i = 0; i < FUZZ_NSEEDS; i++)
		if (strcmp(fuzz_seeds[i].key, key) == 0)
			return &fuzz_seeds[i];
	return NULL;
}

/* The version in the answer's ETag header, or -1 when it has none. */
/* The version in the answer's ETag header: a line that starts with it (a
 * request's header echoed in another one, e.g. an Origin whose value holds
 * 'ETag: "', is not it), or -1. */
static inline long long fuzz_etag_of(const sd_response *r)
{
	for (const char *p = r->headers; p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (strncmp(p, "ETag: \"", 7) == 0)
			return strtoll(p + 7, NULL, 10);
	}
	return -1;
}

/* RFC 9110 reference for If-Match (weak = 0, strong comparison) and
 * If-None-Match (weak = 1): 1 when the header matches the representation
 * whose tag is "VERSION", 0 when it does not, -1 when the header is not a
 * well-formed "*" or list of entity-tags (then no answer is implied). */
static inline int fuzz_etag_match(const char *h, long long version, int weak)
{
	char want[32];
	snprintf(want, sizeof want, "\"%lld\"", version);
	size_t wl = strlen(want);
	const char *p = h + strspn(h, " \t");
	if (*p == '*') {
		p++;
		p += strspn(p, " \t");
		return *p ? -1 : 1;
	}
	int any = 0, match = 0;
	for (;;) {
		p += strspn(p, " \t");
		if (*p == ',') {
			p++;
			continue;
		}
		if (!*p)
			break;
		int w = p[0] == 'W' && p[1] == '/';
		if (w)
			p += 2;
		if (*p != '"')
			return -1;
		const char *q = p + 1;
		for (; *q && *q != '"'; q++) {
			unsigned char c = (unsigned char)*q;
			if (c < 0x21 || c == 0x7f)
				return -1;
		}
		if (*q != '"')
			return -1;
		if ((size_t)(q + 1 - p) == wl && memcmp(p, want, wl) == 0 && (weak || !w))
			match = 1;
		any = 1;
		p = q + 1;
		p += strspn(p, " \t");
		if (*p && *p != ',')
			return -1;
	}
	return any ? match : -1;
}

static inline void fuzz_check_headers(const sd_response *r)
{
	FUZZ_CHECK(r->headers_len < sizeof r->headers && r->headers[r->headers_len] == '\0' &&
			   strlen(r->headers) == r->headers_len,
		   "header buffer length");
	for (const char *p = r->headers; *p;) {
		const char *eol = strstr(p, "\r\n");
		FUZZ_CHECK(eol, "a header line without CRLF: %s", p);
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		FUZZ_CHECK(colon && colon > p && colon[1] == ' ', "not a Name: value line: %.*s", (int)(eol - p), p);
		for (const char *c = p; c < eol; c++)
			FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "a control byte in header %.*s",
				   (int)(eol - p), p);
		for (const char *c = p; c < colon; c++)
			FUZZ_CHECK(*c != ' ', "a space in a header name");
		p = eol + 2;
	}
}

static inline int fuzz_known_code(const char *code)
{
	for (int e = 1; e < SD_ERR__COUNT; e++)
		if (strcmp(sd_err_code((sd_err)e), code) == 0)
			return 1;
	return 0;
}

/* The checks every answer passes; returns the parsed body (or NULL). */
static inline json_t *fuzz_check_response(const sd_request *req, const sd_response *r)
{
	FUZZ_CHECK(strcmp(sd_http_reason(r->status), "Unknown") != 0, "status %d", r->status);
	fuzz_check_headers(r);
	FUZZ_CHECK(!r->body_len || r->body, "body_len without a body");
	if (r->status == 204 || r->status == 304)
		FUZZ_CHECK(r->body_len == 0, "a body on %d", r->status);
	if (r->content_type || !r->body_len)
		return NULL;
	json_error_t je;
	json_t *b = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	FUZZ_CHECK(json_is_object(b), "status %d with a body that is not a JSON object (%s): %.*s", r->status,
		   je.text, (int)(r->body_len > 200 ? 200 : r->body_len), r->body);
	if (r->status >= 400) {
		const char *code = json_string_value(json_object_get(b, "error"));
		FUZZ_CHECK(code && fuzz_known_code(code), "error body without a known code");
		FUZZ_CHECK(json_is_string(json_object_get(b, "message")), "error body without a message");
	}
	int is_load = req->path && strcmp(req->path, "/api/load") == 0;
	if (is_load && r->status == 200) {
		const char *key = json_string_value(json_object_get(b, "key"));
		char msg[SD_MSG_MAX];
		json_t *doc;
		FUZZ_CHECK(key && sd_doc_parse_stored(r->body, r->body_len, key, &doc, msg) == SD_OK,
			   "load served a document that does not validate: %s", key ? msg : "no key");
		FUZZ_CHECK(fuzz_etag_of(r) == sd_doc_version(doc), "ETag is not the served version");
		json_decref(doc);
	}
	return b;
}

/* After a write that succeeded: the session's file validates and the load
 * fast path takes it. */
static inline void fuzz_check_written(const char *key)
{
	char *buf, msg[SD_MSG_MAX];
	size_t len;
	json_t *doc;
	int64_t v;
	FUZZ_CHECK(sd_key_is_canonical(key), "a write answered with a bad key");
	FUZZ_CHECK(sd_store_read(fa.store, key, &buf, &len, NULL) == SD_OK, "written session %s is missing", key);
	FUZZ_CHECK(sd_doc_parse_stored(buf, len, key, &doc, msg) == SD_OK, "written file does not validate: %s", msg);
	FUZZ_CHECK(sd_doc_peek(buf, len, key, &v) == 1 && v == sd_doc_version(doc), "written file is not canonical");
	json_decref(doc);
	free(buf);
}

/* Every fixed session is byte for byte what it was. */
static inline void fuzz_check_unchanged(void)
{
	for (size_t i = 0; i < FUZZ_NSEEDS; i++) {
		char *buf;
		size_t len;
		FUZZ_CHECK(sd_store_read(fa.store, fuzz_seeds[i].key, &buf, &len, NULL) == SD_OK, "session %s is gone",
			   fuzz_seeds[i].key);
		FUZZ_CHECK(len == fa.len[i] && memcmp(buf, fa.bytes[i], len) == 0,
			   "a refused request changed session %s", fuzz_seeds[i].key);
		free(buf);
	}
}

/* Handle req, check the answer, put the store back. Returns the status. */
static inline int fuzz_app_request(const sd_request *req)
{
	sd_response r;
	sd_http_handle(&fa.app, req, &r);
	json_t *b = fuzz_check_response(req, &r);
	int is_post = req->method && strcmp(req->method, "POST") == 0;
	if (is_post && r.status >= 200 && r.status < 300) {
		const char *key = json_string_value(json_object_get(b, "key"));
		int deleted = json_is_true(json_object_get(b, "deleted"));
		if (key && !deleted)
			fuzz_check_written(key);
		if (key && r.status == 201 && !fuzz_seed_of(key)) {
			char path[4096];
			unlink(sd_store_path(fa.store, key, path, sizeof path));
		}
		fuzz_app_restore();
	} else if (is_post) {
		fuzz_check_unchanged();
	}
	json_decref(b);
	int st = r.status;
	sd_response_free(&r);
	return st;
}

#endif
