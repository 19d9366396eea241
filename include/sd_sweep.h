/* sd_sweep: removal of expired sessions. sd_sweep_one removes one session
 * if, read again under its lock (the rename-safe lock every writer takes),
 * it has expired: a save that extended it first is never undone, and two
 * sweepers (two sessiond processes, or sessionctl gc --expired) racing on
 * one session are safe: the second finds it gone. The sweeper walks the
 * store one fan-out folder at a time, at most a bounded number of files
 * per tick, on its own thread, paced by --sweep-interval, and counts what
 * it did and the time it took in sd_metrics. */
#ifndef SD_SWEEP_H
#define SD_SWEEP_H

#include <stdint.h>
#include "sd_err.h"
#include "sd_store.h"

typedef enum {
	SD_SWEEP_REMOVED = 0, /* expired, removed now */
	SD_SWEEP_KEPT,        /* not expired (any more): left alone */
	SD_SWEEP_GONE,        /* removed by someone else meanwhile */
	SD_SWEEP_BUSY,        /* its lock was not free within the lock timeout */
	SD_SWEEP_DAMAGED,     /* it does not validate: left for fsck */
	SD_SWEEP_FAILED       /* I/O error */
} sd_sweep_outcome;

/* Remove key when, read under its lock, it has expired by now_ms.
 * *expires_ms (may be NULL) gets its expiry, 0 when it has none. er (may
 * be NULL) says why on SD_SWEEP_FAILED. */
sd_sweep_outcome sd_sweep_one(sd_store *s, const char *key, int64_t now_ms, int64_t *expires_ms,
			      sd_error *er);

/* 1 when a session file's bytes hold an expiry at or before now_ms (no
 * lock; the fast canonical path when it can, else a full parse). *expires_ms
 * gets the expiry, 0 when none. -1 when the bytes are damaged. */
int sd_sweep_bytes_expired(const char *key, const char *buf, size_t len, int64_t now_ms,
			   int64_t *expires_ms);

/* Session files a tick reads at most. */
#define SD_SWEEP_MAX_FILES 500

typedef struct sd_sweeper sd_sweeper;

/* What one tick did. */
typedef struct sd_sweep_stats {
	int64_t scanned;   /* session files read */
	int64_t removed;   /* expired sessions removed */
	int pass_done;     /* this tick finished a pass over every folder */
} sd_sweep_stats;

sd_err sd_sweeper_new(sd_store *s, int max_files, sd_sweeper **out);
void sd_sweeper_free(sd_sweeper *w);
/* One bounded step: the rest of the current folder, at most max_files
 * files; a new pass starts by listing sessions/. Adds to the metrics. */
void sd_sweeper_tick(sd_sweeper *w, int64_t now_ms, sd_sweep_stats *st);

/* Run ticks on a thread, interval_ms apart, until sd_sweeper_stop. */
sd_err sd_sweeper_start(sd_store *s, int interval_ms, sd_sweeper **out);
/* Stop the thread (waits for the tick in progress) and free w. NULL-safe. */
void sd_sweeper_stop(sd_sweeper *w);

#endif
