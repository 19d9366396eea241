/* sweep.c: expired sessions go away without cron. See sd_sweep.h. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sd_doc.h"
#include "sd_layout.h"
#include "sd_log.h"
#include "sd_metrics.h"
#include "sd_sweep.h"
#include "sd_time.h"

#define FANS (SD_KEY_ALPHABET_LEN * SD_KEY_ALPHABET_LEN)

int sd_sweep_bytes_expired(const char *key, const char *buf, size_t len, int64_t now_ms,
			   int64_t *expires_ms)
{
	int64_t version, x = 0;
	int r = sd_doc_peek(buf, len, key, &version) ? sd_doc_peek_expires(buf, len, &x) : -1;
	if (r < 0) {
		json_t *doc;
		if (sd_doc_parse_stored(buf, len, key, &doc, NULL) != SD_OK)
			return -1;
		x = sd_doc_expires(doc);
		json_decref(doc);
	}
	if (expires_ms)
		*expires_ms = x;
	return x != 0 && x <= now_ms;
}

sd_sweep_outcome sd_sweep_one(sd_store *s, const char *key, int64_t now_ms, int64_t *expires_ms,
			      sd_error *er)
{
	sd_lock *l;
	char *buf;
	size_t len;
	if (expires_ms)
		*expires_ms = 0;
	sd_err e = sd_store_lock(s, key, &l, &buf, &len, NULL);
	if (e == SD_ERR_NOT_FOUND)
		return SD_SWEEP_GONE;
	if (e == SD_ERR_BUSY)
		return SD_SWEEP_BUSY;
	if (e != SD_OK) {
		sd_error_set(er, e, 0, "cannot take its lock: %s", sd_err_message(e));
		return SD_SWEEP_FAILED;
	}
	sd_sweep_outcome o;
	int x = sd_sweep_bytes_expired(key, buf, len, now_ms, expires_ms);
	free(buf);
	if (x < 0) {
		o = SD_SWEEP_DAMAGED;
	} else if (x == 0) {
		o = SD_SWEEP_KEPT;
	} else if ((e = sd_store_remove(l, er)) == SD_OK) {
		sd_metrics_add(SD_M_SESSIONS_EXPIRED, 1);
		o = SD_SWEEP_REMOVED;
	} else {
		o = e == SD_ERR_NOT_FOUND ? SD_SWEEP_GONE : e == SD_ERR_FROZEN ? SD_SWEEP_BUSY : SD_SWEEP_FAILED;
	}
	sd_store_unlock(l);
	return o;
}

struct sd_sweeper {
	sd_store *store;
	int max_files;
	unsigned char present[FANS]; /* fan-out folders listed at the start of the pass */
	int cursor;                  /* folder of the pass being swept; FANS: pass over */
	DIR *dir;                    /* open folder, between ticks too */
	char fan[3];
	/* the thread */
	int interval_ms;
	int stop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

sd_err sd_sweeper_new(sd_store *s, int max_files, sd_sweeper **out)
{
	sd_sweeper *w = calloc(1, sizeof *w);
	if (!w)
		return SD_ERR_INTERNAL;
	w->store = s;
	w->max_files = max_files > 0 ? max_files : SD_SWEEP_MAX_FILES;
	w->cursor = FANS;
	*out = w;
	return SD_OK;
}

void sd_sweeper_free(sd_sweeper *w)
{
	if (!w)
		return;
	if (w->dir)
		closedir(w->dir);
	free(w);
}

/* Start a pass: note which fan-out folders exist now. */
static void list_folders(sd_sweeper *w)
{
	char path[SD_PATH_MAX];
	snprintf(path, sizeof path, "%s/" SD_LAYOUT_SESSIONS, sd_store_dir(w->store));
	memset(w->present, 0, sizeof w->present);
	w->cursor = 0;
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		int f = sd_layout_fan_index(de->d_name);
		if (f >= 0)
			w->present[f] = 1;
	}
	closedir(d);
}

/* Open the next listed folder; 0 when the pass is over. */
static int open_next(sd_sweeper *w)
{
	char path[SD_PATH_MAX];
	for (; w->cursor < FANS; w->cursor++) {
		if (!w->present[w->cursor])
			continue;
		sd_layout_fan_name(w->cursor, w->fan);
		snprintf(path, sizeof path, "%s/" SD_LAYOUT_SESSIONS "/%s", sd_store_dir(w->store), w->fan);
		w->dir = opendir(path);
		if (w->dir)
			return 1;
	}
	return 0;
}

/* KEY.json in the current folder, with a canonical key of that folder. */
static int key_of(const sd_sweeper *w, const char *name, char key[SD_KEY_LEN + 1])
{
	return sd_layout_session_name(name, w->fan, key);
}

void sd_sweeper_tick(sd_sweeper *w, int64_t now_ms, sd_sweep_stats *st)
{
	int64_t t0 = sd_time_mono_ns();
	memset(st, 0, sizeof *st);
	if (!w->dir) {
		if (w->cursor >= FANS)
			list_folders(w);
		if (!open_next(w)) {
			st->pass_done = 1;
			w->cursor = FANS;
		}
	}
	while (w->dir && st->scanned < w->max_files) {
		errno = 0;
		struct dirent *de = readdir(w->dir);
		if (!de) {
			closedir(w->dir);
			w->dir = NULL;
			w->cursor++;
			break;
		}
		char key[SD_KEY_LEN + 1], *buf;
		size_t len;
		if (!key_of(w, de->d_name, key) || sd_store_read(w->store, key, &buf, &len, NULL) != SD_OK)
			continue;
		st->scanned++;
		int x = sd_sweep_bytes_expired(key, buf, len, now_ms, NULL);
		free(buf);
		if (x == 1) {
			sd_sweep_outcome o = sd_sweep_one(w->store, key, now_ms, NULL, NULL);
			if (o == SD_SWEEP_REMOVED) {
				st->removed++;
				sd_log_debug("sweeper: removed expired session %s", key);
			} else if (o == SD_SWEEP_FAILED) {
				sd_log_warn("sweeper: cannot remove expired session %s", key);
			}
		}
	}
	sd_metrics_add(SD_M_SWEEP_TICKS, 1);
	sd_metrics_add(SD_M_SWEEP_SCANNED, (uint64_t)st->scanned);
	if (st->pass_done)
		sd_metrics_add(SD_M_SWEEP_PASSES, 1);
	sd_metrics_add(SD_M_SWEEP_NS, (uint64_t)(sd_time_mono_ns() - t0));
}

static void *sweep_main(void *arg)
{
	sd_sweeper *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		sd_timespec_add_ms(&until, w->interval_ms);
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		sd_sweep_stats st;
		sd_sweeper_tick(w, sd_time_epoch_ms(), &st);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

sd_err sd_sweeper_start(sd_store *s, int interval_ms, sd_sweeper **out)
{
	*out = NULL;
	sd_sweeper *w;
	if (sd_sweeper_new(s, SD_SWEEP_MAX_FILES, &w) != SD_OK)
		return SD_ERR_INTERNAL;
	w->interval_ms = interval_ms;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, sweep_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		sd_sweeper_free(w);
		return SD_ERR_INTERNAL;
	}
	*out = w;
	return SD_OK;
}

void sd_sweeper_stop(sd_sweeper *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	sd_sweeper_free(w);
}
