/* sd_store: session files on disk. Owns the layout
 * DATA_DIR/sessions/<first two chars>/<KEY>.json, atomic create and
 * replace (temporary file in the same folder, fsync, rename or link, fsync
 * of the folder), and the lock protocol that survives rename: flock on the
 * session file, then fstat of the locked descriptor compared with stat of
 * the path, retried until they name the same inode. Threads of one process
 * also queue on a striped mutex so that flock only arbitrates between
 * processes. Readers take no lock: rename makes every read whole.
 * sessiond and sessionctl share this module, so both obey one protocol. */
#ifndef SD_STORE_H
#define SD_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "sd_err.h"
#include "sd_key.h"

typedef enum { SD_DURABLE_FULL = 0, SD_DURABLE_NONE } sd_durability;

/* The default lock timeout, of sessiond (--lock-timeout) and sessionctl. */
#define SD_STORE_LOCK_TIMEOUT_MS 5000

typedef struct sd_store_opts {
	const char *data_dir;
	sd_durability durability;
	int lock_timeout_ms;      /* how long sd_store_lock waits, then SD_ERR_BUSY */
	int skip_inode_check;     /* TEST ONLY: disables the rename-safe check so the
				     stress test can show the bug it guards against */
	int skip_barrier;         /* BENCH ONLY: writes ignore the freeze barrier
				     (bench/barrier.c measures what it costs) */
	int must_exist;           /* open fails with SD_ERR_NOT_FOUND instead of creating
				     DATA_DIR/sessions (read-only tools on a mistyped dir) */
	double min_free_pct;      /* the disk watermark, as a percentage of the data */
	unsigned long long min_free_bytes; /* filesystem or in bytes; both 0: none */
} sd_store_opts;

typedef struct sd_store sd_store;
typedef struct sd_lock sd_lock;

/* Open (creating DATA_DIR and DATA_DIR/sessions when missing, unless
 * o->must_exist: then SD_ERR_NOT_FOUND when DATA_DIR/sessions is not a
 * folder). */
sd_err sd_store_open(const sd_store_opts *o, sd_store **out, char msg[SD_MSG_MAX]);
void sd_store_close(sd_store *s);
const char *sd_store_dir(const sd_store *s);

/* Path of a session file into buf; returns buf. */
char *sd_store_path(const sd_store *s, const char *key, char *buf, size_t n);

/* Read a whole session file without a lock. *buf is malloc'd and NUL
 * terminated (caller frees). SD_ERR_NOT_FOUND when absent. er (may be
 * NULL) gets the outcome, errno and message of a failure. */
sd_err sd_store_read(sd_store *s, const char *key, char **buf, size_t *len, sd_error *er);

/* Create a session file with these bytes, only if the key is free: the
 * bytes go to a temporary file that is then linked into place, so the
 * file appears whole or not at all. SD_ERR_EXISTS when taken. */
sd_err sd_store_create(sd_store *s, const char *key, const char *buf, size_t len);

/* Take the exclusive lock of a session and read its current bytes through
 * the locked descriptor. Waits at most the lock timeout (SD_ERR_BUSY);
 * SD_ERR_NOT_FOUND when the session does not exist. *wait_ns gets the time
 * spent waiting. *buf is malloc'd (caller frees). */
sd_err sd_store_lock(sd_store *s, const char *key, sd_lock **out, char **buf, size_t *len,
		     int64_t *wait_ns);
/* Atomically replace the locked session's file with these bytes. This is
 * the commit point: from the rename on, the lock (on the old inode) no
 * longer guards the path, and another writer may lock the new file and
 * start from these bytes. So call it once per lock, then unlock. */
sd_err sd_store_replace(sd_lock *l, const char *buf, size_t len);
/* Remove the locked session's file (gc). er as for sd_store_read. */
sd_err sd_store_remove(sd_lock *l, sd_error *er);
/* Release the lock and free l. NULL-safe. */
void sd_store_unlock(sd_lock *l);

/* Write bytes at key even when it exists (import --force): lock when the
 * file exists and replace, otherwise create. */
sd_err sd_store_put(sd_store *s, const char *key, const char *buf, size_t len);

/* The disk watermark: SD_ERR_STORAGE_FULL when the data filesystem's free
 * space (for unprivileged users, statvfs f_bavail) is below the store's
 * min_free, SD_OK otherwise or when there is none. sd_store_create, and
 * sd_store_replace with more bytes than the file holds, check it before
 * writing anything. *free_bytes and *min_bytes (either may be NULL) get
 * the figures. */
sd_err sd_store_space(sd_store *s, unsigned long long *free_bytes, unsigned long long *min_bytes);

/* The steps of a save on a probe file in DATA_DIR/sessions: a temporary
 * file, write, fsync (durability full), rename, fsync of the folder
 * (durability full), unlink. SD_OK when all of them work; otherwise the
 * error of the first that failed, with *step naming it ("open", "write",
 * "fsync", "rename", "dirsync", "unlink"), and no probe file left. */
sd_err sd_store_probe(sd_store *s, const char **step);
/* sd_store_probe without the step. */
sd_err sd_store_check_writable(sd_store *s);

/* What sd_store_scan reports for each entry it meets. */
typedef enum {
	SD_ENTRY_SESSION,   /* sessions/XX/KEY.json with a canonical key */
	SD_ENTRY_TEMP,      /* a temporary file left by an interrupted write */
	SD_ENTRY_SPARE,     /* sessions/XX/.KEY.spare, a regular file: the
	                       inode a save writes next (store.c, I1) */
	SD_ENTRY_STRAY      /* anything else: wrong name, wrong folder, a dir... */
} sd_entry_kind;

typedef struct sd_entry {
	sd_entry_kind kind;
	const char *path;   /* full path */
	const char *key;    /* canonical key for SD_ENTRY_SESSION and _SPARE, else NULL */
	struct stat st;     /* lstat of path (st_mode 0 when lstat failed) */
	int stat_errno;     /* errno from lstat, 0 when it worked */
} sd_entry;

/* Visit every entry under DATA_DIR/sessions. Return non-zero from the
 * visitor to stop. Returns SD_OK, or SD_ERR_INTERNAL if sessions/ cannot be
 * opened (er, when given, says why). Unreadable sub-folders are reported as SD_ENTRY_STRAY with
 * stat_errno set, and the scan goes on. */
typedef int (*sd_store_visitor)(const sd_entry *e, void *ctx);
sd_err sd_store_scan(sd_store *s, sd_store_visitor fn, void *ctx, sd_error *er);
/* sd_store_scan over one fan-out folder (a bucket: fan is its two
 * upper-case characters). SD_OK also when the folder does not exist (an
 * empty bucket); SD_ERR_BAD_REQUEST for a name that is not a bucket. */
sd_err sd_store_scan_bucket(sd_store *s, const char *fan, sd_store_visitor fn, void *ctx);

/* Move an entry met by sd_store_scan (a damaged session file, a stray file
 * or folder) out of the store into DATA_DIR/quarantine/, never replacing
 * anything there: sessions/AB/ABCDEFGH.json becomes quarantine/AB_ABCDEFGH.json,
 * then .1, .2... when that name is taken. dest gets the new path. Hold the
 * session's lock when path is a session file, so that no writer is between
 * its read and its rename. SD_ERR_NOT_FOUND when path is gone,
 * SD_ERR_NOT_IN_STORE when it is not under DATA_DIR/sessions,
 * SD_ERR_NAMES_EXHAUSTED when every name is taken. er as for sd_store_read. */
sd_err sd_store_quarantine(sd_store *s, const char *path, char *dest, size_t n, sd_error *er);
/* Quarantine a damaged session: its spare (.KEY.spare, the previous
 * version; spare_dest gets its new path, "" when it had none), then
 * KEY.json (dest), as sd_store_quarantine moves each, so that no spare is
 * left without its session. Hold the session's lock. */
sd_err sd_store_quarantine_session(sd_store *s, const char *key, char *dest, size_t n, char *spare_dest,
				  size_t sn, sd_error *er);

/* Remove a temporary file met by sd_store_scan if it is still there, still a
 * regular file and its mtime is at least min_age_ms old (a writer renames
 * or links its temporary file within moments, so an old one was left by a
 * crash). SD_ERR_TOO_YOUNG when it is younger, SD_ERR_NOT_FOUND when gone,
 * SD_ERR_NOT_IN_STORE when path is not a temporary file of this store. er
 * as for sd_store_read. */
sd_err sd_store_remove_temp(sd_store *s, const char *path, int64_t min_age_ms, sd_error *er);

/* Test hook: when set, called before each I/O step with its name ("open",
 * "write", "fsync", "rename", "link", "dirsync", and "unlink" in the probe); a non-zero return is
 * taken as that step failing with that errno. */
extern int (*sd_store_fault_hook)(const char *step);

#endif
