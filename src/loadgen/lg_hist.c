/* lg_hist.c: log-linear latency histogram (see lg_hist.h). Bucket i below
 * LG_HIST_SUB holds exactly the value i. Above, a value v with its highest
 * set bit at b (b >= LG_HIST_SUB_BITS) keeps its top LG_HIST_SUB_BITS bits:
 * shift = b - LG_HIST_SUB_BITS + 1, top = v >> shift in [SUB/2, SUB), and
 * the bucket is SUB + (b - SUB_BITS) * SUB/2 + (top - SUB/2). */
#include <math.h>
#include <string.h>
#include "lg_hist.h"

void lg_hist_init(lg_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

static int msb(uint64_t v) { return 63 - __builtin_clzll(v); }

size_t lg_hist_index(uint64_t v)
{
	if (v > LG_HIST_MAX_VALUE)
		v = LG_HIST_MAX_VALUE;
	if (v < LG_HIST_SUB)
		return (size_t)v;
	int b = msb(v);
	int shift = b - LG_HIST_SUB_BITS + 1;
	uint64_t top = v >> shift;
	return LG_HIST_SUB + (size_t)(b - LG_HIST_SUB_BITS) * (LG_HIST_SUB / 2) +
	       (size_t)(top - LG_HIST_SUB / 2);
}

uint64_t lg_hist_bucket_low(size_t i)
{
	if (i < LG_HIST_SUB)
		return i;
	size_t j = i - LG_HIST_SUB;
	int b = (int)(j / (LG_HIST_SUB / 2)) + LG_HIST_SUB_BITS;
	uint64_t top = (uint64_t)(j % (LG_HIST_SUB / 2)) + LG_HIST_SUB / 2;
	return top << (b - LG_HIST_SUB_BITS + 1);
}

uint64_t lg_hist_bucket_high(size_t i)
{
	if (i < LG_HIST_SUB)
		return i;
	size_t j = i - LG_HIST_SUB;
	int b = (int)(j / (LG_HIST_SUB / 2)) + LG_HIST_SUB_BITS;
	return lg_hist_bucket_low(i) + (UINT64_C(1) << (b - LG_HIST_SUB_BITS + 1)) - 1;
}

void lg_hist_record(lg_hist *h, uint64_t v)
{
	if (v > LG_HIST_MAX_VALUE)
		h->clamped++;
	h->bucket[lg_hist_index(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
	if (!src->count)
		return;
	for (size_t i = 0; i < LG_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->clamped += src->clamped;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t lg_hist_percentile(const lg_hist *h, double p)
{
	if (!h->count)
		return 0;
	if (p >= 100.0)
		return h->max;
	if (p < 0.0)
		p = 0.0;
	/* rank of the value wanted, 1-based: ceil(p/100 * count), at least 1 */
	double r = ceil(p / 100.0 * (double)h->count);
	uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (size_t i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = lg_hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double lg_hist_mean(const lg_hist *h) { return h->count ? h->sum / (double)h->count : 0.0; }
