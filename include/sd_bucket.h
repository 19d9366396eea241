/* sd_bucket: the node-local freeze barrier of a data dir. A bucket is a
 * key's first two characters (upper case, SD_KEY_ALPHABET), 36*36 of them,
 * the fan-out folder sessions/XY/. Each has a lock file DATA_DIR/buckets/XY
 * whose size is its state: 0 open, 1 frozen, 2 moved (FROM's mark after a
 * move). Every write of the store (create, replace, remove; so saves,
 * deletes, copies, import, gc and the sweeper) holds the bucket's lock
 * shared around its write and checks the size under it; the freezer first
 * sets the size (new writers refuse from then on) and then takes the lock
 * exclusive, which it gets only when every write that began before is
 * done. So when sd_bucket_set(.., FROZEN) returns, no write to the bucket
 * is in progress in any process and none can start.
 * Within a process, threads share one cached descriptor per bucket (flock
 * belongs to the open file description), counted so that the shared lock
 * is held while any thread writes. */
#ifndef SD_BUCKET_H
#define SD_BUCKET_H

#include "sd_err.h"
#include "sd_shard.h"

#define SD_BUCKET_COUNT SD_BUCKETS

typedef enum { SD_BSTATE_OPEN = 0, SD_BSTATE_FROZEN = 1, SD_BSTATE_MOVED = 2 } sd_bstate;

typedef struct sd_buckets sd_buckets;

/* Bucket indexes and names are sd_shard.h's (sd_bucket_index,
 * sd_bucket_name). */
/* State names: "open", "frozen", "moved". */
const char *sd_bstate_name(sd_bstate st);

/* The barrier table of a data dir (nothing opened yet). NULL when out of
 * memory. */
sd_buckets *sd_buckets_new(const char *data_dir);
void sd_buckets_free(sd_buckets *b);

/* A writer enters before its write and leaves after it. enter returns
 * SD_OK (then call leave), SD_ERR_FROZEN when the bucket is frozen or
 * moved, SD_ERR_STORAGE_FULL or SD_ERR_INTERNAL when the lock file cannot
 * be made, opened or locked (logged). */
sd_err sd_bucket_enter(sd_buckets *b, int bucket);
void sd_bucket_leave(sd_buckets *b, int bucket);

/* Set a bucket's state, for sessionctl bucket freeze|thaw and move-bucket.
 * Setting FROZEN or MOVED returns only when no write to the bucket is in
 * progress in any process on this data dir. SD_ERR_INTERNAL with msg set
 * when a file operation fails. */
sd_err sd_bucket_set(const char *data_dir, int bucket, sd_bstate st, char msg[SD_MSG_MAX]);
/* Read a bucket's state (OPEN when it has no lock file yet). */
sd_err sd_bucket_get(const char *data_dir, int bucket, sd_bstate *st, char msg[SD_MSG_MAX]);

/* Test hook: when set, called by a writer inside the barrier (after
 * enter succeeded) with the bucket's index; tests block in it to hold a
 * write inside its lock. */
extern void (*sd_bucket_hold_hook)(int bucket);

#endif
