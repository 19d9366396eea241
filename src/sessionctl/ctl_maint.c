/* ctl_maint.c: the commands that change what is already in the store: fsck
 * (check every entry; --repair quarantines what is bad and removes crash
 * leftovers) and gc (delete sessions not updated for a while). Every change
 * to a session file happens under the session's lock, taken exactly as a
 * save takes it, and only after the file has been read again under that
 * lock: a save that got in first is never undone. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_ctl.h"
#include "sd_doc.h"
#include "sd_layout.h"
#include "sd_sweep.h"
#include "sd_time.h"


/* ---- fsck ---------------------------------------------------------- */

struct fsck_ctx {
	sd_ctl *c;
	int repair;
	int64_t now;
	int64_t sessions, ok, problems, repaired, writing;
	size_t shown;   /* findings printed so far (JSON separators) */
};

/* One line of the report. action is NULL when nothing was attempted. */
static void finding(struct fsck_ctx *f, const char *kind, const char *path, const char *detail,
		    const char *action, int problem, int repaired)
{
	if (problem)
		f->problems++;
	if (repaired)
		f->repaired++;
	if (f->c->json) {
		json_t *v = json_pack("{s:s, s:s, s:s, s:b, s:o}", "kind", kind, "path", path, "detail",
				      detail, "problem", problem, "action",
				      action ? json_string(action) : json_null());
		char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
		if (s)
			printf("%s\n%s", f->shown ? "," : "", s);
		free(s);
		json_decref(v);
	} else {
		printf("%-10s  %s: %s%s%s%s\n", kind, ctl_rel(f->c, path), detail, action ? " [" : "",
		       action ? action : "", action ? "]" : "");
	}
	f->shown++;
}

/* Quarantine a damaged session and its spare: under its lock, and only if
 * what the lock reads is still damaged (an import --force may have fixed
 * it meanwhile). */
static int repair_session(struct fsck_ctx *f, const sd_entry *e, char *action, size_t n)
{
	sd_store *s = f->c->store;
	sd_lock *l;
	char *buf = NULL, msg[SD_MSG_MAX], dest[SD_PATH_MAX], spare[SD_PATH_MAX];
	size_t len;
	json_t *doc = NULL;
	sd_error er;
	int done = 0;
	sd_err err = sd_store_lock(s, e->key, &l, &buf, &len, NULL);
	if (err == SD_ERR_NOT_FOUND) {
		snprintf(action, n, "gone meanwhile");
		return 1;
	}
	if (err != SD_OK) {
		snprintf(action, n, "not moved: cannot take its lock: %s", sd_err_message(err));
		return 0;
	}
	if (sd_doc_parse_stored(buf, len, e->key, &doc, msg) == SD_OK) {
		snprintf(action, n, "left in place: rewritten meanwhile and valid now");
		done = 1;
	} else if (sd_store_quarantine_session(s, e->key, dest, sizeof dest, spare, sizeof spare, &er) == SD_OK) {
		int m = snprintf(action, n, "moved to %s", ctl_rel(f->c, dest));
		if (spare[0] && m >= 0 && (size_t)m < n)
			snprintf(action + m, n - (size_t)m, ", its spare to %s", ctl_rel(f->c, spare));
		done = 1;
	} else {
		snprintf(action, n, "not moved: %s", er.msg);
	}
	json_decref(doc);
	free(buf);
	sd_store_unlock(l);
	return done;
}

static void check_session(struct fsck_ctx *f, const sd_entry *e)
{
	char detail[SD_MSG_MAX + 16], action[SD_PATH_MAX + 64];
	json_t *doc;
	sd_error er;
	sd_err err = ctl_load(f->c, e->key, &doc, NULL, &er);
	if (err == SD_ERR_NOT_FOUND) /* removed (gc) since the scan read its name */
		return;
	f->sessions++;
	if (err == SD_OK) {
		f->ok++;
		json_decref(doc);
		return;
	}
	if (err != SD_ERR_CORRUPT) {
		/* Permissions or the disk: moving the file would not help. */
		finding(f, "unreadable", e->path, er.msg, f->repair ? "left in place: fix its permissions" : NULL, 1, 0);
		return;
	}
	snprintf(detail, sizeof detail, "%s", er.msg);
	int done = f->repair && repair_session(f, e, action, sizeof action);
	finding(f, "damaged", e->path, detail, f->repair ? action : NULL, 1, done);
}

/* An entry that belongs nowhere, described by detail (NULL: as
 * ctl_describe_stray words it): a finding, and with --repair it moves to
 * the quarantine. */
static void check_stray(struct fsck_ctx *f, const sd_entry *e, const char *why)
{
	char detail[SD_MSG_MAX], action[SD_PATH_MAX + 64], dest[SD_PATH_MAX];
	if (why)
		snprintf(detail, sizeof detail, "%s", why);
	else if (!ctl_describe_stray(e, detail, sizeof detail))
		return;
	if (e->stat_errno) {
		finding(f, "unreadable", e->path, detail, f->repair ? "left in place: fix its permissions" : NULL, 1, 0);
		return;
	}
	int done = 0;
	if (f->repair) {
		/* Nothing reads or writes a stray, so it needs no lock. */
		sd_error er;
		sd_err err = sd_store_quarantine(f->c->store, e->path, dest, sizeof dest, &er);
		done = err == SD_OK || err == SD_ERR_NOT_FOUND;
		if (err == SD_OK)
			snprintf(action, sizeof action, "moved to %s", ctl_rel(f->c, dest));
		else if (err == SD_ERR_NOT_FOUND)
			snprintf(action, sizeof action, "gone meanwhile");
		else
			snprintf(action, sizeof action, "not moved: %s", er.msg);
	}
	finding(f, "stray", e->path, detail, f->repair ? action : NULL, 1, done);
}

static void check_temp(struct fsck_ctx *f, const sd_entry *e)
{
	char detail[SD_MSG_MAX], action[SD_MSG_MAX], age[32];
	int64_t mtime = sd_timespec_ms(&e->st.st_mtim);
	ctl_human_age(f->now - mtime, age, sizeof age);
	if (f->now - mtime < CTL_TEMP_MAX_AGE_MS) {
		f->writing++;
		snprintf(detail, sizeof detail, "temporary file of a write in progress (%s old)", age);
		finding(f, "writing", e->path, detail, NULL, 0, 0);
		return;
	}
	snprintf(detail, sizeof detail, "temporary file left by an interrupted write (%s old)", age);
	int done = 0;
	if (f->repair) {
		sd_err err = sd_store_remove_temp(f->c->store, e->path, CTL_TEMP_MAX_AGE_MS, NULL);
		done = err == SD_OK || err == SD_ERR_NOT_FOUND;
		snprintf(action, sizeof action, "%s",
			 err == SD_OK		 ? "removed"
			 : err == SD_ERR_NOT_FOUND ? "gone meanwhile"
			 : err == SD_ERR_TOO_YOUNG ? "kept: written again meanwhile"
						 : "not removed: cannot unlink it");
	}
	finding(f, "temp", e->path, detail, f->repair ? action : NULL, 1, done);
}

/* A spare (the previous version of a saved session) is in order while its
 * session exists. Without one (a crash between a delete's two unlinks, a
 * session moved to the quarantine, a copy by hand) it is old data nothing
 * will read: a stray. */
static void check_spare(struct fsck_ctx *f, const sd_entry *e)
{
	char path[SD_PATH_MAX];
	struct stat st;
	sd_store_path(f->c->store, e->key, path, sizeof path);
	if (lstat(path, &st) == 0 || errno != ENOENT)
		return;
	check_stray(f, e, "the spare of a session that does not exist (its previous version)");
}

static int fsck_visit(const sd_entry *e, void *arg)
{
	struct fsck_ctx *f = arg;
	/* Gone since the scan read its name: removed (a delete, gc), renamed
	 * into place (a temporary file), or moved to the quarantine with its
	 * session (a spare). Nothing is wrong with an entry that is not there. */
	if (e->stat_errno == ENOENT)
		return 0;
	if (e->kind == SD_ENTRY_SESSION)
		check_session(f, e);
	else if (e->kind == SD_ENTRY_TEMP && e->stat_errno == 0 && S_ISREG(e->st.st_mode))
		check_temp(f, e);
	else if (e->kind == SD_ENTRY_SPARE)
		check_spare(f, e);
	else
		check_stray(f, e, NULL);
	return 0;
}

int ctl_fsck(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"repair", no_argument, 0, 'r'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	struct fsck_ctx f = {.c = c};
	int st = ctl_start(c, argc, argv, opts, ctl_set_flag, &f.repair);
	if (st != CTL_OK)
		return st;
	f.now = sd_time_epoch_ms();
	if (c->json)
		fputs("{\"findings\":[", stdout);
	sd_error er;
	if (sd_store_scan(c->store, fsck_visit, &f, &er) != SD_OK) {
		ctl_warn(c, "cannot read the sessions folder of %s: %s", c->data_dir, er.msg);
		finding(&f, "unreadable", c->data_dir, "cannot read the sessions folder", NULL, 1, 0);
	}
	int clean = f.problems == 0;
	if (c->json) {
		printf("%s],\"sessions\":%lld,\"valid\":%lld,\"problems\":%lld,\"repaired\":%lld,"
		       "\"writes_in_progress\":%lld,\"clean\":%s}\n",
		       f.shown ? "\n" : "", (long long)f.sessions, (long long)f.ok, (long long)f.problems,
		       (long long)f.repaired, (long long)f.writing, clean ? "true" : "false");
	} else {
		printf("%s%lld session files checked in %s: %lld valid; %lld problems", f.shown ? "\n" : "",
		       (long long)f.sessions, c->data_dir, (long long)f.ok, (long long)f.problems);
		if (f.repair)
			printf(", %lld repaired", (long long)f.repaired);
		if (clean)
			printf(". The store is clean.\n");
		else if (f.repair && f.repaired == f.problems)
			printf(". Everything found was repaired; run fsck again to confirm.\n");
		else
			printf(". The store is NOT clean%s.\n", f.repair ? "" : " (fsck --repair fixes what it can)");
	}
	return ctl_finish(c, clean ? CTL_OK : CTL_PROBLEMS);
}

/* ---- gc ------------------------------------------------------------ */

typedef struct gc_cand {
	int64_t updated;   /* with --expired: its expiry */
	char key[SD_KEY_LEN + 1];
} gc_cand;

struct gc_ctx {
	int expired;       /* --expired: candidates are sessions expired by cutoff */
	int64_t cutoff;
	gc_cand *v;
	size_t n, cap;
	int oom;
};

static int gc_collect(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *arg)
{
	(void)size;
	struct gc_ctx *g = arg;
	int64_t upd = g->expired ? sd_doc_expires(doc) : ctl_doc_time(doc, "updated");
	if (upd >= g->cutoff || (g->expired && upd == 0))
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;
		gc_cand *v = realloc(g->v, cap * sizeof *v);
		if (!v) {
			ctl_warn(c, "out of memory after %zu sessions", g->n);
			g->oom = 1;
			return 1;
		}
		g->v = v;
		g->cap = cap;
	}
	g->v[g->n].updated = upd;
	memcpy(g->v[g->n].key, key, SD_KEY_LEN + 1);
	g->n++;
	return 0;
}

static int cand_cmp(const void *a, const void *b)
{
	return strcmp(((const gc_cand *)a)->key, ((const gc_cand *)b)->key);
}

typedef enum { GC_DELETED = 0, GC_WOULD, GC_KEPT_UPDATED, GC_KEPT_BUSY, GC_KEPT_DAMAGED, GC_GONE, GC_FAILED, GC__N } gc_outcome;
static const char *const gc_code[GC__N] = {"deleted", "would_delete", "kept_updated", "kept_busy",
					   "kept_damaged", "gone", "failed"};
static const char *const gc_text[GC__N] = {"deleted", "would delete", "kept: saved meanwhile",
					   "kept: busy (lock timeout)", "kept: damaged (see fsck)",
					   "gone meanwhile", "failed"};

/* Delete one candidate: take its lock as a save does (rename-safe: if a
 * save replaced the file meanwhile the lock follows the new inode), read it
 * again under the lock, and remove it only if it is still old. */
static gc_outcome gc_one(sd_ctl *c, const gc_cand *g, int64_t cutoff, int64_t *updated)
{
	sd_lock *l;
	char *buf = NULL, msg[SD_MSG_MAX];
	size_t len;
	json_t *doc = NULL;
	sd_error er;
	sd_err err = sd_store_lock(c->store, g->key, &l, &buf, &len, NULL);
	if (err == SD_ERR_NOT_FOUND)
		return GC_GONE;
	if (err == SD_ERR_BUSY)
		return GC_KEPT_BUSY;
	if (err != SD_OK) {
		ctl_warn(c, "%s: cannot take its lock: %s", g->key, sd_err_message(err));
		return GC_FAILED;
	}
	gc_outcome o;
	if (sd_doc_parse_stored(buf, len, g->key, &doc, msg) != SD_OK) {
		ctl_warn(c, "%s: damaged: %s", g->key, msg);
		o = GC_KEPT_DAMAGED;
	} else if ((*updated = ctl_doc_time(doc, "updated")) >= cutoff) {
		o = GC_KEPT_UPDATED;
	} else if ((err = sd_store_remove(l, &er)) == SD_OK) {
		o = GC_DELETED;
	} else if (err == SD_ERR_NOT_FOUND) {
		o = GC_GONE;
	} else if (err == SD_ERR_FROZEN) { /* its bucket is moving: kept, like a busy one */
		o = GC_KEPT_BUSY;
	} else {
		ctl_warn(c, "%s: cannot remove it: %s", g->key, er.msg);
		o = GC_FAILED;
	}
	json_decref(doc);
	free(buf);
	sd_store_unlock(l);
	return o;
}

/* Delete one --expired candidate through the sweeper's own removal (the
 * same lock, and the expiry checked again under it). */
static gc_outcome gc_expired_one(sd_ctl *c, const gc_cand *g, int64_t now, int64_t *expires)
{
	sd_error er = {.msg = "unknown error"};
	switch (sd_sweep_one(c->store, g->key, now, expires, &er)) {
	case SD_SWEEP_REMOVED: return GC_DELETED;
	case SD_SWEEP_KEPT: return GC_KEPT_UPDATED;
	case SD_SWEEP_GONE: return GC_GONE;
	case SD_SWEEP_BUSY: return GC_KEPT_BUSY;
	case SD_SWEEP_DAMAGED: ctl_warn(c, "%s: damaged (see fsck)", g->key); return GC_KEPT_DAMAGED;
	default: ctl_warn(c, "%s: cannot remove it: %s", g->key, er.msg); return GC_FAILED;
	}
}

/* gc's options as given. */
struct gc_args {
	const char *older; /* --older-than, NULL when missing */
	int64_t age_ms;
	int dry;
	int expired;       /* --expired */
	int force;         /* --force: a duration under a minute is meant */
};

/* One option of gc; ctx is a struct gc_args. Returns CTL_OK or CTL_USAGE. */
static int gc_option(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	struct gc_args *a = ctx;
	if (ch == 'n' || ch == 'e') {
		*(ch == 'n' ? &a->dry : &a->expired) = 1;
		return CTL_OK;
	}
	if (ch == 'f') {
		a->force = 1;
		return CTL_OK;
	}
	a->older = arg;
	size_t n = strlen(arg);
	/* A unit is required: a bare number ("30") is far more often a typo
	 * for days than a wish for seconds. */
	if (sd_time_parse_duration(arg, &a->age_ms) != 0 || n == 0 || arg[n - 1] < 'a' || arg[n - 1] > 'z')
		return ctl_usage_error(c, "--older-than: '%s' is not a duration with a unit (90s, 15m, 12h, 30d, 2w)",
				       arg);
	return CTL_OK;
}

/* gc's first lines: the JSON object's head, or the table's. */
static void gc_head(const sd_ctl *c, const struct gc_args *a, const char *cutoff)
{
	if (c->json && a->expired)
		printf("{\"expired\":true,\"now\":\"%s\",\"dry_run\":%s,\"sessions\":[", cutoff,
		       a->dry ? "true" : "false");
	else if (c->json)
		printf("{\"older_than\":\"%s\",\"cutoff\":\"%s\",\"dry_run\":%s,\"sessions\":[", a->older, cutoff,
		       a->dry ? "true" : "false");
	else
		printf("%-8s  %-24s  %s\n", "KEY", a->expired ? "EXPIRES" : "UPDATED", "ACTION");
}

/* gc's last lines: the counts of each outcome of n candidates. */
static void gc_tail(const sd_ctl *c, const struct gc_args *a, size_t n, const int64_t count[GC__N],
		    const char *cutoff)
{
	if (c->json) {
		printf("%s]", n ? "\n" : "");
		for (int o = 0; o < GC__N; o++)
			printf(",\"%s\":%lld", gc_code[o], (long long)count[o]);
		printf(",\"damaged\":%lld,\"stray\":%lld}\n", (long long)(c->damaged + count[GC_KEPT_DAMAGED]),
		       (long long)c->stray);
	} else if (a->dry) {
		printf("\nwould delete %lld sessions %s %s (dry run: nothing deleted)\n", (long long)count[GC_WOULD],
		       a->expired ? "expired by" : "not updated since", cutoff);
	} else {
		printf("\ndeleted %lld sessions %s %s", (long long)count[GC_DELETED],
		       a->expired ? "expired by" : "not updated since", cutoff);
		for (int o = GC_KEPT_UPDATED; o < GC__N; o++)
			if (count[o])
				printf("; %s: %lld", gc_text[o], (long long)count[o]);
		printf("\n");
	}
}

int ctl_gc(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"older-than", required_argument, 0, 'o'},
		{"dry-run", no_argument, 0, 'n'},
		{"expired", no_argument, 0, 'e'},
		{"force", no_argument, 0, 'f'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	struct gc_args a = {0};
	int st = ctl_options(c, argc, argv, opts, gc_option, &a);
	if (st == CTL_OK)
		st = ctl_no_args(c, argc, argv, "");
	if (st != CTL_OK)
		return st;
	if (!a.older == !a.expired)
		return ctl_usage_error(c, "give one of --older-than DURATION and --expired");
	if (a.older && a.age_ms < CTL_GC_MIN_AGE_MS && !a.force)
		return ctl_usage_error(c, "--older-than %s is under a minute: that deletes sessions in use; "
				       "add --force if that is what you mean", a.older);
	st = ctl_open(c, 0);
	if (st != CTL_OK)
		return st;
	struct gc_ctx g = {.expired = a.expired, .cutoff = sd_time_epoch_ms() - a.age_ms};
	if (ctl_each_session(c, gc_collect, &g) != SD_OK || g.oom) {
		free(g.v);
		return CTL_PROBLEMS;
	}
	if (g.n > 1)
		qsort(g.v, g.n, sizeof *g.v, cand_cmp);

	char cutoff[SD_TIME_LEN], upd[SD_TIME_LEN];
	sd_time_format(g.cutoff, cutoff);
	int64_t count[GC__N] = {0};
	const char *field = a.expired ? "expires" : "updated";
	gc_head(c, &a, cutoff);
	for (size_t i = 0; i < g.n; i++) {
		int64_t updated = g.v[i].updated;
		gc_outcome o = a.dry	    ? GC_WOULD
			       : a.expired ? gc_expired_one(c, &g.v[i], g.cutoff, &updated)
					   : gc_one(c, &g.v[i], g.cutoff, &updated);
		count[o]++;
		if (updated)
			sd_time_format(updated, upd);
		else
			snprintf(upd, sizeof upd, "-");
		if (c->json)
			printf("%s\n{\"key\":\"%s\",\"%s\":\"%s\",\"action\":\"%s\"}", i ? "," : "",
			       g.v[i].key, field, upd, gc_code[o]);
		else
			printf("%-8s  %-24s  %s\n", g.v[i].key, upd, gc_text[o]);
	}
	free(g.v);
	gc_tail(c, &a, g.n, count, cutoff);
	int bad = count[GC_FAILED] || count[GC_KEPT_DAMAGED];
	return ctl_finish(c, bad ? CTL_PROBLEMS : ctl_status(c));
}
