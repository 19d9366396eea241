/* fsops: the file-system steps of a sessiond save and instantiate, as
 * src/core/store.c takes them, and nothing else, written once for the
 * benchmark's ceilings: build/bench/rawfs (the steps alone) and
 * build/bench/fcgi_ceiling (the steps behind FastCGI). The layout is
 * sessiond's (sd_layout.h): DIR/sessions/XY/KEY.json, its spare
 * .KEY.spare. With full durability the
 * bracketed steps run, as with sessiond's --durability full.
 *   fsops_replace: open the session's spare (made by the first replace),
 *                  [its flock and F_OFD write lock], write over it from
 *                  its start, cut it only when it was longer, [fdatasync],
 *                  renameat2 RENAME_EXCHANGE with KEY.json, close,
 *                  [fsync of the folder]                       (a save)
 *   fsops_create:  the fan-out folder (made and [its parent fsynced] the
 *                  first time this process meets it), an O_TMPFILE
 *                  inode, write, [fdatasync], linkat(AT_EMPTY_PATH) to
 *                  KEY.json, close, [fsync of the folder]  (an instantiate)
 * Every function returns 0, or -1 with errno. */
#ifndef BENCH_FSOPS_H
#define BENCH_FSOPS_H

#include <stddef.h>
#include "sd_key.h"
#include "sd_layout.h"

typedef struct fsops_store {
	char sessions[SD_PATH_MAX - 64]; /* DIR/sessions */
	int full;                        /* durability full (else none) */
	unsigned char fan_durable[SD_KEY_ALPHABET_LEN * SD_KEY_ALPHABET_LEN];
} fsops_store;

/* Make DIR/sessions (and its parents), marked FS_TOPDIR_FL where the file
 * system has the flag, as sessiond marks its own. */
int fsops_open(fsops_store *s, const char *dir, int full);

/* fsync of a folder (whatever the durability). */
int fsops_sync_dir(const char *dir);
int fsops_write_all(int fd, const char *p, size_t n);

/* The session's file, its folder. */
void fsops_path(const fsops_store *s, const char *key, char *buf, size_t n);
void fsops_fan_dir(const fsops_store *s, const char *key, char *buf, size_t n);

/* A save's file-system part: buf becomes the content of KEY.json. With
 * lock_spare, the spare is locked as sessiond's open_spare locks it
 * (flock, held by the previous writer until its folder fsync, and the
 * F_OFD write lock against readers), waiting for both; the caller holds the
 * session's own lock if it needs one. */
int fsops_replace(const fsops_store *s, const char *key, const char *buf, size_t len, int lock_spare);

/* An instantiate's file-system part: a new KEY.json holding buf. key: in,
 * a fresh key; out, the key created (drawn again on a collision, as
 * sessiond does, at most 8 times: then EEXIST). */
int fsops_create(fsops_store *s, char key[SD_KEY_LEN + 1], const char *buf, size_t len);

#endif
