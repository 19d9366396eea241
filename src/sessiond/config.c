/* config.c: sessiond options from SESSIOND_* variables and the command
 * line. Each bad value yields a one-line reason; main exits 2 with it. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_config.h"
#include "sd_time.h"

enum { O_DATA_DIR = 256, O_LISTEN, O_THREADS, O_MAX_BODY, O_LOCK_TIMEOUT, O_DURABILITY, O_CORS, O_LOG_LEVEL, O_BACKLOG,
       O_ACCESS, O_SECRET_FILE, O_MISS_LIMIT, O_MIN_FREE,
       O_MIN_TTL, O_MAX_TTL, O_DEFAULT_TTL, O_SWEEP_INTERVAL, O_SHARD_TABLE, O_NODE_ID, O_PREVIOUS_SECRET };

static const struct option longopts[] = {
	{"data-dir", required_argument, 0, O_DATA_DIR},
	{"listen", required_argument, 0, O_LISTEN},
	{"threads", required_argument, 0, O_THREADS},
	{"max-body", required_argument, 0, O_MAX_BODY},
	{"lock-timeout", required_argument, 0, O_LOCK_TIMEOUT},
	{"durability", required_argument, 0, O_DURABILITY},
	{"cors-origin", required_argument, 0, O_CORS},
	{"log-level", required_argument, 0, O_LOG_LEVEL},
	{"backlog", required_argument, 0, O_BACKLOG},
	{"access", required_argument, 0, O_ACCESS},
	{"secret-file", required_argument, 0, O_SECRET_FILE},
	{"miss-limit", required_argument, 0, O_MISS_LIMIT},
	{"min-free", required_argument, 0, O_MIN_FREE},
	{"min-ttl", required_argument, 0, O_MIN_TTL},
	{"max-ttl", required_argument, 0, O_MAX_TTL},
	{"default-ttl", required_argument, 0, O_DEFAULT_TTL},
	{"sweep-interval", required_argument, 0, O_SWEEP_INTERVAL},
	{"shard-table", required_argument, 0, O_SHARD_TABLE},
	{"node-id", required_argument, 0, O_NODE_ID},
	{"previous-secret-file", required_argument, 0, O_PREVIOUS_SECRET},
	{"help", no_argument, 0, 'h'},
	{"version", no_argument, 0, 'V'},
	{0, 0, 0, 0},
};

/* Environment variable for each option, in longopts order. */
static const struct {
	int opt;
	const char *env;
} envs[] = {
	{O_DATA_DIR, "SESSIOND_DATA_DIR"},   {O_LISTEN, "SESSIOND_LISTEN"},
	{O_THREADS, "SESSIOND_THREADS"},     {O_MAX_BODY, "SESSIOND_MAX_BODY"},
	{O_LOCK_TIMEOUT, "SESSIOND_LOCK_TIMEOUT"}, {O_DURABILITY, "SESSIOND_DURABILITY"},
	{O_CORS, "SESSIOND_CORS_ORIGIN"},    {O_LOG_LEVEL, "SESSIOND_LOG_LEVEL"},
	{O_BACKLOG, "SESSIOND_BACKLOG"},     {O_ACCESS, "SESSIOND_ACCESS"},
	{O_SECRET_FILE, "SESSIOND_SECRET_FILE"}, {O_MISS_LIMIT, "SESSIOND_MISS_LIMIT"},
	{O_MIN_FREE, "SESSIOND_MIN_FREE"},
	{O_MIN_TTL, "SESSIOND_MIN_TTL"},     {O_MAX_TTL, "SESSIOND_MAX_TTL"},
	{O_DEFAULT_TTL, "SESSIOND_DEFAULT_TTL"}, {O_SWEEP_INTERVAL, "SESSIOND_SWEEP_INTERVAL"},
	{O_SHARD_TABLE, "SESSIOND_SHARD_TABLE"}, {O_NODE_ID, "SESSIOND_NODE_ID"},
	{O_PREVIOUS_SECRET, "SESSIOND_PREVIOUS_SECRET_FILE"},
};

const char *sd_config_usage(void)
{
	return "Usage: sessiond [OPTION]...\n"
	       "FastCGI session store. Each option can also be set by the environment\n"
	       "variable shown; the command line wins.\n\n"
	       "  --data-dir DIR        session files live under DIR/sessions (SESSIOND_DATA_DIR, default " SD_DATA_DIR_DEFAULT ")\n"
	       "  --listen ADDR         unix:PATH or HOST:PORT to bind; without it the FastCGI\n"
	       "                        socket is fd 0, as spawn-fcgi passes it (SESSIOND_LISTEN)\n"
	       "  --threads N           worker threads, 1-1024 (SESSIOND_THREADS, default 32)\n"
	       "  --max-body SIZE       largest request body, bytes or with k/M suffix\n"
	       "                        (SESSIOND_MAX_BODY, default 1M)\n"
	       "  --lock-timeout DUR    longest wait for a session lock, 1ms to 30s, e.g. 5s,\n"
	       "                        500ms (SESSIOND_LOCK_TIMEOUT, default 5s)\n"
	       "  --durability MODE     full: fsync file and folder before answering; none: leave\n"
	       "                        it to the kernel (SESSIOND_DURABILITY, default full)\n"
	       "  --cors-origin LIST    comma-separated allowed Origins, or * (SESSIOND_CORS_ORIGIN,\n"
	       "                        default none: no CORS headers)\n"
	       "  --log-level LEVEL     error, warn, info or debug (SESSIOND_LOG_LEVEL, default info)\n"
	       "  --backlog N           listen backlog for --listen (SESSIOND_BACKLOG, default 1024)\n"
	       "  --access MODE         token: saves need the session's write token; private:\n"
	       "                        loads and copies need a token too; open: the key alone\n"
	       "                        reads and writes (SESSIOND_ACCESS, default token)\n"
	       "  --secret-file PATH    the 32-byte secret tokens derive from, created mode 0600\n"
	       "                        when missing (SESSIOND_SECRET_FILE, default DATA_DIR/secret)\n"
	       "  --miss-limit N        unknown keys and wrong tokens per minute per client\n"
	       "                        address, burst N, then 429; 0 turns it off\n"
	       "                        (SESSIOND_MISS_LIMIT, default 20)\n"
	       "  --min-free AMOUNT     below this free space (5%, 200M, 2G; 0 off) new sessions\n"
	       "                        and growing saves answer 507 (SESSIOND_MIN_FREE, default 5%)\n"
	       "  --max-ttl DUR         longest \"expires_in\" a client may ask for, whole seconds\n"
	       "                        (SESSIOND_MAX_TTL, default 365d)\n"
	       "  --default-ttl DUR     lifetime of new sessions that ask for none; off: none\n"
	       "                        (SESSIOND_DEFAULT_TTL, default off)\n"
	       "  --sweep-interval DUR  pause between sweeper ticks (one fan-out folder each);\n"
	       "                        0: no sweeper (SESSIOND_SWEEP_INTERVAL, default 1s)\n"
	       "  --previous-secret-file PATH  during a secret rotation, the secret that was\n"
	       "                        current before: tokens it made still verify, new ones\n"
	       "                        use --secret-file; no file: no rotation under way\n"
	       "                        (SESSIOND_PREVIOUS_SECRET_FILE)\n"
	       "  --shard-table FILE    the cluster's shard table: which node owns each key\n"
	       "                        bucket; keys of other nodes answer 421, frozen buckets\n"
	       "                        refuse writes; reread on SIGHUP with the secrets\n"
	       "                        (SESSIOND_SHARD_TABLE, default none: one node owns all)\n"
	       "  --node-id NAME        this node in the shard table; needed with --shard-table\n"
	       "                        (SESSIOND_NODE_ID)\n"
	       "  --min-ttl DUR         TEST ONLY: shortest \"expires_in\", 1s to 60s, so tests can\n"
	       "                        watch sessions expire (SESSIOND_MIN_TTL, default 60s)\n"
	       "  --help                show this text and exit\n"
	       "  --version             show the version and exit\n";
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	if (!s || !*s)
		return -1;
	long v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned long long mul = 1;
	if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
		mul = 1024;
	else if (strcmp(end, "m") == 0 || strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
		mul = 1024 * 1024;
	else if (*end)
		return -1;
	if (v == 0 || v > (256ULL << 20) / mul)
		return -1;
	*out = (size_t)(v * mul);
	return 0;
}

/* --min-free: "5%", "0.5%", a size with k/M/G suffix, or 0 (off). */
static int parse_min_free(sd_config *c, const char *s)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	c->min_free_pct = 0;
	c->min_free_bytes = 0;
	if (strchr(s, '%')) {
		double v = strtod(s, &end);
		if (strcmp(end, "%") != 0 || !(v >= 0 && v < 100))
			return -1;
		c->min_free_pct = v;
		return 0;
	}
	unsigned long long v = strtoull(s, &end, 10), mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1ULL << 10;
	else if (*end == 'm' || *end == 'M')
		mul = 1ULL << 20;
	else if (*end == 'g' || *end == 'G')
		mul = 1ULL << 30;
	else if (*end)
		return -1;
	if (*end && end[1])
		return -1;
	if (v > (1ULL << 50) / mul)
		return -1;
	c->min_free_bytes = v * mul;
	return 0;
}

static int parse_origins(sd_config *c, const char *s)
{
	c->cors_any = 0;
	c->n_origins = 0;
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", s);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "*") == 0) {
			c->cors_any = 1;
			continue;
		}
		if (c->n_origins >= SD_MAX_ORIGINS || strlen(tok) >= sizeof c->origins[0] ||
		    (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0))
			return -1;
		snprintf(c->origins[c->n_origins++], sizeof c->origins[0], "%s", tok);
	}
	return 0;
}

const char *const sd_access_names[SD_ACCESS_OPEN + 1] = {
	[SD_ACCESS_TOKEN] = "token", [SD_ACCESS_PRIVATE] = "private", [SD_ACCESS_OPEN] = "open"};

/* Apply one option value; returns 0 or -1 with msg set. Longer than 60
 * lines on purpose: one short case per option, so each option's rule sits
 * next to its name, as in longopts. */
static int apply(sd_config *c, int opt, const char *v, char msg[SD_MSG_MAX])
{
	long n;
	int64_t ms;
	switch (opt) {
	case O_DATA_DIR:
		if (!*v || strlen(v) >= sizeof c->data_dir - 64)
			goto bad;
		snprintf(c->data_dir, sizeof c->data_dir, "%s", v);
		return 0;
	case O_LISTEN:
		if (strlen(v) >= sizeof c->listen ||
		    (strncmp(v, "unix:", 5) != 0 && !strchr(v, ':')) || strcmp(v, "unix:") == 0)
			goto bad;
		snprintf(c->listen, sizeof c->listen, "%s", v);
		return 0;
	case O_THREADS:
		if (parse_int(v, 1, 1024, &n))
			goto bad;
		c->threads = (int)n;
		return 0;
	case O_BACKLOG:
		if (parse_int(v, 1, 65535, &n))
			goto bad;
		c->backlog = (int)n;
		return 0;
	case O_MAX_BODY:
		if (parse_size(v, &c->max_body))
			goto bad;
		return 0;
	case O_LOCK_TIMEOUT:
		/* At most 30 s: nginx gives up on sessiond after 60 s, and a save
		 * that completes after nginx answered 503 would be retried. */
		if (sd_time_parse_duration(v, &ms) || ms < 1 || ms > 30000)
			goto bad;
		c->lock_timeout_ms = (int)ms;
		return 0;
	case O_DURABILITY:
		if (strcmp(v, "full") == 0)
			c->durability = SD_DURABLE_FULL;
		else if (strcmp(v, "none") == 0)
			c->durability = SD_DURABLE_NONE;
		else
			goto bad;
		return 0;
	case O_CORS:
		if (parse_origins(c, v))
			goto bad;
		return 0;
	case O_LOG_LEVEL:
		if (sd_log_parse_level(v, &c->log_level))
			goto bad;
		return 0;
	case O_ACCESS:
		for (int m = SD_ACCESS_TOKEN; m <= SD_ACCESS_OPEN; m++)
			if (strcmp(v, sd_access_names[m]) == 0) {
				c->access = (sd_access)m;
				return 0;
			}
		goto bad;
	case O_SECRET_FILE:
		if (!*v || strlen(v) >= sizeof c->secret_file - 16)
			goto bad;
		snprintf(c->secret_file, sizeof c->secret_file, "%s", v);
		return 0;
	case O_MISS_LIMIT:
		if (parse_int(v, 0, 1000000, &n))
			goto bad;
		c->miss_limit = (int)n;
		return 0;
	case O_MIN_FREE:
		if (parse_min_free(c, v))
			goto bad;
		return 0;
	case O_MIN_TTL:
		if (sd_time_parse_duration(v, &ms) || ms % 1000 || ms < 1000 || ms > SD_TTL_MIN_DEFAULT * 1000)
			goto bad;
		c->ttl.min_s = ms / 1000;
		return 0;
	case O_MAX_TTL:
		if (sd_time_parse_duration(v, &ms) || ms % 1000 || ms < 1000 || ms > 100 * SD_TTL_MAX_DEFAULT * 1000)
			goto bad;
		c->ttl.max_s = ms / 1000;
		return 0;
	case O_DEFAULT_TTL:
		if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
			c->ttl.default_s = 0;
			return 0;
		}
		if (sd_time_parse_duration(v, &ms) || ms % 1000 || ms < 1000 || ms > 100 * SD_TTL_MAX_DEFAULT * 1000)
			goto bad;
		c->ttl.default_s = ms / 1000;
		return 0;
	case O_SHARD_TABLE:
		if (!*v || strlen(v) >= sizeof c->shard_table)
			goto bad;
		snprintf(c->shard_table, sizeof c->shard_table, "%s", v);
		return 0;
	case O_NODE_ID:
		if (!*v || strlen(v) >= sizeof c->node_id || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(v))
			goto bad;
		snprintf(c->node_id, sizeof c->node_id, "%s", v);
		return 0;
	case O_PREVIOUS_SECRET:
		if (!*v || strlen(v) >= sizeof c->previous_secret_file)
			goto bad;
		snprintf(c->previous_secret_file, sizeof c->previous_secret_file, "%s", v);
		return 0;
	case O_SWEEP_INTERVAL:
		if (sd_time_parse_duration(v, &ms) || ms > 3600 * 1000)
			goto bad;
		c->sweep_interval_ms = (int)ms;
		return 0;
	}
bad:
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == opt)
			snprintf(msg, SD_MSG_MAX, "invalid value for --%s: '%.100s'", o->name, v);
	return -1;
}

sd_config_result sd_config_parse(sd_config *c, int argc, char **argv, char msg[SD_MSG_MAX])
{
	memset(c, 0, sizeof *c);
	snprintf(c->data_dir, sizeof c->data_dir, "%s", SD_DATA_DIR_DEFAULT);
	c->threads = 32;
	c->max_body = 1024 * 1024;
	c->lock_timeout_ms = SD_STORE_LOCK_TIMEOUT_MS;
	c->durability = SD_DURABLE_FULL;
	c->log_level = SD_LOG_INFO;
	c->backlog = 1024;
	c->access = SD_ACCESS_TOKEN;
	c->miss_limit = 20;
	c->min_free_pct = 5;
	c->ttl.min_s = SD_TTL_MIN_DEFAULT;
	c->ttl.max_s = SD_TTL_MAX_DEFAULT;
	c->sweep_interval_ms = 1000;
	msg[0] = '\0';

	for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
		const char *v = getenv(envs[i].env);
		if (v && *v && apply(c, envs[i].opt, v, msg)) {
			char tmp[SD_MSG_MAX];
			snprintf(tmp, sizeof tmp, "%s (from %s)", msg, envs[i].env);
			memcpy(msg, tmp, SD_MSG_MAX);
			return SD_CONFIG_ERROR;
		}
	}
	optind = 0; /* 0, not 1: also resets getopt's internal state (a "-hV" cut short) */
	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		if (opt == 'h')
			return SD_CONFIG_HELP;
		if (opt == 'V')
			return SD_CONFIG_VERSION;
		if (opt == '?' || opt == ':') {
			snprintf(msg, SD_MSG_MAX, "unknown option or missing value: '%.100s' (see --help)",
				 argv[optind - 1]);
			return SD_CONFIG_ERROR;
		}
		if (apply(c, opt, optarg, msg))
			return SD_CONFIG_ERROR;
	}
	if (optind < argc) {
		snprintf(msg, SD_MSG_MAX, "unexpected argument '%.100s' (see --help)", argv[optind]);
		return SD_CONFIG_ERROR;
	}
	if (c->ttl.max_s < c->ttl.min_s ||
	    (c->ttl.default_s && (c->ttl.default_s < c->ttl.min_s || c->ttl.default_s > c->ttl.max_s))) {
		snprintf(msg, SD_MSG_MAX, "--default-ttl and --max-ttl must lie from %llds (--min-ttl) up, "
			 "and --default-ttl within --max-ttl", (long long)c->ttl.min_s);
		return SD_CONFIG_ERROR;
	}
	if (!c->shard_table[0] != !c->node_id[0]) {
		snprintf(msg, SD_MSG_MAX, "--shard-table and --node-id go together: give both, or neither for a single node");
		return SD_CONFIG_ERROR;
	}
	return SD_CONFIG_RUN;
}

int sd_config_origin_allowed(const sd_config *c, const char *origin)
{
	if (!origin || !*origin)
		return 0;
	for (const unsigned char *p = (const unsigned char *)origin; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0; /* it is echoed into a header line */
	if (c->cors_any)
		return 1;
	for (int i = 0; i < c->n_origins; i++)
		if (strcmp(c->origins[i], origin) == 0)
			return 1;
	return 0;
}
