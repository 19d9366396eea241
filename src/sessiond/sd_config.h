/* sd_config: sessiond's options, from the command line and from SESSIOND_*
 * environment variables (the command line wins). Parsing returns a status;
 * main decides whether to exit. */
#ifndef SD_CONFIG_H
#define SD_CONFIG_H

#include <stddef.h>
#include "sd_doc.h"
#include "sd_err.h"
#include "sd_layout.h"
#include "sd_log.h"
#include "sd_store.h"

#define SD_MAX_ORIGINS 16

/* --access: what a key alone allows. */
typedef enum {
	SD_ACCESS_TOKEN = 0, /* loads and copies need the key; saves the write token */
	SD_ACCESS_PRIVATE,   /* loads and copies need a token too (read or write) */
	SD_ACCESS_OPEN       /* the key alone reads and writes */
} sd_access;
/* The --access names, indexed by sd_access. */
extern const char *const sd_access_names[SD_ACCESS_OPEN + 1];

typedef struct sd_config {
	char data_dir[SD_PATH_MAX];
	char listen[SD_PATH_MAX];       /* "" means: FastCGI socket on fd 0 (spawn-fcgi) */
	int threads;
	size_t max_body;
	int lock_timeout_ms;
	sd_durability durability;
	int cors_any;             /* --cors-origin '*' */
	int n_origins;
	char origins[SD_MAX_ORIGINS][256];
	sd_log_level log_level;
	int backlog;
	sd_access access;
	char secret_file[SD_PATH_MAX];  /* "" means DATA_DIR/secret */
	int miss_limit;           /* misses per minute per address; 0: off */
	double min_free_pct;      /* --min-free as a percentage, or */
	unsigned long long min_free_bytes; /* as a size; both 0: off */
	sd_ttl_limits ttl;        /* --min-ttl (test only), --max-ttl, --default-ttl, in seconds */
	int sweep_interval_ms;    /* --sweep-interval: pause between sweeper ticks, 0: no sweeper */
	char shard_table[SD_PATH_MAX];  /* --shard-table: "" means a single node owning every bucket */
	char node_id[33];         /* --node-id: this node's name in the table; "" without one */
	char previous_secret_file[SD_PATH_MAX]; /* --previous-secret-file: "" when no rotation is under way */
} sd_config;

typedef enum { SD_CONFIG_RUN = 0, SD_CONFIG_HELP, SD_CONFIG_VERSION, SD_CONFIG_ERROR } sd_config_result;

/* Defaults, then environment (getenv), then argv. On SD_CONFIG_ERROR msg
 * holds a one-line reason. */
sd_config_result sd_config_parse(sd_config *c, int argc, char **argv, char msg[SD_MSG_MAX]);
/* The --help text. */
const char *sd_config_usage(void);
/* 1 when origin (as sent by the browser) is allowed by --cors-origin. */
int sd_config_origin_allowed(const sd_config *c, const char *origin);

#endif
