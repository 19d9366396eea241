/* sessionctl_gen: fill a store with many sessions quickly, for the
 * sessionctl benchmark (bench/sessionctl_bench.sh). Writes through
 * sd_store_create, so the layout and the files are exactly sessiond's, but
 * with durability none (no fsync: the benchmark measures reading, and
 * throws the store away). Documents vary the way real ones do: data from
 * about 100 bytes to 2 KB, versions 1 to 50, "updated" spread over the last
 * 60 days so that stats' age buckets all fill. Keys and contents come from
 * a seeded generator, so a run is reproducible.
 *
 *   sessionctl_gen DATA_DIR COUNT [THREADS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_doc.h"
#include "sd_store.h"
#include "sd_time.h"

struct job {
	sd_store *store;
	long count;
	uint64_t seed;
	int64_t now;
	long made, collisions;
	int failed;
};

static uint64_t next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint32_t rng(uint32_t upper, void *ctx) { return (uint32_t)(next(ctx) % upper); }

/* One document: version, timestamps and a data payload drawn from s. */
static json_t *make_doc(const char *key, uint64_t *s, int64_t now)
{
	int64_t updated = now - (int64_t)(next(s) % (60ULL * 86400000ULL));
	int64_t created = updated - (int64_t)(next(s) % (30ULL * 86400000ULL));
	char c[SD_TIME_LEN], u[SD_TIME_LEN], note[2048];
	sd_time_format(created, c);
	sd_time_format(updated, u);
	size_t n = 60 + next(s) % 1900;
	for (size_t i = 0; i < n; i++)
		note[i] = (char)('a' + next(s) % 26);
	note[n] = '\0';
	json_t *data = json_pack("{s:s, s:I, s:[i,i,i], s:b}", "note", note, "counter",
				 (json_int_t)(next(s) % 100000), "items", (int)(next(s) % 10),
				 (int)(next(s) % 100), (int)(next(s) % 1000), "flag", (int)(next(s) & 1));
	json_t *meta = json_pack("{s:s}", "owner", key);
	json_t *doc = data && meta ? sd_doc_new(key, meta, data, c) : NULL;
	json_decref(data);
	json_decref(meta);
	if (doc) {
		json_object_set_new(doc, "version", json_integer((json_int_t)(1 + next(s) % 50)));
		json_object_set_new(doc, "updated", json_string(u));
	}
	return doc;
}

static void *run(void *arg)
{
	struct job *j = arg;
	uint64_t s = j->seed;
	while (j->made < j->count) {
		char key[SD_KEY_LEN + 1];
		sd_key_generate(key, rng, &s);
		json_t *doc = make_doc(key, &s, j->now);
		size_t len;
		char *bytes = doc ? sd_doc_dump(doc, &len) : NULL;
		sd_err e = bytes ? sd_store_create(j->store, key, bytes, len) : SD_ERR_INTERNAL;
		free(bytes);
		json_decref(doc);
		if (e == SD_OK) {
			j->made++;
		} else if (e == SD_ERR_EXISTS) {
			j->collisions++;
		} else {
			fprintf(stderr, "sessionctl_gen: cannot create %s: %s\n", key, sd_err_message(e));
			j->failed = 1;
			break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: sessionctl_gen DATA_DIR COUNT [THREADS]\n");
		return 2;
	}
	long count = atol(argv[2]);
	int threads = argc == 4 ? atoi(argv[3]) : 2;
	if (count < 1 || threads < 1 || threads > 64) {
		fprintf(stderr, "sessionctl_gen: COUNT >= 1, 1 <= THREADS <= 64\n");
		return 2;
	}
	sd_store_opts o = {.data_dir = argv[1], .durability = SD_DURABLE_NONE, .lock_timeout_ms = 5000};
	sd_store *store;
	char msg[SD_MSG_MAX] = "";
	if (sd_store_open(&o, &store, msg) != SD_OK) {
		fprintf(stderr, "sessionctl_gen: %s\n", msg);
		return 1;
	}
	struct job jobs[64];
	pthread_t tid[64];
	int64_t now = sd_time_epoch_ms();
	for (int i = 0; i < threads; i++) {
		jobs[i] = (struct job){.store = store, .count = count / threads + (i < count % threads),
				       .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1), .now = now};
		pthread_create(&tid[i], NULL, run, &jobs[i]);
	}
	long made = 0, collisions = 0;
	int failed = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		made += jobs[i].made;
		collisions += jobs[i].collisions;
		failed |= jobs[i].failed;
	}
	sd_store_close(store);
	printf("created %ld sessions (%ld key collisions redrawn)\n", made, collisions);
	return failed ? 1 : 0;
}
