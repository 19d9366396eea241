/* sd_doc: the session document. Validates request bodies and stored files,
 * applies the save rules (version check, data replace, RFC 7386 merge patch
 * of meta) and serialises the document in its canonical on-disk form:
 * 2-space indent, fields key, version, created, updated, expires (only
 * when the session has a lifetime), meta, data, and a trailing newline.
 * Knows nothing of files or HTTP. */
#ifndef SD_DOC_H
#define SD_DOC_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sd_err.h"
#include "sd_key.h"

/* The version a new document starts at (docs/api.md: instantiate). */
#define SD_DOC_FIRST_VERSION 1

/* The largest version a document may reach: 2^53 - 1, the largest integer
 * a JavaScript client holds exactly. A save past it is refused. */
#define SD_DOC_MAX_VERSION 9007199254740991LL

/* How deep request JSON may nest before it is refused as bad_request. */
#define SD_DOC_MAX_DEPTH 64

/* A lifetime asked for with "expires_in" (instantiate, save). */
typedef struct sd_ttl_req {
	int present;           /* the member was sent (or a default applies) */
	int clear;             /* "expires_in": null: no expiry */
	int64_t seconds;       /* when present and not clear */
} sd_ttl_req;

/* Bounds on "expires_in", in seconds, from --min-ttl/--max-ttl, and the
 * lifetime new sessions get when they ask for none (--default-ttl, 0: none). */
typedef struct sd_ttl_limits {
	int64_t min_s, max_s, default_s;
} sd_ttl_limits;

/* Default bounds: at least a minute, at most 365 days, no default. */
#define SD_TTL_MIN_DEFAULT 60
#define SD_TTL_MAX_DEFAULT (365LL * 86400)

/* A parsed POST /api/save body. Borrowed references into root. */
typedef struct sd_save_body {
	json_t *root;          /* owned: the whole parsed body (from the fast
				  path, sd_doc_parse_save_canon_at: only meta) */
	char key[SD_KEY_LEN + 1];
	int has_version;
	int64_t version;
	json_t *data;          /* borrowed, NULL when absent or given as data_canon */
	char *data_canon;      /* owned, from the fast path: the body's data as
				  sd_doc_dump writes it in a document (depth 1),
				  in jansson's allocator; NULL otherwise */
	size_t data_canon_len;
	json_t *meta;          /* borrowed, NULL when absent (always an object) */
	const char *token;     /* borrowed: the "token" member (from the fast
				  path: its bytes in the body, not NUL-terminated),
				  NULL when absent; never stored in the document */
	size_t token_len;
	sd_ttl_req ttl;        /* "expires_in" */
} sd_save_body;

/* A parsed POST /api/instantiate body. */
typedef struct sd_inst_body {
	json_t *root;          /* owned, may be NULL for an empty body */
	int has_from;
	char from[SD_KEY_LEN + 1];
	json_t *data;          /* borrowed, NULL when absent or given as data_canon */
	char *data_canon;      /* owned, from the fast path: as sd_save_body's */
	size_t data_canon_len;
	json_t *meta;          /* borrowed, NULL when absent */
	const char *token;     /* borrowed: a token of the "from" session, NULL when absent */
	size_t token_len;
	sd_ttl_req ttl;        /* "expires_in" */
} sd_inst_body;

/* A parsed POST /api/delete body: {"key", "version"?, "token"?}. */
typedef struct sd_delete_body {
	json_t *root;          /* owned */
	char key[SD_KEY_LEN + 1];
	int has_version;
	int64_t version;
	const char *token;     /* borrowed, NULL when absent (the write token) */
	size_t token_len;
} sd_delete_body;

/* Parse len bytes as a JSON object. On error returns SD_ERR_BAD_JSON with
 * line and column in msg, or SD_ERR_BAD_REQUEST when it is valid JSON but
 * not an object or nests deeper than SD_DOC_MAX_DEPTH. *out is a new
 * reference on success. */
sd_err sd_doc_parse_object(const char *buf, size_t len, json_t **out, char msg[SD_MSG_MAX]);
/* The memory (as sd_mem counts it) that sd_doc_parse_object reserves to
 * parse buf: an upper bound of what jansson allocates for it. */
size_t sd_doc_parse_bound(const char *buf, size_t len);
/* json_loadb for JSON the server reads back (stored documents, pieces of
 * them): the same bound is reserved first (sd_mem_reserve), so nothing is
 * refused half-way through the parse. NULL, with sd_mem_exceeded() set,
 * when the bound does not fit; otherwise json_loadb's answer. */
json_t *sd_doc_loadb(const char *buf, size_t len, size_t flags, json_error_t *je);

/* Parse and validate a save body; unknown fields are refused. On success the
 * caller owns b->root and releases it with sd_save_body_free(). */
sd_err sd_doc_parse_save(const char *buf, size_t len, sd_save_body *b, char msg[SD_MSG_MAX]);
void sd_save_body_free(sd_save_body *b);

/* Parse and validate an instantiate body (len 0 is allowed). */
sd_err sd_doc_parse_inst(const char *buf, size_t len, sd_inst_body *b, char msg[SD_MSG_MAX]);
void sd_inst_body_free(sd_inst_body *b);

/* Parse and validate a delete body; unknown fields are refused. */
sd_err sd_doc_parse_delete(const char *buf, size_t len, sd_delete_body *b, char msg[SD_MSG_MAX]);

/* The same, with the key (or "from") the URL gave, normalised, or NULL:
 * then the body's is optional, and a body key that differs is
 * SD_ERR_BAD_KEY. An empty instantiate body with url_from is a copy. */
sd_err sd_doc_parse_save_at(const char *buf, size_t len, const char *url_key, sd_save_body *b,
			    char msg[SD_MSG_MAX]);
sd_err sd_doc_parse_inst_at(const char *buf, size_t len, const char *url_from, sd_inst_body *b,
			    char msg[SD_MSG_MAX]);
/* sd_doc_parse_save_at with a fast path for the save route: a body whose
 * every member the one-pass scan is sure of (docscan.c: the six fields, no
 * repeats, a key, token and version without escapes or doubt) builds no
 * tree for its data: b->data_canon holds the data's canonical bytes
 * (sd_doc_canon) and b->data is NULL; meta alone is parsed (b->root), and
 * b->token points into buf, which must outlive b. The same memory bound is
 * reserved first as for the full parse. Any other body goes through
 * sd_doc_parse_save_at, so the answer, and every error with its message,
 * is the same. */
sd_err sd_doc_parse_save_canon_at(const char *buf, size_t len, const char *url_key, sd_save_body *b,
				  char msg[SD_MSG_MAX]);
/* The same for the instantiate route: a body of only data, meta and
 * expires_in that the scan is sure of builds no tree for its data
 * (b->data_canon); a copy ("from") and anything else go through
 * sd_doc_parse_inst_at, with the same answers. */
sd_err sd_doc_parse_inst_canon_at(const char *buf, size_t len, const char *url_from, sd_inst_body *b,
				  char msg[SD_MSG_MAX]);
sd_err sd_doc_parse_delete_at(const char *buf, size_t len, const char *url_key, sd_delete_body *b,
			      char msg[SD_MSG_MAX]);
void sd_delete_body_free(sd_delete_body *b);

/* Check a requested lifetime against lim: seconds within [min_s, max_s],
 * else SD_ERR_BAD_REQUEST with a message. With creating set and nothing
 * requested, lim->default_s (when not 0) becomes the request. */
sd_err sd_doc_check_ttl(sd_ttl_req *t, const sd_ttl_limits *lim, int creating, char msg[SD_MSG_MAX]);

/* Apply a lifetime request to doc at now_ms: nothing when not present,
 * remove "expires" when clear, else set it to now + seconds (placed after
 * "updated" by sd_doc_dump). */
sd_err sd_doc_set_expiry(json_t *doc, const sd_ttl_req *t, int64_t now_ms);

/* ms since the epoch of a validated document's "expires", 0 when it has
 * none. */
int64_t sd_doc_expires(const json_t *doc);
/* 1 when a validated document has an "expires" at or before now_ms. */
int sd_doc_expired(const json_t *doc, int64_t now_ms);

/* A new version-1 document holding meta and data (NULL means {}) by
 * reference, not by copy: neither may change while the document lives.
 * Returns a new reference, NULL on allocation failure. */
json_t *sd_doc_new(const char *key, const json_t *meta, const json_t *data, const char *now);

/* Validate a stored document as read from disk: an object with key (equal
 * to expect_key when that is not NULL), version >= 1, created, updated
 * (RFC 3339), expires absent or an RFC 3339 time after created, meta an
 * object, data present. SD_ERR_CORRUPT with a reason
 * in msg otherwise. *out is a new reference on success. */
sd_err sd_doc_parse_stored(const char *buf, size_t len, const char *expect_key, json_t **out,
			   char msg[SD_MSG_MAX]);
/* The same checks on an already parsed value (borrowed). */
sd_err sd_doc_validate(const json_t *doc, const char *expect_key, char msg[SD_MSG_MAX]);

/* The fast path for loads (docscan.c): 1 when buf, the whole of it, is a
 * session document for this key that sd_doc_parse_stored would accept
 * (JSON syntax, the six fields once each with their types), checked in one
 * pass without building a tree, with *version set; 0 otherwise (damaged,
 * or a construct the scan leaves to the parser), and the caller parses and
 * validates in full. */
int sd_doc_peek(const char *buf, size_t len, const char *key, int64_t *version);
/* For a buffer sd_doc_peek accepted: 1 with *expires_ms set when its
 * "expires" line follows "updated", 0 when it has none, -1 when the lines
 * are not where the canonical form puts them (then parse in full). */
int sd_doc_peek_expires(const char *buf, size_t len, int64_t *expires_ms);

/* Stored version of a validated document. */
int64_t sd_doc_version(const json_t *doc);

/* Apply a save to doc in place: data replaced when present, meta merged,
 * version incremented, updated set to now. Version checks are the caller's.
 * Data given as bytes (b->data_canon) is parsed here under a reservation of
 * its own; sd_api_save leaves it out and writes the bytes as they are
 * (sd_doc_dump_canon_data). SD_ERR_VERSION_LIMIT when the version is
 * already the largest. */
sd_err sd_doc_apply_save(json_t *doc, const sd_save_body *b, const char *now);

/* RFC 7386 JSON Merge Patch: returns a new reference to the result of
 * applying patch to target (target may be NULL). Neither argument changes. */
json_t *sd_merge_patch(const json_t *target, const json_t *patch);

/* Serialise a document in canonical form. Returns malloc'd bytes (caller
 * frees) and their length, NULL on allocation failure. */
char *sd_doc_dump(const json_t *doc, size_t *len);
/* Serialise a document on one line (for JSON responses and export). */
char *sd_doc_dump_compact(const json_t *doc, size_t *len);

#endif
