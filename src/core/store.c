/* store.c: session files, atomic create/replace, and the rename-safe lock.
 * The admin side (scan, quarantine, temp removal) is store_scan.c.
 *
 * The invariants, written once (docs/design.md refers here by number).
 *
 * Durability (with --durability full; none skips every fsync):
 *   I1. A session file is never written while it has the session's name.
 *       A save's bytes go to the session's spare (.KEY.spare in the same
 *       folder: the inode the previous save put aside), or, where the file
 *       system cannot exchange names, to a temporary file
 *       (sd_layout_temp_template); either is fsynced before it gets the
 *       session's name, so a reader or a crash sees the old file or the new
 *       one, never a mix. The spare is written under an F_OFD write lock,
 *       held until it has the session's name, and emptied and removed if
 *       the save fails before that (I7).
 *   I2. A new session's bytes go to a file without a name (O_TMPFILE),
 *       fsynced, which then gets the session's name by linkat(2); where the
 *       file system or the kernel cannot, to a temporary file that gets it
 *       by link(2). Either way it appears whole or not at all, and an
 *       existing key is never overwritten (EEXIST).
 *   I3. A save gets its name by renameat2(RENAME_EXCHANGE) of the spare
 *       and the session file (the old version becomes the spare), or by
 *       rename(2) of the temporary file over it, under the session's lock
 *       (I5); that rename is the commit point.
 *   I4. Nothing is acknowledged before the folder holding the new name is
 *       fsynced; a folder the store makes (DATA_DIR, sessions/, a fan-out
 *       folder) is fsynced into its parent before any session in it is
 *       acknowledged. An fsync that fails after the commit point answers
 *       SD_ERR_UNSYNCED, never "unchanged"; after an exchange it also
 *       removes the spare, which the disk may still name KEY.json (I1).
 *
 * Locking (shared by every process that opens the data dir):
 *   I5. Every read-modify-write holds the session's lock from its read to
 *       its rename: threads of this process first queue on a striped mutex
 *       chosen by key, with a deadline (pthread_mutex_clocklock), so flock
 *       only arbitrates between processes; then the session file is opened
 *       and flock(LOCK_EX|LOCK_NB) polled with a short back-off until the
 *       deadline (SD_ERR_BUSY after it).
 *   I6. A lock guards the path only while the path still names the locked
 *       inode: after flock, fstat of the descriptor is compared with stat
 *       of the path; another inode (a writer renamed a new file over it
 *       while we waited) or none (gc removed it) means: drop it and start
 *       again at the open. A writer renames while still holding the lock on
 *       the old inode, so every waiter that wins the old inode's lock sees
 *       the mismatch and retries on the new one: no read-modify-write can
 *       start from a stale copy.
 *   I7. Readers take no session lock, only an F_OFD read lock on the file
 *       they opened: the inode they hold may since have become the spare,
 *       and the lock keeps a save from writing it while they read. They
 *       never wait for a writer: a write-locked file that is no longer the
 *       session's is left for the current one (polled until the lock
 *       timeout, SD_ERR_BUSY after it). What they read is a whole version
 *       (I1-I3); an empty file that is no longer the session's (a failed
 *       save emptied its spare) is read again.
 *   I8. Removal (delete, gc, the sweeper) unlinks the spare, then the
 *       session, under the same lock (I5), so a writer waiting for it then
 *       finds nothing (SD_ERR_NOT_FOUND). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include "sd_log.h"
#include "sd_metrics.h"
#include "sd_time.h"
#include "store_priv.h"


int (*sd_store_fault_hook)(const char *step);


struct sd_lock {
	sd_store *s;
	int fd;
	off_t size; /* the locked file's size when it was opened */
	unsigned stripe;
	char key[SD_KEY_LEN + 1];
	char path[SD_PATH_MAX];
};

/* Switches that break one durability step on purpose. Only the power-loss
 * checker (tests/crash/) builds with them, to show that it catches each. */
#ifdef SD_CRASHTEST_NO_FILE_FSYNC
#define CT_FILE_FSYNC 0
#else
#define CT_FILE_FSYNC 1
#endif
#ifdef SD_CRASHTEST_NO_RENAME_DIR_FSYNC
#define CT_RENAME_DIR_FSYNC 0
#else
#define CT_RENAME_DIR_FSYNC 1
#endif
#ifdef SD_CRASHTEST_NO_LINK_DIR_FSYNC
#define CT_LINK_DIR_FSYNC 0
#else
#define CT_LINK_DIR_FSYNC 1
#endif
#ifdef SD_CRASHTEST_NO_FANOUT_FSYNC
#define CT_FANOUT_FSYNC 0
#else
#define CT_FANOUT_FSYNC 1
#endif
#ifdef SD_CRASHTEST_NO_MKDIR_FSYNC
#define CT_MKDIR_FSYNC 0
#else
#define CT_MKDIR_FSYNC 1
#endif

sd_err store_sys_fail(sd_error *er, sd_err code, int errnum)
{
	return sd_error_set(er, code, errnum, "%s", errnum ? strerror(errnum) : sd_err_message(code));
}

/* Returns the errno a test wants this step to fail with, 0 normally. */
static int fault(const char *step) { return sd_store_fault_hook ? sd_store_fault_hook(step) : 0; }

/* fault() for a step that fails as -1 with errno: -1 with errno the
 * test's, else 0. */
static int fault_errno(const char *step)
{
	int f = fault(step);
	if (f)
		errno = f;
	return f ? -1 : 0;
}


/* mkdir -p that fsyncs the parent of every folder it creates, so that a
 * power cut cannot take a new folder (and every session in it) away. */
static int mkdir_p(const sd_store *s, const char *path, mode_t mode)
{
	char buf[SD_PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) == 0) {
			char *slash = strrchr(buf, '/');
			if (slash)
				*slash = '\0';
			int r = CT_MKDIR_FSYNC ? store_sync_dir(s, !slash ? "." : slash == buf ? "/" : buf) : 0;
			if (slash)
				*slash = '/';
			if (r != 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		if (!c)
			return 0;
		*p = c;
	}
}

/* Mark sessions/ as the top of a directory tree (FS_TOPDIR_FL, chattr +T):
 * ext4 then spreads the fan-out folders made in it over the whole file
 * system (the Orlov allocator) instead of packing them next to their
 * parent, whose block groups share the neighbourhood of everything else
 * made and removed under the same parent folder. Best effort: other file
 * systems do not have the flag, and nothing depends on it.
 * SESSIOND_NO_TOPDIR=1 in the environment leaves the flag alone (for
 * measuring what it does: docs/performance.md). */
static void spread_fan_dirs(const char *sessions)
{
	if (getenv("SESSIOND_NO_TOPDIR"))
		return;
	int fd = open(sessions, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	int flags;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
		flags |= FS_TOPDIR_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
}

sd_err sd_store_open(const sd_store_opts *o, sd_store **out, char msg[SD_MSG_MAX])
{
	*out = NULL;
	sd_store *s = calloc(1, sizeof *s);
	if (!s)
		return SD_ERR_INTERNAL;
	snprintf(s->dir, sizeof s->dir, "%s", o->data_dir);
	snprintf(s->sessions, sizeof s->sessions, "%s/" SD_LAYOUT_SESSIONS, o->data_dir);
	s->durability = o->durability;
	s->lock_timeout_ms = o->lock_timeout_ms;
	s->skip_inode_check = o->skip_inode_check;
	s->min_free_pct = o->min_free_pct;
	s->min_free_bytes = o->min_free_bytes;
	if (o->must_exist) {
		struct stat st;
		if (stat(s->sessions, &st) != 0 || !S_ISDIR(st.st_mode)) {
			if (msg)
				snprintf(msg, SD_MSG_MAX, "no session store at %s (%s is not a folder)",
					 s->dir, s->sessions);
			free(s);
			return SD_ERR_NOT_FOUND;
		}
	} else if (mkdir_p(s, s->sessions, 0750) != 0 ||
		   /* sessions/ may be another process's, made but not yet synced */
		   (CT_MKDIR_FSYNC && store_sync_dir(s, s->dir) != 0)) {
		if (msg)
			snprintf(msg, SD_MSG_MAX, "cannot create %s: %s", s->sessions, strerror(errno));
		free(s);
		return SD_ERR_INTERNAL;
	}
	spread_fan_dirs(s->sessions);
	if (!o->skip_barrier && !(s->buckets = sd_buckets_new(s->dir))) {
		free(s);
		return SD_ERR_INTERNAL;
	}
	for (int i = 0; i < STORE_STRIPES; i++)
		pthread_mutex_init(&s->stripe[i], NULL);
	*out = s;
	return SD_OK;
}

void sd_store_close(sd_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < STORE_STRIPES; i++)
		pthread_mutex_destroy(&s->stripe[i]);
	sd_buckets_free(s->buckets);
	free(s);
}

const char *sd_store_dir(const sd_store *s) { return s->dir; }

char *sd_store_path(const sd_store *s, const char *key, char *buf, size_t n)
{
	sd_layout_session_path(s->sessions, key, buf, n);
	return buf;
}

static void fan_dir(const sd_store *s, const char *key, char *buf, size_t n)
{
	sd_layout_fan_dir(s->sessions, key, buf, n);
}

static int write_all(int fd, const char *buf, size_t len)
{
	if (fault_errno("write") != 0)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int do_fsync(int fd, const char *step)
{
	if (fault_errno(step) != 0)
		return -1;
	sd_metrics_add(SD_M_FSYNCS, 1);
	/* A file's bytes and what finds them (size, blocks) need fdatasync,
	 * not its times: a save that keeps the length then skips the inode
	 * write (11% of a durable save in the profile). A folder: fsync. */
	return strcmp(step, "fsync") == 0 ? fdatasync(fd) : fsync(fd);
}

/* Write-lock all of fd, waiting (F_OFD_SETLKW: a lock of the open file,
 * which neither flock nor another thread's descriptor shares): the writer
 * of a spare (I1). Readers of a session poll for their read lock instead
 * (read_lock). */
static int ofd_write_lock(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int r;
	while ((r = fcntl(fd, F_OFD_SETLKW, &fl)) != 0 && errno == EINTR)
		;
	return r;
}

int store_sync_dir(const sd_store *s, const char *dir)
{
	if (s->durability == SD_DURABLE_NONE)
		return 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = do_fsync(fd, "dirsync");
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* Make sure sessions/XX exists and its name is durable in sessions/. The
 * first create in a folder in this process syncs sessions/ even when the
 * folder was already there: whoever made it may not have synced it yet
 * (another thread between its mkdir and its fsync, or one whose fsync
 * failed). After that the folder is known durable and costs nothing. */
static int ensure_fan_dir(sd_store *s, const char *key)
{
	char fan[3] = {key[0], key[1], '\0'};
	int idx = sd_layout_fan_index(fan); /* key is canonical: never -1 */
	if (__atomic_load_n(&s->fan_durable[idx], __ATOMIC_ACQUIRE))
		return 0;
	char dir[SD_PATH_MAX];
	fan_dir(s, key, dir, sizeof dir);
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return -1;
	if (CT_FANOUT_FSYNC && store_sync_dir(s, s->sessions) != 0)
		return -1;
	__atomic_store_n(&s->fan_durable[idx], 1, __ATOMIC_RELEASE);
	return 0;
}

/* Remove a temporary file; a failure leaves it for fsck --repair, and is
 * logged and counted. */
static void unlink_temp(const char *tmp)
{
	int f = fault("unlink");
	if (f || unlink(tmp) != 0) {
		sd_metrics_add(SD_M_TEMP_UNLINK_FAILURES, 1);
		sd_log_error("cannot remove the temporary file %s: %s", tmp, strerror(f ? f : errno));
	}
}

/* The bytes into fd from its start, cut to their length when trim (fd may
 * hold older, longer bytes), and with durability full onto the disk (I1).
 * 0, or -1 with errno. */
static int fill(const sd_store *s, int fd, const char *buf, size_t len, int trim)
{
	if (write_all(fd, buf, len) != 0 || (trim && ftruncate(fd, (off_t)len) != 0) ||
	    (CT_FILE_FSYNC && s->durability == SD_DURABLE_FULL && do_fsync(fd, "fsync") != 0))
		return -1;
	sd_metrics_add(SD_M_BYTES_WRITTEN, len);
	return 0;
}

/* Write bytes to a fresh temporary file in dir (O_CREAT|O_EXCL through
 * mkostemps) and make them durable. On success tmp holds its path. On
 * failure nothing is left behind and errno says why. */
static int write_temp(const sd_store *s, const char *dir, const char *key, const char *buf,
		      size_t len, char *tmp, size_t tmpn)
{
	sd_layout_temp_template(dir, key, tmp, tmpn);
	if (fault_errno("open") != 0)
		return -1;
	int fd = mkostemps(tmp, (int)strlen(SD_LAYOUT_TMP_SUFFIX), O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0640) != 0 || fill(s, fd, buf, len, 0) != 0) {
		int saved = errno;
		close(fd);
		unlink_temp(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0) {
		int saved = errno;
		unlink_temp(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Read all of fd. size: what its fstat at the open said, only where
 * reading starts (the file is read to its end, whatever it is now). */
static sd_err read_fd(int fd, off_t size, char **buf, size_t *len, sd_error *er)
{
	/* Room for one byte more than the file holds: a read that comes back
	 * short is the end of this regular file, so a whole file costs one
	 * pread and no realloc; a file that grew meanwhile fills the room and
	 * the loop goes on. */
	size_t cap = (size_t)size + 2, n = 0;
	char *b = malloc(cap);
	if (!b)
		return store_sys_fail(er, SD_ERR_INTERNAL, ENOMEM);
	for (;;) {
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return store_sys_fail(er, SD_ERR_INTERNAL, ENOMEM);
			}
			b = nb;
			cap *= 2;
		}
		size_t want = cap - n - 1;
		ssize_t r = pread(fd, b + n, want, (off_t)n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			free(b);
			return store_sys_fail(er, SD_ERR_INTERNAL, saved);
		}
		n += (size_t)r;
		if ((size_t)r < want)
			break;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return SD_OK;
}

/* Open a session file for reading. O_NONBLOCK, and a regular file only:
 * a FIFO or device at a session path (a stray made by hand) must not hold
 * a worker thread forever; it is logged and refused. -1 with *e (and er,
 * when given) set. */
static int open_session(const char *path, sd_err *e, sd_error *er, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int saved = errno;
		*e = store_sys_fail(er, (saved == ENOENT || saved == ENOTDIR) ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL, saved);
		if (*e == SD_ERR_INTERNAL)
			sd_log_error("cannot open %s: %s", path, strerror(saved));
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		sd_log_error("%s is not a regular file; refused (sessionctl fsck reports it as a stray)", path);
		close(fd);
		*e = store_sys_fail(er, SD_ERR_INTERNAL, 0);
		return -1;
	}
	return fd;
}

/* 1 when path no longer names fd's inode. */
static int replaced(int fd, const char *path)
{
	struct stat held, now;
	return fstat(fd, &held) == 0 && (stat(path, &now) != 0 || now.st_ino != held.st_ino || now.st_dev != held.st_dev);
}

/* How often a read starts again at the open because it found an empty
 * file that is no longer the session's (I7). */
#define READ_TRIES 3

/* When a lock wait that starts at now_ns (monotonic) gives up: the
 * session lock, the spare's flock and a reader's lock poll alike. */
static int64_t lock_deadline(const sd_store *s, int64_t now_ns)
{
	return now_ns + (int64_t)s->lock_timeout_ms * SD_NS_PER_MS;
}

/* The lock polls' back-off: from the first pause, doubled up to the last. */
#define LOCK_BACKOFF_MIN_US 50
#define LOCK_BACKOFF_MAX_US 2000

/* One pause of a lock poll: -1 with errno ETIMEDOUT once deadline has
 * passed, else sleep *backoff_us (doubled up to its cap) and 0. */
static int pause_until(int64_t deadline, long *backoff_us)
{
	if (sd_time_mono_ns() >= deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	usleep((useconds_t)*backoff_us);
	if (*backoff_us < LOCK_BACKOFF_MAX_US)
		*backoff_us *= 2;
	return 0;
}

/* A reader's F_OFD read lock on fd, opened at path (I7), polled until
 * deadline rather than waited for: a writer holds the write lock only on
 * a spare, so a held lock means the file is no longer the session's (or is
 * so for the instant between a save's exchange and its close), and a
 * writer that stops there (sessionctl stopped with Ctrl-Z) must not keep a
 * reader for good. 0 when taken; 1 when path names another file now (read
 * that one); -1 with errno (ETIMEDOUT after deadline). */
static int read_lock(int fd, const char *path, int64_t deadline, long *backoff_us)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EACCES)
			return -1;
		if (replaced(fd, path) && sd_time_mono_ns() < deadline)
			return 1;
		if (pause_until(deadline, backoff_us) != 0)
			return -1;
	}
}

sd_err sd_store_read(sd_store *s, const char *key, char **buf, size_t *len, sd_error *er)
{
	char path[SD_PATH_MAX];
	sd_store_path(s, key, path, sizeof path);
	int64_t deadline = lock_deadline(s, sd_time_mono_ns());
	long backoff_us = LOCK_BACKOFF_MIN_US;
	for (int empties = 0;;) {
		sd_err e;
		struct stat st;
		int fd = open_session(path, &e, er, &st);
		if (fd < 0)
			return e;
		int f = fault("read"); /* a test pauses a reader here */
		int r = f ? 0 : read_lock(fd, path, deadline, &backoff_us);
		if (f)
			e = store_sys_fail(er, SD_ERR_INTERNAL, f);
		else if (r < 0)
			e = store_sys_fail(er, errno == ETIMEDOUT ? SD_ERR_BUSY : SD_ERR_INTERNAL,
					   errno == ETIMEDOUT ? 0 : errno);
		else if (r == 0)
			e = read_fd(fd, st.st_size, buf, len, er);
		if (r == 1 || (e == SD_OK && *len == 0 && ++empties < READ_TRIES && replaced(fd, path))) {
			if (r == 0)
				free(*buf);
			close(fd);
			continue;
		}
		close(fd);
		return e;
	}
}

/* How a create gives its new file the session's name (I2), per store
 * (sd_store.create_by): the first way that works here. A way the kernel or
 * the file system refuses is not tried again by this store. */
enum {
	/* open(dir, O_TMPFILE), then linkat(fd, "", AT_EMPTY_PATH) */
	CREATE_BY_EMPTY_PATH,
	/* the same through linkat of /proc/self/fd/N: older kernels refuse
	 * AT_EMPTY_PATH (ENOENT) to a process without CAP_DAC_READ_SEARCH */
	CREATE_BY_PROC,
	/* a temporary file (write_temp), link(2), then its unlink: no
	 * O_TMPFILE on this file system, or no /proc */
	CREATE_BY_TEMP,
};

static int create_by_temp_from_now(sd_store *s, const char *why)
{
	__atomic_store_n(&s->create_by, CREATE_BY_TEMP, __ATOMIC_RELAXED);
	sd_log_warn("%s; creates use a temporary file", why);
	return 1;
}

/* Give the unnamed file fd (in dir) the name path, the way s->create_by
 * says or the next one (two rounds at most). 0; 1 when no way is left but
 * a temporary file; -1 with errno (EEXIST: the key is taken). */
static int link_unnamed(sd_store *s, int fd, const char *dir, const char *path)
{
	for (int by = __atomic_load_n(&s->create_by, __ATOMIC_RELAXED);; by++) {
		int r, f = fault("link");
		if (f) {
			r = -1;
			errno = f;
		} else if (by == CREATE_BY_EMPTY_PATH) {
			r = linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH);
		} else {
			char proc[32];
			snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
			r = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
		}
		if (r == 0)
			return 0;
		int saved = errno;
		/* ENOENT with the folder there: this way was refused (or there is
		 * no /proc), not the name. */
		if (saved != ENOENT || access(dir, F_OK) != 0) {
			errno = saved;
			return -1;
		}
		if (by != CREATE_BY_EMPTY_PATH)
			return create_by_temp_from_now(s, "cannot link a file without a name through /proc/self/fd");
		__atomic_store_n(&s->create_by, CREATE_BY_PROC, __ATOMIC_RELAXED);
		sd_log_info("linkat(AT_EMPTY_PATH) refused; creates link through /proc/self/fd");
	}
}

/* A new session's file without a temporary name (I2): its bytes into an
 * inode that has no name (O_TMPFILE; the kernel frees it at the close
 * unless it was linked), fsynced, then linked to path. A failure leaves
 * nothing behind. 0; 1 when this store must use a temporary file instead
 * (nothing made); -1 with errno. */
static int create_unnamed(sd_store *s, const char *dir, const char *path, const char *buf, size_t len)
{
	if (__atomic_load_n(&s->create_by, __ATOMIC_RELAXED) == CREATE_BY_TEMP)
		return 1;
	int f = fault("open");
	int fd = f ? -1 : open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0) {
		int saved = f ? f : errno;
		if (saved == EOPNOTSUPP || saved == EISDIR || saved == EINVAL)
			return create_by_temp_from_now(s, "this file system cannot make a file without a name (O_TMPFILE)");
		errno = saved;
		return -1;
	}
	/* 0640 whatever the umask, as every file of the store */
	int r = fchmod(fd, 0640) != 0 || fill(s, fd, buf, len, 0) != 0 ? -1 : link_unnamed(s, fd, dir, path);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* The same through a temporary file: written, linked to path, unlinked.
 * 0, or -1 with errno (EEXIST: the key is taken). */
static int create_by_temp(const sd_store *s, const char *dir, const char *key, const char *path,
			  const char *buf, size_t len)
{
	char tmp[SD_PATH_MAX];
	if (write_temp(s, dir, key, buf, len, tmp, sizeof tmp) != 0)
		return -1;
	int f = fault("link");
	int r = f ? -1 : link(tmp, path);
	int saved = f ? f : errno;
	unlink_temp(tmp);
	errno = saved;
	return r;
}

static sd_err create_unfenced(sd_store *s, const char *key, const char *buf, size_t len)
{
	char dir[SD_PATH_MAX], path[SD_PATH_MAX];
	if (sd_store_space(s, NULL, NULL) != SD_OK)
		return SD_ERR_STORAGE_FULL;
	fan_dir(s, key, dir, sizeof dir);
	sd_store_path(s, key, path, sizeof path);
	if (ensure_fan_dir(s, key) != 0)
		return sd_err_from_errno(errno);
	/* The link creates the name only if it is free, and the file it names
	 * is already whole: a reader or a crash never sees a partial session. */
	int r = create_unnamed(s, dir, path, buf, len);
	if (r == 1)
		r = create_by_temp(s, dir, key, path, buf, len);
	if (r != 0)
		return errno == EEXIST ? SD_ERR_EXISTS : sd_err_from_errno(errno);
	if (CT_LINK_DIR_FSYNC && store_sync_dir(s, dir) != 0) {
		/* The name is already in place: not "full", not "unchanged". */
		sd_log_error("session %s was created but the fsync of %s failed: %s", key, dir, strerror(errno));
		return SD_ERR_UNSYNCED;
	}
	sd_metrics_add(SD_M_SESSIONS_CREATED, 1);
	return SD_OK;
}

static unsigned stripe_of(const char *key)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < SD_KEY_LEN; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h % STORE_STRIPES;
}

/* One flock(LOCK_EX | LOCK_NB) poll of fd: 0 when taken, else -1 with
 * errno: ETIMEDOUT once deadline has passed (after sleeping *backoff_us,
 * which doubles up to its cap: call again), another errno for a failure. */
static int flock_poll(int fd, int64_t deadline, long *backoff_us)
{
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	if (pause_until(deadline, backoff_us) != 0)
		return -1;
	errno = EWOULDBLOCK;
	return -1;
}

/* I5 and I6 for l, whose stripe is held: open, flock with back-off until
 * deadline, then check that the path still names the locked inode (else
 * start again). On SD_OK l->fd is locked and *held is its fstat, taken at
 * the open. */
static sd_err lock_inode(sd_lock *l, int64_t deadline, struct stat *held)
{
	sd_err e = SD_OK;
	long backoff_us = LOCK_BACKOFF_MIN_US;
	for (;;) {
		l->fd = open_session(l->path, &e, NULL, held);
		if (l->fd < 0)
			return e;
		if (flock_poll(l->fd, deadline, &backoff_us) != 0) {
			int saved = errno;
			close(l->fd);
			l->fd = -1;
			if (saved == ETIMEDOUT)
				return SD_ERR_BUSY;
			if (saved != EWOULDBLOCK)
				return SD_ERR_INTERNAL;
			continue;
		}
		if (l->s->skip_inode_check)
			return SD_OK;
		/* held is the open's fstat: an inode's number never changes, and
		 * its size is only read_fd's hint. */
		struct stat now;
		if (stat(l->path, &now) != 0)
			return (errno == ENOENT || errno == ENOTDIR) ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL;
		if (held->st_ino == now.st_ino && held->st_dev == now.st_dev)
			return SD_OK;
		/* Replaced while we waited: this lock guards a dead inode. */
		close(l->fd);
		l->fd = -1;
	}
}

sd_err sd_store_lock(sd_store *s, const char *key, sd_lock **out, char **buf, size_t *len,
		     int64_t *wait_ns)
{
	*out = NULL;
	int64_t t0 = sd_time_mono_ns();
	int64_t deadline = lock_deadline(s, t0);
	sd_lock *l = calloc(1, sizeof *l);
	if (!l)
		return SD_ERR_INTERNAL;
	l->s = s;
	l->fd = -1;
	l->stripe = stripe_of(key);
	snprintf(l->key, sizeof l->key, "%s", key);
	sd_store_path(s, key, l->path, sizeof l->path);

	struct timespec abs;
	clock_gettime(CLOCK_MONOTONIC, &abs);
	sd_timespec_add_ms(&abs, s->lock_timeout_ms);
	int r = pthread_mutex_clocklock(&s->stripe[l->stripe], CLOCK_MONOTONIC, &abs);
	if (r != 0) {
		free(l);
		if (wait_ns)
			*wait_ns = sd_time_mono_ns() - t0;
		return r == ETIMEDOUT ? SD_ERR_BUSY : SD_ERR_INTERNAL;
	}

	struct stat held;
	sd_err e = lock_inode(l, deadline, &held);
	if (e == SD_OK) {
		l->size = held.st_size; /* (the fstat of skip_inode_check's open too) */
		e = read_fd(l->fd, held.st_size, buf, len, NULL);
	}
	if (wait_ns)
		*wait_ns = sd_time_mono_ns() - t0;
	if (e != SD_OK) {
		sd_store_unlock(l);
		return e;
	}
	*out = l;
	return SD_OK;
}

/* Open the session's spare (I1) for writing, and lock it twice:
 *  - flock, held by the writer that made it the spare (its session lock,
 *    I5) until that writer's folder fsync: before that, the exchange may
 *    not be on the disk, and the spare may still be KEY.json there. Within
 *    one process the stripe mutex already orders this; between processes
 *    (sessionctl import, a second sessiond) only this lock does;
 *  - the F_OFD write lock, against readers that still hold it from when it
 *    was the session's file (I7).
 * -1 with errno (ETIMEDOUT: the flock did not come before the lock
 * deadline); errno 0 when the spare is not a plain file of ours (a symbolic
 * link, a folder, a FIFO, a second link): the caller uses a temporary file.
 * *size gets the spare's size (0 when this open made it). */
static int open_spare(const sd_store *s, const char *spare, off_t *size)
{
	if (fault_errno("open") != 0)
		return -1;
	int fd = open(spare, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
	if (fd < 0) {
		if (errno == ELOOP || errno == EISDIR || errno == ENXIO || errno == EWOULDBLOCK ||
		    errno == EACCES || errno == EPERM) /* not ours: another user's */
			errno = 0;
		return -1;
	}
	/* What it is, before any lock: a second link of KEY.json would wait
	 * on the writer's own session lock (its flock) until the deadline. */
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    ((st.st_mode & 07777) != 0640 && fchmod(fd, 0640) != 0)) {
		close(fd);
		errno = 0;
		return -1;
	}
	*size = st.st_size;
	int64_t deadline = lock_deadline(s, sd_time_mono_ns());
	long backoff_us = LOCK_BACKOFF_MIN_US;
	int r;
	while ((r = flock_poll(fd, deadline, &backoff_us)) != 0 && errno == EWOULDBLOCK)
		;
	if (r != 0 || ofd_write_lock(fd) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* I1 and I3 the usual way: the new bytes into the session's spare, then the
 * spare and KEY.json trade names in one renameat2(RENAME_EXCHANGE). No
 * inode is made or freed (on ext4 without a journal, finding a free inode
 * among recently freed ones was 44% of a save's time), and the old version
 * stays as the next save's spare. Returns 1 when the caller must use a
 * temporary file instead (*out unset), else 0 with the outcome in *out. */
static int replace_by_exchange(sd_lock *l, const char *dir, const char *buf, size_t len, sd_err *out)
{
	char spare[SD_PATH_MAX];
	/* Once the file system refused an exchange as unsupported, every later
	 * save of this store uses a temporary file. */
	if (__atomic_load_n(&l->s->no_exchange, __ATOMIC_RELAXED))
		return 1;
	sd_layout_spare_path(dir, l->key, spare, sizeof spare);
	off_t room;
	int fd = open_spare(l->s, spare, &room);
	if (fd < 0) {
		if (errno == 0)
			return 1;
		*out = errno == ETIMEDOUT ? SD_ERR_BUSY : sd_err_from_errno(errno);
		return 0;
	}
	int f = 0, saved = 0, short_of_room = 0;
	/* The disk gains what does not fit in the spare's blocks: all of it on
	 * a session's first save, which makes the spare. Below --min-free that
	 * save goes through a temporary file instead, which gains only the
	 * growth (replace_by_rename checks that), and the spare goes. Over the
	 * old bytes, then cut only what is left beyond them: truncating first
	 * would free the spare's blocks and allocate them again (and on a file
	 * system mounted with discard, wait for the device to discard them) per
	 * save, and a cut to the same length still dirties the inode, which
	 * fdatasync then writes. */
	if ((off_t)len > room && sd_store_space(l->s, NULL, NULL) != SD_OK)
		saved = ENOSPC, short_of_room = 1;
	else if (fill(l->s, fd, buf, len, room > (off_t)len) != 0)
		saved = errno;
	else if ((f = fault("rename")) || renameat2(AT_FDCWD, spare, AT_FDCWD, l->path, RENAME_EXCHANGE) != 0)
		saved = f ? f : errno;
	if (saved) {
		/* Emptied, so that a reader still holding this inode from when it
		 * was the session never takes bytes that were not saved for one,
		 * and removed, so that a failed save leaves the folder as it was
		 * (a spare it made) or with less (the previous version's). */
		if (ftruncate(fd, 0) != 0 || unlink(spare) != 0)
			sd_log_error("cannot remove the spare %s after a failed save: %s", spare, strerror(errno));
		close(fd);
		if (short_of_room)
			return 1;
		if (saved == EINVAL || saved == ENOSYS) {
			__atomic_store_n(&l->s->no_exchange, 1, __ATOMIC_RELAXED);
			sd_log_warn("this file system cannot exchange two names; saves use a temporary file");
			return 1;
		}
		*out = sd_err_from_errno(saved);
		return 0;
	}
	close(fd); /* after the exchange: a reader waiting on it finds the current version */
	*out = SD_OK;
	return 0;
}

/* I1 and I3 with a temporary file renamed over KEY.json. */
static sd_err replace_by_rename(sd_lock *l, const char *dir, const char *buf, size_t len)
{
	char tmp[SD_PATH_MAX];
	/* The old file is freed by the rename: the disk gains the growth. */
	if ((off_t)len > l->size && sd_store_space(l->s, NULL, NULL) != SD_OK)
		return SD_ERR_STORAGE_FULL;
	if (write_temp(l->s, dir, l->key, buf, len, tmp, sizeof tmp) != 0)
		return sd_err_from_errno(errno);
	int f = fault("rename");
	if (f || rename(tmp, l->path) != 0) {
		int saved = f ? f : errno;
		unlink_temp(tmp);
		return sd_err_from_errno(saved);
	}
	return SD_OK;
}

static sd_err replace_unfenced(sd_lock *l, const char *buf, size_t len)
{
	char dir[SD_PATH_MAX];
	fan_dir(l->s, l->key, dir, sizeof dir);
	sd_err e;
	int exchanged = replace_by_exchange(l, dir, buf, len, &e) == 0;
	if (!exchanged)
		e = replace_by_rename(l, dir, buf, len);
	if (e != SD_OK)
		return e;
	if (CT_RENAME_DIR_FSYNC && store_sync_dir(l->s, dir) != 0) {
		/* The new file is already in place: not "full", not "unchanged". */
		sd_log_error("session %s was replaced but the fsync of %s failed: %s", l->key, dir, strerror(errno));
		/* The disk may still name the old inode, now the spare, KEY.json:
		 * no later save may write into it (I1), so it goes, and the next
		 * save makes a new spare. */
		char spare[SD_PATH_MAX];
		sd_layout_spare_path(dir, l->key, spare, sizeof spare);
		if (exchanged && unlink(spare) != 0 && errno != ENOENT)
			sd_log_error("cannot remove the spare %s after a failed fsync: %s", spare, strerror(errno));
		return SD_ERR_UNSYNCED;
	}
	return SD_OK;
}

static sd_err remove_unfenced(sd_lock *l, sd_error *er)
{
	char dir[SD_PATH_MAX], spare[SD_PATH_MAX];
	fan_dir(l->s, l->key, dir, sizeof dir);
	/* The spare first (it holds the previous version), so that a process
	 * that dies between the two leaves the session, not its old data
	 * without it. On the disk the two unlinks are not ordered before the
	 * folder fsync: a power cut there may keep the spare alone, which fsck
	 * reports as a stray. */
	sd_layout_spare_path(dir, l->key, spare, sizeof spare);
	/* A folder there is not a spare (the store only makes files): a stray
	 * for fsck, which must not keep the session from going. */
	if (unlink(spare) != 0 && errno != ENOENT && errno != EISDIR)
		return store_sys_fail(er, SD_ERR_INTERNAL, errno);
	if (unlink(l->path) != 0)
		return store_sys_fail(er, errno == ENOENT ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL, errno);
	if (store_sync_dir(l->s, dir) != 0)
		return store_sys_fail(er, sd_err_from_errno(errno), errno);
	return SD_OK;
}

/* The writes of the store, each inside its bucket's freeze barrier
 * (bucket.c): SD_ERR_FROZEN, with nothing written, while it is frozen. */
sd_err sd_store_create(sd_store *s, const char *key, const char *buf, size_t len)
{
	int b = sd_bucket_index(key);
	sd_err e = sd_bucket_enter(s->buckets, b);
	if (e != SD_OK)
		return e;
	e = create_unfenced(s, key, buf, len);
	sd_bucket_leave(s->buckets, b);
	return e;
}

/* Replace (buf) or remove (buf NULL) the locked session, fenced. */
static sd_err fenced_change(sd_lock *l, const char *buf, size_t len, sd_error *er)
{
	int b = sd_bucket_index(l->key);
	sd_err e = sd_bucket_enter(l->s->buckets, b);
	if (e != SD_OK)
		return e;
	e = buf ? replace_unfenced(l, buf, len) : remove_unfenced(l, er);
	sd_bucket_leave(l->s->buckets, b);
	return e;
}

sd_err sd_store_replace(sd_lock *l, const char *buf, size_t len) { return fenced_change(l, buf ? buf : "", len, NULL); }
sd_err sd_store_remove(sd_lock *l, sd_error *er) { return fenced_change(l, NULL, 0, er); }

void sd_store_unlock(sd_lock *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd); /* closing the last descriptor releases the flock */
	pthread_mutex_unlock(&l->s->stripe[l->stripe]);
	free(l);
}

/* How often sd_store_put goes between lock (the file was removed
 * meanwhile) and create (it was created meanwhile) before SD_ERR_BUSY. */
#define PUT_TRIES 100

sd_err sd_store_put(sd_store *s, const char *key, const char *buf, size_t len)
{
	for (int tries = 0; tries < PUT_TRIES; tries++) {
		sd_lock *l;
		char *old;
		size_t oldlen;
		sd_err e = sd_store_lock(s, key, &l, &old, &oldlen, NULL);
		if (e == SD_OK) {
			free(old);
			e = sd_store_replace(l, buf, len);
			sd_store_unlock(l);
			return e;
		}
		if (e != SD_ERR_NOT_FOUND)
			return e;
		e = sd_store_create(s, key, buf, len);
		if (e != SD_ERR_EXISTS)
			return e;
	}
	return SD_ERR_BUSY;
}

sd_err sd_store_space(sd_store *s, unsigned long long *free_bytes, unsigned long long *min_bytes)
{
	if (free_bytes)
		*free_bytes = 0;
	if (min_bytes)
		*min_bytes = 0;
	if (s->min_free_pct <= 0 && s->min_free_bytes == 0)
		return SD_OK;
	struct statvfs v;
	if (statvfs(s->sessions, &v) != 0)
		return SD_OK; /* the write itself will say what is wrong */
	unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
	unsigned long long need = s->min_free_bytes;
	if (s->min_free_pct > 0)
		need = (unsigned long long)((double)v.f_blocks * v.f_frsize * s->min_free_pct / 100.0);
	if (free_bytes)
		*free_bytes = avail;
	if (min_bytes)
		*min_bytes = need;
	return avail < need ? SD_ERR_STORAGE_FULL : SD_OK;
}

sd_err sd_store_probe(sd_store *s, const char **step)
{
	char tmp[SD_PATH_MAX], dst[SD_PATH_MAX];
	const char *st = "open";
	int fd = -1, err = 0;
	snprintf(tmp, sizeof tmp, "%s/.health.XXXXXX" SD_LAYOUT_TMP_SUFFIX, s->sessions);
	if ((err = fault("open")) == 0 && (fd = mkostemps(tmp, (int)strlen(SD_LAYOUT_TMP_SUFFIX), O_CLOEXEC)) < 0)
		err = errno;
	if (fd < 0)
		goto out;
	snprintf(dst, sizeof dst, "%.*s.probe" SD_LAYOUT_TMP_SUFFIX,
		 (int)(strlen(tmp) - strlen(SD_LAYOUT_TMP_SUFFIX)), tmp);
	st = "write";
	if (write_all(fd, "{}\n", 3) != 0) {
		err = errno;
	} else if (s->durability == SD_DURABLE_FULL && (st = "fsync", do_fsync(fd, "fsync") != 0)) {
		err = errno;
	} else if (st = "rename", (err = fault("rename")) == 0 && rename(tmp, dst) != 0) {
		err = errno;
	} else if (!err && (st = "dirsync", store_sync_dir(s, s->sessions) != 0)) {
		err = errno;
		unlink(dst);
	} else if (!err && (st = "unlink", (err = fault("unlink")) == 0 && unlink(dst) != 0)) {
		err = errno;
	}
	close(fd);
	if (err) { /* nothing of the probe stays behind, whichever step failed */
		unlink(tmp);
		unlink(dst);
	}
out:
	if (step)
		*step = err ? st : NULL;
	return err ? sd_err_from_errno(err) : SD_OK;
}

sd_err sd_store_check_writable(sd_store *s) { return sd_store_probe(s, NULL); }
