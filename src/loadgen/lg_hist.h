/* lg_hist: the load generator's latency histogram. HDR-style log-linear
 * buckets over nanoseconds: values below LG_HIST_SUB are counted exactly;
 * above, every power of two is split into LG_HIST_SUB/2 equal buckets, so
 * a percentile read back is never more than 1/128 (0.8%) above the value
 * that was recorded, and never below it. Every request is recorded (no
 * sampling); min, max, count and sum are kept exactly. Pure logic, no I/O,
 * not thread-safe (one histogram per thread, merged at the end). */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stddef.h>
#include <stdint.h>

#define LG_HIST_SUB_BITS 8
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)          /* 256 */
#define LG_HIST_MAX_BITS 40                            /* 2^40 ns: about 18 minutes */
#define LG_HIST_BUCKETS (LG_HIST_SUB + (LG_HIST_MAX_BITS - LG_HIST_SUB_BITS) * (LG_HIST_SUB / 2))
#define LG_HIST_MAX_VALUE ((UINT64_C(1) << LG_HIST_MAX_BITS) - 1)

typedef struct lg_hist {
	uint64_t count;
	uint64_t min;        /* exact; UINT64_MAX while empty */
	uint64_t max;        /* exact, even above LG_HIST_MAX_VALUE */
	double sum;          /* for the mean */
	uint64_t clamped;    /* values above LG_HIST_MAX_VALUE (counted in the last bucket) */
	uint64_t bucket[LG_HIST_BUCKETS];
} lg_hist;

void lg_hist_init(lg_hist *h);
void lg_hist_record(lg_hist *h, uint64_t v);
/* Add every count of src into dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);

/* The bucket a value falls in, and the smallest and largest value that
 * bucket holds (inclusive). */
size_t lg_hist_index(uint64_t v);
uint64_t lg_hist_bucket_low(size_t i);
uint64_t lg_hist_bucket_high(size_t i);

/* The value at percentile p (0 < p <= 100): the upper end of the bucket
 * holding the ceil(p% * count)-th smallest value, clamped to [min, max].
 * 0 for an empty histogram; p >= 100 gives max exactly. */
uint64_t lg_hist_percentile(const lg_hist *h, double p);
double lg_hist_mean(const lg_hist *h);

#endif
