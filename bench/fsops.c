/* fsops: see fsops.h. Keep in step with src/core/store.c (write_temp,
 * fill, open_spare, replace_by_exchange, create_unfenced): a ceiling is
 * only fair while it takes the same file-system steps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>
#include "fsops.h"

static int mkdir_p(const char *path)
{
	char buf[SD_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

int fsops_open(fsops_store *s, const char *dir, int full)
{
	memset(s, 0, sizeof *s);
	s->full = full;
	if ((size_t)snprintf(s->sessions, sizeof s->sessions, "%s/%s", dir, SD_LAYOUT_SESSIONS) >= sizeof s->sessions) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir_p(s->sessions) != 0)
		return -1;
	int fd = open(s->sessions, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags;
	if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_TOPDIR_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

int fsops_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int fsops_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void fsops_path(const fsops_store *s, const char *key, char *buf, size_t n)
{
	sd_layout_session_path(s->sessions, key, buf, n);
}

void fsops_fan_dir(const fsops_store *s, const char *key, char *buf, size_t n)
{
	sd_layout_fan_dir(s->sessions, key, buf, n);
}

/* Close fd keeping errno; -1. */
static int fail_close(int fd)
{
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* sessiond's open_spare, without its checks of what the spare is (the
 * benchmark makes every file itself): both locks, waited for. */
static int lock_spare(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int r;
	while ((r = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
		;
	while (r == 0 && (r = fcntl(fd, F_OFD_SETLKW, &fl)) != 0 && errno == EINTR)
		;
	return r;
}

int fsops_replace(const fsops_store *s, const char *key, const char *buf, size_t len, int lock)
{
	char dir[SD_PATH_MAX], spare[SD_PATH_MAX], path[SD_PATH_MAX];
	fsops_fan_dir(s, key, dir, sizeof dir);
	fsops_path(s, key, path, sizeof path);
	sd_layout_spare_path(dir, key, spare, sizeof spare);
	int fd = open(spare, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	struct stat st;
	/* over the old bytes, cut only what is left beyond them (store.c's
	 * replace_by_exchange says why); fdatasync, as store.c's fill */
	if (fstat(fd, &st) != 0 || (lock && lock_spare(fd) != 0) || fsops_write_all(fd, buf, len) != 0 ||
	    (st.st_size > (off_t)len && ftruncate(fd, (off_t)len) != 0) || (s->full && fdatasync(fd) != 0) ||
	    renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_EXCHANGE) != 0)
		return fail_close(fd);
	close(fd);
	return s->full ? fsops_sync_dir(dir) : 0;
}

/* The fan-out folder of key exists and, with full, its name is durable in
 * sessions/: store.c's ensure_fan_dir, once per folder and process. */
static int fan_ready(fsops_store *s, const char *key, const char *dir)
{
	char fan[3] = {key[0], key[1], '\0'};
	int i = sd_layout_fan_index(fan);
	if (i >= 0 && __atomic_load_n(&s->fan_durable[i], __ATOMIC_ACQUIRE))
		return 0;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return -1;
	if (s->full && fsops_sync_dir(s->sessions) != 0)
		return -1;
	if (i >= 0)
		__atomic_store_n(&s->fan_durable[i], 1, __ATOMIC_RELEASE);
	return 0;
}

/* A temporary file in dir holding buf (fdatasync with full); its name in
 * tmp. Nothing is left behind on failure. */
/* The new file's bytes in an inode without a name (O_TMPFILE in dir), as
 * store.c's create writes them: an open descriptor, or -1 with errno. */
static int write_unnamed(const fsops_store *s, const char *dir, const char *buf, size_t len)
{
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0640) != 0 || fsops_write_all(fd, buf, len) != 0 || (s->full && fdatasync(fd) != 0)) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The one place a file is created, as store.c's create: the bytes in an
 * O_TMPFILE inode, named by linkat(AT_EMPTY_PATH) (EEXIST when the key is
 * taken), then [the folder's fsync]. */
int fsops_create(fsops_store *s, char key[SD_KEY_LEN + 1], const char *buf, size_t len)
{
	for (int tries = 0; tries < 8; tries++) {
		char dir[SD_PATH_MAX], path[SD_PATH_MAX];
		fsops_fan_dir(s, key, dir, sizeof dir);
		fsops_path(s, key, path, sizeof path);
		if (fan_ready(s, key, dir) != 0)
			return -1;
		int fd = write_unnamed(s, dir, buf, len);
		if (fd < 0)
			return -1;
		int r = linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH), saved = errno;
		close(fd);
		if (r == 0)
			return s->full ? fsops_sync_dir(dir) : 0;
		if (saved != EEXIST) {
			errno = saved;
			return -1;
		}
		sd_key_generate(key, NULL, NULL);
	}
	errno = EEXIST;
	return -1;
}
