/* test_key.c: session keys (sd_key) and the key-collision retry of
 * sd_api_instantiate.
 *
 * - sd_key_generate: length, alphabet, the rng contract (upper bound 36),
 *   and a chi-square goodness-of-fit test of the character distribution;
 * - sd_key_normalize / sd_key_is_canonical: what a client may send;
 * - instantiate with an injected, scripted rng: the first key drawn already
 *   exists, so the second is used, the collision is counted and the existing
 *   file is untouched; and when every draw collides the answer is
 *   SD_ERR_BUSY after exactly SD_API_KEY_TRIES draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include "sd_api.h"
#include "sd_key.h"
#include "sd_layout.h"
#include "sd_log.h"
#include "sd_metrics.h"
#include "sd_store.h"
#include "sd_test_util.h"

/* ---- sd_key_generate: length and alphabet ---------------------------- */

static int in_alphabet(char c) { return c && strchr(SD_KEY_ALPHABET, c) != NULL; }

static void test_generated_keys_are_8_alphabet_characters(void **state)
{
	(void)state;
	assert_int_equal(strlen(SD_KEY_ALPHABET), SD_KEY_ALPHABET_LEN);
	for (int i = 0; i < 10000; i++) {
		char k[SD_KEY_LEN + 1];
		memset(k, 'x', sizeof k);
		sd_key_generate(k, NULL, NULL);
		assert_int_equal(k[SD_KEY_LEN], '\0');
		assert_int_equal(strlen(k), SD_KEY_LEN);
		for (int j = 0; j < SD_KEY_LEN; j++)
			assert_true(in_alphabet(k[j]));
		assert_true(sd_key_is_canonical(k));
		char n[SD_KEY_LEN + 1];
		assert_int_equal(sd_key_normalize(k, SD_KEY_LEN, n), SD_OK);
		assert_string_equal(n, k);
	}
}

/* A scripted rng: returns script[i++] (wrapping), records every upper. */
typedef struct script_rng {
	const uint32_t *v;
	size_t n, i;
	size_t calls;
	uint32_t bad_upper; /* an upper bound other than 36 that we were given */
} script_rng;

static uint32_t scripted(uint32_t upper, void *ctx)
{
	script_rng *s = ctx;
	if (upper != SD_KEY_ALPHABET_LEN)
		s->bad_upper = upper;
	s->calls++;
	uint32_t r = s->v[s->i % s->n];
	s->i++;
	return r;
}

static void test_generated_keys_map_rng_draws_onto_the_alphabet(void **state)
{
	(void)state;
	/* Indices map straight onto the alphabet, in order. */
	static const uint32_t idx[] = {0, 25, 26, 35, 1, 10, 27, 34};
	script_rng s = {.v = idx, .n = 8};
	char k[SD_KEY_LEN + 1];
	sd_key_generate(k, scripted, &s);
	assert_string_equal(k, "AZ09BK18");
	assert_int_equal(s.calls, SD_KEY_LEN);
	assert_int_equal(s.bad_upper, 0);
}

/* ---- chi-square over the character distribution ----------------------- */

/* Pearson's statistic for counts of n draws over the 36 characters. */
static double chi_square(const uint64_t counts[SD_KEY_ALPHABET_LEN], uint64_t n)
{
	double expect = (double)n / SD_KEY_ALPHABET_LEN, x2 = 0;
	for (int i = 0; i < SD_KEY_ALPHABET_LEN; i++) {
		double d = (double)counts[i] - expect;
		x2 += d * d / expect;
	}
	return x2;
}

/* Draw nkeys keys and return the chi-square statistic of their characters. */
static double key_chi_square(size_t nkeys, sd_key_rng rng, void *ctx)
{
	uint64_t counts[SD_KEY_ALPHABET_LEN] = {0};
	for (size_t i = 0; i < nkeys; i++) {
		char k[SD_KEY_LEN + 1];
		sd_key_generate(k, rng, ctx);
		for (int j = 0; j < SD_KEY_LEN; j++) {
			const char *p = strchr(SD_KEY_ALPHABET, k[j]);
			assert_non_null(p);
			counts[p - SD_KEY_ALPHABET]++;
		}
	}
	for (int i = 0; i < SD_KEY_ALPHABET_LEN; i++)
		assert_true(counts[i] > 0);
	return chi_square(counts, (uint64_t)nkeys * SD_KEY_LEN);
}

/* 36 characters give 35 degrees of freedom. Under the null hypothesis (each
 * character has probability 1/36) the statistic follows chi-square(35):
 * mean 35, standard deviation sqrt(70) ~ 8.4. The critical value for
 * p = 0.0001 is 74.7 (upper tail, computed from the regularised incomplete
 * gamma function: Q(17.5, 37.35) = 1.07e-4), so an unbiased generator fails
 * this check about once in ten thousand runs. A fixed value keeps the test
 * free of any statistics library. Any real bias is far beyond it: a
 * byte % 36 generator (4 characters at 8/256, 32 at 7/256) scores ~1950 on
 * 10^6 draws, and the self-check below proves the test sees that. */
#define CHI2_CRIT_35DF_P0001 74.7

/* 125000 keys x 8 characters = 10^6 draws. */
#define CHI2_KEYS 125000

static void test_generated_characters_are_uniform_by_chi_square(void **state)
{
	(void)state;
	double x2 = key_chi_square(CHI2_KEYS, NULL, NULL);
	print_message("chi-square over %d draws of libsodium keys: %.2f (critical %.1f)\n",
		      CHI2_KEYS * SD_KEY_LEN, x2, CHI2_CRIT_35DF_P0001);
	assert_true(x2 < CHI2_CRIT_35DF_P0001);
}

/* A deterministic generator (splitmix64) for the self-checks. */
static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform enough: a 64-bit value mod 36 has bias below 2^-58. */
static uint32_t fair_rng(uint32_t upper, void *ctx) { return (uint32_t)(splitmix(ctx) % upper); }

/* The classic mistake: one random byte mod 36. */
static uint32_t byte_mod_rng(uint32_t upper, void *ctx) { return (uint32_t)((splitmix(ctx) & 0xff) % upper); }

static void test_chi_square_tells_a_biased_rng_from_a_fair_one(void **state)
{
	(void)state;
	uint64_t seed = 42;
	double fair = key_chi_square(CHI2_KEYS, fair_rng, &seed);
	seed = 42;
	double biased = key_chi_square(CHI2_KEYS, byte_mod_rng, &seed);
	print_message("self-check: fair %.2f, byte%%36 %.2f\n", fair, biased);
	assert_true(fair < CHI2_CRIT_35DF_P0001);
	assert_true(biased > CHI2_CRIT_35DF_P0001);
}

/* ---- sd_key_normalize ---------------------------------------------------- */

static void test_normalize_upper_cases_valid_keys(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} ok[] = {
		{"ABCDEFGH", "ABCDEFGH"}, {"abcdefgh", "ABCDEFGH"}, {"aBc12XyZ", "ABC12XYZ"},
		{"00000000", "00000000"}, {"zzzzzzzz", "ZZZZZZZZ"}, {"Z9z9Z9z9", "Z9Z9Z9Z9"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char out[SD_KEY_LEN + 1];
		memset(out, 'x', sizeof out);
		assert_int_equal(sd_key_normalize(ok[i].in, strlen(ok[i].in), out), SD_OK);
		assert_string_equal(out, ok[i].out);
		assert_true(sd_key_is_canonical(out));
	}
	/* Only len bytes are looked at: a longer buffer is fine. */
	char out[SD_KEY_LEN + 1];
	assert_int_equal(sd_key_normalize("abcdefghIJK", 8, out), SD_OK);
	assert_string_equal(out, "ABCDEFGH");
}

static void test_normalize_refuses_bad_keys(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
	} bad[] = {
		{"../ABCDE", 8},          /* path traversal, 8 bytes */
		{"..", 2},
		{"../", 3},
		{"%2e%2e/A", 8},          /* URL-encoded traversal, 8 bytes */
		{"%2e%2e/AB", 9},
		{"%2E%2E%2", 8},
		{"ABC\0EFGH", 8},         /* NUL in the middle */
		{"ABCDEFG\0", 8},         /* NUL at the end of the 8 */
		{"ABCD/EFG", 8},          /* slashes */
		{"ABCD\\EFG", 8},
		{"/ABCDEFG", 8},
		{"ABCDEFG\xc3", 8},       /* non-ASCII bytes */
		{"\xc3\xa9" "BCDEFG", 8},
		{"ABCDEFG\xff", 8},
		{"ABCDEFG\x80", 8},
		{"ABCDEFG", 7},           /* 7 characters */
		{"ABCDEFGHI", 9},         /* 9 characters */
		{"", 0},                  /* empty */
		{"ABCD EFG", 8},          /* space, punctuation, control */
		{"ABCD-EFG", 8},
		{"ABCD_EFG", 8},
		{"ABCD.EFG", 8},
		{"ABCDEFG\n", 8},
		{"ABCD\tEFG", 8},
		{"ABCDEFG@", 8},          /* neighbours of the ranges */
		{"ABCDEFG[", 8},
		{"ABCDEFG`", 8},
		{"ABCDEFG{", 8},
		{"ABCDEFG/", 8},
		{"ABCDEFG:", 8},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char out[SD_KEY_LEN + 1] = "";
		sd_err e = sd_key_normalize(bad[i].in, bad[i].len, out);
		if (e != SD_ERR_BAD_KEY)
			fail_msg("case %zu (len %zu) accepted", i, bad[i].len);
	}
	char out[SD_KEY_LEN + 1];
	assert_int_equal(sd_key_normalize(NULL, 8, out), SD_ERR_BAD_KEY);
	assert_int_equal(sd_key_normalize(NULL, 0, out), SD_ERR_BAD_KEY);
}

static void test_only_normalised_keys_are_canonical(void **state)
{
	(void)state;
	assert_true(sd_key_is_canonical("ABCDEFGH"));
	assert_true(sd_key_is_canonical("01234567"));
	assert_false(sd_key_is_canonical("abcdefgh"));  /* not normalised */
	assert_false(sd_key_is_canonical("ABCDEFG"));   /* 7 */
	assert_false(sd_key_is_canonical("ABCDEFGHI")); /* 9 */
	assert_false(sd_key_is_canonical("ABC/EFGH"));
	assert_false(sd_key_is_canonical(""));
}

/* ---- sd_api_instantiate: collision retry ------------------------------ */

typedef struct store_fixture {
	char *dir;
	sd_store *s;
} store_fixture;

static int store_setup(void **state)
{
	store_fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->dir = sdt_mkdtemp("key");
	assert_non_null(f->dir);
	sd_store_opts o = {.data_dir = f->dir, .durability = SD_DURABLE_NONE, .lock_timeout_ms = 2000};
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_store_open(&o, &f->s, msg), SD_OK);
	*state = f;
	return 0;
}

static int store_teardown(void **state)
{
	store_fixture *f = *state;
	sd_store_close(f->s);
	sdt_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Indices of key into out (8 values). */
static void key_script(const char *key, uint32_t *out)
{
	for (int i = 0; i < SD_KEY_LEN; i++)
		out[i] = (uint32_t)(strchr(SD_KEY_ALPHABET, key[i]) - SD_KEY_ALPHABET);
}

static void test_instantiate_draws_again_on_a_taken_key_leaving_it_untouched(void **state)
{
	store_fixture *f = *state;
	/* The key that will be drawn first already exists, with bytes that are
	 * not what instantiate would write. */
	static const char existing[] = "{\n  \"key\": \"TAKEN001\",\n  \"version\": 7,\n"
				       "  \"created\": \"2020-01-01T00:00:00.000Z\",\n"
				       "  \"updated\": \"2020-01-02T00:00:00.000Z\",\n"
				       "  \"meta\": {},\n  \"data\": {\"mine\": true}\n}\n";
	assert_int_equal(sd_store_create(f->s, "TAKEN001", existing, strlen(existing)), SD_OK);
	char path[4096];
	sd_store_path(f->s, "TAKEN001", path, sizeof path);
	struct stat before;
	assert_int_equal(stat(path, &before), 0);

	uint32_t script[16];
	key_script("TAKEN001", script);
	key_script("FRESH002", script + 8);
	script_rng rng = {.v = script, .n = 16};

	json_t *data = json_pack("{s:i}", "n", 1);
	sd_inst_body b = {.data = data};
	sd_api_result r;
	uint64_t coll0 = sd_metrics_get(SD_M_KEY_COLLISIONS);
	sd_log_level lvl = sd_log_get_level();
	sd_log_set_level(SD_LOG_ERROR); /* the collision warning is expected */
	sd_err e = sd_api_instantiate(f->s, &b, &(sd_key_draw){.rng = scripted, .ctx = &rng}, &r);
	sd_log_set_level(lvl);
	assert_int_equal(e, SD_OK);
	assert_string_equal(r.key, "FRESH002");
	assert_int_equal(rng.calls, 16);
	assert_int_equal(rng.bad_upper, 0);
	assert_int_equal(sd_metrics_get(SD_M_KEY_COLLISIONS), coll0 + 1);

	/* The new session is stored under the second key, with our data. */
	assert_non_null(r.doc);
	assert_string_equal(json_string_value(json_object_get(r.doc, "key")), "FRESH002");
	char *buf;
	size_t len;
	assert_int_equal(sd_store_read(f->s, "FRESH002", &buf, &len, NULL), SD_OK);
	json_t *stored;
	assert_int_equal(sd_doc_parse_stored(buf, len, "FRESH002", &stored, NULL), SD_OK);
	assert_true(json_equal(json_object_get(stored, "data"), data));
	assert_int_equal(sd_doc_version(stored), 1);
	json_decref(stored);
	free(buf);

	/* The existing file: same bytes, same inode. */
	assert_int_equal(sd_store_read(f->s, "TAKEN001", &buf, &len, NULL), SD_OK);
	assert_int_equal(len, strlen(existing));
	assert_memory_equal(buf, existing, len);
	free(buf);
	struct stat after;
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);

	sd_api_result_free(&r);
	json_decref(data);
}

static void test_instantiate_gives_up_when_every_draw_collides_writing_nothing(void **state)
{
	store_fixture *f = *state;
	assert_int_equal(sd_store_create(f->s, "ZZZZZZZZ", "{}\n", 3), SD_OK);
	static const uint32_t z[] = {25};
	script_rng rng = {.v = z, .n = 1};
	sd_inst_body b = {0};
	sd_api_result r;
	char *snap = sdt_snapshot(f->dir);
	uint64_t coll0 = sd_metrics_get(SD_M_KEY_COLLISIONS);
	sd_log_level lvl = sd_log_get_level();
	sd_log_set_level(SD_LOG_ERROR);
	sd_err e = sd_api_instantiate(f->s, &b, &(sd_key_draw){.rng = scripted, .ctx = &rng}, &r);
	sd_log_set_level(lvl);
	assert_int_equal(e, SD_ERR_BUSY);
	assert_int_equal(sd_err_status(e), 503);
	assert_null(r.doc);
	assert_non_null(strstr(r.msg, "Every key drawn"));
	/* Exactly SD_API_KEY_TRIES draws of 8 characters, each a collision. */
	assert_int_equal(rng.calls, (size_t)SD_API_KEY_TRIES * SD_KEY_LEN);
	assert_int_equal(sd_metrics_get(SD_M_KEY_COLLISIONS), coll0 + SD_API_KEY_TRIES);
	/* Nothing written: no new file, no temp left, old bytes unchanged. */
	char *snap2 = sdt_snapshot(f->dir);
	assert_string_equal(snap, snap2);
	free(snap);
	free(snap2);
	sd_api_result_free(&r);
}

/* The one key character class agrees with SD_KEY_ALPHABET, and the layout
 * names built on it: fan-out folders, session files, temporary files. */
static void test_key_class_and_layout_names(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		const char *p = c ? strchr(SD_KEY_ALPHABET, c) : NULL;
		assert_int_equal(sd_key_pos(c), p ? (int)(p - SD_KEY_ALPHABET) : -1);
	}
	assert_int_equal(sd_layout_fan_index("AA"), 0);
	assert_int_equal(sd_layout_fan_index("A1"), 27);
	assert_int_equal(sd_layout_fan_index("99"), 36 * 36 - 1);
	assert_int_equal(sd_layout_fan_index("aA"), -1);
	assert_int_equal(sd_layout_fan_index("A"), -1);
	assert_int_equal(sd_layout_fan_index("ABC"), -1);
	/* index -> name -> index for every folder (the sweeper's walk and the
	 * shard table's bucket names both use this one mapping) */
	char fan[3];
	for (int i = 0; i < 36 * 36; i++) {
		sd_layout_fan_name(i, fan);
		assert_int_equal(strlen(fan), 2);
		assert_int_equal(sd_layout_fan_index(fan), i);
	}
	sd_layout_fan_name(27, fan);
	assert_string_equal(fan, "A1");
	char key[SD_KEY_LEN + 1];
	assert_true(sd_layout_session_name("ABCD1234.json", "AB", key));
	assert_string_equal(key, "ABCD1234");
	assert_true(sd_layout_session_name("ABCD1234.json", NULL, NULL));
	assert_false(sd_layout_session_name("ABCD1234.json", "AC", key));
	assert_false(sd_layout_session_name("abcd1234.json", NULL, key));
	assert_false(sd_layout_session_name("ABCD1234.jso", NULL, key));
	assert_false(sd_layout_session_name("ABCD12345.json", NULL, key));
	assert_true(sd_layout_is_temp(".ABCD1234.x1y2z3.tmp"));
	assert_false(sd_layout_is_temp("ABCD1234.tmp"));
	assert_false(sd_layout_is_temp(".tmp"));
	char path[SD_PATH_MAX];
	sd_layout_session_path("/d/sessions", "ABCD1234", path, sizeof path);
	assert_string_equal(path, "/d/sessions/AB/ABCD1234.json");
	sd_layout_temp_template("/d/sessions/AB", "ABCD1234", path, sizeof path);
	assert_string_equal(path, "/d/sessions/AB/.ABCD1234.XXXXXX.tmp");
	assert_true(sd_layout_is_temp(strrchr(path, '/') + 1));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_keys_are_8_alphabet_characters),
		cmocka_unit_test(test_generated_keys_map_rng_draws_onto_the_alphabet),
		cmocka_unit_test(test_generated_characters_are_uniform_by_chi_square),
		cmocka_unit_test(test_chi_square_tells_a_biased_rng_from_a_fair_one),
		cmocka_unit_test(test_normalize_upper_cases_valid_keys),
		cmocka_unit_test(test_normalize_refuses_bad_keys),
		cmocka_unit_test(test_only_normalised_keys_are_canonical),
		cmocka_unit_test(test_key_class_and_layout_names),
		cmocka_unit_test_setup_teardown(test_instantiate_draws_again_on_a_taken_key_leaving_it_untouched, store_setup, store_teardown),
		cmocka_unit_test_setup_teardown(test_instantiate_gives_up_when_every_draw_collides_writing_nothing, store_setup, store_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
