/* sd_doc: the session document. Validates request bodies and stored files,
 * applies the save rules (version check, data replace, RFC 7386 merge patch
 * of meta) and serialises the document in its canonical on-disk form:
 * 2-space indent, fields key, version, created, updated, meta, data, and a
 * trailing newline. Knows nothing of files or HTTP. */
#ifndef SD_DOC_H
#define SD_DOC_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sd_err.h"
#include "sd_key.h"

/* The largest version a document may reach: 2^53 - 1, the largest integer
 * a JavaScript client holds exactly. A save past it is refused. */
#define SD_DOC_MAX_VERSION 9007199254740991LL

/* How deep request JSON may nest before it is refused as bad_request. */
#define SD_DOC_MAX_DEPTH 64

/* A parsed POST /api/save body. Borrowed references into root. */
typedef struct sd_save_body {
	json_t *root;          /* owned: the whole parsed body */
	char key[SD_KEY_LEN + 1];
	int has_version;
	int64_t version;
	json_t *data;          /* borrowed, NULL when absent */
	json_t *meta;          /* borrowed, NULL when absent (always an object) */
	const char *token;     /* borrowed: the "token" member, NULL when absent;
				  never stored in the document */
	size_t token_len;
} sd_save_body;

/* A parsed POST /api/instantiate body. */
typedef struct sd_inst_body {
	json_t *root;          /* owned, may be NULL for an empty body */
	int has_from;
	char from[SD_KEY_LEN + 1];
	json_t *data;          /* borrowed, NULL when absent */
	json_t *meta;          /* borrowed, NULL when absent */
	const char *token;     /* borrowed: a token of the "from" session, NULL when absent */
	size_t token_len;
} sd_inst_body;

/* Parse len bytes as a JSON object. On error returns SD_ERR_BAD_JSON with
 * line and column in msg, or SD_ERR_BAD_REQUEST when it is valid JSON but
 * not an object or nests deeper than SD_DOC_MAX_DEPTH. *out is a new
 * reference on success. */
sd_err sd_doc_parse_object(const char *buf, size_t len, json_t **out, char msg[SD_MSG_MAX]);

/* Parse and validate a save body; unknown fields are refused. On success the
 * caller owns b->root and releases it with sd_save_body_free(). */
sd_err sd_doc_parse_save(const char *buf, size_t len, sd_save_body *b, char msg[SD_MSG_MAX]);
void sd_save_body_free(sd_save_body *b);

/* Parse and validate an instantiate body (len 0 is allowed). */
sd_err sd_doc_parse_inst(const char *buf, size_t len, sd_inst_body *b, char msg[SD_MSG_MAX]);
void sd_inst_body_free(sd_inst_body *b);

/* A new version-1 document; meta and data are copied (NULL means {}).
 * Returns a new reference, NULL on allocation failure. */
json_t *sd_doc_new(const char *key, const json_t *meta, const json_t *data, const char *now);

/* Validate a stored document as read from disk: an object with key (equal
 * to expect_key when that is not NULL), version >= 1, created, updated
 * (RFC 3339), meta an object, data present. SD_ERR_CORRUPT with a reason
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

/* Stored version of a validated document. */
int64_t sd_doc_version(const json_t *doc);

/* Apply a save to doc in place: data replaced when present, meta merged,
 * version incremented, updated set to now. Version checks are the caller's. */
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
