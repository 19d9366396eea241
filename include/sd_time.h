/* sd_time: the clock. RFC 3339 UTC timestamps with milliseconds, parsing
 * them back, durations like "30d", and a monotonic clock for latencies. */
#ifndef SD_TIME_H
#define SD_TIME_H

#include <stdint.h>
#include <time.h>

#define SD_TIME_LEN 25 /* "2026-11-26T20:28:57.123Z" plus NUL */

/* The time units, the one set of conversions between them. */
#define SD_MS_PER_S 1000LL
#define SD_NS_PER_MS 1000000LL
#define SD_NS_PER_S 1000000000LL

/* A timespec (a file's mtime, a clock reading) in ms. */
int64_t sd_timespec_ms(const struct timespec *t);
/* Move a timespec (an absolute deadline) ms later. */
void sd_timespec_add_ms(struct timespec *t, int64_t ms);

/* Format the current wall-clock time into out. */
void sd_time_now(char out[SD_TIME_LEN]);
/* Format ms since the epoch into out. */
void sd_time_format(int64_t epoch_ms, char out[SD_TIME_LEN]);
/* Parse an RFC 3339 timestamp (Z or +hh:mm offset, optional fraction) into
 * ms since the epoch. Returns 0 on success, -1 on a malformed string. */
int sd_time_parse(const char *s, int64_t *epoch_ms);
/* Parse a duration like "90s", "15m", "12h", "30d", "2w" into ms. */
int sd_time_parse_duration(const char *s, int64_t *ms);
/* Wall clock in ms since the epoch. */
int64_t sd_time_epoch_ms(void);
/* Monotonic clock in nanoseconds. */
int64_t sd_time_mono_ns(void);

#endif
