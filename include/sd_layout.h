/* sd_layout: the names inside a data dir, each rule written once. store,
 * its admin scan, the sweeper and sessionctl all ask here:
 *   DATA_DIR/sessions/XY/                  a fan-out folder: XY is a key's
 *                                          first two characters (its bucket)
 *   DATA_DIR/sessions/XY/KEY.json          a session, KEY canonical
 *   DATA_DIR/sessions/XY/.KEY.XXXXXX.tmp   a write in progress (or a crash's
 *                                          leftover); also .health.*.tmp
 *   DATA_DIR/sessions/XY/.KEY.spare        the session's spare inode: its
 *                                          previous version, or the next
 *                                          one being written (store.c, I1)
 *   DATA_DIR/quarantine/                   what fsck --repair moved aside
 * The key character class itself is sd_key_pos (sd_key.h). */
#ifndef SD_LAYOUT_H
#define SD_LAYOUT_H

#include <stddef.h>
#include "sd_key.h"

/* The data dir when none is given (sessiond and sessionctl alike). */
#define SD_DATA_DIR_DEFAULT "./var"

/* The one size of a path buffer (a data dir, a file inside it). */
#define SD_PATH_MAX 4096

#define SD_LAYOUT_SESSIONS "sessions"
#define SD_LAYOUT_QUARANTINE "quarantine"
#define SD_LAYOUT_SESSION_EXT ".json"
#define SD_LAYOUT_TMP_SUFFIX ".tmp"
#define SD_LAYOUT_SPARE_SUFFIX ".spare"

/* The index (0 <= i < 36*36, in SD_KEY_ALPHABET order) of the two key
 * characters s starts with, -1 when they are not (with fold, a-z count as
 * A-Z); what follows them is not looked at. A bucket (sd_bucket_index) and
 * a fan-out folder are both this index. */
int sd_layout_pair_index(const char *s, int fold);
/* The fan-out folder index of name when name is exactly two key
 * characters (upper case), else -1. */
int sd_layout_fan_index(const char *name);
/* Its inverse: the two characters of folder index i (0 <= i < 36*36) and
 * a NUL. sd_bucket_name (sd_shard.h) is this mapping too. */
void sd_layout_fan_name(int i, char out[3]);

/* 1 when name is KEY.json with a canonical KEY (and, when fan is not NULL,
 * KEY starts with fan's two characters); key (may be NULL) gets KEY. */
int sd_layout_session_name(const char *name, const char *fan, char key[SD_KEY_LEN + 1]);

/* 1 when name is a temporary file's: a dot first, the suffix last. */
int sd_layout_is_temp(const char *name);

/* 1 when name is .KEY.spare with a canonical KEY (starting with fan's two
 * characters when fan is not NULL); key (may be NULL) gets KEY. */
int sd_layout_spare_name(const char *name, const char *fan, char key[SD_KEY_LEN + 1]);

/* Paths under sessions (the DATA_DIR/sessions folder), into buf. */
void sd_layout_fan_dir(const char *sessions, const char *key, char *buf, size_t n);
void sd_layout_session_path(const char *sessions, const char *key, char *buf, size_t n);
/* The mkostemps template of a temporary file for key in folder dir; its
 * last strlen(SD_LAYOUT_TMP_SUFFIX) characters are the suffix. */
void sd_layout_temp_template(const char *dir, const char *key, char *buf, size_t n);
/* The spare file of key in its folder dir. */
void sd_layout_spare_path(const char *dir, const char *key, char *buf, size_t n);

#endif
