/* store_scan.c: the store's admin side, used by sessionctl only: the scan
 * that classifies every entry under DATA_DIR/sessions, the quarantine that
 * moves damaged or stray entries aside, and the removal of temporary files
 * left by a crash. The hot path (read, create, lock, replace) is store.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sd_layout.h"
#include "sd_time.h"
#include "store_priv.h"

/* How many names (NAME, NAME.1 ... NAME.999) the quarantine tries for one
 * entry before SD_ERR_NAMES_EXHAUSTED. */
#define QUARANTINE_NAMES 1000

static int visit(sd_store_visitor fn, void *ctx, sd_entry_kind kind, const char *path,
		 const char *key)
{
	sd_entry e = {.kind = kind, .path = path, .key = key};
	if (lstat(path, &e.st) != 0) {
		e.stat_errno = errno;
		memset(&e.st, 0, sizeof e.st);
	}
	if ((kind == SD_ENTRY_SESSION || kind == SD_ENTRY_SPARE) && e.stat_errno == 0 && !S_ISREG(e.st.st_mode)) {
		e.kind = SD_ENTRY_STRAY;
		e.key = NULL;
	}
	return fn(&e, ctx);
}

static int scan_fan(const char *fanpath, const char *fan, sd_store_visitor fn, void *ctx)
{
	DIR *d = opendir(fanpath);
	if (!d) {
		sd_entry e = {.kind = SD_ENTRY_STRAY, .path = fanpath, .stat_errno = errno};
		lstat(fanpath, &e.st);
		return fn(&e, ctx);
	}
	struct dirent *de;
	int stop = 0;
	char path[SD_PATH_MAX], key[SD_KEY_LEN + 1];
	while (!stop && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", fanpath, de->d_name);
		if (sd_layout_is_temp(de->d_name))
			stop = visit(fn, ctx, SD_ENTRY_TEMP, path, NULL);
		else if (sd_layout_session_name(de->d_name, fan, key))
			stop = visit(fn, ctx, SD_ENTRY_SESSION, path, key);
		else if (sd_layout_spare_name(de->d_name, fan, key))
			stop = visit(fn, ctx, SD_ENTRY_SPARE, path, key);
		else
			stop = visit(fn, ctx, SD_ENTRY_STRAY, path, NULL);
	}
	closedir(d);
	return stop;
}

sd_err sd_store_scan(sd_store *s, sd_store_visitor fn, void *ctx, sd_error *er)
{
	DIR *d = opendir(s->sessions);
	if (!d)
		return store_sys_fail(er, SD_ERR_INTERNAL, errno);
	struct dirent *de;
	int stop = 0;
	char path[SD_PATH_MAX];
	while (!stop && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", s->sessions, de->d_name);
		struct stat st;
		int isdir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
		if (isdir && sd_layout_fan_index(de->d_name) >= 0)
			stop = scan_fan(path, de->d_name, fn, ctx);
		else if (!isdir && sd_layout_is_temp(de->d_name))
			stop = visit(fn, ctx, SD_ENTRY_TEMP, path, NULL);
		else
			stop = visit(fn, ctx, SD_ENTRY_STRAY, path, NULL);
	}
	closedir(d);
	return SD_OK;
}

/* path + the length of s->sessions and a slash, or NULL when path is not
 * strictly inside DATA_DIR/sessions. */
static const char *under_sessions(const sd_store *s, const char *path)
{
	size_t n = strlen(s->sessions);
	if (strncmp(path, s->sessions, n) != 0 || path[n] != '/' || !path[n + 1] ||
	    strstr(path + n, "/../") || strcmp(path + strlen(path) - 3, "/..") == 0)
		return NULL;
	return path + n + 1;
}

/* The folder part of path into buf. */
static void parent_of(const char *path, char *buf, size_t n)
{
	snprintf(buf, n, "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash && slash != buf)
		*slash = '\0';
}

/* rename(2) that never replaces an existing to: renameat2 RENAME_NOREPLACE,
 * or, on a file system without it, a check first (the quarantine has one
 * writer in practice: the administrator's fsck). */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

static sd_err quarantine_unfenced(sd_store *s, const char *path, char *dest, size_t n, sd_error *er)
{
	const char *rel = under_sessions(s, path);
	if (!rel)
		return store_sys_fail(er, SD_ERR_NOT_IN_STORE, 0);
	char qdir[SD_PATH_MAX], flat[SD_PATH_MAX], from_dir[SD_PATH_MAX];
	snprintf(qdir, sizeof qdir, "%s/" SD_LAYOUT_QUARANTINE, s->dir);
	if (mkdir(qdir, 0750) == 0) {
		if (store_sync_dir(s, s->dir) != 0)
			return store_sys_fail(er, sd_err_from_errno(errno), errno);
	} else if (errno != EEXIST) {
		return store_sys_fail(er, sd_err_from_errno(errno), errno);
	}
	snprintf(flat, sizeof flat, "%s", rel);
	for (char *p = flat; *p; p++)
		if (*p == '/')
			*p = '_';
	for (int i = 0; i < QUARANTINE_NAMES; i++) {
		if (i == 0)
			snprintf(dest, n, "%s/%s", qdir, flat);
		else
			snprintf(dest, n, "%s/%s.%d", qdir, flat, i);
		if (rename_noreplace(path, dest) == 0) {
			parent_of(path, from_dir, sizeof from_dir);
			if (store_sync_dir(s, qdir) != 0 || store_sync_dir(s, from_dir) != 0)
				return store_sys_fail(er, sd_err_from_errno(errno), errno);
			return SD_OK;
		}
		if (errno == ENOENT)
			return store_sys_fail(er, SD_ERR_NOT_FOUND, errno);
		if (errno != EEXIST)
			return store_sys_fail(er, sd_err_from_errno(errno), errno);
	}
	return sd_error_set(er, SD_ERR_NAMES_EXHAUSTED, 0, "the quarantine names are all taken");
}

sd_err sd_store_remove_temp(sd_store *s, const char *path, int64_t min_age_ms, sd_error *er)
{
	const char *slash = strrchr(path, '/');
	if (!under_sessions(s, path) || !slash || !sd_layout_is_temp(slash + 1))
		return store_sys_fail(er, SD_ERR_NOT_IN_STORE, 0);
	struct stat st;
	if (lstat(path, &st) != 0)
		return store_sys_fail(er, errno == ENOENT ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL, errno);
	if (!S_ISREG(st.st_mode))
		return store_sys_fail(er, SD_ERR_NOT_IN_STORE, 0);
	int64_t mtime_ms = sd_timespec_ms(&st.st_mtim);
	if (sd_time_epoch_ms() - mtime_ms < min_age_ms)
		return store_sys_fail(er, SD_ERR_TOO_YOUNG, 0);
	if (unlink(path) != 0)
		return store_sys_fail(er, errno == ENOENT ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL, errno);
	char dir[SD_PATH_MAX];
	parent_of(path, dir, sizeof dir);
	if (store_sync_dir(s, dir) != 0)
		return store_sys_fail(er, sd_err_from_errno(errno), errno);
	return SD_OK;
}

sd_err sd_store_quarantine(sd_store *s, const char *path, char *dest, size_t n, sd_error *er)
{
	/* A damaged file in a frozen bucket stays until the thaw, so the
	 * bucket does not change under a move. */
	const char *rel = under_sessions(s, path);
	int b = rel && strlen(rel) >= 2 && (rel[2] == '/' || rel[2] == '\0') ? sd_bucket_index(rel) : -1;
	sd_err e = sd_bucket_enter(s->buckets, b);
	if (e != SD_OK)
		return e;
	e = quarantine_unfenced(s, path, dest, n, er);
	sd_bucket_leave(s->buckets, b);
	return e;
}

sd_err sd_store_quarantine_session(sd_store *s, const char *key, char *dest, size_t n, char *spare_dest,
				  size_t sn, sd_error *er)
{
	char dir[SD_PATH_MAX], path[SD_PATH_MAX], spare[SD_PATH_MAX];
	sd_layout_fan_dir(s->sessions, key, dir, sizeof dir);
	sd_layout_session_path(s->sessions, key, path, sizeof path);
	sd_layout_spare_path(dir, key, spare, sizeof spare);
	int b = sd_bucket_index(key);
	sd_err e = sd_bucket_enter(s->buckets, b);
	if (e != SD_OK)
		return e;
	/* The spare first, in the order of a delete (I8): a process that dies
	 * between the two moves leaves the damaged session, which the next
	 * fsck --repair moves, not a spare without its session. */
	e = quarantine_unfenced(s, spare, spare_dest, sn, er);
	if (e == SD_ERR_NOT_FOUND) {
		snprintf(spare_dest, sn, "%s", "");
		e = SD_OK;
	}
	if (e == SD_OK)
		e = quarantine_unfenced(s, path, dest, n, er);
	sd_bucket_leave(s->buckets, b);
	return e;
}

sd_err sd_store_scan_bucket(sd_store *s, const char *fan, sd_store_visitor fn, void *ctx)
{
	char path[SD_PATH_MAX];
	snprintf(path, sizeof path, "%s/%.2s", s->sessions, fan);
	struct stat st;
	if (strlen(fan) != 2 || sd_layout_fan_index(fan) < 0)
		return SD_ERR_BAD_REQUEST;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? SD_OK : SD_ERR_INTERNAL;
	if (!S_ISDIR(st.st_mode)) {
		visit(fn, ctx, SD_ENTRY_STRAY, path, NULL);
		return SD_OK;
	}
	scan_fan(path, fan, fn, ctx);
	return SD_OK;
}
