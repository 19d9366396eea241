/* opts.c: the load generator's command line. Each option is one row of
 * a table: how its value is read (a bounded integer, a duration, a flag, or
 * its own parser) and where it goes in opts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lg_run.h"
#include "sd_time.h"
#include "sd_version.h"

static const char usage[] =
	"Usage: loadgen [OPTION]...\n"
	"Play virtual users against sessiond (through nginx) and check every answer.\n\n"
	"  --url URL           server base URL (default http://127.0.0.1:8080); only\n"
	"                      loopback addresses unless --allow-remote\n"
	"  --scenario NAME     users: each user creates its own session, then saves\n"
	"                        (conditionally) and loads it, checking every load;\n"
	"                      contention: all users increment --keys hot counters with\n"
	"                        conditional saves, retrying on 409; the final counters\n"
	"                        must equal the acknowledged increments;\n"
	"                      mixed: --mix of load/save/instantiate on own sessions,\n"
	"                        each with a 1-day expires_in; 1 save in 10 is a delete;\n"
	"                        each user's first session is made before the run\n"
	"                      raw: GET --path (POST --body), expecting 2xx (for ceilings)\n"
	"                      (default users)\n"
	"  --users N           virtual users = concurrent connections (default 10, max 10000)\n"
	"  --duration D        how long to run, e.g. 30s, 500ms, 2m (default 30s; with\n"
	"                      --requests alone, at most 10m)\n"
	"  --requests N        stop after N requests (retries count)\n"
	"  --rate R            open loop: send R requests/s on a fixed schedule and measure\n"
	"                      latency from each request's intended send time; without it,\n"
	"                      closed loop (each user sends when its last answer is in)\n"
	"  --keys K            contention: number of hot sessions (default 1)\n"
	"  --mix L,S,I         mixed: percent load, save, instantiate (default 80,15,5)\n"
	"  --doc-bytes N       padding in each document's data (default 512)\n"
	"  --timeout D         per-request timeout (default 10s)\n"
	"  --max-retries N     contention: 409 retries per increment before giving it up\n"
	"                      (default 100)\n"
	"  --backoff D         contention: before a retry wait a random time up to\n"
	"                      min(D, 1ms * 2^retries) (default 0: retry at once)\n"
	"  --max-errors N      stop the run early after N errors (default 1000)\n"
	"  --path P            raw: the path to GET (default /api/health)\n"
	"  --body FILE         raw: POST FILE's bytes (JSON) to --path instead\n"
	"  --json FILE         also write the report as JSON to FILE\n"
	"  --seed N            seed for keys and operation choices (default: time)\n"
	"  --quiet             no progress line\n"
	"  --allow-remote      allow a URL that is not loopback\n"
	"  --help              this text\n"
	"  --version           the version\n\n"
	"Exit status: 0 when every check passed; 1 on any lost update, mismatch,\n"
	"transport error, 5xx or other unexpected status; 2 on bad options; 3 when\n"
	"the run could not start.\n";

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int set_url(opts *o, const char *v)
{
	size_t l = strlen(v);
	while (l > 0 && v[l - 1] == '/')
		l--;
	if (l == 0 || l >= sizeof o->url)
		return -1;
	memcpy(o->url, v, l);
	o->url[l] = '\0';
	return 0;
}

static int set_scenario(opts *o, const char *v)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(v, sc_names[i]) == 0) {
			o->sc = (scenario)i;
			return 0;
		}
	return -1;
}

static int set_duration(opts *o, const char *v)
{
	int64_t ms;
	if (sd_time_parse_duration(v, &ms) || ms < 1 || ms > 24 * 3600 * 1000LL)
		return -1;
	o->duration_ns = ms * MS;
	o->duration_set = 1;
	return 0;
}

static int set_rate(opts *o, const char *v)
{
	char *end;
	o->rate = strtod(v, &end);
	return *end || !(o->rate > 0) || o->rate > 1e7 ? -1 : 0;
}

static int set_mix(opts *o, const char *v) { return lg_mix_parse(v, &o->mix); }

static int set_path(opts *o, const char *v)
{
	if (v[0] != '/' || strlen(v) >= sizeof o->path)
		return -1;
	snprintf(o->path, sizeof o->path, "%s", v);
	return 0;
}

static int set_body(opts *o, const char *v)
{
	o->body_file = v;
	return 0;
}

static int set_json(opts *o, const char *v)
{
	o->json_file = v;
	return 0;
}

/* How an option's value is read. Durations are bounded in ms. */
typedef enum { OV_INT, OV_U64, OV_SIZE, OV_MS, OV_NS, OV_FLAG, OV_FN, OV_HELP, OV_VERSION } opt_kind;

typedef struct opt_row {
	const char *name;
	opt_kind kind;
	size_t off;                      /* the field in opts (not OV_FN, OV_HELP) */
	uint64_t lo, hi;                 /* bounds of the value */
	int (*set)(opts *o, const char *v); /* OV_FN: 0 taken, -1 invalid */
} opt_row;

#define F(field) offsetof(opts, field)
static const opt_row rows[] = {
	{"url", OV_FN, 0, 0, 0, set_url},
	{"scenario", OV_FN, 0, 0, 0, set_scenario},
	{"users", OV_INT, F(users), 1, MAX_USERS, NULL},
	{"duration", OV_FN, 0, 0, 0, set_duration},
	{"requests", OV_U64, F(requests), 1, UINT64_C(1) << 40, NULL},
	{"rate", OV_FN, 0, 0, 0, set_rate},
	{"keys", OV_INT, F(keys), 1, MAX_KEYS, NULL},
	{"mix", OV_FN, 0, 0, 0, set_mix},
	{"doc-bytes", OV_SIZE, F(doc_bytes), 0, 512 * 1024, NULL},
	{"timeout", OV_MS, F(timeout_ms), 1, 600000, NULL},
	{"backoff", OV_NS, F(backoff_ns), 0, 60000, NULL},
	{"max-retries", OV_INT, F(max_retries), 0, 1000000, NULL},
	{"max-errors", OV_U64, F(max_errors), 1, UINT64_C(1) << 40, NULL},
	{"path", OV_FN, 0, 0, 0, set_path},
	{"body", OV_FN, 0, 0, 0, set_body},
	{"json", OV_FN, 0, 0, 0, set_json},
	{"seed", OV_U64, F(seed), 0, UINT64_MAX, NULL},
	{"quiet", OV_FLAG, F(quiet), 0, 0, NULL},
	{"allow-remote", OV_FLAG, F(allow_remote), 0, 0, NULL},
	{"help", OV_HELP, 0, 0, 0, NULL},
	{"version", OV_VERSION, 0, 0, 0, NULL},
};
#undef F
#define N_ROWS (sizeof rows / sizeof rows[0])

/* Store v into the option's field: 0, or -1 when v is not a valid value. */
static int set_value(opts *o, const opt_row *row, const char *v)
{
	char *field = (char *)o + row->off;
	uint64_t n;
	int64_t ms;
	switch (row->kind) {
	case OV_INT:
	case OV_U64:
	case OV_SIZE:
		if (parse_u64(v, row->lo, row->hi, &n))
			return -1;
		if (row->kind == OV_INT)
			*(int *)field = (int)n;
		else if (row->kind == OV_SIZE)
			*(size_t *)field = (size_t)n;
		else
			*(uint64_t *)field = n;
		return 0;
	case OV_MS:
	case OV_NS:
		if (sd_time_parse_duration(v, &ms) || ms < (int64_t)row->lo || ms > (int64_t)row->hi)
			return -1;
		*(int64_t *)field = row->kind == OV_NS ? ms * MS : ms;
		return 0;
	case OV_FLAG:
		*(int *)field = 1;
		return 0;
	case OV_FN:
		return row->set(o, v);
	case OV_HELP:
	case OV_VERSION:
		break;
	}
	return -1;
}

static void set_defaults(opts *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->url, sizeof o->url, "http://127.0.0.1:8080");
	o->sc = SC_USERS;
	o->users = 10;
	o->duration_ns = 30 * SEC;
	o->keys = 1;
	lg_mix_parse("80,15,5", &o->mix);
	o->doc_bytes = 512;
	o->timeout_ms = 10000;
	o->max_retries = 100;
	o->max_errors = 1000;
	o->sessions_per_user = 8;
	snprintf(o->path, sizeof o->path, "/api/health");
	o->seed = (uint64_t)sd_time_epoch_ms() ^ ((uint64_t)getpid() << 32);
}

/* What the options mean together: 0, or 2 (message printed). */
static int check_opts(opts *o)
{
	if (o->requests && !o->duration_set)
		o->duration_ns = 600 * SEC;
	if (o->body_file && o->sc != SC_RAW) {
		fprintf(stderr, "loadgen: --body is for --scenario raw\n");
		return 2;
	}
	if (strncmp(o->url, "http://", 7) != 0) {
		fprintf(stderr, "loadgen: --url must start with http://\n");
		return 2;
	}
	if (!o->allow_remote && !lg_url_is_loopback(o->url)) {
		fprintf(stderr, "loadgen: refusing %s: not a loopback address (pass --allow-remote "
				"to load a remote server)\n", o->url);
		return 2;
	}
	return 0;
}

int parse_opts(opts *o, int argc, char **argv)
{
	struct option longopts[N_ROWS + 1];
	for (size_t i = 0; i < N_ROWS; i++) {
		opt_kind k = rows[i].kind;
		int has_arg = k == OV_FLAG || k == OV_HELP || k == OV_VERSION ? no_argument : required_argument;
		longopts[i] = (struct option){rows[i].name, has_arg, NULL, 256 + (int)i};
	}
	longopts[N_ROWS] = (struct option){0, 0, 0, 0};
	set_defaults(o);
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c < 256 || c >= 256 + (int)N_ROWS) {
			fprintf(stderr, "loadgen: unknown option or missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
		const opt_row *row = &rows[c - 256];
		if (row->kind == OV_HELP || row->kind == OV_VERSION) {
			if (row->kind == OV_HELP)
				fputs(usage, stdout);
			else
				printf("loadgen %s\n", sd_version);
			return 1;
		}
		if (set_value(o, row, optarg) != 0) {
			fprintf(stderr, "loadgen: invalid value for --%s: '%s'\n", row->name, optarg);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	return check_opts(o);
}
