/* api.c: the session operations. Request bodies arrive validated (sd_doc);
 * each operation reads or changes documents through sd_store and returns
 * an sd_err with the resulting document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_api.h"
#include "sd_docsplice.h"
#include "sd_log.h"
#include "sd_mem.h"
#include "sd_metrics.h"
#include "sd_time.h"

void sd_api_result_free(sd_api_result *r)
{
	if (!r)
		return;
	json_decref(r->doc);
	r->doc = NULL;
	free(r->raw);
	r->raw = NULL;
}

static void result_init(sd_api_result *r)
{
	memset(r, 0, sizeof *r);
}

/* Parse and validate a stored session's bytes (freed here). A damaged file
 * is logged with its details; msg is then cleared, so the client gets the
 * fixed sentence, not the file's details. */
static sd_err parse_stored(const char *key, char *buf, size_t len, json_t **doc, char msg[SD_MSG_MAX])
{
	sd_err e = sd_doc_parse_stored(buf, len, key, doc, msg);
	free(buf);
	if (e == SD_ERR_CORRUPT) {
		sd_log_error("session %s is damaged: %s", key, msg);
		msg[0] = '\0';
	}
	return e;
}

/* Read and validate a stored session that has not expired by now_ms. */
static sd_err load_doc(sd_store *s, const char *key, int64_t now_ms, json_t **doc, char msg[SD_MSG_MAX])
{
	char *buf;
	size_t len;
	sd_err e = sd_store_read(s, key, &buf, &len, NULL);
	if (e == SD_OK)
		e = parse_stored(key, buf, len, doc, msg);
	if (e == SD_OK && sd_doc_expired(*doc, now_ms)) {
		json_decref(*doc);
		*doc = NULL;
		e = SD_ERR_NOT_FOUND;
	}
	return e;
}

sd_err sd_api_instantiate(sd_store *s, const sd_inst_body *b, const sd_key_draw *draw, sd_api_result *r)
{
	result_init(r);
	json_t *src = NULL;
	const json_t *meta = b->meta, *data = b->data;
	int64_t now_ms = sd_time_epoch_ms();
	if (b->has_from) {
		sd_err e = load_doc(s, b->from, now_ms, &src, r->msg);
		if (e != SD_OK) {
			if (e == SD_ERR_NOT_FOUND)
				snprintf(r->msg, sizeof r->msg, "No session %s to copy from.", b->from);
			return e;
		}
		meta = json_object_get(src, "meta");
		data = json_object_get(src, "data");
	}
	char now[SD_TIME_LEN];
	sd_time_format(now_ms, now);
	sd_err e = SD_ERR_BUSY;
	int i;
	for (i = 0; i < SD_API_KEY_TRIES; i++) {
		char key[SD_KEY_LEN + 1];
		sd_key_draw_new(key, draw);
		size_t len;
		json_t *doc;
		char *bytes;
		e = sd_doc_splice_new(key, meta, data, b->data_canon, b->data_canon_len, &b->ttl, now, now_ms, &doc,
				      &bytes, &len);
		if (e != SD_OK) { /* out of memory (the request's budget, the pool): no key was tried */
			e = sd_mem_error(SD_ERR_INTERNAL);
			if (sd_mem_exceeded())
				snprintf(r->msg, sizeof r->msg, "%s", sd_mem_message());
			break;
		}
		e = sd_store_create(s, key, bytes, len);
		free(bytes);
		if (e == SD_OK) {
			memcpy(r->key, key, sizeof key);
			r->doc = doc;
			break;
		}
		if (e == SD_ERR_UNSYNCED) { /* it exists: the client must learn its key */
			memcpy(r->key, key, sizeof key);
			snprintf(r->msg, sizeof r->msg,
				 "Session %s was created, but the server could not confirm it is on disk; "
				 "load it to check, or instantiate again.", key);
			json_decref(doc);
			break;
		}
		json_decref(doc);
		if (e == SD_ERR_FROZEN) { /* a bucket frozen for a move: draw elsewhere */
			e = SD_ERR_BUSY;
			continue;
		}
		if (e != SD_ERR_EXISTS)
			break;
		sd_metrics_add(SD_M_KEY_COLLISIONS, 1);
		sd_log_warn("key collision: %s already exists, drawing again", key);
		e = SD_ERR_BUSY;
	}
	if (i == SD_API_KEY_TRIES) /* every key drawn was taken, or in a frozen bucket */
		snprintf(r->msg, sizeof r->msg, "Every key drawn (%d) was taken; retry.", SD_API_KEY_TRIES);
	json_decref(src);
	return e;
}

sd_err sd_api_load(sd_store *s, const char *key, sd_api_result *r)
{
	result_init(r);
	memcpy(r->key, key, SD_KEY_LEN + 1);
	char *buf;
	size_t len;
	sd_err e = sd_store_read(s, key, &buf, &len, NULL);
	if (e != SD_OK)
		return e;
	int64_t now_ms = sd_time_epoch_ms(), expires = 0;
	int x = sd_doc_peek(buf, len, key, &r->version) ? sd_doc_peek_expires(buf, len, &expires) : -1;
	if (x >= 0) {
		if (x == 1 && expires <= now_ms) {
			free(buf);
			return SD_ERR_NOT_FOUND; /* expired: gone, whether or not swept yet */
		}
		r->raw = buf;
		r->raw_len = len;
		return SD_OK;
	}
	e = parse_stored(key, buf, len, &r->doc, r->msg);
	if (e == SD_OK && sd_doc_expired(r->doc, now_ms)) {
		json_decref(r->doc);
		r->doc = NULL;
		return SD_ERR_NOT_FOUND;
	}
	if (e == SD_OK)
		r->version = sd_doc_version(r->doc);
	return e;
}

static int has_precond(const sd_precond *pre) { return pre && pre->kind != SD_PRE_NONE; }

static int precond_holds(const sd_precond *pre, int64_t version)
{
	if (!has_precond(pre) || pre->kind == SD_PRE_ANY)
		return 1;
	for (size_t i = 0; i < pre->n; i++)
		if (pre->versions[i] == version)
			return 1;
	return 0;
}

/* Take a session's lock for a write, counting the wait and a timeout. */
static sd_err lock_for_write(sd_store *s, const char *key, sd_lock **l, char **buf, size_t *len)
{
	int64_t waited = 0;
	sd_err e = sd_store_lock(s, key, l, buf, len, &waited);
	sd_metrics_lock_wait(waited);
	if (e == SD_ERR_BUSY) {
		sd_metrics_add(SD_M_LOCK_TIMEOUTS, 1);
		sd_log_warn("lock timeout on session %s after %lld ms", key, (long long)(waited / SD_NS_PER_MS));
	}
	return e;
}

/* The conditions of a write on the locked document: SD_ERR_PRECONDITION
 * when pre does not hold for its version, SD_ERR_CONFLICT when the body
 * version names another one. */
static sd_err check_version(const json_t *doc, const sd_precond *pre, int has_version, int64_t version)
{
	int64_t cur = sd_doc_version(doc);
	if (!precond_holds(pre, cur))
		return SD_ERR_PRECONDITION;
	if (has_version && version != cur)
		return SD_ERR_CONFLICT;
	return SD_OK;
}

/* The save on the stored bytes, parsing neither the old data nor the
 * rest of the file (docsplice.c): 1 when it decided, with *e and, on
 * SD_OK, the new document and the bytes to write, buf freed; 0 when the
 * full path must decide: the file is not in canonical layout, or a version
 * check fails (its answer carries the whole current document). */
static int save_spliced(const sd_save_body *b, const sd_precond *pre, char *buf, size_t len, const char *now,
			int64_t now_ms, sd_err *e, json_t **doc, char **bytes, size_t *out_len)
{
	sd_doc_parts old;
	if (!sd_doc_split(buf, len, b->key, &old) || !precond_holds(pre, old.version) ||
	    (b->has_version && b->version != old.version))
		return 0;
	if (old.expires_ms && old.expires_ms <= now_ms)
		*e = SD_ERR_NOT_FOUND; /* gone; the sweeper removes the file */
	else
		*e = sd_doc_splice_save(&old, b, now, now_ms, doc, bytes, out_len);
	free(buf);
	return 1;
}

/* Write a staged save (bytes, owned and freed here, from *doc) or answer
 * why it was not staged (e): on SD_OK the new document moves to r->doc. */
static sd_err write_staged(sd_lock *l, const char *key, json_t **doc, char *bytes, size_t len, sd_err e,
			   sd_api_result *r)
{
	if (e == SD_OK && !bytes)
		e = SD_ERR_INTERNAL;
	if (e == SD_ERR_INTERNAL && sd_mem_exceeded()) { /* nothing was written */
		e = sd_mem_error(e);
		snprintf(r->msg, sizeof r->msg, "%s", sd_mem_message());
	}
	if (e == SD_OK)
		e = sd_store_replace(l, bytes, len);
	free(bytes);
	if (e == SD_OK) {
		r->doc = *doc;
		*doc = NULL;
	} else if (e == SD_ERR_UNSYNCED) {
		snprintf(r->msg, sizeof r->msg,
			 "The new version %lld may be in place: the server could not confirm it is on disk. "
			 "Load the session before saving again.", (long long)sd_doc_version(*doc));
	} else if (e == SD_ERR_TOO_LARGE || e == SD_ERR_BUSY || e == SD_ERR_VERSION_LIMIT || e == SD_ERR_FROZEN) {
		/* refused before any write (memory budget, version ceiling, a frozen bucket) */
	} else if (e == SD_ERR_STORAGE_FULL) {
		sd_log_error("storage full while saving session %s; the old document stays", key);
	} else {
		sd_log_error("write failed for session %s", key);
	}
	return e;
}

/* How begin_write answers a precondition on a session that does not exist. */
enum { MISSING_NOT_FOUND = 0, MISSING_PRECONDITION = 1 };

/* The start of a save or delete: r cleared and given the key, the
 * session's lock taken with its stored bytes. A session that does not
 * exist is SD_ERR_NOT_FOUND, or SD_ERR_PRECONDITION when pre is set and
 * missing is MISSING_PRECONDITION (a save: RFC 9110, no current entity
 * matches); a delete keeps 404 (nothing to remove either way). */
static sd_err begin_write(sd_store *s, const char *key, const sd_precond *pre, int missing, sd_api_result *r,
			  sd_lock **l, char **buf, size_t *len)
{
	result_init(r);
	memcpy(r->key, key, SD_KEY_LEN + 1);
	sd_err e = lock_for_write(s, key, l, buf, len);
	if (e == SD_ERR_NOT_FOUND && has_precond(pre) && missing == MISSING_PRECONDITION)
		e = SD_ERR_PRECONDITION;
	return e;
}

sd_err sd_api_save(sd_store *s, const sd_save_body *b, const sd_precond *pre, sd_api_result *r)
{
	sd_lock *l;
	char *buf;
	size_t len;
	sd_err e = begin_write(s, b->key, pre, MISSING_PRECONDITION, r, &l, &buf, &len);
	if (e != SD_OK)
		return e;
	json_t *doc = NULL;
	char *bytes = NULL;
	int64_t now_ms = sd_time_epoch_ms();
	char now[SD_TIME_LEN];
	sd_time_format(now_ms, now);
	int staged = 0; /* the save was applied: what follows is the write's outcome */
	if (save_spliced(b, pre, buf, len, now, now_ms, &e, &doc, &bytes, &len)) {
		staged = e != SD_ERR_NOT_FOUND;
	} else {
		e = parse_stored(b->key, buf, len, &doc, r->msg);
		if (e == SD_OK && sd_doc_expired(doc, now_ms))
			e = SD_ERR_NOT_FOUND; /* gone; the sweeper removes the file */
		if (e == SD_OK) {
			e = check_version(doc, pre, b->has_version, b->version);
			if (e != SD_OK) {
				sd_metrics_add(SD_M_CONFLICTS, 1);
				r->doc = doc; /* the current document, for the client to merge */
				doc = NULL;
			}
		}
		/* Data the fast parse gave as canonical bytes is put in place as
		 * they are, not parsed again: a second parse would reserve its
		 * bound beside the bytes, and refuse a body the full parse takes. */
		sd_save_body kept = *b;
		kept.data_canon = NULL;
		if (e == SD_OK) {
			staged = 1;
			e = sd_doc_apply_save(doc, &kept, now);
		}
		if (e == SD_OK)
			e = sd_doc_set_expiry(doc, &b->ttl, now_ms);
		if (e == SD_OK)
			bytes = b->data_canon ? sd_doc_dump_canon_data(doc, b->data_canon, b->data_canon_len, &len)
					      : sd_doc_dump(doc, &len);
	}
	if (staged)
		e = write_staged(l, b->key, &doc, bytes, len, e, r);
	json_decref(doc);
	sd_store_unlock(l);
	return e;
}

sd_err sd_api_delete(sd_store *s, const sd_delete_body *b, const sd_precond *pre, sd_api_result *r)
{
	sd_lock *l;
	char *buf;
	size_t len;
	sd_err e = begin_write(s, b->key, pre, MISSING_NOT_FOUND, r, &l, &buf, &len);
	if (e != SD_OK)
		return e;
	json_t *doc = NULL;
	int conditional = b->has_version || has_precond(pre);
	e = parse_stored(b->key, buf, len, &doc, r->msg);
	int expired = e == SD_OK && sd_doc_expired(doc, sd_time_epoch_ms());
	if (e == SD_ERR_CORRUPT && !conditional)
		e = SD_OK; /* erasure does not need the content: a damaged file goes too */
	else if (e == SD_OK && !expired)
		e = check_version(doc, pre, b->has_version, b->version);
	if (e == SD_ERR_CONFLICT || e == SD_ERR_PRECONDITION) {
		sd_metrics_add(SD_M_CONFLICTS, 1);
		r->doc = doc;
		doc = NULL;
	}
	if (e == SD_OK) {
		e = sd_store_remove(l, NULL);
		if (e == SD_OK) {
			sd_metrics_add(expired ? SD_M_SESSIONS_EXPIRED : SD_M_SESSIONS_DELETED, 1);
			if (expired)
				e = SD_ERR_NOT_FOUND; /* it was already gone for clients */
		} else if (e != SD_ERR_NOT_FOUND && e != SD_ERR_FROZEN) { /* frozen: refused, nothing removed */
			sd_log_error("delete failed for session %s", b->key);
		}
	}
	json_decref(doc);
	sd_store_unlock(l);
	return e;
}
