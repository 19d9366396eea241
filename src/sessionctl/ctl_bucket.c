/* ctl_bucket.c: the commands a bucket move is made of (scripts/move-bucket):
 * bucket freeze|thaw|moved|state (the node-local freeze barrier of
 * sd_bucket.h) and manifest --bucket (key, version and sha256 of each
 * session, sorted by key, to compare two nodes' copies of a bucket). */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sd_bucket.h"
#include "sd_ctl.h"
#include "sd_doc.h"
#include "sd_time.h"

int ctl_parse_bucket(const char *s, int *bucket)
{
	if (!s || strlen(s) != 2)
		return -1;
	*bucket = sd_bucket_index(s);
	return *bucket < 0 ? -1 : 0;
}

/* ---- bucket ----------------------------------------------------------- */

/* Move sessions/XY aside to moved/XY.<UTC time>/ (the old owner's copy,
 * kept until the next backup). The bucket is already moved, so no writer
 * is inside. Returns CTL_OK or CTL_PROBLEMS after saying why. */
static int set_aside(sd_ctl *c, const char *name)
{
	char from[4200], dir[4200], to[4300], when[SD_TIME_LEN];
	snprintf(from, sizeof from, "%s/sessions/%s", c->data_dir, name);
	snprintf(dir, sizeof dir, "%s/moved", c->data_dir);
	sd_time_format(sd_time_epoch_ms(), when);
	snprintf(to, sizeof to, "%s/%s.%s", dir, name, when);
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		ctl_warn(c, "cannot create %s: %s", dir, strerror(errno));
		return CTL_PROBLEMS;
	}
	if (rename(from, to) != 0 && errno != ENOENT) {
		ctl_warn(c, "cannot move %s aside to %s: %s", from, to, strerror(errno));
		return CTL_PROBLEMS;
	}
	if (!c->json && access(to, F_OK) == 0)
		printf("%s's sessions are kept in %s until the next backup\n", name, ctl_rel(c, to));
	return CTL_OK;
}

/* A thawed bucket needs its folder back (moved aside earlier): a running
 * sessiond remembers that it made it once. */
static int restore_folder(sd_ctl *c, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/sessions/%s", c->data_dir, name);
	if (mkdir(path, 0750) != 0 && errno != EEXIST) {
		ctl_warn(c, "cannot create %s: %s", path, strerror(errno));
		return CTL_PROBLEMS;
	}
	return CTL_OK;
}

static int print_state(sd_ctl *c, int bucket, json_t *all)
{
	char name[3], msg[SD_MSG_MAX];
	sd_bstate st;
	sd_bucket_name(bucket, name);
	if (sd_bucket_get(c->data_dir, bucket, &st, msg) != SD_OK) {
		ctl_warn(c, "%s: %s", name, msg);
		return CTL_PROBLEMS;
	}
	if (all) /* only the ones that are not open */
		return st == SD_BSTATE_OPEN ? CTL_OK
		       : json_object_set_new(all, name, json_string(sd_bstate_name(st))) == 0 ? CTL_OK : CTL_PROBLEMS;
	if (c->json)
		return ctl_print_json(json_pack("{s:s, s:s}", "bucket", name, "state", sd_bstate_name(st))) == 0
			       ? CTL_OK
			       : CTL_PROBLEMS;
	printf("%s %s\n", name, sd_bstate_name(st));
	return CTL_OK;
}

int ctl_bucket(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
	int st = ctl_options(c, argc, argv, opts, NULL, NULL);
	if (st != CTL_OK)
		return st;
	if (optind >= argc)
		return ctl_usage_error(c, "which action: freeze, thaw, moved or state?");
	const char *action = argv[optind++];
	int bucket = -1;
	const char *arg = optind < argc ? argv[optind++] : NULL;
	if (arg && ctl_parse_bucket(arg, &bucket) != 0)
		return ctl_usage_error(c, "'%s' is not a bucket (two letters or digits)", arg);
	if ((st = ctl_no_args(c, argc, argv, "")) != CTL_OK)
		return st;
	if ((st = ctl_open(c, 0)) != CTL_OK)
		return st;
	char name[3] = "", msg[SD_MSG_MAX];
	if (bucket >= 0)
		sd_bucket_name(bucket, name);
	if (strcmp(action, "state") == 0) {
		if (bucket >= 0)
			return ctl_finish(c, print_state(c, bucket, NULL));
		json_t *all = json_object();
		for (int b = 0; all && b < SD_BUCKET_COUNT && st == CTL_OK; b++)
			st = print_state(c, b, all);
		if (!all)
			st = CTL_PROBLEMS;
		if (st == CTL_OK && c->json) {
			st = ctl_print_json(json_incref(all)) == 0 ? CTL_OK : CTL_PROBLEMS;
		} else if (st == CTL_OK) {
			const char *k;
			json_t *v;
			json_object_foreach(all, k, v)
				printf("%s %s\n", k, json_string_value(v));
			if (json_object_size(all) == 0)
				printf("every bucket is open\n");
		}
		json_decref(all);
		return ctl_finish(c, st);
	}
	sd_bstate to;
	if (strcmp(action, "freeze") == 0)
		to = SD_BSTATE_FROZEN;
	else if (strcmp(action, "thaw") == 0)
		to = SD_BSTATE_OPEN;
	else if (strcmp(action, "moved") == 0)
		to = SD_BSTATE_MOVED;
	else
		return ctl_usage_error(c, "unknown action '%s' (freeze, thaw, moved or state)", action);
	if (bucket < 0)
		return ctl_usage_error(c, "%s needs a bucket", action);
	if (sd_bucket_set(c->data_dir, bucket, to, msg) != SD_OK) {
		ctl_warn(c, "%s: %s", name, msg);
		return CTL_PROBLEMS;
	}
	st = to == SD_BSTATE_MOVED ? set_aside(c, name) : to == SD_BSTATE_OPEN ? restore_folder(c, name) : CTL_OK;
	return st == CTL_OK ? ctl_finish(c, print_state(c, bucket, NULL)) : st;
}

/* ---- manifest ---------------------------------------------------------- */

struct row {
	char key[SD_KEY_LEN + 1];
	json_int_t version;
	char sha[crypto_hash_sha256_BYTES * 2 + 1];
};

struct manifest_ctx {
	int bucket;
	struct row *rows;
	size_t n, cap;
	int failed;
};

static int manifest_one(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	(void)size;
	struct manifest_ctx *m = arg;
	if (sd_bucket_index(key) != m->bucket)
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct row *r = realloc(m->rows, cap * sizeof *r);
		if (!r) {
			ctl_warn(c, "out of memory");
			m->failed = 1;
			return 1;
		}
		m->rows = r;
		m->cap = cap;
	}
	/* The hash covers the document as export writes it, so it does not
	 * depend on how a node laid the file out. */
	size_t len;
	char *line = sd_doc_dump_compact(doc, &len);
	if (!line) {
		ctl_warn(c, "out of memory");
		m->failed = 1;
		return 1;
	}
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)line, len);
	free(line);
	struct row *r = &m->rows[m->n++];
	snprintf(r->key, sizeof r->key, "%s", key);
	r->version = json_integer_value(json_object_get(doc, "version"));
	sodium_bin2hex(r->sha, sizeof r->sha, h, sizeof h);
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->key, ((const struct row *)b)->key);
}

static int manifest_option(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	(void)ch;
	if (ctl_parse_bucket(arg, ctx) != 0)
		return ctl_usage_error(c, "--bucket: '%s' is not a bucket (two letters or digits)", arg);
	return CTL_OK;
}

int ctl_manifest(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"bucket", required_argument, 0, 'b'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	struct manifest_ctx m = {.bucket = -1};
	int st = ctl_start(c, argc, argv, opts, manifest_option, &m.bucket);
	if (st != CTL_OK)
		return st;
	if (m.bucket < 0)
		return ctl_usage_error(c, "--bucket XY is required");
	if (sodium_init() < 0) {
		ctl_warn(c, "libsodium failed to start");
		return CTL_PROBLEMS;
	}
	if (ctl_each_session_in(c, m.bucket, manifest_one, &m) != SD_OK || m.failed) {
		free(m.rows);
		return CTL_PROBLEMS;
	}
	if (m.n > 1)
		qsort(m.rows, m.n, sizeof *m.rows, by_key);
	for (size_t i = 0; i < m.n && st == CTL_OK; i++) {
		struct row *r = &m.rows[i];
		if (c->json)
			st = ctl_print_json(json_pack("{s:s, s:I, s:s}", "key", r->key, "version", r->version,
						      "sha256", r->sha)) == 0 ? CTL_OK : CTL_PROBLEMS;
		else
			printf("%s %lld %s\n", r->key, (long long)r->version, r->sha);
	}
	free(m.rows);
	st = ctl_finish(c, st);
	return st == CTL_OK ? ctl_status(c) : st;
}
