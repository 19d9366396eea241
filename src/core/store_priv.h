/* store_priv.h: what store.c shares with store_scan.c, and nobody else:
 * the store handle's fields and two helpers. */
#ifndef SD_STORE_PRIV_H
#define SD_STORE_PRIV_H

#include <pthread.h>
#include "sd_bucket.h"
#include "sd_layout.h"
#include "sd_store.h"

#define STORE_STRIPES 1024

struct sd_store {
	char dir[SD_PATH_MAX];
	char sessions[SD_PATH_MAX];
	sd_durability durability;
	int lock_timeout_ms;
	int skip_inode_check;
	double min_free_pct;
	unsigned long long min_free_bytes;
	sd_buckets *buckets;     /* the freeze barrier (bucket.c) */
	int no_exchange;         /* set once renameat2(RENAME_EXCHANGE) was
	                            refused as unsupported (store.c) */
	int create_by;           /* how a create names its new file: one of
	                            store.c's CREATE_BY_*, only ever raised */
	unsigned char fan_durable[SD_KEY_ALPHABET_LEN * SD_KEY_ALPHABET_LEN];
	pthread_mutex_t stripe[STORE_STRIPES];
};

/* fsync a folder (durability full; a no-op with none). 0 or -1 (errno). */
int store_sync_dir(const sd_store *s, const char *dir);

/* Report a failed system call in er (NULL: only returned): code, errnum
 * and strerror(errnum) (errnum 0: the outcome's sentence). Returns code. */
sd_err store_sys_fail(sd_error *er, sd_err code, int errnum);

#endif
