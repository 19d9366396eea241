/* bucket.c: the node-local freeze barrier (see sd_bucket.h for the
 * protocol). The state lives in the size of DATA_DIR/buckets/XY, so a
 * writer reads it with one fstat of a descriptor it already holds; lock
 * files are never removed, so a cached descriptor always names the file
 * the freezer writes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sd_bucket.h"
#include "sd_key.h"
#include "sd_log.h"

#define DIR_MAX 4096

void (*sd_bucket_hold_hook)(int bucket);

struct slot {
	pthread_mutex_t mu;
	int fd;        /* -1 until the first write to the bucket */
	int holders;   /* threads of this process inside the barrier */
};

struct sd_buckets {
	char dir[DIR_MAX];
	struct slot slot[SD_BUCKET_COUNT];
};

const char *sd_bstate_name(sd_bstate st)
{
	return st == SD_BSTATE_FROZEN ? "frozen" : st == SD_BSTATE_MOVED ? "moved" : "open";
}

sd_buckets *sd_buckets_new(const char *data_dir)
{
	sd_buckets *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	snprintf(b->dir, sizeof b->dir, "%s/buckets", data_dir);
	for (int i = 0; i < SD_BUCKET_COUNT; i++) {
		pthread_mutex_init(&b->slot[i].mu, NULL);
		b->slot[i].fd = -1;
	}
	return b;
}

void sd_buckets_free(sd_buckets *b)
{
	if (!b)
		return;
	for (int i = 0; i < SD_BUCKET_COUNT; i++) {
		if (b->slot[i].fd >= 0)
			close(b->slot[i].fd);
		pthread_mutex_destroy(&b->slot[i].mu);
	}
	free(b);
}

/* Open (creating the folder and the file when missing) the lock file of a
 * bucket. -1 with errno set on failure. */
static int open_lock(const char *dir, int bucket, int create)
{
	char name[3], path[DIR_MAX + 8];
	sd_bucket_name(bucket, name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0640);
	if (fd < 0 && create && errno == ENOENT) {
		if (mkdir(dir, 0750) != 0 && errno != EEXIST)
			return -1;
		fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT, 0640);
	}
	return fd;
}

static int flock_retry(int fd, int op)
{
	int r;
	while ((r = flock(fd, op)) != 0 && errno == EINTR)
		;
	return r;
}

sd_err sd_bucket_enter(sd_buckets *b, int bucket)
{
	if (!b || bucket < 0 || bucket >= SD_BUCKET_COUNT)
		return SD_OK;
	struct slot *sl = &b->slot[bucket];
	sd_err e = SD_OK;
	pthread_mutex_lock(&sl->mu);
	if (sl->fd < 0 && (sl->fd = open_lock(b->dir, bucket, 1)) < 0) {
		/* made by the bucket's first write: a full disk is storage_full */
		e = sd_err_from_errno(errno);
		sd_log_error("cannot open the bucket lock in %s: %s", b->dir, strerror(errno));
	} else if (sl->holders == 0 && flock_retry(sl->fd, LOCK_SH) != 0) {
		sd_log_error("cannot lock a bucket in %s: %s", b->dir, strerror(errno));
		e = SD_ERR_INTERNAL;
	} else {
		struct stat st;
		if (fstat(sl->fd, &st) != 0) {
			e = SD_ERR_INTERNAL;
		} else if (st.st_size != 0) {
			e = SD_ERR_FROZEN;
		}
		if (e == SD_OK)
			sl->holders++;
		else if (sl->holders == 0)
			flock_retry(sl->fd, LOCK_UN);
	}
	pthread_mutex_unlock(&sl->mu);
	if (e == SD_OK && sd_bucket_hold_hook)
		sd_bucket_hold_hook(bucket);
	return e;
}

void sd_bucket_leave(sd_buckets *b, int bucket)
{
	if (!b || bucket < 0 || bucket >= SD_BUCKET_COUNT)
		return;
	struct slot *sl = &b->slot[bucket];
	pthread_mutex_lock(&sl->mu);
	if (--sl->holders == 0)
		flock_retry(sl->fd, LOCK_UN);
	pthread_mutex_unlock(&sl->mu);
}

sd_err sd_bucket_set(const char *data_dir, int bucket, sd_bstate st, char msg[SD_MSG_MAX])
{
	char dir[DIR_MAX];
	snprintf(dir, sizeof dir, "%s/buckets", data_dir);
	int fd = open_lock(dir, bucket, 1);
	if (fd < 0) {
		snprintf(msg, SD_MSG_MAX, "cannot open the lock file in %s: %s", dir, strerror(errno));
		return SD_ERR_INTERNAL;
	}
	/* First the state, so that writers arriving from now on refuse; then
	 * the exclusive lock, which waits for the writers already inside. */
	sd_err e = SD_OK;
	if (ftruncate(fd, (off_t)st) != 0 || fsync(fd) != 0) {
		snprintf(msg, SD_MSG_MAX, "cannot write the bucket state: %s", strerror(errno));
		e = SD_ERR_INTERNAL;
	} else if (st != SD_BSTATE_OPEN && flock_retry(fd, LOCK_EX) != 0) {
		snprintf(msg, SD_MSG_MAX, "cannot lock the bucket: %s", strerror(errno));
		e = SD_ERR_INTERNAL;
	}
	close(fd);
	return e;
}

sd_err sd_bucket_get(const char *data_dir, int bucket, sd_bstate *st, char msg[SD_MSG_MAX])
{
	char dir[DIR_MAX];
	snprintf(dir, sizeof dir, "%s/buckets", data_dir);
	*st = SD_BSTATE_OPEN;
	int fd = open_lock(dir, bucket, 0);
	if (fd < 0) {
		if (errno == ENOENT)
			return SD_OK;
		snprintf(msg, SD_MSG_MAX, "cannot open the lock file in %s: %s", dir, strerror(errno));
		return SD_ERR_INTERNAL;
	}
	struct stat sb;
	sd_err e = SD_OK;
	if (fstat(fd, &sb) != 0) {
		snprintf(msg, SD_MSG_MAX, "cannot stat the lock file: %s", strerror(errno));
		e = SD_ERR_INTERNAL;
	} else {
		*st = sb.st_size == 1 ? SD_BSTATE_FROZEN : sb.st_size >= 2 ? SD_BSTATE_MOVED : SD_BSTATE_OPEN;
	}
	close(fd);
	return e;
}
