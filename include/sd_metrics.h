/* sd_metrics: process-wide counters and histograms, updated lock-free with
 * relaxed atomics from every worker thread and from the store, rendered as
 * Prometheus text for GET /api/metrics. */
#ifndef SD_METRICS_H
#define SD_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	SD_EP_INSTANTIATE = 0,
	SD_EP_LOAD,
	SD_EP_SAVE,
	SD_EP_DELETE,
	SD_EP_HEALTH,
	SD_EP_METRICS,
	SD_EP_OTHER,
	SD_EP__COUNT
} sd_endpoint;

typedef enum {
	SD_M_KEY_COLLISIONS = 0,
	SD_M_CONFLICTS,           /* 409 and 412 */
	SD_M_LOCK_TIMEOUTS,
	SD_M_SESSIONS_CREATED,
	SD_M_BYTES_WRITTEN,
	SD_M_FSYNCS,
	SD_M_MISSES,              /* unknown keys and wrong tokens (the miss limit) */
	SD_M_RATE_LIMITED,        /* requests refused by the miss limit (429) */
	SD_M_TEMP_UNLINK_FAILURES, /* temporary files that could not be removed */
	SD_M_SESSIONS_DELETED,    /* by their owners (POST /api/delete) */
	SD_M_SESSIONS_EXPIRED,    /* expired sessions removed (sweeper, or a delete that found one) */
	SD_M_SWEEP_TICKS,         /* sweeper ticks run */
	SD_M_SWEEP_PASSES,        /* full passes over every fan-out folder */
	SD_M_SWEEP_SCANNED,       /* session files the sweeper read */
	SD_M_SWEEP_NS,            /* time the sweeper spent working, ns */
	SD_M_SAVES_WITHOUT_URL_KEY, /* saves whose key came only in the body */
	SD_M_MISDIRECTED,         /* 421: keys of buckets another node owns */
	SD_M_FROZEN_REJECTIONS,   /* writes refused: bucket frozen for a move */
	SD_M_POOL_REFUSALS,       /* 503: the memory pool all requests share was taken */
	SD_M__COUNT
} sd_counter;

const char *sd_endpoint_name(sd_endpoint ep);

/* Count one request and its latency. */
void sd_metrics_request(sd_endpoint ep, int status, int64_t ns);
void sd_metrics_add(sd_counter c, uint64_t n);
void sd_metrics_lock_wait(int64_t ns);
uint64_t sd_metrics_get(sd_counter c);

/* Render all metrics as Prometheus text (version 0.0.4). Returns malloc'd
 * text (caller frees), NULL on allocation failure. */
char *sd_metrics_render(size_t *len);

/* Reset everything to zero (tests). */
void sd_metrics_reset(void);

#endif
