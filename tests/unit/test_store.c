/* test_store.c: session files on disk (sd_store).
 *
 * - create / read round trip, the on-disk layout and permissions;
 * - create on a taken key answers SD_ERR_EXISTS and leaves the old bytes;
 * - lock + replace, lock of a missing key, remove, put, check_writable;
 * - lock timeout against a flock held by another process (fork), by a
 *   second sd_store in this process, and by another thread (stripe mutex);
 * - fault injection through sd_store_fault_hook at every I/O step: the
 *   error maps to STORAGE_FULL or INTERNAL, the old document stays, and no
 *   temporary file is left behind;
 * - sd_store_scan's classification of sessions, temporary files and strays;
 * - THE LOCK STRESS TEST: several processes (each with its own sd_store and
 *   two threads) do read-modify-write increments of one counter through
 *   sd_store_lock / sd_doc_parse_stored / sd_doc_dump / sd_store_replace /
 *   sd_store_unlock; no increment may be lost.
 *
 * Stress test demonstration (what the rename-safe inode check is for).
 * sd_store_opts.skip_inode_check = 1 removes the fstat/stat comparison
 * after flock. A waiter that opened the old file just before a writer
 * renamed the new one over it then locks the dead inode, reads the stale
 * bytes and writes an update computed from them: a lost update. Anyone can
 * reproduce it with
 *     SD_STRESS_UNSAFE=1 build/tests/test_store      (expected to FAIL)
 * What was run (2-CPU VM, Linux 6.18, ext4 /tmp, durability none,
 * 8 processes x 2 threads x 300 increments = 4800):
 *   - by hand: stress_child's opts edited to .skip_inode_check = 1, built,
 *     run 5 times: counter 4667, 4766, 4672, 4633, 4714 of 4800
 *     (133, 34, 128, 167, 86 lost updates; version = counter + 1 each time);
 *   - SD_STRESS_UNSAFE=1, 5 runs: 4762, 4789, 4776, 4771, 4763 of 4800
 *     (38, 11, 24, 29, 37 lost); under ASan+UBSan: 4757 of 4800 (43 lost);
 *   - with 150 increments per thread (2400): 2340, 2339, 2356, 2356, 2343
 *     of 2400 (60, 61, 44, 44, 57 lost);
 *   - default (check on), 60 runs (normal and ASan): counter 4800 of 4800,
 *     version 4801, 0 lost, every time, in 0.6-2.6 s (ASan 1.3-3.7 s).
 * Under valgrind (SD_UNDER_VALGRIND=1) each thread does 100 increments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/wait.h>
#include <time.h>
#include "sd_doc.h"
#include "sd_metrics.h"
#include "sd_layout.h"
#include "sd_store.h"
#include "sd_time.h"
#include "sd_test_util.h"

typedef struct fixture {
	char *dir;
	sd_store *s;
	sd_store_opts o;
} fixture;

static int open_fixture(void **state, sd_durability dur)
{
	fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->dir = sdt_mkdtemp("store");
	assert_non_null(f->dir);
	f->o = (sd_store_opts){.data_dir = f->dir, .durability = dur, .lock_timeout_ms = 2000};
	char msg[SD_MSG_MAX] = "";
	if (sd_store_open(&f->o, &f->s, msg) != SD_OK)
		fail_msg("sd_store_open: %s", msg);
	*state = f;
	return 0;
}

static int setup_full(void **state) { return open_fixture(state, SD_DURABLE_FULL); }
static int setup_none(void **state) { return open_fixture(state, SD_DURABLE_NONE); }

static int teardown(void **state)
{
	fixture *f = *state;
	sd_store_fault_hook = NULL;
	sd_store_close(f->s);
	sdt_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Canonical bytes of a session doc; caller frees. */
static char *doc_bytes(const char *key, int64_t version, const char *data_json, size_t *len)
{
	json_t *data = json_loads(data_json, JSON_DECODE_ANY, NULL);
	assert_non_null(data);
	json_t *d = sd_doc_new(key, NULL, data, "2026-01-01T00:00:00.000Z");
	json_decref(data);
	assert_non_null(d);
	json_object_set_new(d, "version", json_integer(version));
	char *s = sd_doc_dump(d, len);
	json_decref(d);
	assert_non_null(s);
	return s;
}

static void fan_path(const fixture *f, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/sessions/%.2s", f->dir, key);
}

static void assert_no_temp(const fixture *f, const char *key)
{
	char fan[4096];
	fan_path(f, key, fan, sizeof fan);
	int n = sdt_count_suffix(fan, SD_LAYOUT_TMP_SUFFIX);
	if (n > 0)
		fail_msg("%d temporary file(s) left in %s", n, fan);
	char top[4096];
	snprintf(top, sizeof top, "%s/sessions", f->dir);
	assert_true(sdt_count_suffix(top, SD_LAYOUT_TMP_SUFFIX) <= 0);
}

static void assert_bytes(fixture *f, const char *key, const char *want, size_t wlen)
{
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(sd_store_read(f->s, key, &buf, &len, NULL), SD_OK);
	assert_int_equal(len, wlen);
	assert_memory_equal(buf, want, wlen);
	assert_int_equal(buf[len], '\0');
	free(buf);
}

/* ---- basics --------------------------------------------------------------- */

static void test_open_makes_the_sessions_layout(void **state)
{
	fixture *f = *state;
	assert_string_equal(sd_store_dir(f->s), f->dir);
	char p[4096], want[4096];
	sd_store_path(f->s, "ABCDEFGH", p, sizeof p);
	snprintf(want, sizeof want, "%s/sessions/AB/ABCDEFGH.json", f->dir);
	assert_string_equal(p, want);
	struct stat st;
	snprintf(want, sizeof want, "%s/sessions", f->dir);
	assert_int_equal(stat(want, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	/* Opening again (a second process would) is fine and shares the data. */
	sd_store *s2;
	assert_int_equal(sd_store_open(&f->o, &s2, NULL), SD_OK);
	sd_store_close(s2);
	sd_store_close(NULL);

	/* A data dir that cannot be created. */
	sd_store_opts bad = f->o;
	snprintf(want, sizeof want, "%s/file", f->dir);
	assert_int_equal(sdt_write_file(want, "x"), 0);
	bad.data_dir = want; /* a regular file: mkdir below it fails */
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_store_open(&bad, &s2, msg), SD_ERR_INTERNAL);
	assert_null(s2);
	assert_true(strlen(msg) > 0);
}

static void test_created_bytes_read_back_exactly(void **state)
{
	fixture *f = *state;
	size_t len;
	char *bytes = doc_bytes("ABCDEFGH", 1, "{\"a\":[1,2,3]}", &len);
	char *buf = (char *)1;
	size_t blen;
	assert_int_equal(sd_store_read(f->s, "ABCDEFGH", &buf, &blen, NULL), SD_ERR_NOT_FOUND);
	assert_int_equal(sd_store_create(f->s, "ABCDEFGH", bytes, len), SD_OK);
	assert_bytes(f, "ABCDEFGH", bytes, len);
	assert_no_temp(f, "ABCDEFGH");

	char p[4096];
	sd_store_path(f->s, "ABCDEFGH", p, sizeof p);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(st.st_nlink, 1); /* the temporary name is gone */
	assert_int_equal((size_t)st.st_size, len);

	/* Empty content round-trips too; another fan-out folder appears. */
	assert_int_equal(sd_store_create(f->s, "ZZ000000", "", 0), SD_OK);
	assert_int_equal(sd_store_read(f->s, "ZZ000000", &buf, &blen, NULL), SD_OK);
	assert_int_equal(blen, 0);
	assert_string_equal(buf, "");
	free(buf);
	free(bytes);
}

static void test_create_over_an_existing_session_is_refused_untouched(void **state)
{
	fixture *f = *state;
	size_t len, len2;
	char *old = doc_bytes("ABCDEFGH", 1, "{\"old\":1}", &len);
	char *neu = doc_bytes("ABCDEFGH", 1, "{\"new\":2}", &len2);
	assert_int_equal(sd_store_create(f->s, "ABCDEFGH", old, len), SD_OK);
	char p[4096];
	sd_store_path(f->s, "ABCDEFGH", p, sizeof p);
	struct stat a, b;
	assert_int_equal(stat(p, &a), 0);
	uint64_t created = sd_metrics_get(SD_M_SESSIONS_CREATED);
	assert_int_equal(sd_store_create(f->s, "ABCDEFGH", neu, len2), SD_ERR_EXISTS);
	assert_int_equal(sd_metrics_get(SD_M_SESSIONS_CREATED), created);
	assert_bytes(f, "ABCDEFGH", old, len);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_no_temp(f, "ABCDEFGH");
	free(old);
	free(neu);
}

static void test_replace_under_the_lock_swaps_the_bytes(void **state)
{
	fixture *f = *state;
	size_t len, len2;
	char *v1 = doc_bytes("ABCDEFGH", 1, "{\"n\":1}", &len);
	char *v2 = doc_bytes("ABCDEFGH", 2, "{\"n\":2}", &len2);
	assert_int_equal(sd_store_create(f->s, "ABCDEFGH", v1, len), SD_OK);
	char p[4096];
	sd_store_path(f->s, "ABCDEFGH", p, sizeof p);
	struct stat a, b;
	assert_int_equal(stat(p, &a), 0);

	sd_lock *l = NULL;
	char *buf = NULL;
	size_t blen = 0;
	int64_t waited = -1;
	assert_int_equal(sd_store_lock(f->s, "ABCDEFGH", &l, &buf, &blen, &waited), SD_OK);
	assert_non_null(l);
	assert_true(waited >= 0);
	assert_int_equal(blen, len);
	assert_memory_equal(buf, v1, len);
	free(buf);
	assert_int_equal(sd_store_replace(l, v2, len2), SD_OK);
	/* Readers see the new bytes at once, through a new inode. */
	assert_bytes(f, "ABCDEFGH", v2, len2);
	assert_int_equal(stat(p, &b), 0);
	assert_int_not_equal(a.st_ino, b.st_ino);
	sd_store_unlock(l);
	sd_store_unlock(NULL);
	assert_no_temp(f, "ABCDEFGH");

	/* The next lock reads the new bytes (wait_ns may be NULL). */
	assert_int_equal(sd_store_lock(f->s, "ABCDEFGH", &l, &buf, &blen, NULL), SD_OK);
	assert_int_equal(blen, len2);
	assert_memory_equal(buf, v2, len2);
	free(buf);
	sd_store_unlock(l);
	free(v1);
	free(v2);
}

static void test_lock_of_a_missing_session_is_not_found(void **state)
{
	fixture *f = *state;
	sd_lock *l = (sd_lock *)1;
	char *buf = NULL;
	size_t len;
	assert_int_equal(sd_store_lock(f->s, "NOSUCH00", &l, &buf, &len, NULL), SD_ERR_NOT_FOUND);
	assert_null(l);
	/* The fan-out folder exists but not the file. */
	assert_int_equal(sd_store_create(f->s, "NOSUCH01", "{}", 2), SD_OK);
	assert_int_equal(sd_store_lock(f->s, "NOSUCH00", &l, &buf, &len, NULL), SD_ERR_NOT_FOUND);
	assert_null(l);
	/* The stripe mutex was released: the existing key locks at once. */
	assert_int_equal(sd_store_lock(f->s, "NOSUCH01", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	sd_store_unlock(l);
	/* And the missing one again (same stripe): not BUSY. */
	assert_int_equal(sd_store_lock(f->s, "NOSUCH00", &l, &buf, &len, NULL), SD_ERR_NOT_FOUND);
}

/* A FIFO at a session path: read and lock refuse it at once. Without
 * O_NONBLOCK and the file-type check, open() blocked for ever (seen: this
 * test hung in sd_store_read until the alarm below killed it). */
static void test_fifo_at_a_session_path_is_refused_at_once(void **state)
{
	fixture *f = *state;
	char path[4096];
	assert_int_equal(sd_store_create(f->s, "FIF0AAAA", "{}", 2), SD_OK);
	sd_store_path(f->s, "FIF0AAAB", path, sizeof path);
	assert_int_equal(mkfifo(path, 0640), 0);
	alarm(20); /* a hang fails the test instead of stalling the suite */
	char *buf = NULL;
	size_t len;
	assert_int_equal(sd_store_read(f->s, "FIF0AAAB", &buf, &len, NULL), SD_ERR_INTERNAL);
	sd_lock *l = (sd_lock *)1;
	assert_int_equal(sd_store_lock(f->s, "FIF0AAAB", &l, &buf, &len, NULL), SD_ERR_INTERNAL);
	assert_null(l);
	/* A folder at a session path too. */
	sd_store_path(f->s, "FIF0AAAC", path, sizeof path);
	assert_int_equal(mkdir(path, 0750), 0);
	assert_int_equal(sd_store_read(f->s, "FIF0AAAC", &buf, &len, NULL), SD_ERR_INTERNAL);
	alarm(0);
	/* The stripe was released: a regular neighbour still locks. */
	assert_int_equal(sd_store_lock(f->s, "FIF0AAAA", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	sd_store_unlock(l);
}

static void test_remove_under_the_lock_deletes_the_file(void **state)
{
	fixture *f = *state;
	assert_int_equal(sd_store_create(f->s, "GONE0000", "{}", 2), SD_OK);
	sd_lock *l;
	char *buf;
	size_t len;
	assert_int_equal(sd_store_lock(f->s, "GONE0000", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_remove(l, NULL), SD_OK);
	sd_store_unlock(l);
	assert_int_equal(sd_store_read(f->s, "GONE0000", &buf, &len, NULL), SD_ERR_NOT_FOUND);
	assert_int_equal(sd_store_lock(f->s, "GONE0000", &l, &buf, &len, NULL), SD_ERR_NOT_FOUND);
	/* The key is free again. */
	assert_int_equal(sd_store_create(f->s, "GONE0000", "[]", 2), SD_OK);
}

static void inode_of(const char *path, ino_t *ino)
{
	struct stat st;
	if (stat(path, &st) != 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	*ino = st.st_ino;
}

/* Version v of key, with data {"v": v}; caller frees. */
static char *version_bytes(const char *key, int64_t v, size_t *len)
{
	char data[32];
	snprintf(data, sizeof data, "{\"v\":%lld}", (long long)v);
	return doc_bytes(key, v, data, len);
}

static void assert_version(fixture *f, const char *key, int64_t v)
{
	size_t len;
	char *want = version_bytes(key, v, &len);
	assert_bytes(f, key, want, len);
	free(want);
}

/* Create key at version 1; path gets its file's path, spare its spare's. */
static void create_v1(fixture *f, const char *key, char path[4096], char spare[4096])
{
	size_t len;
	char *v1 = version_bytes(key, 1, &len);
	assert_int_equal(sd_store_create(f->s, key, v1, len), SD_OK);
	free(v1);
	char fan[4096];
	sd_store_path(f->s, key, path, 4096);
	fan_path(f, key, fan, sizeof fan);
	sd_layout_spare_path(fan, key, spare, 4096);
}

static void save_version(fixture *f, const char *key, int64_t v, sd_err want)
{
	size_t len;
	char *bytes = version_bytes(key, v, &len);
	sd_lock *l;
	char *buf;
	size_t blen;
	assert_int_equal(sd_store_lock(f->s, key, &l, &buf, &blen, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_replace(l, bytes, len), want);
	sd_store_unlock(l);
	free(bytes);
}

/* I1/I3: saves swap the session file with its spare, so after the first
 * save the session owns the same two inodes for good (no inode is made or
 * freed per save), the spare holds the previous version, and delete takes
 * both. Before the spare (a new temporary file renamed over KEY.json),
 * every save gave KEY.json a new inode, and the first assert_true below on
 * the inode set failed. */
static void test_saves_trade_two_inodes_and_delete_takes_both(void **state)
{
	fixture *f = *state;
	const char *key = "SPARE000";
	size_t len;
	char *v1 = version_bytes(key, 1, &len);
	char path[4096], spare[4096];
	create_v1(f, key, path, spare);
	ino_t a, b, cur, sp;
	inode_of(path, &a);
	save_version(f, key, 2, SD_OK);
	inode_of(path, &b);
	inode_of(spare, &sp);
	assert_int_equal(sp, a); /* the created file is now the spare ... */
	char *buf;
	size_t blen;
	buf = sdt_read_file(spare, &blen);
	assert_non_null(buf);
	assert_int_equal(blen, len);
	assert_memory_equal(buf, v1, len); /* ... and holds version 1 */
	free(buf);
	for (int64_t v = 3; v <= 9; v++) {
		save_version(f, key, v, SD_OK);
		inode_of(path, &cur);
		inode_of(spare, &sp);
		assert_true((cur == a && sp == b) || (cur == b && sp == a));
		assert_int_equal(cur, v % 2 ? a : b);
	}
	assert_no_temp(f, key);
	assert_int_equal(sd_store_read(f->s, key, &buf, &blen, NULL), SD_OK);
	assert_non_null(strstr(buf, "\"version\": 9"));
	free(buf);
	sd_lock *l;
	assert_int_equal(sd_store_lock(f->s, key, &l, &buf, &blen, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_remove(l, NULL), SD_OK);
	sd_store_unlock(l);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(spare, F_OK), -1); /* the old data goes too */
	free(v1);
}

/* ---- creates: a file without a name, and its fallbacks -------------------- */

/* Descriptors of this process open on something under sessions/ (a file
 * without a name shows as FOLDER/#INODE (deleted)). The store keeps none
 * open between calls; a bucket's lock file is elsewhere. */
static int session_fds(const fixture *f)
{
	char top[4096], link[64], target[4096];
	snprintf(top, sizeof top, "%s/sessions/", f->dir);
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
		ssize_t r = readlink(link, target, sizeof target - 1);
		if (r > 0) {
			target[r] = '\0';
			n += strncmp(target, top, strlen(top)) == 0;
		}
	}
	closedir(d);
	return n;
}

/* A create watched through the fault hook: what the "link" step finds in
 * the session's folder (the temporary files there, per call), and the
 * errnos its first "open" and "link" steps answer with (0: go through). */
static char watch_fan[4096];
static int watch_opens, watch_links, watch_temps[4];
static int watch_open_err, watch_link_err[2];

static int watch_hook(const char *step)
{
	if (strcmp(step, "open") == 0)
		return watch_opens++ == 0 ? watch_open_err : 0;
	if (strcmp(step, "link") != 0)
		return 0;
	int i = watch_links++;
	if (i < 4)
		watch_temps[i] = sdt_count_suffix(watch_fan, SD_LAYOUT_TMP_SUFFIX);
	return i < 2 ? watch_link_err[i] : 0;
}

static sd_err create_watched(fixture *f, const char *key, int open_err, int link_err0, int link_err1)
{
	fan_path(f, key, watch_fan, sizeof watch_fan);
	watch_opens = watch_links = 0;
	memset(watch_temps, -1, sizeof watch_temps);
	watch_open_err = open_err;
	watch_link_err[0] = link_err0;
	watch_link_err[1] = link_err1;
	size_t len;
	char *bytes = version_bytes(key, 1, &len);
	sd_store_fault_hook = watch_hook;
	sd_err e = sd_store_create(f->s, key, bytes, len);
	sd_store_fault_hook = NULL;
	free(bytes);
	if (e == SD_OK)
		assert_version(f, key, 1);
	assert_no_temp(f, key);
	return e;
}

/* I2: a new session's bytes go into a file without a name (O_TMPFILE),
 * which gets the session's name by linkat: no temporary name is ever made,
 * so there is none to find at the link, and only KEY.json afterwards, 0640
 * whatever the umask. Seen failing with the store before O_TMPFILE (a
 * temporary file linked, then unlinked): 1 temporary file at the link. */
static void test_a_create_makes_no_temporary_name(void **state)
{
	fixture *f = *state;
	mode_t old = umask(077);
	sd_err e = create_watched(f, "NOTMP000", 0, 0, 0);
	umask(old);
	assert_int_equal(e, SD_OK);
	assert_int_equal(session_fds(f), 0);
	assert_int_equal(watch_opens, 1);
	assert_int_equal(watch_links, 1);
	assert_int_equal(watch_temps[0], 0);
	assert_int_equal(sdt_count_suffix(watch_fan, ""), 3); /* ., .. and NOTMP000.json */
	char path[4096];
	sd_store_path(f->s, "NOTMP000", path, sizeof path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(st.st_nlink, 1);
	/* A taken key: EXISTS, the session untouched, nothing else made. */
	assert_int_equal(create_watched(f, "NOTMP000", 0, 0, 0), SD_ERR_EXISTS);
	assert_int_equal(watch_temps[0], 0);
	assert_version(f, "NOTMP000", 1);
	assert_int_equal(sdt_count_suffix(watch_fan, ""), 3);
}

/* Older kernels refuse linkat(AT_EMPTY_PATH) to a process without
 * CAP_DAC_READ_SEARCH, with ENOENT (here the first "link" step answers
 * so): the create links the same file through /proc/self/fd instead (for
 * real: the second "link" step goes through), still with no temporary
 * name, and the next create too. */
static void test_a_refused_empty_path_link_goes_through_proc(void **state)
{
	fixture *f = *state;
	assert_int_equal(create_watched(f, "PROC0000", 0, ENOENT, 0), SD_OK);
	assert_int_equal(watch_links, 2);
	assert_int_equal(watch_opens, 1);
	assert_int_equal(watch_temps[1], 0);
	assert_int_equal(create_watched(f, "PROC0001", 0, 0, 0), SD_OK);
	assert_int_equal(watch_links, 1);
	assert_int_equal(watch_temps[0], 0);
	assert_int_equal(create_watched(f, "PROC0001", 0, 0, 0), SD_ERR_EXISTS);
}

/* A file system without O_TMPFILE (open answers EOPNOTSUPP, EISDIR or
 * EINVAL; here the first "open" step does) falls back to a temporary file
 * linked to KEY.json and unlinked: that create and every later one of the
 * store succeed, each with a temporary file at its link and none after it.
 * The fallback is the store's: another store opened afterwards tries
 * O_TMPFILE again. */
static void test_without_o_tmpfile_creates_use_a_temporary_file(void **state)
{
	fixture *f = *state;
	const int errs[] = {EOPNOTSUPP, EISDIR, EINVAL};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		sd_store *s;
		assert_int_equal(sd_store_open(&f->o, &s, NULL), SD_OK);
		fixture g = *f;
		g.s = s;
		char key[SD_KEY_LEN + 1];
		snprintf(key, sizeof key, "TMP%zu0000", i);
		assert_int_equal(create_watched(&g, key, errs[i], 0, 0), SD_OK);
		assert_int_equal(watch_opens, 2); /* the refused one, the temporary file's */
		assert_int_equal(watch_links, 1);
		assert_int_equal(watch_temps[0], 1);
		key[7] = '1';
		assert_int_equal(create_watched(&g, key, 0, 0, 0), SD_OK);
		assert_int_equal(watch_temps[0], 1);
		assert_int_equal(create_watched(&g, key, 0, 0, 0), SD_ERR_EXISTS);
		assert_int_equal(watch_temps[0], 1);
		sd_store_close(s);
	}
	assert_int_equal(create_watched(f, "TMP90000", 0, 0, 0), SD_OK);
	assert_int_equal(watch_temps[0], 0);
}

/* No /proc either (both links answer ENOENT while the folder is there):
 * the create writes its bytes again, into a temporary file, and the store
 * keeps to that. */
static void test_without_proc_creates_use_a_temporary_file(void **state)
{
	fixture *f = *state;
	assert_int_equal(create_watched(f, "NOPROC00", 0, ENOENT, ENOENT), SD_OK);
	assert_int_equal(watch_links, 3);
	assert_int_equal(watch_opens, 2);
	assert_int_equal(watch_temps[1], 0);
	assert_int_equal(watch_temps[2], 1);
	assert_int_equal(create_watched(f, "NOPROC01", 0, 0, 0), SD_OK);
	assert_int_equal(watch_links, 1);
	assert_int_equal(watch_temps[0], 1);
}

/* A file system without RENAME_EXCHANGE (renameat2 answers EINVAL; here
 * the "rename" step's first call does) falls back to a temporary file
 * renamed over KEY.json: that save and every later one of the store
 * succeed, each gives KEY.json a new inode, and no spare stays behind (the
 * one written for the refused exchange is removed). The fallback is the
 * store's, not the process's: another store opened afterwards still
 * exchanges, so this test leaves the tests after it on the spare path.
 * Seen failing: with the fallback flag a static of store.c, the second
 * store fell back too (no spare after its save), and every test of this
 * binary registered after this one ran on the temporary-file path
 * (test_saves_trade_two_inodes_and_delete_takes_both, moved after it,
 * failed). */
static int einval_fired;

static int einval_once(const char *step)
{
	if (strcmp(step, "rename") != 0 || einval_fired)
		return 0;
	einval_fired = 1;
	return EINVAL;
}

static void test_without_exchange_saves_use_a_temporary_file(void **state)
{
	fixture *f = *state;
	const char *key = "NOXCHG00";
	char path[4096], spare[4096];
	create_v1(f, key, path, spare);
	ino_t before, after;
	einval_fired = 0;
	sd_store_fault_hook = einval_once;
	for (int64_t v = 2; v <= 4; v++) {
		inode_of(path, &before);
		save_version(f, key, v, SD_OK);
		inode_of(path, &after);
		assert_true(before != after); /* renamed over, not exchanged */
		assert_int_equal(access(spare, F_OK), -1);
		assert_no_temp(f, key);
		assert_version(f, key, v);
	}
	sd_store_fault_hook = NULL;
	assert_int_equal(einval_fired, 1);
	/* Another store (a fresh start of sessiond) tries the exchange again. */
	sd_store *s2;
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_store_open(&f->o, &s2, msg), SD_OK);
	fixture other = *f;
	other.s = s2;
	save_version(&other, key, 5, SD_OK);
	assert_int_equal(access(spare, F_OK), 0);
	sd_store_close(s2);
}

/* A reader that opened the session file just before two saves holds the
 * inode that the second save writes as its spare. The second save fails
 * after writing (at its exchange). The reader must return version 2 (the
 * current one), never version 3 (never saved) nor an empty file. The test
 * pauses the reader between its open and its read (the "read" step) and
 * lets it go while the failing save holds its written spare.
 * Seen failing: with the reader's F_OFD read lock removed from
 * sd_store_read, the reader returned version 3; with the lock but without
 * the read again of an emptied file, it returned 0 bytes. */
static pthread_mutex_t race_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t race_cv = PTHREAD_COND_INITIALIZER;
static int race_phase; /* 1: the reader has opened; 2: it may read */
static int race_fail_exchange;

static int race_hook(const char *step)
{
	if (strcmp(step, "read") == 0) {
		pthread_mutex_lock(&race_mu);
		if (race_phase == 0) {
			race_phase = 1;
			pthread_cond_broadcast(&race_cv);
			while (race_phase < 2)
				pthread_cond_wait(&race_cv, &race_mu);
		}
		pthread_mutex_unlock(&race_mu);
		return 0;
	}
	if (strcmp(step, "rename") == 0 && race_fail_exchange) {
		pthread_mutex_lock(&race_mu);
		race_phase = 2;
		pthread_cond_broadcast(&race_cv);
		pthread_mutex_unlock(&race_mu);
		usleep(sdt_under_valgrind() ? 500000 : 100000); /* the reader reaches its lock (or, without one, reads) */
		return EIO;
	}
	return 0;
}

struct race_read {
	sd_store *s;
	char *buf;
	size_t len;
	sd_err e;
};

static void *race_reader(void *p)
{
	struct race_read *r = p;
	r->e = sd_store_read(r->s, "RACE0000", &r->buf, &r->len, NULL);
	return NULL;
}

/* Start race_reader on r and return once it has opened RACE0000 and is
 * paused before its lock (race_hook's "read" step). */
static void start_paused_reader(struct race_read *r, pthread_t *t)
{
	race_phase = 0;
	race_fail_exchange = 0;
	sd_store_fault_hook = race_hook;
	assert_int_equal(pthread_create(t, NULL, race_reader, r), 0);
	pthread_mutex_lock(&race_mu);
	while (race_phase < 1)
		pthread_cond_wait(&race_cv, &race_mu);
	pthread_mutex_unlock(&race_mu);
}

static void test_reader_of_a_spare_never_takes_an_unsaved_version(void **state)
{
	fixture *f = *state;
	size_t len, len2;
	char *v1 = doc_bytes("RACE0000", 1, "{\"v\":1}", &len);
	char *v2 = doc_bytes("RACE0000", 2, "{\"v\":2}", &len2);
	assert_int_equal(sd_store_create(f->s, "RACE0000", v1, len), SD_OK);
	struct race_read r = {.s = f->s};
	pthread_t t;
	start_paused_reader(&r, &t);
	save_version(f, "RACE0000", 2, SD_OK);        /* the reader's inode becomes the spare */
	race_fail_exchange = 1;
	save_version(f, "RACE0000", 3, SD_ERR_INTERNAL); /* written into it, never exchanged */
	assert_int_equal(pthread_join(t, NULL), 0);
	sd_store_fault_hook = NULL;
	assert_int_equal(r.e, SD_OK);
	assert_int_equal(r.len, len2);
	assert_memory_equal(r.buf, v2, len2);
	free(r.buf);
	assert_bytes(f, "RACE0000", v2, len2);
	free(v1);
	free(v2);
}

/* A reader paused on an inode that has since become the spare, while a
 * writer holds that spare's F_OFD write lock and does not let go (a
 * sessionctl import --force stopped with Ctrl-Z in the middle of a save;
 * here the test holds the lock), answers from the current file without
 * waiting for it: the inode it holds is no longer the session's.
 * Seen failing: the reader waited in F_OFD_SETLKW for as long as the lock
 * was held (the join below timed out after 3 s), a worker thread held
 * for good. */
static void test_a_reader_never_waits_on_a_stuck_writer_of_the_spare(void **state)
{
	fixture *f = *state;
	char path[4096], spare[4096];
	create_v1(f, "RACE0000", path, spare);
	struct race_read r = {.s = f->s};
	pthread_t t;
	start_paused_reader(&r, &t);
	save_version(f, "RACE0000", 2, SD_OK); /* the reader's inode becomes the spare */
	int wfd = open(spare, O_WRONLY);
	assert_true(wfd >= 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	assert_int_equal(fcntl(wfd, F_OFD_SETLK, &fl), 0); /* the stuck writer */
	pthread_mutex_lock(&race_mu);
	race_phase = 2;
	pthread_cond_broadcast(&race_cv);
	pthread_mutex_unlock(&race_mu);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += sdt_under_valgrind() ? 15 : 3;
	int joined = pthread_timedjoin_np(t, NULL, &until);
	close(wfd); /* lets a reader that waited go, so the test ends either way */
	if (joined != 0)
		assert_int_equal(pthread_join(t, NULL), 0);
	sd_store_fault_hook = NULL;
	if (joined != 0)
		fail_msg("the reader waited for the spare's writer");
	assert_int_equal(r.e, SD_OK);
	size_t len;
	char *v2 = version_bytes("RACE0000", 2, &len);
	assert_int_equal(r.len, len);
	assert_memory_equal(r.buf, v2, len);
	free(v2);
	free(r.buf);
	/* The session file itself write-locked (a writer holds it so only for
	 * the instant between its exchange and its close): busy after the lock
	 * timeout, never a wait for good. */
	int kfd = open(path, O_WRONLY);
	assert_true(kfd >= 0);
	assert_int_equal(fcntl(kfd, F_OFD_SETLK, &fl), 0);
	char *buf;
	assert_int_equal(sd_store_read(f->s, "RACE0000", &buf, &len, NULL), SD_ERR_BUSY);
	close(kfd);
}

/* A second writer of the store (another process: sessionctl import, a
 * second sessiond; here a second handle, whose stripe mutexes are its own)
 * may lock KEY.json as soon as the first writer's exchange has put the new
 * inode there, before the first writer's folder fsync: until then the
 * exchange may not be on the disk, and the spare the second writer would
 * write may still be KEY.json there (a power cut would tear it). It waits
 * for the spare's flock, which the first writer holds until its unlock.
 * Seen failing (found by the power-loss checker's review): without the
 * spare's flock in open_spare, the second save wrote the spare at once and
 * the check after 200 ms found it changed. */
struct second_writer {
	fixture *f;
	sd_store *s2;
	sd_err e;
};

static void *second_save(void *p)
{
	struct second_writer *w = p;
	size_t len;
	char *v3 = doc_bytes("TWOPROC0", 3, "{\"v\":3}", &len);
	sd_lock *l;
	char *buf;
	size_t blen;
	w->e = sd_store_lock(w->s2, "TWOPROC0", &l, &buf, &blen, NULL);
	if (w->e == SD_OK) {
		free(buf);
		w->e = sd_store_replace(l, v3, len);
		sd_store_unlock(l);
	}
	free(v3);
	return NULL;
}

static void test_second_writer_waits_until_the_spare_is_released(void **state)
{
	fixture *f = *state;
	sd_store *s2;
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_store_open(&f->o, &s2, msg), SD_OK);
	size_t len, len2;
	char *v1 = doc_bytes("TWOPROC0", 1, "{\"v\":1}", &len);
	char *v2 = doc_bytes("TWOPROC0", 2, "{\"v\":2}", &len2);
	assert_int_equal(sd_store_create(f->s, "TWOPROC0", v1, len), SD_OK);
	char fan[4096], spare[4096];
	fan_path(f, "TWOPROC0", fan, sizeof fan);
	sd_layout_spare_path(fan, "TWOPROC0", spare, sizeof spare);
	sd_lock *l;
	char *buf;
	size_t blen;
	assert_int_equal(sd_store_lock(f->s, "TWOPROC0", &l, &buf, &blen, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_replace(l, v2, len2), SD_OK); /* v1's inode is now the spare */
	struct second_writer w = {.f = f, .s2 = s2};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, second_save, &w), 0);
	usleep(200000);
	char *sp = sdt_read_file(spare, &blen);
	assert_non_null(sp);
	assert_int_equal(blen, len);
	assert_memory_equal(sp, v1, len); /* not written while the first writer holds it */
	free(sp);
	sd_store_unlock(l);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.e, SD_OK);
	assert_int_equal(sd_store_read(f->s, "TWOPROC0", &buf, &blen, NULL), SD_OK);
	assert_non_null(strstr(buf, "\"version\": 3"));
	free(buf);
	sd_store_close(s2);
	free(v1);
	free(v2);
}

/* A spare that is not a plain file of ours (planted by someone with write
 * access to the data dir, or left by hand) is never written through: a
 * save then goes through a temporary file, at once. Each kind is tried:
 * a symbolic link (its target must stay untouched), a folder, a FIFO with
 * and without a reader, a second link of the session file itself and a
 * second link of an outside file.
 * Seen failing: open_spare took the spare's flock before it looked at the
 * link count, so a spare that is a second link of KEY.json waited on the
 * writer's own session lock until the lock timeout, and every save of the
 * session answered SD_ERR_BUSY (after 2 s here); a FIFO with a reader
 * reached the F_OFD lock too. */
static void test_a_spare_that_is_not_a_plain_file_is_never_written(void **state)
{
	fixture *f = *state;
	enum { SYMLINK, FOLDER, FIFO, FIFO_READ, LINK_SELF, LINK_OUT, KINDS };
	for (int kind = 0; kind < KINDS; kind++) {
		char key[SD_KEY_LEN + 1], path[4096], spare[4096], outside[4096];
		snprintf(key, sizeof key, "PLANT00%d", kind);
		create_v1(f, key, path, spare);
		snprintf(outside, sizeof outside, "%s/outside%d", f->dir, kind);
		assert_int_equal(sdt_write_file(outside, "outside"), 0);
		int rfd = -1;
		switch (kind) {
		case SYMLINK: assert_int_equal(symlink(outside, spare), 0); break;
		case FOLDER: assert_int_equal(mkdir(spare, 0750), 0); break;
		case FIFO: assert_int_equal(mkfifo(spare, 0640), 0); break;
		case FIFO_READ:
			assert_int_equal(mkfifo(spare, 0640), 0);
			rfd = open(spare, O_RDONLY | O_NONBLOCK);
			assert_true(rfd >= 0);
			break;
		case LINK_SELF: assert_int_equal(link(path, spare), 0); break;
		case LINK_OUT: assert_int_equal(link(outside, spare), 0); break;
		}
		alarm(20); /* a hang fails the test instead of stalling the suite */
		int64_t t0 = sd_time_mono_ns();
		for (int64_t v = 2; v <= 3; v++) {
			save_version(f, key, v, SD_OK);
			assert_version(f, key, v);
		}
		alarm(0);
		if (sd_time_mono_ns() - t0 > 1000 * SD_NS_PER_MS)
			fail_msg("kind %d: two saves took %lld ms", kind, (long long)((sd_time_mono_ns() - t0) / SD_NS_PER_MS));
		size_t olen;
		char *o = sdt_read_file(outside, &olen);
		assert_non_null(o);
		assert_int_equal(olen, 7);
		assert_memory_equal(o, "outside", 7); /* nothing written through the spare */
		free(o);
		assert_no_temp(f, key);
		if (rfd >= 0)
			close(rfd);
	}
}

/* A folder where the spare belongs (not one the store made: it only ever
 * makes files there) does not stop a delete: the session goes, and the
 * folder stays for sessionctl fsck, which reports it as a stray.
 * Seen failing: sd_store_remove refused on the spare's unlink (EISDIR), so
 * such a session could not be deleted, nor expired by the sweeper or gc. */
static void test_a_folder_at_the_spare_does_not_stop_a_delete(void **state)
{
	fixture *f = *state;
	const char *key = "DIRSPARE";
	char path[4096], fan[4096], spare[4096];
	assert_int_equal(sd_store_create(f->s, key, "{}", 2), SD_OK);
	sd_store_path(f->s, key, path, sizeof path);
	fan_path(f, key, fan, sizeof fan);
	sd_layout_spare_path(fan, key, spare, sizeof spare);
	assert_int_equal(mkdir(spare, 0750), 0);
	sd_lock *l;
	char *buf;
	size_t len;
	assert_int_equal(sd_store_lock(f->s, key, &l, &buf, &len, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_remove(l, NULL), SD_OK);
	sd_store_unlock(l);
	assert_int_equal(access(path, F_OK), -1);
	struct stat st;
	assert_int_equal(lstat(spare, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

/* --min-free counts what a save adds to the disk. A session's first save
 * makes its spare, a whole second copy: below the watermark it goes
 * through a temporary file instead (which adds only the growth), and no
 * spare is made. Once the spare exists, a save that fits in it adds
 * nothing and goes through it; one larger than the spare and the session
 * is refused (507) and leaves the document as it was. Here a second handle
 * on the same dir has a watermark no disk reaches.
 * Seen failing: the check compared the new length with the session file's
 * only, so the first save below the watermark wrote a new spare of the
 * document's size (the spare existed after it). */
static void test_below_min_free_a_save_makes_no_spare(void **state)
{
	fixture *f = *state;
	const char *key = "MINFREE0";
	sd_store_opts o = f->o;
	o.min_free_bytes = ~0ULL;
	sd_store *full;
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_store_open(&o, &full, msg), SD_OK);
	char path[4096], spare[4096];
	create_v1(f, key, path, spare);
	fixture below = *f;
	below.s = full;
	save_version(&below, key, 2, SD_OK); /* the same size: through a temporary file */
	assert_int_equal(access(spare, F_OK), -1);
	assert_no_temp(f, key);
	assert_version(f, key, 2);
	save_version(f, key, 3, SD_OK); /* above it: the spare is made */
	assert_int_equal(access(spare, F_OK), 0);
	save_version(&below, key, 4, SD_OK); /* fits in the spare */
	assert_int_equal(access(spare, F_OK), 0);
	assert_version(f, key, 4);
	save_version(&below, key, 40, SD_ERR_STORAGE_FULL); /* larger than both */
	assert_version(f, key, 4);
	assert_no_temp(f, key);
	sd_store_close(full);
}

/* On ext4, sessions/ carries FS_TOPDIR_FL (chattr +T), so that fan-out
 * folders spread over the file system. Seen failing: without
 * spread_fan_dirs, the flag was clear. Skipped where the file system has
 * no such flags. */
static void test_sessions_folder_is_a_top_dir_where_the_fs_has_one(void **state)
{
	fixture *f = *state;
	char sessions[4096];
	snprintf(sessions, sizeof sessions, "%s/sessions", f->dir);
	int fd = open(sessions, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	int flags = 0;
	int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
	close(fd);
	if (r != 0 || getenv("SESSIOND_NO_TOPDIR")) {
		skip();
		return;
	}
	assert_true(flags & FS_TOPDIR_FL);
}

static void test_put_creates_then_replaces(void **state)
{
	fixture *f = *state;
	assert_int_equal(sd_store_put(f->s, "PUT00000", "one", 3), SD_OK); /* creates */
	assert_bytes(f, "PUT00000", "one", 3);
	assert_int_equal(sd_store_put(f->s, "PUT00000", "two!", 4), SD_OK); /* replaces */
	assert_bytes(f, "PUT00000", "two!", 4);
	assert_no_temp(f, "PUT00000");
}

static void test_writable_check_leaves_nothing_behind(void **state)
{
	fixture *f = *state;
	char *before = sdt_snapshot(f->dir);
	assert_int_equal(sd_store_check_writable(f->s), SD_OK);
	char *after = sdt_snapshot(f->dir);
	assert_string_equal(before, after); /* its probe file is gone */
	free(before);
	free(after);
	/* A sessions folder that refuses new files. */
	char sess[4096];
	snprintf(sess, sizeof sess, "%s/sessions", f->dir);
	char moved[4096];
	snprintf(moved, sizeof moved, "%s/sessions.away", f->dir);
	assert_int_equal(rename(sess, moved), 0);
	assert_int_not_equal(sd_store_check_writable(f->s), SD_OK);
	assert_int_equal(rename(moved, sess), 0);
}

/* ---- lock timeouts -------------------------------------------------------- */

/* A child process takes flock on the session file and holds it until the
 * parent closes the pipe (or 30 s pass). */
static void test_lock_held_by_another_process_times_out(void **state)
{
	fixture *f = *state;
	assert_int_equal(sd_store_create(f->s, "HELD0000", "{}", 2), SD_OK);
	char p[4096];
	sd_store_path(f->s, "HELD0000", p, sizeof p);
	int ready[2], release[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(release[1]);
		alarm(30);
		int fd = open(p, O_RDONLY);
		char ok = (fd >= 0 && flock(fd, LOCK_EX) == 0) ? 'y' : 'n';
		if (write(ready[1], &ok, 1) != 1)
			_exit(2);
		char c;
		while (read(release[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	char ok = 0;
	assert_int_equal(read(ready[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');

	sd_store_opts o = f->o;
	o.lock_timeout_ms = 200;
	sd_store *s;
	assert_int_equal(sd_store_open(&o, &s, NULL), SD_OK);
	sd_lock *l = (sd_lock *)1;
	char *buf = NULL;
	size_t len;
	int64_t waited = 0;
	int64_t t0 = sd_time_mono_ns();
	sd_err e = sd_store_lock(s, "HELD0000", &l, &buf, &len, &waited);
	int64_t took = sd_time_mono_ns() - t0;
	print_message("lock against another process: %s after %.0f ms\n", sd_err_code(e), took / 1e6);
	assert_int_equal(e, SD_ERR_BUSY);
	assert_null(l);
	/* It waited for its timeout (not tightly bounded above). */
	assert_true(waited >= 200 * 1000000LL);
	assert_true(took < 20 * 1000000000LL);

	/* Once the other process lets go, the lock is ours. */
	close(release[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	assert_int_equal(sd_store_lock(s, "HELD0000", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	sd_store_unlock(l);
	sd_store_close(s);
}

/* Two sd_store handles in one process: flock alone arbitrates. */
static void test_lock_held_by_another_store_handle_times_out(void **state)
{
	fixture *f = *state;
	assert_int_equal(sd_store_create(f->s, "HELD0001", "{}", 2), SD_OK);
	sd_lock *l1, *l2 = (sd_lock *)1;
	char *buf;
	size_t len;
	assert_int_equal(sd_store_lock(f->s, "HELD0001", &l1, &buf, &len, NULL), SD_OK);
	free(buf);
	sd_store_opts o = f->o;
	o.lock_timeout_ms = 100;
	sd_store *s2;
	assert_int_equal(sd_store_open(&o, &s2, NULL), SD_OK);
	assert_int_equal(sd_store_lock(s2, "HELD0001", &l2, &buf, &len, NULL), SD_ERR_BUSY);
	assert_null(l2);
	sd_store_unlock(l1);
	assert_int_equal(sd_store_lock(s2, "HELD0001", &l2, &buf, &len, NULL), SD_OK);
	free(buf);
	sd_store_unlock(l2);
	sd_store_close(s2);
}

typedef struct lock_try {
	sd_store *s;
	const char *key;
	sd_err e;
	int64_t waited;
} lock_try;

static void *try_lock(void *arg)
{
	lock_try *t = arg;
	sd_lock *l;
	char *buf;
	size_t len;
	t->e = sd_store_lock(t->s, t->key, &l, &buf, &len, &t->waited);
	if (t->e == SD_OK) {
		free(buf);
		sd_store_unlock(l);
	}
	return NULL;
}

/* Another thread of the same store waits on the stripe mutex. */
static void test_lock_held_by_another_thread_times_out(void **state)
{
	fixture *f = *state;
	sd_store_opts o = f->o;
	o.lock_timeout_ms = 150;
	sd_store *s;
	assert_int_equal(sd_store_open(&o, &s, NULL), SD_OK);
	assert_int_equal(sd_store_create(s, "HELD0002", "{}", 2), SD_OK);
	sd_lock *l;
	char *buf;
	size_t len;
	assert_int_equal(sd_store_lock(s, "HELD0002", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	lock_try t = {.s = s, .key = "HELD0002"};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, try_lock, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.e, SD_ERR_BUSY);
	sd_store_unlock(l);
	t.e = SD_ERR_INTERNAL;
	assert_int_equal(pthread_create(&th, NULL, try_lock, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.e, SD_OK);
	sd_store_close(s);
}

/* ---- fault injection ------------------------------------------------------ */

static const char *fault_step;
static int fault_errno;
static int fault_hits;     /* times the faulty step was reached */
static int steps_seen[8];  /* every step reached, by index in step_names */
static const char *const step_names[] = {"open", "write", "fsync", "rename", "link", "dirsync", "read", NULL};

static int fault_hook(const char *step)
{
	for (int i = 0; step_names[i]; i++)
		if (strcmp(step, step_names[i]) == 0)
			steps_seen[i]++;
	if (fault_step && strcmp(step, fault_step) == 0) {
		fault_hits++;
		return fault_errno;
	}
	return 0;
}

static void arm(const char *step, int err)
{
	fault_step = step;
	fault_errno = err;
	fault_hits = 0;
	memset(steps_seen, 0, sizeof steps_seen);
	sd_store_fault_hook = fault_hook;
}

static void disarm(void) { sd_store_fault_hook = NULL; }

static int seen(const char *step)
{
	for (int i = 0; step_names[i]; i++)
		if (strcmp(step, step_names[i]) == 0)
			return steps_seen[i];
	return -1;
}

static const struct {
	const char *step;
	int err;
	sd_err want;
} replace_faults[] = {
	{"open", ENOSPC, SD_ERR_STORAGE_FULL},  {"open", EMFILE, SD_ERR_INTERNAL},
	{"write", ENOSPC, SD_ERR_STORAGE_FULL}, {"write", EDQUOT, SD_ERR_STORAGE_FULL},
	{"write", EIO, SD_ERR_INTERNAL},        {"fsync", EIO, SD_ERR_INTERNAL},
	{"fsync", ENOSPC, SD_ERR_STORAGE_FULL}, {"fsync", EDQUOT, SD_ERR_STORAGE_FULL},
	{"rename", EIO, SD_ERR_INTERNAL},       {"rename", ENOSPC, SD_ERR_STORAGE_FULL},
	{"rename", EDQUOT, SD_ERR_STORAGE_FULL},
};

/* A failed replace keeps the old document, leaves no temporary file and
 * keeps the lock usable. */
static void test_failed_replace_keeps_the_old_document(void **state)
{
	fixture *f = *state;
	size_t len, len2;
	char *old = doc_bytes("FAULT000", 3, "{\"old\":true}", &len);
	char *neu = doc_bytes("FAULT000", 4, "{\"new\":true}", &len2);
	assert_int_equal(sd_store_create(f->s, "FAULT000", old, len), SD_OK);
	char p[4096];
	sd_store_path(f->s, "FAULT000", p, sizeof p);
	struct stat a, b;
	assert_int_equal(stat(p, &a), 0);
	for (size_t i = 0; i < sizeof replace_faults / sizeof replace_faults[0]; i++) {
		sd_lock *l;
		char *buf;
		size_t blen;
		assert_int_equal(sd_store_lock(f->s, "FAULT000", &l, &buf, &blen, NULL), SD_OK);
		free(buf);
		arm(replace_faults[i].step, replace_faults[i].err);
		sd_err e = sd_store_replace(l, neu, len2);
		disarm();
		if (fault_hits != 1)
			fail_msg("case %zu: step %s reached %d times", i, replace_faults[i].step, fault_hits);
		if (e != replace_faults[i].want)
			fail_msg("case %zu: %s/%s gave %s, want %s", i, replace_faults[i].step,
				 strerror(replace_faults[i].err), sd_err_code(e),
				 sd_err_code(replace_faults[i].want));
		sd_store_unlock(l);
		assert_bytes(f, "FAULT000", old, len);
		assert_int_equal(stat(p, &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
		assert_no_temp(f, "FAULT000");
	}
	/* After all that, a clean replace still works. */
	sd_lock *l;
	char *buf;
	size_t blen;
	assert_int_equal(sd_store_lock(f->s, "FAULT000", &l, &buf, &blen, NULL), SD_OK);
	free(buf);
	arm(NULL, 0);
	assert_int_equal(sd_store_replace(l, neu, len2), SD_OK);
	disarm();
	/* Durability full: the file and its folder were both fsynced. */
	assert_int_equal(seen("fsync"), 1);
	assert_int_equal(seen("dirsync"), 1);
	assert_int_equal(seen("link"), 0);
	sd_store_unlock(l);
	assert_bytes(f, "FAULT000", neu, len2);
	free(old);
	free(neu);
}

/* The folder fsync after rename fails: the new bytes are already in place
 * (rename cannot be undone), but the caller is told it is not durable, and
 * no temporary file is left. */
static void test_failed_folder_sync_after_rename_is_reported_not_durable(void **state)
{
	fixture *f = *state;
	size_t len, len2;
	char *old = doc_bytes("FAULT001", 1, "{}", &len);
	char *neu = doc_bytes("FAULT001", 2, "{}", &len2);
	assert_int_equal(sd_store_create(f->s, "FAULT001", old, len), SD_OK);
	sd_lock *l;
	char *buf;
	size_t blen;
	assert_int_equal(sd_store_lock(f->s, "FAULT001", &l, &buf, &blen, NULL), SD_OK);
	free(buf);
	arm("dirsync", EIO);
	assert_int_equal(sd_store_replace(l, neu, len2), SD_ERR_UNSYNCED); /* past the commit point */
	disarm();
	assert_int_equal(fault_hits, 1);
	sd_store_unlock(l);
	assert_no_temp(f, "FAULT001");
	/* Whole either way: the file is one of the two versions. */
	assert_int_equal(sd_store_read(f->s, "FAULT001", &buf, &blen, NULL), SD_OK);
	assert_true((blen == len && memcmp(buf, old, len) == 0) ||
		    (blen == len2 && memcmp(buf, neu, len2) == 0));
	free(buf);
	free(old);
	free(neu);
}

/* After an exchange whose folder fsync failed, the disk may still name the
 * old inode (now the spare) KEY.json, so no later save may write into it:
 * a power cut during that write would tear the session itself, which a
 * crash must never do (I1). The failed save drops the spare, so the next
 * save makes a new one and the old inode is never written again.
 * Seen failing: the spare stayed, and the next save wrote version 3 over
 * the inode the fsync had not put aside for sure. */
static void test_failed_folder_sync_after_an_exchange_drops_the_spare(void **state)
{
	fixture *f = *state;
	const char *key = "FAULT002";
	char path[4096], spare[4096];
	create_v1(f, key, path, spare);
	int old = open(path, O_RDONLY); /* the first inode, kept from reuse */
	assert_true(old >= 0);
	arm("dirsync", EIO);
	save_version(f, key, 2, SD_ERR_UNSYNCED);
	disarm();
	assert_int_equal(fault_hits, 1);
	assert_int_equal(access(spare, F_OK), -1);
	save_version(f, key, 3, SD_OK);
	assert_version(f, key, 3);
	size_t len;
	char *v1 = version_bytes(key, 1, &len), got[4096];
	assert_int_equal(pread(old, got, sizeof got, 0), (ssize_t)len);
	assert_memory_equal(got, v1, len); /* never written again */
	free(v1);
	close(old);
}

static const struct {
	const char *step;
	int err;
	sd_err want;
} create_faults[] = {
	{"open", ENOSPC, SD_ERR_STORAGE_FULL}, {"write", ENOSPC, SD_ERR_STORAGE_FULL},
	{"write", EDQUOT, SD_ERR_STORAGE_FULL}, {"write", EIO, SD_ERR_INTERNAL},
	{"fsync", EIO, SD_ERR_INTERNAL},       {"fsync", EDQUOT, SD_ERR_STORAGE_FULL},
	{"link", EIO, SD_ERR_INTERNAL},        {"link", ENOSPC, SD_ERR_STORAGE_FULL},
	{"link", EDQUOT, SD_ERR_STORAGE_FULL},
	/* The first session of a fan-out folder fsyncs sessions/ after mkdir. */
	{"dirsync", EIO, SD_ERR_INTERNAL},     {"dirsync", ENOSPC, SD_ERR_STORAGE_FULL},
};

/* A failed create leaves no session file, no temporary file, no other name
 * and no descriptor open on a file of the store, whichever step fails. */
static void failed_creates_leave_nothing(fixture *f)
{
	size_t len;
	char *bytes = doc_bytes("CR000000", 1, "{}", &len);
	for (size_t i = 0; i < sizeof create_faults / sizeof create_faults[0]; i++) {
		char key[SD_KEY_LEN + 1];
		/* A fresh fan-out folder each time, so "dirsync" is reached first
		 * by ensure_fan_dir. */
		snprintf(key, sizeof key, "%c%c000000", 'A' + (int)i, 'A' + (int)i);
		char *snap = sdt_snapshot(f->dir);
		arm(create_faults[i].step, create_faults[i].err);
		sd_err e = sd_store_create(f->s, key, bytes, len);
		disarm();
		assert_int_equal(session_fds(f), 0);
		if (fault_hits != 1)
			fail_msg("case %zu: step %s reached %d times", i, create_faults[i].step, fault_hits);
		if (e != create_faults[i].want)
			fail_msg("case %zu: %s/%s gave %s, want %s", i, create_faults[i].step,
				 strerror(create_faults[i].err), sd_err_code(e), sd_err_code(create_faults[i].want));
		char *buf;
		size_t blen;
		assert_int_equal(sd_store_read(f->s, key, &buf, &blen, NULL), SD_ERR_NOT_FOUND);
		assert_no_temp(f, key);
		/* Nothing but (perhaps) the empty fan-out folder is new. */
		char fan[4096];
		fan_path(f, key, fan, sizeof fan);
		if (strcmp(create_faults[i].step, "dirsync") != 0)
			assert_int_equal(sdt_count_suffix(fan, ".json"), 0);
		rmdir(fan);
		char *snap2 = sdt_snapshot(f->dir);
		assert_string_equal(snap, snap2);
		free(snap);
		free(snap2);
	}
	free(bytes);
}

static void test_failed_create_leaves_no_file(void **state) { failed_creates_leave_nothing(*state); }

static int no_tmpfile(const char *step) { return strcmp(step, "open") == 0 ? EOPNOTSUPP : 0; }

/* The same on the fallback: a temporary file, linked, then unlinked. */
static void test_failed_create_leaves_no_file_without_o_tmpfile(void **state)
{
	fixture *f = *state;
	sd_store_fault_hook = no_tmpfile; /* every open: the temporary file's too */
	assert_int_equal(sd_store_create(f->s, "ZZ000000", "{}", 2), SD_ERR_INTERNAL);
	disarm();
	assert_no_temp(f, "ZZ000000");
	failed_creates_leave_nothing(f);
}

/* With durability none, nothing is fsynced: the fsync steps are never
 * reached, and a fault planted there changes nothing. */
static void test_durability_none_never_fsyncs(void **state)
{
	fixture *f = *state;
	arm("fsync", EIO);
	assert_int_equal(sd_store_create(f->s, "NONE0000", "{}", 2), SD_OK);
	sd_lock *l;
	char *buf;
	size_t len;
	assert_int_equal(sd_store_lock(f->s, "NONE0000", &l, &buf, &len, NULL), SD_OK);
	free(buf);
	assert_int_equal(sd_store_replace(l, "[]", 2), SD_OK);
	sd_store_unlock(l);
	disarm();
	assert_int_equal(fault_hits, 0);
	assert_int_equal(seen("fsync"), 0);
	assert_int_equal(seen("dirsync"), 0);
	assert_int_equal(seen("open"), 2);
	assert_int_equal(seen("write"), 2);
	assert_int_equal(seen("link"), 1);
	assert_int_equal(seen("rename"), 1);
	assert_bytes(f, "NONE0000", "[]", 2);
}

/* ---- scan --------------------------------------------------------------- */

typedef struct seen_entry {
	sd_entry_kind kind;
	char name[256]; /* path relative to DATA_DIR/sessions */
	char key[SD_KEY_LEN + 1];
	int is_reg;
} seen_entry;

typedef struct scan_acc {
	const char *sessions;
	seen_entry e[64];
	int n;
	int stop_after; /* 0: never */
} scan_acc;

static int collect(const sd_entry *e, void *ctx)
{
	scan_acc *a = ctx;
	assert_true(a->n < 64);
	seen_entry *s = &a->e[a->n++];
	s->kind = e->kind;
	size_t sl = strlen(a->sessions);
	assert_true(strncmp(e->path, a->sessions, sl) == 0 && e->path[sl] == '/');
	snprintf(s->name, sizeof s->name, "%s", e->path + sl + 1);
	snprintf(s->key, sizeof s->key, "%s", e->key ? e->key : "");
	s->is_reg = e->stat_errno == 0 && S_ISREG(e->st.st_mode);
	if (e->kind == SD_ENTRY_SESSION)
		assert_non_null(e->key);
	else
		assert_null(e->key);
	return a->stop_after && a->n >= a->stop_after;
}

static const seen_entry *find(const scan_acc *a, const char *name)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->e[i].name, name) == 0)
			return &a->e[i];
	return NULL;
}

static void mkfile(const fixture *f, const char *rel)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/sessions/%s", f->dir, rel);
	assert_int_equal(sdt_write_file(p, "{}\n"), 0);
}

static void mkfolder(const fixture *f, const char *rel)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/sessions/%s", f->dir, rel);
	assert_int_equal(mkdir(p, 0750), 0);
}

static void test_scan_reports_sessions_and_temps_and_skips_strays(void **state)
{
	fixture *f = *state;
	assert_int_equal(sd_store_create(f->s, "ABCDEFGH", "{}", 2), SD_OK);
	assert_int_equal(sd_store_create(f->s, "ZZ000001", "{}", 2), SD_OK);
	mkfolder(f, "CD");
	mkfile(f, "AB/.ABCDEFGH.Xy12Ab.tmp");  /* interrupted write */
	mkfile(f, ".health.q1w2e3.tmp");       /* interrupted health probe */
	mkfile(f, "AB/notakey.json");          /* wrong name */
	mkfile(f, "AB/abcdefgi.json");         /* not canonical (lower case) */
	mkfile(f, "AB/ABCDEFGI.txt");          /* wrong extension */
	mkfile(f, "AB/ABCDEFGI.json~");        /* editor backup */
	mkfolder(f, "AB/ABQQQQQQ.json");       /* a folder where a file should be */
	mkfile(f, "CD/ABCDEFGX.json");         /* file in the wrong fan-out folder */
	mkfile(f, "README");                   /* file at the top */
	mkfolder(f, "ab");                     /* not a fan-out folder name */
	mkfile(f, "ab/ABCDEFGY.json");         /* ...so its content is not looked at */
	mkfolder(f, "ABC");                    /* three characters */
	char link[4096];
	snprintf(link, sizeof link, "%s/sessions/AB/ABSYMLNK.json", f->dir);
	assert_int_equal(symlink("ABCDEFGH.json", link), 0); /* a symlink is not a session */

	scan_acc a = {0};
	char sess[4096];
	snprintf(sess, sizeof sess, "%s/sessions", f->dir);
	a.sessions = sess;
	assert_int_equal(sd_store_scan(f->s, collect, &a, NULL), SD_OK);

	static const struct {
		const char *name;
		sd_entry_kind kind;
		const char *key;
	} want[] = {
		{"AB/ABCDEFGH.json", SD_ENTRY_SESSION, "ABCDEFGH"},
		{"ZZ/ZZ000001.json", SD_ENTRY_SESSION, "ZZ000001"},
		{"AB/.ABCDEFGH.Xy12Ab.tmp", SD_ENTRY_TEMP, ""},
		{".health.q1w2e3.tmp", SD_ENTRY_TEMP, ""},
		{"AB/notakey.json", SD_ENTRY_STRAY, ""},
		{"AB/abcdefgi.json", SD_ENTRY_STRAY, ""},
		{"AB/ABCDEFGI.txt", SD_ENTRY_STRAY, ""},
		{"AB/ABCDEFGI.json~", SD_ENTRY_STRAY, ""},
		{"AB/ABQQQQQQ.json", SD_ENTRY_STRAY, ""},
		{"CD/ABCDEFGX.json", SD_ENTRY_STRAY, ""},
		{"README", SD_ENTRY_STRAY, ""},
		{"ab", SD_ENTRY_STRAY, ""},
		{"ABC", SD_ENTRY_STRAY, ""},
		{"AB/ABSYMLNK.json", SD_ENTRY_STRAY, ""},
	};
	size_t nwant = sizeof want / sizeof want[0];
	for (size_t i = 0; i < nwant; i++) {
		const seen_entry *e = find(&a, want[i].name);
		if (!e)
			fail_msg("scan did not report %s", want[i].name);
		if (e->kind != want[i].kind)
			fail_msg("%s classified %d, want %d", want[i].name, e->kind, want[i].kind);
		assert_string_equal(e->key, want[i].key);
		if (want[i].kind == SD_ENTRY_SESSION)
			assert_true(e->is_reg);
	}
	/* Nothing else: the fan-out folders themselves are not entries, and
	 * nothing under "ab" was visited. */
	if ((size_t)a.n != nwant) {
		for (int i = 0; i < a.n; i++)
			print_message("  seen %d %s\n", a.e[i].kind, a.e[i].name);
		fail_msg("scan reported %d entries, want %zu", a.n, nwant);
	}

	/* A non-zero return from the visitor stops the scan. */
	scan_acc b = {.sessions = sess, .stop_after = 1};
	assert_int_equal(sd_store_scan(f->s, collect, &b, NULL), SD_OK);
	assert_int_equal(b.n, 1);
	scan_acc c = {.sessions = sess, .stop_after = 3};
	assert_int_equal(sd_store_scan(f->s, collect, &c, NULL), SD_OK);
	assert_int_equal(c.n, 3);

	/* No sessions folder at all. */
	char moved[4096];
	snprintf(moved, sizeof moved, "%s/moved", f->dir);
	assert_int_equal(rename(sess, moved), 0);
	scan_acc d = {.sessions = sess};
	assert_int_equal(sd_store_scan(f->s, collect, &d, NULL), SD_ERR_INTERNAL);
	assert_int_equal(d.n, 0);
	assert_int_equal(rename(moved, sess), 0);
}

static void test_scan_of_an_empty_store_finds_nothing(void **state)
{
	fixture *f = *state;
	char sess[4096];
	snprintf(sess, sizeof sess, "%s/sessions", f->dir);
	scan_acc a = {.sessions = sess};
	assert_int_equal(sd_store_scan(f->s, collect, &a, NULL), SD_OK);
	assert_int_equal(a.n, 0);
}

/* ---- the lock stress test ---------------------------------------------- */

#define STRESS_KEY "STRESS00"

typedef struct stress_cfg {
	int procs, threads, iters;
	int unsafe;
} stress_cfg;

static stress_cfg stress_config(void)
{
	stress_cfg c = {.procs = 8, .threads = 2, .iters = 300};
	const char *u = getenv("SD_STRESS_UNSAFE");
	c.unsafe = u && strcmp(u, "1") == 0;
	/* ASan+UBSan runs the full load in about a second; valgrind does not:
	 * every forked process stays on its JIT (--trace-children only
	 * concerns exec), so it gets a third of the load. */
	if (sdt_under_valgrind())
		c.iters = 100;
	return c;
}

typedef struct stress_thread {
	sd_store *s;
	int iters;
	int errors;
	char why[128];
} stress_thread;

/* One read-modify-write increment under the session's lock. */
static sd_err increment(sd_store *s, char why[128])
{
	sd_lock *l;
	char *buf;
	size_t len;
	sd_err e = sd_store_lock(s, STRESS_KEY, &l, &buf, &len, NULL);
	if (e != SD_OK) {
		snprintf(why, 128, "lock: %s", sd_err_code(e));
		return e;
	}
	json_t *doc;
	char msg[SD_MSG_MAX];
	e = sd_doc_parse_stored(buf, len, STRESS_KEY, &doc, msg);
	free(buf);
	if (e != SD_OK) {
		snprintf(why, 128, "parse: %s", msg);
		sd_store_unlock(l);
		return e;
	}
	json_t *data = json_object_get(doc, "data");
	json_int_t n = json_integer_value(json_object_get(data, "counter"));
	json_object_set_new(data, "counter", json_integer(n + 1));
	json_object_set_new(doc, "version", json_integer(sd_doc_version(doc) + 1));
	char now[SD_TIME_LEN];
	sd_time_now(now);
	json_object_set_new(doc, "updated", json_string(now));
	char *out = sd_doc_dump(doc, &len);
	json_decref(doc);
	e = out ? sd_store_replace(l, out, len) : SD_ERR_INTERNAL;
	free(out);
	if (e != SD_OK)
		snprintf(why, 128, "replace: %s", sd_err_code(e));
	sd_store_unlock(l);
	return e;
}

static void *stress_worker(void *arg)
{
	stress_thread *t = arg;
	for (int i = 0; i < t->iters; i++)
		if (increment(t->s, t->why) != SD_OK)
			t->errors++;
	return NULL;
}

/* A child: its own store on the shared data dir, c->threads threads. Waits
 * for the start signal (the pipe closing) so that all begin together. */
static void stress_child(const char *dir, const stress_cfg *c, int start_fd)
{
	char ch;
	while (read(start_fd, &ch, 1) > 0)
		;
	sd_store_opts o = {.data_dir = dir, .durability = SD_DURABLE_NONE, .lock_timeout_ms = 60000,
			   .skip_inode_check = c->unsafe};
	sd_store *s;
	if (sd_store_open(&o, &s, NULL) != SD_OK)
		_exit(10);
	stress_thread t[8];
	pthread_t th[8];
	int errors = 0;
	for (int i = 0; i < c->threads; i++) {
		t[i] = (stress_thread){.s = s, .iters = c->iters};
		if (pthread_create(&th[i], NULL, stress_worker, &t[i]) != 0)
			_exit(11);
	}
	for (int i = 0; i < c->threads; i++) {
		pthread_join(th[i], NULL);
		if (t[i].errors) {
			fprintf(stderr, "stress child %d: %d errors, last %s\n", (int)getpid(), t[i].errors,
				t[i].why);
			errors += t[i].errors;
		}
	}
	sd_store_close(s);
	_exit(errors ? 1 : 0);
}

static void test_locked_increments_from_many_processes_lose_nothing(void **state)
{
	fixture *f = *state;
	stress_cfg c = stress_config();
	size_t len;
	char *bytes = doc_bytes(STRESS_KEY, 1, "{\"counter\":0}", &len);
	assert_int_equal(sd_store_create(f->s, STRESS_KEY, bytes, len), SD_OK);
	free(bytes);

	int start[2];
	assert_int_equal(pipe(start), 0);
	pid_t pids[64];
	assert_true(c.procs <= 64 && c.threads <= 8);
	for (int i = 0; i < c.procs; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(start[1]);
			stress_child(f->dir, &c, start[0]);
		}
	}
	close(start[0]);
	int64_t t0 = sd_time_mono_ns();
	close(start[1]); /* go */
	int failed = 0;
	for (int i = 0; i < c.procs; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	double secs = (double)(sd_time_mono_ns() - t0) / 1e9;

	char *buf;
	assert_int_equal(sd_store_read(f->s, STRESS_KEY, &buf, &len, NULL), SD_OK);
	json_t *doc;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_doc_parse_stored(buf, len, STRESS_KEY, &doc, msg), SD_OK);
	free(buf);
	long long total = (long long)c.procs * c.threads * c.iters;
	long long counter = json_integer_value(json_object_get(json_object_get(doc, "data"), "counter"));
	long long version = sd_doc_version(doc);
	json_decref(doc);
	print_message("lock stress%s: %d processes x %d threads x %d = %lld increments in %.2f s: "
		      "counter %lld of %lld, version %lld, %lld lost updates\n",
		      c.unsafe ? " (skip_inode_check=1, SD_STRESS_UNSAFE)" : "", c.procs, c.threads, c.iters,
		      total, secs, counter, total, version, total - counter);
	assert_no_temp(f, STRESS_KEY);
	assert_int_equal(failed, 0);
	assert_int_equal(counter, total);
	assert_int_equal(version, 1 + total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_makes_the_sessions_layout, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_created_bytes_read_back_exactly, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_create_over_an_existing_session_is_refused_untouched, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_replace_under_the_lock_swaps_the_bytes, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_lock_of_a_missing_session_is_not_found, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_at_a_session_path_is_refused_at_once, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_remove_under_the_lock_deletes_the_file, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_a_create_makes_no_temporary_name, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_a_refused_empty_path_link_goes_through_proc, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_without_o_tmpfile_creates_use_a_temporary_file, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_without_proc_creates_use_a_temporary_file, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_without_exchange_saves_use_a_temporary_file, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_saves_trade_two_inodes_and_delete_takes_both, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_reader_of_a_spare_never_takes_an_unsaved_version, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_a_reader_never_waits_on_a_stuck_writer_of_the_spare, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_second_writer_waits_until_the_spare_is_released, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_a_spare_that_is_not_a_plain_file_is_never_written, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_a_folder_at_the_spare_does_not_stop_a_delete, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_below_min_free_a_save_makes_no_spare, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_folder_is_a_top_dir_where_the_fs_has_one, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_put_creates_then_replaces, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_writable_check_leaves_nothing_behind, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held_by_another_process_times_out, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held_by_another_store_handle_times_out, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held_by_another_thread_times_out, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_failed_replace_keeps_the_old_document, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_failed_folder_sync_after_rename_is_reported_not_durable, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_failed_folder_sync_after_an_exchange_drops_the_spare, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_failed_create_leaves_no_file, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_failed_create_leaves_no_file_without_o_tmpfile, setup_full, teardown),
		cmocka_unit_test_setup_teardown(test_durability_none_never_fsyncs, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_scan_reports_sessions_and_temps_and_skips_strays, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_scan_of_an_empty_store_finds_nothing, setup_none, teardown),
		cmocka_unit_test_setup_teardown(test_locked_increments_from_many_processes_lose_nothing, setup_none, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
