/* sd_docsplice: a save on the stored bytes, without parsing the stored
 * data. A file in the canonical layout that sd_doc_dump writes is checked
 * in one pass (sd_doc_peek) and split into its header fields, its meta and
 * its data; a save then parses only the old meta (small), and writes the
 * new document with the body's data (its canonical bytes as they are when
 * the save fast path gave them, b->data_canon), or, when the body sends
 * none, the old data's bytes as they are (when they are themselves
 * canonical). The
 * bytes written are the same as parsing the whole file, applying the save
 * (sd_doc_apply_save, sd_doc_set_expiry) and sd_doc_dump would write;
 * tests/unit/test_doc.c compares both over a table of documents. A file in
 * any other layout is left to that full path. */
#ifndef SD_DOCSPLICE_H
#define SD_DOCSPLICE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sd_doc.h"

/* A stored document in canonical layout; pointers into the file's bytes. */
typedef struct sd_doc_parts {
	char key[SD_KEY_LEN + 1];
	int64_t version;
	const char *created, *updated, *expires; /* expires NULL when none */
	size_t created_len, updated_len, expires_len;
	int64_t expires_ms;                      /* 0 when none */
	const char *meta, *data;                 /* the values' bytes */
	size_t meta_len, data_len;
} sd_doc_parts;

/* 1 when buf (the whole file) is a document for key that
 * sd_doc_parse_stored accepts, laid out as sd_doc_dump writes its header
 * (key, version, created, updated, expires, meta, data, each on its line),
 * with p filled in; 0 otherwise (then parse in full: that path gives the
 * verdict and the reason). */
int sd_doc_split(const char *buf, size_t len, const char *key, sd_doc_parts *p);

/* 1 when the n bytes at v, a JSON value that sd_doc_peek has checked, are
 * exactly what sd_doc_dump writes for that value nested at depth (the
 * document's members are at depth 1): indentation, escapes, numbers. */
int sd_doc_canonical(const char *v, size_t n, int depth);

/* sd_doc_dump of doc with canon, canon_len bytes already canonical at
 * depth 1 (sd_doc_canon) as its data, copied as they are; doc's own
 * "data" goes (the document keeps none, as a spliced one). malloc'd, or
 * NULL when memory ran out. */
char *sd_doc_dump_canon_data(json_t *doc, const char *canon, size_t canon_len, size_t *len);

/* A new session's document: key, version 1, created = updated = now,
 * meta and data (NULL: empty objects), ttl applied at now_ms (as sd_doc_new,
 * sd_doc_set_expiry and sd_doc_dump do), where data may instead come as
 * canon, canon_len bytes already canonical at depth 1 (sd_doc_canon), which
 * are copied as they are. On SD_OK, *out (malloc'd, *out_len bytes) is the
 * file and *doc the document (without "data" when it came as bytes);
 * SD_ERR_INTERNAL when memory ran out (sd_mem_exceeded says whether the
 * budget did), with nothing held. */
sd_err sd_doc_splice_new(const char *key, const json_t *meta, const json_t *data, const char *canon,
			 size_t canon_len, const sd_ttl_req *ttl, const char *now, int64_t now_ms, json_t **doc,
			 char **out, size_t *out_len);

/* Apply a save to a split document: meta merged, data replaced when the
 * body has it, version + 1, updated = now, b->ttl applied at now_ms (as
 * sd_doc_apply_save and sd_doc_set_expiry do). On SD_OK, *out (malloc'd,
 * *out_len bytes) is the new file and *doc the new document's fields
 * except "data" when the data was written as bytes (the old data kept, or
 * the body's b->data_canon). SD_ERR_VERSION_LIMIT
 * when the version is at its largest, SD_ERR_INTERNAL when memory ran out
 * (sd_mem_exceeded says whether the budget did). */
sd_err sd_doc_splice_save(const sd_doc_parts *old, const sd_save_body *b, const char *now, int64_t now_ms,
			  json_t **doc, char **out, size_t *out_len);

#endif
