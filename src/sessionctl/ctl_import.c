/* ctl_import.c: import, the inverse of export. Reads JSON Lines from stdin,
 * validates each document as a stored session (sd_doc), serialises it in
 * the canonical on-disk form and writes it with the store's atomic create
 * (or, with --force, the locked replace of sd_store_put), keeping version
 * and timestamps as they are. Reports imported, skipped and rejected lines. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sd_bucket.h"
#include "sd_ctl.h"
#include "sd_doc.h"

typedef struct reject {
	int64_t line;
	char *reason;
} reject;

struct import_ctx {
	int force;
	int bucket;           /* --bucket: only this bucket's sessions, -1 for any */
	int prune;            /* --prune: remove the bucket's sessions not in the input */
	char (*seen)[SD_KEY_LEN + 1]; /* keys read, for --prune */
	size_t n_seen, cap_seen;
	int64_t imported, skipped, pruned;
	int failed_prune;
	reject *rej;
	size_t n_rej, cap_rej;
};

static int add_reject(sd_ctl *c, struct import_ctx *m, int64_t line, const char *reason)
{
	ctl_warn(c, "line %lld: %s", (long long)line, reason);
	if (m->n_rej == m->cap_rej) {
		size_t cap = m->cap_rej ? m->cap_rej * 2 : 64;
		reject *r = realloc(m->rej, cap * sizeof *r);
		if (!r)
			return -1;
		m->rej = r;
		m->cap_rej = cap;
	}
	char *s = strdup(reason);
	if (!s)
		return -1;
	m->rej[m->n_rej].line = line;
	m->rej[m->n_rej].reason = s;
	m->n_rej++;
	return 0;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

sd_err ctl_import_prepare(const char *line, size_t n, json_t **doc, char **bytes, size_t *len,
			  char msg[SD_MSG_MAX])
{
	*bytes = NULL;
	sd_err e = sd_doc_parse_stored(line, n, NULL, doc, msg);
	if (e != SD_OK)
		return e;
	*bytes = sd_doc_dump(*doc, len);
	if (!*bytes) {
		json_decref(*doc);
		*doc = NULL;
		snprintf(msg, SD_MSG_MAX, "out of memory");
		return SD_ERR_INTERNAL;
	}
	return SD_OK;
}

/* Note a key read, for --prune. Returns -1 when out of memory. */
static int remember(struct import_ctx *m, const char *key)
{
	if (m->n_seen == m->cap_seen) {
		size_t cap = m->cap_seen ? m->cap_seen * 2 : 256;
		char(*p)[SD_KEY_LEN + 1] = realloc(m->seen, cap * sizeof *p);
		if (!p)
			return -1;
		m->seen = p;
		m->cap_seen = cap;
	}
	snprintf(m->seen[m->n_seen++], SD_KEY_LEN + 1, "%s", key);
	return 0;
}

static int key_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* --prune: remove a session of the bucket that the input did not list,
 * under its lock, as gc does. */
static int prune_one(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	(void)doc;
	(void)size;
	struct import_ctx *m = arg;
	if (sd_bucket_index(key) != m->bucket || (m->n_seen && bsearch(key, m->seen, m->n_seen, sizeof *m->seen, key_cmp)))
		return 0;
	sd_lock *l;
	char *buf;
	size_t len;
	sd_err e = sd_store_lock(c->store, key, &l, &buf, &len, NULL);
	if (e == SD_OK) {
		free(buf);
		e = sd_store_remove(l, NULL);
		sd_store_unlock(l);
	}
	if (e == SD_OK)
		m->pruned++;
	else if (e != SD_ERR_NOT_FOUND) {
		m->failed_prune = 1;
		ctl_warn(c, "%s: cannot remove it: %s", key, sd_err_message(e));
	}
	return 0;
}

/* One line: validate, serialise, write. Returns -1 only when out of memory. */
static int import_line(sd_ctl *c, struct import_ctx *m, int64_t lineno, const char *line, size_t n)
{
	char msg[SD_MSG_MAX], reason[SD_MSG_MAX + 64];
	json_t *doc = NULL;
	char *bytes;
	size_t len;
	sd_err pe = ctl_import_prepare(line, n, &doc, &bytes, &len, msg);
	if (pe == SD_ERR_INTERNAL)
		return -1;
	if (pe != SD_OK)
		return add_reject(c, m, lineno, msg);
	const char *key = json_string_value(json_object_get(doc, "key"));
	int r = 0;
	if (m->bucket >= 0 && sd_bucket_index(key) != m->bucket) {
		snprintf(reason, sizeof reason, "session %s is not in the bucket given with --bucket", key);
		free(bytes);
		json_decref(doc);
		return add_reject(c, m, lineno, reason);
	}
	if (m->prune && remember(m, key) != 0) {
		free(bytes);
		json_decref(doc);
		return -1;
	}
	sd_err e = m->force ? sd_store_put(c->store, key, bytes, len) : sd_store_create(c->store, key, bytes, len);
	if (e == SD_OK) {
		m->imported++;
	} else if (e == SD_ERR_EXISTS) {
		m->skipped++;
	} else {
		snprintf(reason, sizeof reason, "cannot write session %s: %s", key,
			 e == SD_ERR_STORAGE_FULL ? "no space left" : e == SD_ERR_BUSY ? "its lock is busy"
			 : e == SD_ERR_FROZEN ? "its bucket is frozen" : "I/O error");
		r = add_reject(c, m, lineno, reason);
	}
	free(bytes);
	json_decref(doc);
	return r;
}

static void report(const sd_ctl *c, const struct import_ctx *m)
{
	if (c->json) {
		json_t *rej = json_array();
		for (size_t i = 0; rej && i < m->n_rej; i++)
			json_array_append_new(rej, json_pack("{s:I, s:s}", "line", (json_int_t)m->rej[i].line,
							     "reason", m->rej[i].reason));
		if (ctl_print_json(json_pack("{s:I, s:I, s:I, s:I, s:o}", "imported", (json_int_t)m->imported,
					     "skipped", (json_int_t)m->skipped, "pruned", (json_int_t)m->pruned, "rejected",
					     (json_int_t)m->n_rej, "rejects", rej)) != 0)
			ctl_warn(c, "out of memory");
		return;
	}
	printf("imported %lld, skipped %lld (already in the store%s), rejected %zu", (long long)m->imported,
	       (long long)m->skipped, m->force ? "" : "; --force overwrites", m->n_rej);
	if (m->prune)
		printf(", pruned %lld", (long long)m->pruned);
	for (size_t i = 0; i < m->n_rej && i < 20; i++)
		printf("%s%lld", i ? ", " : " (lines ", (long long)m->rej[i].line);
	if (m->n_rej > 20)
		printf(", ...");
	printf("%s\n", m->n_rej ? ")" : "");
}

static int import_option(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	struct import_ctx *m = ctx;
	if (ch == 'f')
		m->force = 1;
	else if (ch == 'p')
		m->prune = 1;
	else if (ctl_parse_bucket(arg, &m->bucket) != 0)
		return ctl_usage_error(c, "--bucket: '%s' is not a bucket (two letters or digits)", arg);
	return CTL_OK;
}

int ctl_import(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, 0, 'f'},
		{"bucket", required_argument, 0, 'b'},
		{"prune", no_argument, 0, 'p'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	struct import_ctx m = {.bucket = -1};
	int st = ctl_options(c, argc, argv, opts, import_option, &m);
	if (st == CTL_OK && m.prune && (m.bucket < 0 || !m.force))
		st = ctl_usage_error(c, "--prune needs --bucket XY and --force (the input is then the whole bucket)");
	if (st == CTL_OK)
		st = ctl_no_args(c, argc, argv, " (the documents come on stdin)");
	if (st == CTL_OK)
		st = ctl_open(c, 1);
	if (st != CTL_OK)
		return st;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int64_t lineno = 0;
	if (isatty(STDIN_FILENO))
		ctl_warn(c, "reading JSON Lines from the terminal; end with Ctrl-D (or: sessionctl import < FILE)");
	while ((n = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if (blank(line, (size_t)n))
			continue;
		if (import_line(c, &m, lineno, line, (size_t)n) != 0) {
			ctl_warn(c, "out of memory at line %lld", (long long)lineno);
			st = CTL_PROBLEMS;
			break;
		}
	}
	if (ferror(stdin)) {
		ctl_warn(c, "cannot read stdin after line %lld", (long long)lineno);
		st = CTL_PROBLEMS;
	}
	free(line);
	/* Prune only after a whole, clean input: a short read must not delete. */
	if (m.prune && st == CTL_OK && !m.n_rej) {
		if (m.n_seen > 1)
			qsort(m.seen, m.n_seen, sizeof *m.seen, key_cmp);
		if (ctl_each_session_in(c, m.bucket, prune_one, &m) != SD_OK || m.failed_prune)
			st = CTL_PROBLEMS;
	}
	free(m.seen);
	report(c, &m);
	if (m.n_rej)
		st = CTL_PROBLEMS;
	for (size_t i = 0; i < m.n_rej; i++)
		free(m.rej[i].reason);
	free(m.rej);
	return ctl_finish(c, st);
}
