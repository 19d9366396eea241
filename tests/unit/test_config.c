/* test_config.c: sessiond's options (sd_config): the defaults; every option
 * from argv and from its SESSIOND_* variable, argv winning; every bad value
 * refused with a message naming the option (and the variable when it came
 * from the environment); --help, --version, unknown options, missing
 * values, stray arguments; repeated parsing in one process; the CORS
 * origin check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_config.h"

static const char *const env_names[] = {
	"SESSIOND_DATA_DIR",    "SESSIOND_LISTEN",      "SESSIOND_THREADS",
	"SESSIOND_MAX_BODY",    "SESSIOND_LOCK_TIMEOUT", "SESSIOND_DURABILITY",
	"SESSIOND_CORS_ORIGIN", "SESSIOND_LOG_LEVEL",    "SESSIOND_BACKLOG",
	"SESSIOND_ACCESS",      "SESSIOND_SECRET_FILE",  "SESSIOND_MISS_LIMIT",
	"SESSIOND_MIN_FREE",
	"SESSIOND_MIN_TTL",     "SESSIOND_MAX_TTL",      "SESSIOND_DEFAULT_TTL",
	"SESSIOND_SWEEP_INTERVAL", "SESSIOND_SHARD_TABLE",  "SESSIOND_NODE_ID",
	"SESSIOND_PREVIOUS_SECRET_FILE",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
		unsetenv(env_names[i]);
}

static int setup(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

/* Parse "sessiond" + args (NULL-terminated). getopt may permute argv, so
 * it gets private copies. */
static sd_config_result parse(sd_config *c, char msg[SD_MSG_MAX], const char *const *args)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = strdup("sessiond");
	for (int i = 0; args && args[i]; i++)
		argv[argc++] = strdup(args[i]);
	argv[argc] = NULL;
	char *copy[64];
	memcpy(copy, argv, sizeof(char *) * (size_t)(argc + 1));
	memset(msg, 'x', SD_MSG_MAX - 1);
	msg[SD_MSG_MAX - 1] = '\0';
	sd_config_result r = sd_config_parse(c, argc, argv, msg);
	for (int i = 0; i < argc; i++)
		free(copy[i]);
	return r;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_no_options_give_the_documented_defaults(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
	assert_string_equal(msg, "");
	assert_string_equal(c.data_dir, "./var");
	assert_string_equal(c.listen, "");
	assert_int_equal(c.threads, 32);
	assert_int_equal(c.max_body, 1024 * 1024);
	assert_int_equal(c.lock_timeout_ms, 5000);
	assert_int_equal(c.durability, SD_DURABLE_FULL);
	assert_int_equal(c.cors_any, 0);
	assert_int_equal(c.n_origins, 0);
	assert_int_equal(c.log_level, SD_LOG_INFO);
	assert_int_equal(c.backlog, 1024);
	assert_false(sd_config_origin_allowed(&c, "http://a.example"));
}

/* ---- each option: argv, environment, argv over environment ------------- */

typedef struct opt_case {
	const char *opt, *env;
	const char *a, *b;          /* two good values */
	long long want_a, want_b;   /* numeric result, when get_num */
	long long (*get_num)(const sd_config *);
	const char *(*get_str)(const sd_config *);
} opt_case;

static const char *get_data_dir(const sd_config *c) { return c->data_dir; }
static const char *get_listen(const sd_config *c) { return c->listen; }
static long long get_threads(const sd_config *c) { return c->threads; }
static long long get_max_body(const sd_config *c) { return (long long)c->max_body; }
static long long get_lock_timeout(const sd_config *c) { return c->lock_timeout_ms; }
static long long get_durability(const sd_config *c) { return c->durability; }
static long long get_log_level(const sd_config *c) { return c->log_level; }
static long long get_backlog(const sd_config *c) { return c->backlog; }
static long long get_min_ttl(const sd_config *c) { return c->ttl.min_s; }
static long long get_max_ttl(const sd_config *c) { return c->ttl.max_s; }
static long long get_default_ttl(const sd_config *c) { return c->ttl.default_s; }
static long long get_sweep(const sd_config *c) { return c->sweep_interval_ms; }

static const opt_case opt_cases[] = {
	{"--data-dir", "SESSIOND_DATA_DIR", "/tmp/a", "/srv/b", 0, 0, NULL, get_data_dir},
	{"--listen", "SESSIOND_LISTEN", "unix:/run/s.sock", "127.0.0.1:9000", 0, 0, NULL, get_listen},
	{"--threads", "SESSIOND_THREADS", "1", "1024", 1, 1024, get_threads, NULL},
	{"--max-body", "SESSIOND_MAX_BODY", "64k", "2M", 65536, 2097152, get_max_body, NULL},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "250ms", "2s", 250, 2000, get_lock_timeout, NULL},
	{"--durability", "SESSIOND_DURABILITY", "none", "full", SD_DURABLE_NONE, SD_DURABLE_FULL,
	 get_durability, NULL},
	{"--log-level", "SESSIOND_LOG_LEVEL", "debug", "error", SD_LOG_DEBUG, SD_LOG_ERROR, get_log_level, NULL},
	{"--backlog", "SESSIOND_BACKLOG", "16", "65535", 16, 65535, get_backlog, NULL},
	{"--min-ttl", "SESSIOND_MIN_TTL", "1s", "60", 1, 60, get_min_ttl, NULL},
	{"--max-ttl", "SESSIOND_MAX_TTL", "1h", "30d", 3600, 2592000, get_max_ttl, NULL},
	{"--default-ttl", "SESSIOND_DEFAULT_TTL", "2h", "off", 7200, 0, get_default_ttl, NULL},
	{"--sweep-interval", "SESSIOND_SWEEP_INTERVAL", "0", "250ms", 0, 250, get_sweep, NULL},
};

static void check_value(const opt_case *o, const sd_config *c, const char *val, long long want, const char *how)
{
	if (o->get_str) {
		if (strcmp(o->get_str(c), val) != 0)
			fail_msg("%s %s: got \"%s\", want \"%s\"", o->opt, how, o->get_str(c), val);
	} else if (o->get_num(c) != want) {
		fail_msg("%s %s: got %lld, want %lld", o->opt, how, o->get_num(c), want);
	}
}

static void test_each_option_reads_from_argv_equals_and_environment_argv_winning(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof opt_cases / sizeof opt_cases[0]; i++) {
		const opt_case *o = &opt_cases[i];
		sd_config c;
		char msg[SD_MSG_MAX];
		/* argv, both spellings. */
		assert_int_equal(parse(&c, msg, ARGS(o->opt, o->a)), SD_CONFIG_RUN);
		check_value(o, &c, o->a, o->want_a, "from argv");
		char eq[128];
		snprintf(eq, sizeof eq, "%s=%s", o->opt, o->b);
		assert_int_equal(parse(&c, msg, ARGS(eq)), SD_CONFIG_RUN);
		check_value(o, &c, o->b, o->want_b, "from --opt=value");
		/* The last one on the command line wins. */
		assert_int_equal(parse(&c, msg, ARGS(o->opt, o->a, o->opt, o->b)), SD_CONFIG_RUN);
		check_value(o, &c, o->b, o->want_b, "repeated");
		/* Environment. */
		setenv(o->env, o->a, 1);
		assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
		check_value(o, &c, o->a, o->want_a, "from the environment");
		/* argv wins over the environment. */
		assert_int_equal(parse(&c, msg, ARGS(o->opt, o->b)), SD_CONFIG_RUN);
		check_value(o, &c, o->b, o->want_b, "argv over environment");
		/* An empty variable counts as unset. */
		setenv(o->env, "", 1);
		assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
		sd_config d;
		clear_env();
		assert_int_equal(parse(&d, msg, NULL), SD_CONFIG_RUN);
		assert_memory_equal(&c, &d, sizeof c);
	}
}

static void test_sizes_and_durations_parse_to_their_values(void **state)
{
	(void)state;
	static const struct {
		const char *opt, *val;
		long long want;
		long long (*get)(const sd_config *);
	} cases[] = {
		{"--max-body", "1", 1, get_max_body},
		{"--max-body", "1000", 1000, get_max_body},
		{"--max-body", "1K", 1024, get_max_body},
		{"--max-body", "1KiB", 1024, get_max_body},
		{"--max-body", "1m", 1048576, get_max_body},
		{"--max-body", "3MiB", 3145728, get_max_body},
		{"--max-body", "256M", 268435456, get_max_body},
		{"--max-body", "262144k", 268435456, get_max_body},
		{"--lock-timeout", "1ms", 1, get_lock_timeout},
		{"--lock-timeout", "30s", 30000, get_lock_timeout},
		{"--lock-timeout", "5", 5000, get_lock_timeout},
		{"--log-level", "warn", SD_LOG_WARN, get_log_level},
		{"--log-level", "warning", SD_LOG_WARN, get_log_level},
		{"--log-level", "info", SD_LOG_INFO, get_log_level},
		{"--threads", "32", 32, get_threads},
		{"--backlog", "1", 1, get_backlog},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sd_config c;
		char msg[SD_MSG_MAX];
		if (parse(&c, msg, ARGS(cases[i].opt, cases[i].val)) != SD_CONFIG_RUN)
			fail_msg("%s %s refused: %s", cases[i].opt, cases[i].val, msg);
		if (cases[i].get(&c) != cases[i].want)
			fail_msg("%s %s = %lld, want %lld", cases[i].opt, cases[i].val, cases[i].get(&c),
				 cases[i].want);
	}
	/* Listen forms. */
	static const char *const listens[] = {"unix:/tmp/x.sock", "0.0.0.0:9000", "[::1]:9000", "localhost:1"};
	for (size_t i = 0; i < sizeof listens / sizeof listens[0]; i++) {
		sd_config c;
		char msg[SD_MSG_MAX];
		assert_int_equal(parse(&c, msg, ARGS("--listen", listens[i])), SD_CONFIG_RUN);
		assert_string_equal(c.listen, listens[i]);
	}
}

static void test_cors_origin_list_allows_exactly_the_listed_origins(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", "http://a.example")), SD_CONFIG_RUN);
	assert_int_equal(c.n_origins, 1);
	assert_false(c.cors_any);
	assert_true(sd_config_origin_allowed(&c, "http://a.example"));
	assert_false(sd_config_origin_allowed(&c, "http://b.example"));
	assert_false(sd_config_origin_allowed(&c, "https://a.example"));
	assert_false(sd_config_origin_allowed(&c, "http://a.example/"));
	assert_false(sd_config_origin_allowed(&c, "http://a.example.evil"));
	assert_false(sd_config_origin_allowed(&c, ""));
	assert_false(sd_config_origin_allowed(&c, NULL));

	/* A list, commas and spaces. */
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", "http://a.example, https://b.example:8443,http://c")),
			 SD_CONFIG_RUN);
	assert_int_equal(c.n_origins, 3);
	assert_true(sd_config_origin_allowed(&c, "http://a.example"));
	assert_true(sd_config_origin_allowed(&c, "https://b.example:8443"));
	assert_true(sd_config_origin_allowed(&c, "http://c"));
	assert_false(sd_config_origin_allowed(&c, "https://b.example"));

	/* '*' allows any non-empty origin. */
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", "*")), SD_CONFIG_RUN);
	assert_true(c.cors_any);
	assert_true(sd_config_origin_allowed(&c, "http://whatever.example"));
	/* The origin is echoed into a header line: control bytes never pass. */
	assert_false(sd_config_origin_allowed(&c, "http://x\r\nSet-Cookie: a=b"));
	assert_false(sd_config_origin_allowed(&c, "http://x\x0b"));
	assert_false(sd_config_origin_allowed(&c, "http://x\x7f"));
	assert_false(sd_config_origin_allowed(&c, ""));
	assert_false(sd_config_origin_allowed(&c, NULL));

	/* From the environment; argv replaces the list rather than adding. */
	setenv("SESSIOND_CORS_ORIGIN", "http://env.example", 1);
	assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
	assert_true(sd_config_origin_allowed(&c, "http://env.example"));
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", "http://a.example")), SD_CONFIG_RUN);
	assert_true(sd_config_origin_allowed(&c, "http://a.example"));
	assert_false(sd_config_origin_allowed(&c, "http://env.example"));
	assert_int_equal(c.n_origins, 1);
	setenv("SESSIOND_CORS_ORIGIN", "*", 1);
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", "http://a.example")), SD_CONFIG_RUN);
	assert_false(c.cors_any);
	assert_false(sd_config_origin_allowed(&c, "http://b.example"));

	/* Sixteen origins fit. */
	char list[4096] = "";
	size_t n = 0;
	for (int i = 0; i < SD_MAX_ORIGINS; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%shttp://o%d.example", i ? "," : "", i);
	clear_env();
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", list)), SD_CONFIG_RUN);
	assert_int_equal(c.n_origins, SD_MAX_ORIGINS);
	assert_true(sd_config_origin_allowed(&c, "http://o15.example"));
}

/* ---- bad values ----------------------------------------------------------- */

static char long_value[8192];

static const struct {
	const char *opt, *env, *val;
} bad_values[] = {
	{"--data-dir", "SESSIOND_DATA_DIR", ""},
	{"--data-dir", "SESSIOND_DATA_DIR", long_value},
	{"--listen", "SESSIOND_LISTEN", "nocolon"},
	{"--listen", "SESSIOND_LISTEN", "unix:"},
	{"--listen", "SESSIOND_LISTEN", "/run/s.sock"},
	{"--listen", "SESSIOND_LISTEN", long_value},
	{"--min-ttl", "SESSIOND_MIN_TTL", "0"},
	{"--min-ttl", "SESSIOND_MIN_TTL", "61s"},
	{"--min-ttl", "SESSIOND_MIN_TTL", "1500ms"},
	{"--max-ttl", "SESSIOND_MAX_TTL", "forever"},
	{"--default-ttl", "SESSIOND_DEFAULT_TTL", "1.5d"},
	{"--sweep-interval", "SESSIOND_SWEEP_INTERVAL", "2h"},
	{"--sweep-interval", "SESSIOND_SWEEP_INTERVAL", "-1"},
	{"--node-id", "SESSIOND_NODE_ID", "Alpha"},
	{"--node-id", "SESSIOND_NODE_ID", "a.b"},
	{"--node-id", "SESSIOND_NODE_ID", "abcdefghijklmnopqrstuvwxyz0123456"},
	{"--shard-table", "SESSIOND_SHARD_TABLE", ""},
	{"--previous-secret-file", "SESSIOND_PREVIOUS_SECRET_FILE", ""},
	{"--threads", "SESSIOND_THREADS", "0"},
	{"--threads", "SESSIOND_THREADS", "1025"},
	{"--threads", "SESSIOND_THREADS", "-1"},
	{"--threads", "SESSIOND_THREADS", "abc"},
	{"--threads", "SESSIOND_THREADS", "4x"},
	{"--threads", "SESSIOND_THREADS", "4.0"},
	{"--threads", "SESSIOND_THREADS", ""},
	{"--threads", "SESSIOND_THREADS", "99999999999999999999"},
	{"--max-body", "SESSIOND_MAX_BODY", "0"},
	{"--max-body", "SESSIOND_MAX_BODY", "0k"},
	{"--max-body", "SESSIOND_MAX_BODY", "-1"},
	{"--max-body", "SESSIOND_MAX_BODY", "1G"},
	{"--max-body", "SESSIOND_MAX_BODY", "257M"},
	{"--max-body", "SESSIOND_MAX_BODY", "268435457"},
	{"--max-body", "SESSIOND_MAX_BODY", "1.5M"},
	{"--max-body", "SESSIOND_MAX_BODY", "1kk"},
	{"--max-body", "SESSIOND_MAX_BODY", "k"},
	{"--max-body", "SESSIOND_MAX_BODY", " 1k"},
	{"--max-body", "SESSIOND_MAX_BODY", "99999999999999999999999"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "0"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "0ms"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "30001ms"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "1m"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "1d"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "-1s"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "5x"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "fast"},
	{"--lock-timeout", "SESSIOND_LOCK_TIMEOUT", "99999999999999999999ms"},
	{"--durability", "SESSIOND_DURABILITY", "FULL"},
	{"--durability", "SESSIOND_DURABILITY", "sometimes"},
	{"--durability", "SESSIOND_DURABILITY", "fsync"},
	{"--cors-origin", "SESSIOND_CORS_ORIGIN", "a.example"},
	{"--cors-origin", "SESSIOND_CORS_ORIGIN", "ftp://a.example"},
	{"--cors-origin", "SESSIOND_CORS_ORIGIN", "http://a.example,b.example"},
	{"--log-level", "SESSIOND_LOG_LEVEL", "verbose"},
	{"--log-level", "SESSIOND_LOG_LEVEL", "INFO"},
	{"--log-level", "SESSIOND_LOG_LEVEL", "trace"},
	{"--backlog", "SESSIOND_BACKLOG", "0"},
	{"--backlog", "SESSIOND_BACKLOG", "65536"},
	{"--backlog", "SESSIOND_BACKLOG", "x"},
	{"--access", "SESSIOND_ACCESS", "public"},
	{"--access", "SESSIOND_ACCESS", "Token"},
	{"--secret-file", "SESSIOND_SECRET_FILE", ""},
	{"--miss-limit", "SESSIOND_MISS_LIMIT", "-1"},
	{"--miss-limit", "SESSIOND_MISS_LIMIT", "20/min"},
	{"--min-free", "SESSIOND_MIN_FREE", "100%"},
	{"--min-free", "SESSIOND_MIN_FREE", "5%%"},
	{"--min-free", "SESSIOND_MIN_FREE", "-5%"},
	{"--min-free", "SESSIOND_MIN_FREE", "200X"},
	{"--min-free", "SESSIOND_MIN_FREE", "200MB"},
	{"--min-free", "SESSIOND_MIN_FREE", "lots"},
};

static void test_bad_values_are_refused_naming_the_option(void **state)
{
	(void)state;
	memset(long_value, 'a', sizeof long_value - 1);
	long_value[0] = '/';
	long_value[1] = ':';
	long_value[sizeof long_value - 1] = '\0';
	for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
		const char *opt = bad_values[i].opt, *val = bad_values[i].val;
		sd_config c;
		char msg[SD_MSG_MAX];
		/* From argv: the message names the option. */
		sd_config_result r = parse(&c, msg, ARGS(opt, val));
		if (r != SD_CONFIG_ERROR)
			fail_msg("%s '%.40s' accepted (%d)", opt, val, r);
		if (!strstr(msg, opt))
			fail_msg("%s '%.40s': message does not name the option: %s", opt, val, msg);
		assert_true(strlen(msg) < SD_MSG_MAX);
		assert_null(strchr(msg, '\n')); /* one line */
		/* The bad value after good ones still fails. */
		assert_int_equal(parse(&c, msg, ARGS("--threads", "4", opt, val)), SD_CONFIG_ERROR);
		/* From the environment (an empty variable is "unset", skip it):
		 * the message names the option and the variable. */
		if (!*val)
			continue;
		setenv(bad_values[i].env, val, 1);
		r = parse(&c, msg, NULL);
		if (r != SD_CONFIG_ERROR)
			fail_msg("%s='%.40s' accepted", bad_values[i].env, val);
		if (!strstr(msg, opt) || !strstr(msg, bad_values[i].env))
			fail_msg("%s='%.40s': message: %s", bad_values[i].env, val, msg);
		unsetenv(bad_values[i].env);
	}
	/* Too many origins. */
	char list[4096] = "";
	size_t n = 0;
	for (int i = 0; i <= SD_MAX_ORIGINS; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%shttp://o%d.example", i ? "," : "", i);
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--cors-origin", list)), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--cors-origin"));
}

/* ---- help, version, unknown options ----------------------------------------- */

/* The issue 7 options: defaults, and what each accepts. */
static void test_access_miss_limit_and_min_free_have_defaults_and_take_values(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--threads", "4")), SD_CONFIG_RUN);
	assert_int_equal(c.access, SD_ACCESS_TOKEN);
	assert_int_equal(c.miss_limit, 20);
	assert_true(c.min_free_pct == 5 && c.min_free_bytes == 0);
	assert_string_equal(c.secret_file, "");
	assert_int_equal(parse(&c, msg, ARGS("--access", "private", "--miss-limit", "0", "--min-free", "200M",
					     "--secret-file", "/etc/sessiond/secret")), SD_CONFIG_RUN);
	assert_int_equal(c.access, SD_ACCESS_PRIVATE);
	assert_int_equal(c.miss_limit, 0);
	assert_true(c.min_free_pct == 0 && c.min_free_bytes == 200ULL << 20);
	assert_string_equal(c.secret_file, "/etc/sessiond/secret");
	assert_int_equal(parse(&c, msg, ARGS("--access", "open", "--min-free", "0.5%")), SD_CONFIG_RUN);
	assert_int_equal(c.access, SD_ACCESS_OPEN);
	assert_true(c.min_free_pct == 0.5 && c.min_free_bytes == 0);
	assert_int_equal(parse(&c, msg, ARGS("--min-free", "0")), SD_CONFIG_RUN);
	assert_true(c.min_free_pct == 0 && c.min_free_bytes == 0);
	assert_int_equal(parse(&c, msg, ARGS("--min-free", "2G")), SD_CONFIG_RUN);
	assert_true(c.min_free_bytes == 2ULL << 30);
	setenv("SESSIOND_MISS_LIMIT", "7", 1);
	setenv("SESSIOND_ACCESS", "open", 1);
	assert_int_equal(parse(&c, msg, ARGS("--access", "token")), SD_CONFIG_RUN);
	assert_int_equal(c.miss_limit, 7);
	assert_int_equal(c.access, SD_ACCESS_TOKEN); /* the command line wins */
}

/* The lifetimes must fit together: min <= default <= max. */
static void test_ttl_options_must_keep_min_under_default_under_max(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--max-ttl", "30")), SD_CONFIG_ERROR); /* under --min-ttl 60s */
	assert_non_null(strstr(msg, "--max-ttl"));
	assert_int_equal(parse(&c, msg, ARGS("--default-ttl", "10s")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--default-ttl"));
	assert_int_equal(parse(&c, msg, ARGS("--default-ttl", "400d")), SD_CONFIG_ERROR); /* over 365d */
	assert_int_equal(parse(&c, msg, ARGS("--max-ttl", "1d", "--default-ttl", "2d")), SD_CONFIG_ERROR);
	assert_int_equal(parse(&c, msg, ARGS("--min-ttl", "1s", "--max-ttl", "30", "--default-ttl", "10s")),
			 SD_CONFIG_RUN);
	assert_true(c.ttl.min_s == 1 && c.ttl.max_s == 30 && c.ttl.default_s == 10);
	assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
	assert_true(c.ttl.min_s == 60 && c.ttl.max_s == 365 * 86400 && c.ttl.default_s == 0);
	assert_int_equal(c.sweep_interval_ms, 1000);
}

static void test_help_and_version_win_over_other_options(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--help")), SD_CONFIG_HELP);
	assert_int_equal(parse(&c, msg, ARGS("-h")), SD_CONFIG_HELP);
	assert_int_equal(parse(&c, msg, ARGS("--threads", "4", "--help")), SD_CONFIG_HELP);
	assert_int_equal(parse(&c, msg, ARGS("--version")), SD_CONFIG_VERSION);
	assert_int_equal(parse(&c, msg, ARGS("-V")), SD_CONFIG_VERSION);
	/* The usage names every option and its variable. */
	const char *u = sd_config_usage();
	assert_non_null(u);
	static const char *const opts[] = {"--data-dir", "--listen", "--threads", "--max-body", "--lock-timeout",
					   "--durability", "--cors-origin", "--log-level", "--backlog",
					   "--help", "--version"};
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (!strstr(u, opts[i]))
			fail_msg("usage lacks %s", opts[i]);
	for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
		if (!strstr(u, env_names[i]))
			fail_msg("usage lacks %s", env_names[i]);
}

static void test_unknown_option_or_missing_value_is_an_error_naming_it(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("--bogus")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--bogus"));
	assert_int_equal(parse(&c, msg, ARGS("--threads", "4", "--bogus=1")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--bogus"));
	assert_int_equal(parse(&c, msg, ARGS("-x")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "-x"));
	/* A value missing at the end. */
	assert_int_equal(parse(&c, msg, ARGS("--threads")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--threads"));
	/* A stray positional argument. */
	assert_int_equal(parse(&c, msg, ARGS("extra")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "extra"));
	assert_int_equal(parse(&c, msg, ARGS("--threads", "4", "extra")), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "extra"));
	/* --help takes no value. */
	assert_int_equal(parse(&c, msg, ARGS("--help=yes")), SD_CONFIG_ERROR);
}

/* sd_config_parse can be called again and again in one process (tests,
 * tools), whatever the previous call stopped on: a cluster of short
 * options cut short by -h must not leak into the next parse. */
static void test_parsing_again_starts_from_a_clean_state(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	assert_int_equal(parse(&c, msg, ARGS("-hV")), SD_CONFIG_HELP);
	assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
	assert_int_equal(parse(&c, msg, ARGS("-Vh")), SD_CONFIG_VERSION);
	assert_int_equal(parse(&c, msg, ARGS("--threads", "7")), SD_CONFIG_RUN);
	assert_int_equal(c.threads, 7);
	assert_int_equal(parse(&c, msg, ARGS("--threads", "0")), SD_CONFIG_ERROR);
	assert_int_equal(parse(&c, msg, ARGS("--threads", "8")), SD_CONFIG_RUN);
	assert_int_equal(c.threads, 8);
	assert_int_equal(parse(&c, msg, ARGS("--bogus", "--threads", "9")), SD_CONFIG_ERROR);
	assert_int_equal(parse(&c, msg, NULL), SD_CONFIG_RUN);
	assert_int_equal(c.threads, 32); /* defaults again, nothing kept */
}

/* --shard-table and --node-id: both (from either source) or neither. */
static void test_shard_options(void **state)
{
	(void)state;
	sd_config c;
	char msg[SD_MSG_MAX];
	char *one[] = {(char *)"sessiond", (char *)"--shard-table", (char *)"/etc/t", NULL};
	assert_int_equal(sd_config_parse(&c, 3, one, msg), SD_CONFIG_ERROR);
	assert_non_null(strstr(msg, "--node-id"));
	char *other[] = {(char *)"sessiond", (char *)"--node-id", (char *)"n-1_a", NULL};
	assert_int_equal(sd_config_parse(&c, 3, other, msg), SD_CONFIG_ERROR);
	setenv("SESSIOND_SHARD_TABLE", "/etc/t", 1);
	assert_int_equal(sd_config_parse(&c, 3, other, msg), SD_CONFIG_RUN);
	assert_string_equal(c.shard_table, "/etc/t");
	assert_string_equal(c.node_id, "n-1_a");
	char *none[] = {(char *)"sessiond", (char *)"--previous-secret-file", (char *)"/s.old", NULL};
	clear_env();
	assert_int_equal(sd_config_parse(&c, 3, none, msg), SD_CONFIG_RUN);
	assert_string_equal(c.shard_table, "");
	assert_string_equal(c.previous_secret_file, "/s.old");
}

/* Every default the --help text states is the default the code applies:
 * passing the stated value changes nothing. The text is read as written
 * ("  --NAME" starts an option, "default VALUE" ends at ')', ':', ',' or
 * a space); defaults that are not values ("none", "DATA_DIR/secret") are
 * skipped. Seen failing with the usage text saying "default 16" threads. */
static void test_usage_defaults_match(void **state)
{
	(void)state;
	const char *u = sd_config_usage();
	char opt[64] = "", val[64], msg[SD_MSG_MAX];
	int checked = 0;
	for (const char *p = u; *p; p++) {
		if ((p == u || p[-1] == '\n') && strncmp(p, "  --", 4) == 0) {
			size_t n = strcspn(p + 2, " \n");
			snprintf(opt, sizeof opt, "%.*s", (int)n, p + 2);
		}
		if (strncmp(p, "default ", 8) != 0)
			continue;
		size_t n = strcspn(p + 8, "):, \n");
		snprintf(val, sizeof val, "%.*s", (int)n, p + 8);
		if (strcmp(val, "none") == 0 || strstr(val, "DATA_DIR"))
			continue;
		sd_config dflt, given;
		assert_int_equal(parse(&dflt, msg, NULL), SD_CONFIG_RUN);
		const char *args[] = {opt, val, NULL};
		if (parse(&given, msg, args) != SD_CONFIG_RUN)
			fail_msg("--help says %s defaults to %s, which it refuses: %s", opt, val, msg);
		if (memcmp(&dflt, &given, sizeof dflt) != 0)
			fail_msg("--help says %s defaults to %s, but the default differs", opt, val);
		checked++;
	}
	assert_true(checked >= 14);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_options_give_the_documented_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_option_reads_from_argv_equals_and_environment_argv_winning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_and_durations_parse_to_their_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cors_origin_list_allows_exactly_the_listed_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values_are_refused_naming_the_option, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_miss_limit_and_min_free_have_defaults_and_take_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_options_must_keep_min_under_default_under_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_version_win_over_other_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_option_or_missing_value_is_an_error_naming_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parsing_again_starts_from_a_clean_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shard_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_defaults_match, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
