/* ctl_view.c: the commands that only read the store: list, show, stats and
 * export. Each file is read whole once without a session lock (a save swaps
 * a whole file into place, and sd_store_read's F_OFD read lock keeps a save
 * from writing the file under it: store.c, I7) and validated by sd_doc;
 * damaged entries are reported and skipped, and the command ends with
 * status 1. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_bucket.h"
#include "sd_ctl.h"
#include "sd_doc.h"
#include "sd_time.h"

/* ---- list ---------------------------------------------------------- */

typedef enum { SORT_KEY = 0, SORT_UPDATED, SORT_SIZE } sort_field;

/* One listed session: 56 bytes, so a million rows take ~56 MB. */
typedef struct row {
	int64_t version, size, created, updated, expires; /* expires 0: none */
	char key[SD_KEY_LEN + 1];
} row;

struct list_ctx {
	int has_before, has_after;
	int64_t before, after;
	row *rows;
	size_t n, cap;
	int oom;
};

static int list_add(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	struct list_ctx *l = arg;
	int64_t upd = ctl_doc_time(doc, "updated");
	if ((l->has_before && upd >= l->before) || (l->has_after && upd < l->after))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		row *r = realloc(l->rows, cap * sizeof *r);
		if (!r) {
			ctl_warn(c, "out of memory after %zu sessions", l->n);
			l->oom = 1;
			return 1;
		}
		l->rows = r;
		l->cap = cap;
	}
	row *r = &l->rows[l->n++];
	memcpy(r->key, key, sizeof r->key);
	r->version = sd_doc_version(doc);
	r->size = (int64_t)size;
	r->created = ctl_doc_time(doc, "created");
	r->updated = upd;
	r->expires = sd_doc_expires(doc);
	return 0;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const row *)a)->key, ((const row *)b)->key);
}

static int by_updated(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->updated != y->updated)
		return x->updated < y->updated ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int by_size(const void *a, const void *b)
{
	const row *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void print_rows(const sd_ctl *c, const row *rows, size_t n)
{
	char created[SD_TIME_LEN], updated[SD_TIME_LEN], expires[SD_TIME_LEN + 2];
	if (c->json)
		fputs("[", stdout);
	else
		printf("%-8s  %7s  %9s  %-24s  %-24s  %s\n", "KEY", "VERSION", "SIZE", "CREATED", "UPDATED",
		       "EXPIRES");
	for (size_t i = 0; i < n; i++) {
		const row *r = &rows[i];
		sd_time_format(r->created, created);
		sd_time_format(r->updated, updated);
		if (r->expires) {
			char t[SD_TIME_LEN];
			sd_time_format(r->expires, t);
			snprintf(expires, sizeof expires, c->json ? "\"%s\"" : "%s", t);
		} else {
			snprintf(expires, sizeof expires, "%s", c->json ? "null" : "-");
		}
		if (c->json)
			printf("%s\n{\"key\":\"%s\",\"version\":%lld,\"size\":%lld,\"created\":\"%s\","
			       "\"updated\":\"%s\",\"expires\":%s}",
			       i ? "," : "", r->key, (long long)r->version, (long long)r->size, created,
			       updated, expires);
		else
			printf("%-8s  %7lld  %9lld  %-24s  %-24s  %s\n", r->key, (long long)r->version,
			       (long long)r->size, created, updated, expires);
	}
	if (c->json)
		fputs(n ? "\n]\n" : "]\n", stdout);
}

/* list's options as given. */
struct list_args {
	struct list_ctx *l;
	sort_field sort;
	int reverse;
	int64_t limit; /* -1: no --limit */
};

/* One option of list; ctx is a struct list_args. Returns CTL_OK or CTL_USAGE. */
static int list_option(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	struct list_args *a = ctx;
	switch (ch) {
	case 'b':
		if (ctl_parse_when(arg, &a->l->before) != 0)
			return ctl_usage_error(c, "--updated-before: '%s' is not a time or a duration", arg);
		a->l->has_before = 1;
		break;
	case 'a':
		if (ctl_parse_when(arg, &a->l->after) != 0)
			return ctl_usage_error(c, "--updated-after: '%s' is not a time or a duration", arg);
		a->l->has_after = 1;
		break;
	case 's': {
		static const char *const names[] = {[SORT_KEY] = "key", [SORT_UPDATED] = "updated", [SORT_SIZE] = "size"};
		size_t i = 0;
		while (i < sizeof names / sizeof names[0] && strcmp(arg, names[i]) != 0)
			i++;
		if (i == sizeof names / sizeof names[0])
			return ctl_usage_error(c, "--sort must be updated, size or key, not '%s'", arg);
		a->sort = (sort_field)i;
		break;
	}
	case 'r':
		a->reverse = 1;
		break;
	case 'n':
		if (ctl_parse_count(arg, &a->limit) != 0)
			return ctl_usage_error(c, "--limit must be a positive number, not '%s'", arg);
		break;
	}
	return CTL_OK;
}

int ctl_list(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"updated-before", required_argument, 0, 'b'},
		{"updated-after", required_argument, 0, 'a'},
		{"sort", required_argument, 0, 's'},
		{"reverse", no_argument, 0, 'r'},
		{"limit", required_argument, 0, 'n'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	struct list_ctx l = {0};
	struct list_args a = {.l = &l, .sort = SORT_KEY, .limit = -1};
	int st = ctl_start(c, argc, argv, opts, list_option, &a);
	if (st != CTL_OK)
		return st;
	if (ctl_each_session(c, list_add, &l) != SD_OK || l.oom) {
		free(l.rows);
		return CTL_PROBLEMS;
	}
	if (l.n > 1)
		qsort(l.rows, l.n, sizeof *l.rows,
		      a.sort == SORT_UPDATED ? by_updated : a.sort == SORT_SIZE ? by_size : by_key);
	for (size_t i = 0; a.reverse && i < l.n / 2; i++) {
		row t = l.rows[i];
		l.rows[i] = l.rows[l.n - 1 - i];
		l.rows[l.n - 1 - i] = t;
	}
	print_rows(c, l.rows, a.limit >= 0 && (size_t)a.limit < l.n ? (size_t)a.limit : l.n);
	free(l.rows);
	return ctl_finish(c, ctl_status(c));
}

/* ---- show ---------------------------------------------------------- */

/* The file's bytes as they are; then say whether they make a valid session. */
static int show_raw(sd_ctl *c, const char *key)
{
	char *buf = NULL, msg[SD_MSG_MAX];
	size_t len = 0;
	sd_error er;
	sd_err e = sd_store_read(c->store, key, &buf, &len, &er);
	if (e == SD_ERR_NOT_FOUND) {
		ctl_warn(c, "no session %s", key);
		return CTL_PROBLEMS;
	}
	if (e != SD_OK) {
		ctl_warn(c, "%s: cannot read: %s", key, er.msg);
		return CTL_PROBLEMS;
	}
	int st = fwrite(buf, 1, len, stdout) == len ? CTL_OK : CTL_PROBLEMS;
	json_t *doc = NULL;
	if (sd_doc_parse_stored(buf, len, key, &doc, msg) != SD_OK) {
		ctl_warn(c, "%s: damaged: %s", key, msg);
		st = CTL_PROBLEMS;
	}
	json_decref(doc);
	free(buf);
	return ctl_finish(c, st);
}

int ctl_show(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"raw", no_argument, 0, 'r'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	int raw = 0;
	int st = ctl_options(c, argc, argv, opts, ctl_set_flag, &raw);
	if (st != CTL_OK)
		return st;
	if (optind != argc - 1)
		return ctl_usage_error(c, optind >= argc ? "which session? give its KEY"
							 : "give one KEY, not several");
	if (raw && c->json)
		return ctl_usage_error(c, "--raw and --json do not go together");
	char key[SD_KEY_LEN + 1];
	if (sd_key_normalize(argv[optind], strlen(argv[optind]), key) != SD_OK)
		return ctl_usage_error(c, "'%s' is not a key (8 letters or digits)", argv[optind]);
	st = ctl_open(c, 0);
	if (st != CTL_OK)
		return st;
	if (raw)
		return show_raw(c, key);
	json_t *doc;
	sd_error er;
	sd_err e = ctl_load(c, key, &doc, NULL, &er);
	if (e != SD_OK) {
		if (e == SD_ERR_NOT_FOUND)
			ctl_warn(c, "%s", er.msg);
		else
			ctl_warn(c, "%s: %s%s (sessionctl show --raw %s prints the bytes)", key,
				 e == SD_ERR_CORRUPT ? "damaged: " : "", er.msg, key);
		return CTL_PROBLEMS;
	}
	size_t len;
	char *text = c->json ? sd_doc_dump_compact(doc, &len) : sd_doc_dump(doc, &len);
	json_decref(doc);
	if (!text) {
		ctl_warn(c, "out of memory");
		return CTL_PROBLEMS;
	}
	fwrite(text, 1, len, stdout);
	if (c->json)
		fputc('\n', stdout);
	free(text);
	return ctl_finish(c, CTL_OK);
}

/* ---- stats --------------------------------------------------------- */

#define N_AGES 5
static const int64_t age_limit[N_AGES - 1] = {3600000LL, 86400000LL, 7 * 86400000LL, 30 * 86400000LL};
static const char *const age_label[N_AGES] = {"under 1h", "1h to 1d", "1d to 7d", "7d to 30d", "over 30d"};
static const char *const age_json[N_AGES] = {"under_1h", "1h_to_1d", "1d_to_7d", "7d_to_30d", "over_30d"};

struct stats_ctx {
	int64_t now, n, bytes, largest; /* bytes: of the session files */
	char largest_key[SD_KEY_LEN + 1];
	int64_t age[N_AGES];
};

static int stats_add(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	(void)c;
	struct stats_ctx *s = arg;
	s->n++;
	s->bytes += (int64_t)size;
	if (!s->largest_key[0] || (int64_t)size > s->largest ||
	    ((int64_t)size == s->largest && strcmp(key, s->largest_key) < 0)) {
		s->largest = (int64_t)size;
		memcpy(s->largest_key, key, sizeof s->largest_key);
	}
	int64_t age = s->now - ctl_doc_time(doc, "updated");
	int b = 0;
	while (b < N_AGES - 1 && age >= age_limit[b])
		b++;
	s->age[b]++;
	return 0;
}

static void stats_table(const sd_ctl *c, const struct stats_ctx *s)
{
	char h[32];
	printf("%-20s %lld\n", "sessions", (long long)s->n);
	printf("%-20s %lld\n", "spares", (long long)c->spares);
	const char *size_label[3] = {"session bytes", "spare bytes", "total size"};
	int64_t bytes[3] = {s->bytes, c->spare_bytes, s->bytes + c->spare_bytes};
	for (int i = 0; i < 3; i++)
		printf("%-20s %s (%lld bytes)\n", size_label[i], ctl_human_size(bytes[i], h, sizeof h),
		       (long long)bytes[i]);
	if (s->n)
		printf("%-20s %s, %s (%lld bytes)\n", "largest", s->largest_key,
		       ctl_human_size(s->largest, h, sizeof h), (long long)s->largest);
	else
		printf("%-20s -\n", "largest");
	for (int i = 0; i < N_AGES; i++) {
		char label[32];
		snprintf(label, sizeof label, "updated %s", age_label[i]);
		printf("%-20s %lld\n", label, (long long)s->age[i]);
	}
	printf("%-20s %lld\n", "temporary files", (long long)c->temp);
	printf("%-20s %lld\n", "damaged files", (long long)c->damaged);
	printf("%-20s %lld\n", "stray entries", (long long)c->stray);
}

static json_t *stats_json(const sd_ctl *c, const struct stats_ctx *s)
{
	json_t *ages = json_object();
	for (int i = 0; ages && i < N_AGES; i++)
		json_object_set_new(ages, age_json[i], json_integer(s->age[i]));
	json_t *largest = s->n ? json_pack("{s:s, s:I}", "key", s->largest_key, "size", (json_int_t)s->largest)
			       : json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "sessions", (json_int_t)s->n,
			 "spares", (json_int_t)c->spares, "session_size", (json_int_t)s->bytes, "spare_size",
			 (json_int_t)c->spare_bytes, "total_size", (json_int_t)(s->bytes + c->spare_bytes),
			 "largest", largest, "updated", ages,
			 "temp_files", (json_int_t)c->temp, "damaged", (json_int_t)c->damaged, "stray",
			 (json_int_t)c->stray);
}

int ctl_stats(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	int st = ctl_start(c, argc, argv, opts, NULL, NULL);
	if (st != CTL_OK)
		return st;
	struct stats_ctx s = {.now = sd_time_epoch_ms()};
	if (ctl_each_session(c, stats_add, &s) != SD_OK)
		return CTL_PROBLEMS;
	if (c->json) {
		if (ctl_print_json(stats_json(c, &s)) != 0)
			ctl_warn(c, "out of memory");
	} else {
		stats_table(c, &s);
	}
	return ctl_finish(c, ctl_status(c));
}

/* ---- export -------------------------------------------------------- */

struct export_ctx {
	int bucket;          /* --bucket, -1 for all */
	int has_after;
	int64_t after, n;
	int failed;
};

static int export_one(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	(void)size;
	struct export_ctx *x = arg;
	if (x->has_after && ctl_doc_time(doc, "updated") < x->after)
		return 0;
	if (x->bucket >= 0 && sd_bucket_index(key) != x->bucket)
		return 0;
	size_t len;
	char *line = sd_doc_dump_compact(doc, &len);
	if (!line) {
		ctl_warn(c, "out of memory");
		x->failed = 1;
		return 1;
	}
	int ok = fwrite(line, 1, len, stdout) == len && fputc('\n', stdout) != EOF;
	free(line);
	if (!ok) {
		x->failed = 1;
		return 1; /* ctl_finish says why */
	}
	x->n++;
	return 0;
}

/* export's --updated-after and --bucket; ctx is the struct export_ctx.
 * Returns CTL_OK or CTL_USAGE. */
static int export_option(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	struct export_ctx *x = ctx;
	if (ch == 'b') {
		if (ctl_parse_bucket(arg, &x->bucket) != 0)
			return ctl_usage_error(c, "--bucket: '%s' is not a bucket (two letters or digits)", arg);
		return CTL_OK;
	}
	if (ctl_parse_when(arg, &x->after) != 0)
		return ctl_usage_error(c, "--updated-after: '%s' is not a time or a duration", arg);
	x->has_after = 1;
	return CTL_OK;
}

int ctl_export(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"updated-after", required_argument, 0, 'a'},
		{"bucket", required_argument, 0, 'b'},
		{"json", no_argument, 0, 'j'}, /* the output is JSON Lines either way */
		{0, 0, 0, 0},
	};
	struct export_ctx x = {.bucket = -1};
	int st = ctl_start(c, argc, argv, opts, export_option, &x);
	if (st != CTL_OK)
		return st;
	if (ctl_each_session_in(c, x.bucket, export_one, &x) != SD_OK)
		return CTL_PROBLEMS;
	st = ctl_finish(c, ctl_status(c));
	if (x.failed)
		st = CTL_PROBLEMS;
	if (c->damaged || c->stray)
		ctl_warn(c, "exported %lld sessions; %lld damaged files and %lld stray entries were not "
			    "exported (see above)",
			 (long long)x.n, (long long)c->damaged, (long long)c->stray);
	return st;
}
