/* sd_limit: the miss limit. Per client address, a token bucket of failed
 * guesses (loads and copies of unknown keys, requests with a bad token):
 * it holds `burst` misses and refills at `per_minute`. An address whose
 * bucket is empty is refused until one miss has refilled. The table is
 * fixed in size (set-associative, keyed hash) and evicts instead of
 * growing: a full bucket is the same as no entry, so those go first, then
 * the one idle longest. Thread-safe (a mutex per set). */
#ifndef SD_LIMIT_H
#define SD_LIMIT_H

#include <stdint.h>
#include "sd_err.h"

/* Sets x ways: how many addresses the table tracks at most. */
#define SD_LIMIT_SETS 512
#define SD_LIMIT_WAYS 8
#define SD_LIMIT_ADDR_MAX 64

typedef struct sd_limit sd_limit;

/* per_minute 0 means off: sd_limit_new then returns SD_OK with *out NULL,
 * and every function below accepts NULL and limits nothing. */
sd_err sd_limit_new(int per_minute, int burst, sd_limit **out);
void sd_limit_free(sd_limit *l);

/* 0 when addr may be served at now_ns (a monotonic clock); else the
 * seconds (>= 1) until its bucket holds a miss again, for Retry-After. */
int sd_limit_check(sd_limit *l, const char *addr, int64_t now_ns);
/* Count one miss for addr at now_ns. */
void sd_limit_miss(sd_limit *l, const char *addr, int64_t now_ns);
/* Addresses held in the table (tests, metrics). */
int sd_limit_entries(sd_limit *l);

#endif
