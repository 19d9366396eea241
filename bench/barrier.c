/* barrier.c: what the freeze barrier (src/core/bucket.c) costs a save.
 * Two stores on one data dir, one with the barrier and one without
 * (sd_store_opts.skip_barrier), take turns: rounds of N lock + replace +
 * unlock cycles on the same keys, so both see the same disk and cache.
 *   build/bench/barrier [DIR] [N] [ROUNDS] [full|none]
 * Prints the median ns per save of each and the difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_store.h"
#include "sd_time.h"

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t round_ns(sd_store *s, int n)
{
	static const char body[] = "{\"key\":\"xx\",\"data\":{\"n\":1}}";
	char key[SD_KEY_LEN + 1];
	int64_t t0 = sd_time_mono_ns();
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "BB%06d", i % 64);
		sd_lock *l;
		char *old;
		size_t len;
		if (sd_store_lock(s, key, &l, &old, &len, NULL) != SD_OK)
			exit(1);
		free(old);
		if (sd_store_replace(l, body, sizeof body - 1) != SD_OK)
			exit(1);
		sd_store_unlock(l);
	}
	return (sd_time_mono_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/sd-bench-barrier.XXXXXX";
	const char *dir = argc > 1 && argv[1][0] ? argv[1] : mkdtemp(tmpl);
	int n = argc > 2 ? atoi(argv[2]) : 2000, rounds = argc > 3 ? atoi(argv[3]) : 9;
	int full = argc > 4 && strcmp(argv[4], "full") == 0;
	if (!dir || n <= 0 || rounds <= 0 || rounds > 99)
		return 2;
	sd_store_opts o = {.data_dir = dir, .durability = full ? SD_DURABLE_FULL : SD_DURABLE_NONE,
			   .lock_timeout_ms = 5000};
	sd_store *with, *without;
	char msg[SD_MSG_MAX];
	if (sd_store_open(&o, &with, msg) != SD_OK)
		return fprintf(stderr, "%s\n", msg), 1;
	o.skip_barrier = 1;
	if (sd_store_open(&o, &without, msg) != SD_OK)
		return fprintf(stderr, "%s\n", msg), 1;
	for (int i = 0; i < 64; i++) {
		char key[SD_KEY_LEN + 1];
		snprintf(key, sizeof key, "BB%06d", i);
		sd_store_put(without, key, "{}", 2);
	}
	int64_t a[99], b[99];
	for (int r = 0; r < rounds; r++) {
		a[r] = round_ns(without, n);
		b[r] = round_ns(with, n);
	}
	qsort(a, (size_t)rounds, sizeof *a, cmp);
	qsort(b, (size_t)rounds, sizeof *b, cmp);
	printf("durability %s, %d saves x %d rounds, median per save: without barrier %lld ns, "
	       "with %lld ns, cost %lld ns (%.1f%%)\n",
	       full ? "full" : "none", n, rounds, (long long)a[rounds / 2], (long long)b[rounds / 2],
	       (long long)(b[rounds / 2] - a[rounds / 2]),
	       100.0 * (double)(b[rounds / 2] - a[rounds / 2]) / (double)a[rounds / 2]);
	sd_store_close(with);
	sd_store_close(without);
	return 0;
}
