/* sd_api: the session operations behind the HTTP API (instantiate, load,
 * save, delete, health). Each takes validated inputs, works through sd_doc and
 * sd_store, and returns an sd_err plus a result; HTTP status mapping,
 * headers and conditional requests are http.c's. */
#ifndef SD_API_H
#define SD_API_H

#include <jansson.h>
#include "sd_doc.h"
#include "sd_err.h"
#include "sd_store.h"

/* How many key draws instantiate makes before answering busy. */
#define SD_API_KEY_TRIES 8

typedef struct sd_api_result {
	json_t *doc;        /* new reference: the document after the operation,
			       or the current one on conflict; may be NULL */
	char *raw;          /* load only: the stored bytes, when they are in
			       canonical form (then doc is NULL); malloc'd */
	size_t raw_len;
	int64_t version;    /* the document's version */
	char key[SD_KEY_LEN + 1];
	char msg[SD_MSG_MAX]; /* detail for an error, "" when none */
} sd_api_result;

void sd_api_result_free(sd_api_result *r);

/* Create a session from an instantiate body, its key drawn by draw (NULL:
 * libsodium over every bucket). b->ttl
 * must have passed sd_doc_check_ttl. A "from" session that has expired is
 * SD_ERR_NOT_FOUND. */
sd_err sd_api_instantiate(sd_store *s, const sd_inst_body *b, const sd_key_draw *draw, sd_api_result *r);
/* Load a session (no lock). An expired one is SD_ERR_NOT_FOUND. A canonical file is returned as its bytes in
 * r->raw, without a parse; anything else is parsed and validated into
 * r->doc. */
sd_err sd_api_load(sd_store *s, const char *key, sd_api_result *r);
/* A write's precondition on the session's current version, in neutral
 * terms (http.c reads it from If-Match): none, any version of an existing
 * session, or a list of versions (an empty list holds for none). */
typedef enum { SD_PRE_NONE = 0, SD_PRE_ANY, SD_PRE_VERSIONS } sd_pre_kind;
typedef struct sd_precond {
	sd_pre_kind kind;
	const int64_t *versions; /* SD_PRE_VERSIONS: n of them, borrowed */
	size_t n;
} sd_precond;

/* Save under the session's lock. An expired session is SD_ERR_NOT_FOUND
 * and nothing is written; b->ttl (checked by sd_doc_check_ttl) sets,
 * extends or removes the expiry, absent it stays. A body version that differs answers
 * SD_ERR_CONFLICT, a precondition (pre, may be NULL) that does not hold
 * SD_ERR_PRECONDITION; either way nothing is written and r->doc is the
 * current document. A precondition on a session that does not exist
 * answers SD_ERR_PRECONDITION with r->doc NULL. The words are the
 * caller's. */
sd_err sd_api_save(sd_store *s, const sd_save_body *b, const sd_precond *pre, sd_api_result *r);

/* Delete under the session's lock: the file is removed (and, with
 * durability full, its folder synced) before this returns, so a save
 * waiting for the lock then finds nothing (SD_ERR_NOT_FOUND). A stale
 * body version or precondition answers SD_ERR_CONFLICT / SD_ERR_PRECONDITION
 * with the current document in r->doc and removes nothing. An expired
 * session answers SD_ERR_NOT_FOUND (its file is removed all the same). */
sd_err sd_api_delete(sd_store *s, const sd_delete_body *b, const sd_precond *pre, sd_api_result *r);

#endif
