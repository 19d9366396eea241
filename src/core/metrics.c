/* metrics.c: process-wide counters and histograms (relaxed atomics, no
 * locks) and their Prometheus text rendering, with process gauges read
 * from /proc at scrape time. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sd_metrics.h"

#define NSTATUS 600
static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB (sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct {
	uint64_t bucket[NB + 1]; /* last: +Inf */
	uint64_t sum_ns;
	uint64_t count;
} hist;

static uint64_t requests[SD_EP__COUNT][NSTATUS];
static hist latency[SD_EP__COUNT];
static hist lock_wait;
static uint64_t counters[SD_M__COUNT];

static const char *const ep_names[SD_EP__COUNT] = {"instantiate", "load", "save", "delete", "health", "metrics", "other"};

const char *sd_endpoint_name(sd_endpoint ep) { return ep < SD_EP__COUNT ? ep_names[ep] : "other"; }

static void add(uint64_t *p, uint64_t n) { __atomic_fetch_add(p, n, __ATOMIC_RELAXED); }
static uint64_t get(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static void hist_observe(hist *h, int64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;
	while (i < NB && s > lat_bounds[i])
		i++;
	add(&h->bucket[i], 1);
	add(&h->sum_ns, ns > 0 ? (uint64_t)ns : 0);
	add(&h->count, 1);
}

void sd_metrics_request(sd_endpoint ep, int status, int64_t ns)
{
	if (ep >= SD_EP__COUNT)
		ep = SD_EP_OTHER;
	if (status < 0 || status >= NSTATUS)
		status = 0;
	add(&requests[ep][status], 1);
	hist_observe(&latency[ep], ns);
}

void sd_metrics_add(sd_counter c, uint64_t n) { add(&counters[c], n); }
void sd_metrics_lock_wait(int64_t ns) { hist_observe(&lock_wait, ns); }
uint64_t sd_metrics_get(sd_counter c) { return get(&counters[c]); }

void sd_metrics_reset(void)
{
	memset(requests, 0, sizeof requests);
	memset(latency, 0, sizeof latency);
	memset(&lock_wait, 0, sizeof lock_wait);
	memset(counters, 0, sizeof counters);
}

typedef struct {
	char *buf;
	size_t len, cap;
	int failed;
} sbuf;

static void out(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(sbuf *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap * 2 + (size_t)n;
		char *nb = realloc(b->buf, ncap);
		if (!nb) {
			b->failed = 1;
			return;
		}
		b->buf = nb;
		b->cap = ncap;
	}
}

static void hist_render(sbuf *b, const char *name, const char *labels, const hist *h)
{
	uint64_t cum = 0;
	const char *sep = *labels ? "," : "";
	for (size_t i = 0; i < NB; i++) {
		cum += get(&h->bucket[i]);
		out(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, lat_bounds[i],
		    (unsigned long long)cum);
	}
	cum += get(&h->bucket[NB]);
	out(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
	out(b, "%s_sum{%s} %.6f\n", name, labels, (double)get(&h->sum_ns) / 1e9);
	out(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)get(&h->count));
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the descriptor opendir holds */
}

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = -1, resident = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static const struct {
	sd_counter c;
	const char *name, *help;
} counter_info[] = {
	{SD_M_KEY_COLLISIONS, "sessiond_key_collisions_total", "Key draws that hit an existing session."},
	{SD_M_CONFLICTS, "sessiond_save_conflicts_total", "Saves refused for a version mismatch (409 and 412)."},
	{SD_M_LOCK_TIMEOUTS, "sessiond_lock_timeouts_total", "Saves that gave up waiting for a session lock."},
	{SD_M_SESSIONS_CREATED, "sessiond_sessions_created_total", "Sessions created."},
	{SD_M_BYTES_WRITTEN, "sessiond_bytes_written_total", "Bytes of session files written."},
	{SD_M_FSYNCS, "sessiond_fsyncs_total", "fsync calls on files and folders."},
	{SD_M_MISSES, "sessiond_misses_total", "Loads and copies of unknown keys, and requests with a missing or wrong token."},
	{SD_M_RATE_LIMITED, "sessiond_rate_limited_total", "Requests refused with 429 by the miss limit."},
	{SD_M_TEMP_UNLINK_FAILURES, "sessiond_temp_unlink_failures_total",
	 "Temporary files that could not be removed after a write (left for sessionctl fsck --repair)."},
	{SD_M_SESSIONS_DELETED, "sessiond_sessions_deleted_total", "Sessions deleted by their owners."},
	{SD_M_SESSIONS_EXPIRED, "sessiond_sessions_expired_total", "Expired sessions removed (sweeper or delete)."},
	{SD_M_SWEEP_TICKS, "sessiond_sweep_ticks_total", "Sweeper ticks (each at most one fan-out folder)."},
	{SD_M_SWEEP_PASSES, "sessiond_sweep_passes_total", "Sweeper passes completed over every fan-out folder."},
	{SD_M_SWEEP_SCANNED, "sessiond_sweep_files_scanned_total", "Session files the sweeper read."},
	{SD_M_SAVES_WITHOUT_URL_KEY, "sessiond_saves_without_url_key_total",
	 "Saves that named their key only in the body, not as /api/save?key=KEY (a router cannot route them)."},
	{SD_M_MISDIRECTED, "sessiond_misdirected_total", "Requests for keys whose bucket another node owns (421)."},
	{SD_M_FROZEN_REJECTIONS, "sessiond_frozen_rejections_total",
	 "Writes refused because the key's bucket is frozen for a move (503)."},
	{SD_M_POOL_REFUSALS, "sessiond_memory_pool_refusals_total",
	 "Requests refused because the JSON memory all requests share was taken by other large requests (503)."},
};

char *sd_metrics_render(size_t *len)
{
	sbuf b = {.cap = 16384};
	b.buf = malloc(b.cap);
	if (!b.buf)
		return NULL;
	out(&b, "# HELP sessiond_requests_total Requests by endpoint and status.\n"
		"# TYPE sessiond_requests_total counter\n");
	for (int ep = 0; ep < SD_EP__COUNT; ep++)
		for (int st = 0; st < NSTATUS; st++) {
			uint64_t v = get(&requests[ep][st]);
			if (v)
				out(&b, "sessiond_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
				    ep_names[ep], st, (unsigned long long)v);
		}
	out(&b, "# HELP sessiond_request_duration_seconds Request latency by endpoint.\n"
		"# TYPE sessiond_request_duration_seconds histogram\n");
	for (int ep = 0; ep < SD_EP__COUNT; ep++) {
		char labels[64];
		snprintf(labels, sizeof labels, "endpoint=\"%s\"", ep_names[ep]);
		hist_render(&b, "sessiond_request_duration_seconds", labels, &latency[ep]);
	}
	out(&b, "# HELP sessiond_lock_wait_seconds Time spent waiting for session locks.\n"
		"# TYPE sessiond_lock_wait_seconds histogram\n");
	hist_render(&b, "sessiond_lock_wait_seconds", "", &lock_wait);
	for (size_t i = 0; i < sizeof counter_info / sizeof counter_info[0]; i++)
		out(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_info[i].name,
		    counter_info[i].help, counter_info[i].name, counter_info[i].name,
		    (unsigned long long)get(&counters[counter_info[i].c]));
	out(&b, "# HELP sessiond_sweep_seconds_total Time the sweeper spent working.\n"
		"# TYPE sessiond_sweep_seconds_total counter\nsessiond_sweep_seconds_total %.6f\n",
	    (double)get(&counters[SD_M_SWEEP_NS]) / 1e9);
	out(&b, "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\n"
		"process_open_fds %ld\n", open_fds());
	out(&b, "# HELP process_resident_memory_bytes Resident memory.\n"
		"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
	    rss_bytes());
	if (b.failed) {
		free(b.buf);
		return NULL;
	}
	*len = b.len;
	return b.buf;
}
