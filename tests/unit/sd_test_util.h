/* sd_test_util.h: small helpers shared by the cmocka unit suites: a
 * temporary data directory under /tmp, recursive removal, whole-file reads
 * and a snapshot of a directory tree (names and bytes) to prove that a
 * refused request wrote nothing. Header-only (static inline) so each suite
 * stays a single file for the Makefile. */
#ifndef SD_TEST_UTIL_H
#define SD_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1 when tests/run_all.sh runs us under valgrind. */
static inline int sdt_under_valgrind(void)
{
	const char *v = getenv("SD_UNDER_VALGRIND");
	return v && strcmp(v, "1") == 0;
}

/* A fresh directory /tmp/sd-unit-NAME.XXXXXX; the caller frees the path. */
static inline char *sdt_mkdtemp(const char *name)
{
	char buf[256];
	snprintf(buf, sizeof buf, "/tmp/sd-unit-%s.XXXXXX", name);
	if (!mkdtemp(buf))
		return NULL;
	return strdup(buf);
}

static inline int sdt_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
		return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf path; only ever called on directories from sdt_mkdtemp. */
static inline int sdt_rm_rf(const char *path)
{
	if (!path || strncmp(path, "/tmp/sd-unit-", 13) != 0)
		return -1;
	return nftw(path, sdt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whole file into a malloc'd NUL-terminated buffer; NULL when unreadable. */
static inline char *sdt_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b)
			break;
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(b);
			b = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (b) {
		b[n] = '\0';
		if (len)
			*len = n;
	}
	return b;
}

static inline int sdt_write_file(const char *path, const char *bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	size_t n = strlen(bytes);
	ssize_t w = write(fd, bytes, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

typedef struct sdt_buf {
	char *p;
	size_t len, cap;
} sdt_buf;

static inline void sdt_buf_add(sdt_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 4096) + n;
		char *np = realloc(b->p, nc);
		if (!np)
			abort();
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static inline int sdt_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void sdt_snap_dir(sdt_buf *out, const char *dir, int dirs)
{
	DIR *d = opendir(dir);
	if (!d) {
		sdt_buf_add(out, "?", 1);
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char **nn = realloc(names, (n + 1) * sizeof *names);
		if (!nn)
			abort();
		names = nn;
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof *names, sdt_cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		struct stat st;
		const char *base = strrchr(dir, '/');
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && base &&
		    strcmp(base, "/buckets") == 0) {
			/* an open bucket's lock file (the freeze barrier) made by
			 * the first write to the bucket: no data, not a change */
		} else if (S_ISDIR(st.st_mode)) {
			if (dirs && strcmp(names[i], "buckets") != 0) {
				sdt_buf_add(out, path, strlen(path));
				sdt_buf_add(out, "/\n", 2);
			}
			sdt_snap_dir(out, path, dirs);
		} else {
			sdt_buf_add(out, path, strlen(path));
			size_t len = 0;
			char *bytes = sdt_read_file(path, &len);
			sdt_buf_add(out, "\n", 1);
			if (bytes)
				sdt_buf_add(out, bytes, len);
			free(bytes);
			sdt_buf_add(out, "\n--\n", 4);
		}
		free(names[i]);
	}
	free(names);
}

/* Every path under dir, sorted, with the bytes of every file: two equal
 * snapshots mean nothing was created, removed or rewritten. The freeze
 * barrier's DATA_DIR/buckets/ folder and its empty files (open buckets'
 * lock files, made by a bucket's first write attempt) do not count; a
 * frozen or moved bucket's does. Caller frees. */
static inline char *sdt_snapshot(const char *dir)
{
	sdt_buf b = {0};
	sdt_buf_add(&b, "", 0);
	sdt_snap_dir(&b, dir, 1);
	return b.p;
}

/* The same, but folders are not listed: an empty folder left behind (a
 * fan-out folder made before a write failed) does not count. */
static inline char *sdt_snapshot_files(const char *dir)
{
	sdt_buf b = {0};
	sdt_buf_add(&b, "", 0);
	sdt_snap_dir(&b, dir, 0);
	return b.p;
}

/* Number of entries in dir whose name ends with suffix. */
static inline int sdt_count_suffix(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	size_t sl = strlen(suffix);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* {"data":[{},{},...]} of about n bytes (malloc'd; length in *len): the
 * body that needs the most memory parsed per byte of text (sd_mem). */
static inline char *sdt_worst_json(size_t n, size_t *len)
{
	char *s = malloc(n + 16);
	*len = 0;
	if (!s)
		return NULL;
	size_t k = (size_t)sprintf(s, "{\"data\":[");
	while (k < n) {
		memcpy(s + k, "{},", 3);
		k += 3;
	}
	s[k - 1] = ']';
	s[k++] = '}';
	s[k] = '\0';
	*len = k;
	return s;
}

#endif
