/* rawfs: the file-system ceiling for `make bench`. N writer threads do
 * what sessiond's store does to the disk for a save or an instantiate, and
 * nothing else (no HTTP, no FastCGI, no JSON, no lock): the same layout
 * (DIR/sessions/XX/KEY.json), the same bytes, the same steps, taken by
 * bench/fsops.c (which fcgi_ceiling shares; see fsops.h):
 *   replace: the session's spare (.KEY.spare, made by the first replace)
 *            written over, [fdatasync], renameat2 RENAME_EXCHANGE with
 *            KEY.json, [fsync of the folder]                (a save)
 *   create:  an O_TMPFILE inode, write, [fdatasync], linkat to a fresh
 *            KEY.json, close, [fsync of the folder]
 *                                                          (an instantiate)
 * The bracketed steps run with --durability full only, as in sessiond, and
 * DIR/sessions is marked FS_TOPDIR_FL, as sessiond marks its own. Locks
 * (flock, the F_OFD spare lock) are left out: no other writer or reader.
 * Each writer works on its own pre-created files (replace) or new keys
 * (create), runs until --duration or --ops, and records every operation's
 * latency in a log-linear histogram. Prints one line:
 *   rawfs mode=... durability=... writers=N ops=N seconds=S ops_per_s=R
 *         p50_ms=... p90_ms=... p99_ms=... max_ms=... errors=N
 * Exit status 1 when any operation failed. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fsops.h"
#include "lg_hist.h"
#include "sd_key.h"
#include "sd_time.h"

#define MAX_WRITERS 4096
#define PATH_LEN 4096

typedef struct cfg {
	char dir[PATH_LEN - 128];
	fsops_store store;
	int create;
	int full;
	int writers;
	int files;
	int64_t duration_ns;
	uint64_t max_ops;
	char *data;
	size_t len;
} cfg;

typedef struct writer {
	cfg *c;
	int id;
	char (*keys)[SD_KEY_LEN + 1];
	lg_hist hist;
	uint64_t ops, errors;
	int first_errno;
	pthread_t tid;
} writer;

static pthread_barrier_t start_line;
static int64_t deadline;
static uint64_t ops_total; /* atomic */

static void *run_writer(void *p)
{
	writer *w = p;
	cfg *c = w->c;
	pthread_barrier_wait(&start_line);
	for (uint64_t i = 0;; i++) {
		int64_t t0 = sd_time_mono_ns();
		if (t0 >= deadline)
			break;
		if (c->max_ops && __atomic_fetch_add(&ops_total, 1, __ATOMIC_RELAXED) >= c->max_ops)
			break;
		char key[SD_KEY_LEN + 1];
		int r;
		if (c->create) {
			sd_key_generate(key, NULL, NULL);
			r = fsops_create(&c->store, key, c->data, c->len);
		} else {
			r = fsops_replace(&c->store, w->keys[i % (uint64_t)c->files], c->data, c->len, 0);
		}
		if (r != 0) {
			if (!w->errors++)
				w->first_errno = errno;
			continue;
		}
		lg_hist_record(&w->hist, (uint64_t)(sd_time_mono_ns() - t0));
		w->ops++;
	}
	return NULL;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!b)
		return -1;
	*out = b;
	*len = n;
	return 0;
}

static const char usage[] =
	"Usage: rawfs --dir DIR --mode replace|create [--durability full|none] [--writers N]\n"
	"             [--data FILE | --bytes N] [--files N] [--duration D] [--ops N]\n"
	"The file-system ceiling of a sessiond save (replace) or instantiate (create).\n"
	"  --writers N    concurrent writer threads (default 100)\n"
	"  --data FILE    the bytes each operation writes (default: --bytes of filler)\n"
	"  --bytes N      filler size when no --data (default 3072)\n"
	"  --files N      replace: files per writer, pre-created (default 10)\n"
	"  --duration D   e.g. 5s (default 5s; at most 10m)\n"
	"  --ops N        stop after N operations in total\n";

/* 0 to run, 1 help, 2 bad usage. */
static int parse(cfg *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"dir", required_argument, 0, 'd'},     {"mode", required_argument, 0, 'm'},
		{"durability", required_argument, 0, 'D'}, {"writers", required_argument, 0, 'w'},
		{"data", required_argument, 0, 'f'},    {"bytes", required_argument, 0, 'b'},
		{"files", required_argument, 0, 'n'},   {"duration", required_argument, 0, 't'},
		{"ops", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	memset(c, 0, sizeof *c);
	c->full = 1;
	c->writers = 100;
	c->files = 10;
	c->duration_ns = 5 * INT64_C(1000000000);
	long bytes = 3072;
	const char *data = NULL;
	int have_dir = 0, have_mode = 0, opt;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int64_t ms;
		switch (opt) {
		case 'd':
			snprintf(c->dir, sizeof c->dir, "%s", optarg);
			have_dir = 1;
			break;
		case 'm':
			if (strcmp(optarg, "replace") != 0 && strcmp(optarg, "create") != 0)
				return 2;
			c->create = strcmp(optarg, "create") == 0;
			have_mode = 1;
			break;
		case 'D':
			if (strcmp(optarg, "full") != 0 && strcmp(optarg, "none") != 0)
				return 2;
			c->full = strcmp(optarg, "full") == 0;
			break;
		case 'w':
			c->writers = atoi(optarg);
			if (c->writers < 1 || c->writers > MAX_WRITERS)
				return 2;
			break;
		case 'f':
			data = optarg;
			break;
		case 'b':
			bytes = atol(optarg);
			if (bytes < 1 || bytes > (16L << 20))
				return 2;
			break;
		case 'n':
			c->files = atoi(optarg);
			if (c->files < 1 || c->files > 100000)
				return 2;
			break;
		case 't':
			if (sd_time_parse_duration(optarg, &ms) || ms < 1 || ms > 600000)
				return 2;
			c->duration_ns = ms * 1000000;
			break;
		case 'o':
			c->max_ops = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			return 1;
		default:
			return 2;
		}
	}
	if (!have_dir || !have_mode || optind < argc)
		return 2;
	if (data) {
		if (read_file(data, &c->data, &c->len) != 0) {
			fprintf(stderr, "rawfs: cannot read %s\n", data);
			return 2;
		}
	} else {
		c->len = (size_t)bytes;
		c->data = malloc(c->len);
		if (!c->data)
			return 2;
		memset(c->data, 'x', c->len);
	}
	return 0;
}

int main(int argc, char **argv)
{
	cfg c;
	int rc = parse(&c, argc, argv);
	if (rc == 1) {
		fputs(usage, stdout);
		return 0;
	}
	if (rc != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (sodium_init() < 0 || fsops_open(&c.store, c.dir, c.full) != 0) {
		fprintf(stderr, "rawfs: cannot create %s/sessions: %s\n", c.dir, strerror(errno));
		free(c.data);
		return 1;
	}
	writer *w = calloc((size_t)c.writers, sizeof *w);
	if (!w) {
		free(c.data);
		return 1;
	}
	rc = 0;
	/* replace: every writer's files exist before the clock starts */
	for (int i = 0; i < c.writers && rc == 0; i++) {
		w[i].c = &c;
		w[i].id = i;
		lg_hist_init(&w[i].hist);
		if (c.create)
			continue;
		w[i].keys = calloc((size_t)c.files, sizeof *w[i].keys);
		if (!w[i].keys) {
			rc = 1;
			break;
		}
		for (int k = 0; k < c.files && rc == 0; k++) {
			sd_key_generate(w[i].keys[k], NULL, NULL);
			if (fsops_create(&c.store, w[i].keys[k], c.data, c.len) != 0) {
				fprintf(stderr, "rawfs: cannot pre-create a file: %s\n", strerror(errno));
				rc = 1;
			}
		}
	}
	int started = 0;
	if (rc == 0) {
		pthread_barrier_init(&start_line, NULL, (unsigned)c.writers + 1);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		for (; started < c.writers; started++)
			if (pthread_create(&w[started].tid, &attr, run_writer, &w[started]) != 0)
				break;
		pthread_attr_destroy(&attr);
		if (started < c.writers) {
			/* cannot release the barrier short: fail loudly instead of hanging */
			fprintf(stderr, "rawfs: could only start %d of %d writers\n", started, c.writers);
			_exit(1);
		}
	}
	if (rc == 0) {
		int64_t t0 = sd_time_mono_ns();
		deadline = t0 + c.duration_ns;
		pthread_barrier_wait(&start_line);
		for (int i = 0; i < started; i++)
			pthread_join(w[i].tid, NULL);
		double secs = (double)(sd_time_mono_ns() - t0) / 1e9;
		pthread_barrier_destroy(&start_line);
		lg_hist all;
		lg_hist_init(&all);
		uint64_t ops = 0, errors = 0;
		int first_errno = 0;
		for (int i = 0; i < c.writers; i++) {
			lg_hist_merge(&all, &w[i].hist);
			ops += w[i].ops;
			errors += w[i].errors;
			if (!first_errno)
				first_errno = w[i].first_errno;
		}
		printf("rawfs mode=%s durability=%s writers=%d bytes=%zu ops=%llu seconds=%.3f ops_per_s=%.1f "
		       "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%llu\n",
		       c.create ? "create" : "replace", c.full ? "full" : "none", c.writers, c.len,
		       (unsigned long long)ops, secs, (double)ops / secs,
		       (double)lg_hist_percentile(&all, 50) / 1e6, (double)lg_hist_percentile(&all, 90) / 1e6,
		       (double)lg_hist_percentile(&all, 99) / 1e6, (double)all.max / 1e6,
		       (unsigned long long)errors);
		if (errors) {
			fprintf(stderr, "rawfs: %llu operations failed, first: %s\n", (unsigned long long)errors,
				strerror(first_errno));
			rc = 1;
		}
	}
	for (int i = 0; i < c.writers; i++)
		free(w[i].keys);
	free(w);
	free(c.data);
	return rc;
}
