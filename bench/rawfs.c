/* rawfs: the file-system ceiling for `make bench`. N writer threads do
 * what sessiond's store does to the disk for a save or an instantiate, and
 * nothing else (no HTTP, no FastCGI, no JSON, no lock): the same layout
 * (DIR/sessions/XX/KEY.json), the same bytes, the same steps.
 *   replace: open the session's spare (.KEY.spare, made by the first
 *            replace), write over it, cut it to length, [fsync], close,
 *            renameat2 RENAME_EXCHANGE with KEY.json,
 *            [fsync of the folder]                         (a save)
 *   create:  mkdir of the folder (usually EEXIST), temporary file, write,
 *            [fsync], close, link to a fresh KEY.json, unlink the temporary
 *            file, [fsync of the folder]                   (an instantiate)
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
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>
#include "lg_hist.h"
#include "sd_key.h"
#include "sd_time.h"

#define MAX_WRITERS 4096
#define PATH_LEN 4096

typedef struct cfg {
	char dir[PATH_LEN - 128];
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
	const cfg *c;
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

static void fan_dir(const cfg *c, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/sessions/%.2s", c->dir, key);
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Temporary file with the bytes, fsynced in full mode; its name in tmp. */
static int write_temp(const cfg *c, const char *dir, const char *key, char *tmp, size_t n)
{
	snprintf(tmp, n, "%s/.%s.XXXXXX.tmp", dir, key);
	int fd = mkostemps(tmp, 4, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0640) != 0 || write_all(fd, c->data, c->len) != 0 || (c->full && fsync(fd) != 0)) {
		int saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

static int op_replace(const cfg *c, const char *key)
{
	char dir[PATH_LEN], spare[PATH_LEN], path[PATH_LEN];
	fan_dir(c, key, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s.json", dir, key);
	snprintf(spare, sizeof spare, "%s/.%s.spare", dir, key);
	int fd = open(spare, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	if (write_all(fd, c->data, c->len) != 0 || ftruncate(fd, (off_t)c->len) != 0 ||
	    (c->full && fsync(fd) != 0) || renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_EXCHANGE) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	return c->full ? sync_dir(dir) : 0;
}

/* key: in, a fresh key; drawn again on a collision, as sessiond does. */
static int op_create(const cfg *c, char *key)
{
	for (int tries = 0; tries < 8; tries++) {
		char dir[PATH_LEN], tmp[PATH_LEN], path[PATH_LEN];
		fan_dir(c, key, dir, sizeof dir);
		snprintf(path, sizeof path, "%s/%s.json", dir, key);
		if (mkdir(dir, 0750) == 0) {
			char parent[PATH_LEN];
			snprintf(parent, sizeof parent, "%s/sessions", c->dir);
			if (c->full && sync_dir(parent) != 0)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		if (write_temp(c, dir, key, tmp, sizeof tmp) != 0)
			return -1;
		int r = link(tmp, path), saved = errno;
		unlink(tmp);
		if (r == 0)
			return c->full ? sync_dir(dir) : 0;
		if (saved != EEXIST) {
			errno = saved;
			return -1;
		}
		sd_key_generate(key, NULL, NULL);
	}
	errno = EEXIST;
	return -1;
}

static void *run_writer(void *p)
{
	writer *w = p;
	const cfg *c = w->c;
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
			r = op_create(c, key);
		} else {
			r = op_replace(c, w->keys[i % (uint64_t)c->files]);
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

static int mkdir_p(const char *path)
{
	char buf[PATH_LEN];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
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
	char sessions[PATH_LEN];
	snprintf(sessions, sizeof sessions, "%s/sessions", c.dir);
	if (sodium_init() < 0 || mkdir_p(sessions) != 0) {
		fprintf(stderr, "rawfs: cannot create %s: %s\n", sessions, strerror(errno));
		free(c.data);
		return 1;
	}
	int sfd = open(sessions, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags;
	if (sfd >= 0 && ioctl(sfd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags |= FS_TOPDIR_FL;
		(void)ioctl(sfd, FS_IOC_SETFLAGS, &flags);
	}
	if (sfd >= 0)
		close(sfd);
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
			if (op_create(&c, w[i].keys[k]) != 0) {
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
