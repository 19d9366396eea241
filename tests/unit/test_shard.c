/* test_shard.c: the shard table (sd_shard).
 *
 * - a valid table loads: generation, nodes and addresses, owner and state
 *   of every bucket, owned counts; comments, blank lines, tabs and any line
 *   order are accepted;
 * - every error fails the load with a message naming the line (or the
 *   missing item): a bucket missing or listed twice, an unknown node, a bad
 *   state, a bad/missing/repeated generation, a lower-case bucket, a node
 *   name too long or with bad characters, a bad address, a node declared
 *   twice, extra words, an overlong line, an unreadable file;
 * - sd_bucket_index in upper, lower and mixed case, and its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>

#include "sd_key.h"
#include "sd_shard.h"
#include "sd_test_util.h"

/* A table text: a header, then bucket i owned by node i%3 (frozen when
 * i%100 == 7), with line `skip` left out and `extra` appended. */
static char *table_text(const char *header, int skip, const char *extra)
{
	size_t cap = 64 * 1024, len = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	len += (size_t)snprintf(s + len, cap - len, "%s", header);
	static const char *nodes[] = {"alpha", "beta", "gamma-2"};
	for (int i = 0; i < SD_BUCKETS; i++) {
		if (i == skip)
			continue;
		char b[3];
		sd_bucket_name(i, b);
		len += (size_t)snprintf(s + len, cap - len, "%s %s %s\n", b, nodes[i % 3],
					i % 100 == 7 ? "frozen" : "owned");
	}
	len += (size_t)snprintf(s + len, cap - len, "%s", extra ? extra : "");
	assert_true(len < cap);
	return s;
}

#define GOOD_HEADER "# the test table\ngeneration 42\n\nnode alpha 127.0.0.1:9001\n" \
	"node beta\tunix:/run/sd/beta.sock   # a comment\nnode gamma-2 localhost:9003\n"

static char *tmp_dir;

static int setup(void **state)
{
	(void)state;
	tmp_dir = sdt_mkdtemp("shard");
	return tmp_dir ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	sdt_rm_rf(tmp_dir);
	free(tmp_dir);
	return 0;
}

/* Load text through a file; returns the result, fills msg. */
static sd_err load_text(const char *text, sd_shard **t, char msg[SD_MSG_MAX])
{
	char path[512];
	snprintf(path, sizeof path, "%s/table", tmp_dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return sd_shard_load(path, t, msg);
}

static void expect_fail(char *text, const char *needle)
{
	sd_shard *t = (sd_shard *)1;
	char msg[SD_MSG_MAX];
	sd_err e = load_text(text, &t, msg);
	free(text);
	if (e == SD_OK || !strstr(msg, needle))
		fail_msg("expected failure with \"%s\", got %d \"%s\"", needle, e, msg);
	assert_int_equal(e, SD_ERR_BAD_CONFIG);
	assert_null(t);
}

static void test_valid(void **state)
{
	(void)state;
	sd_shard *t = NULL;
	char msg[SD_MSG_MAX];
	char *text = table_text(GOOD_HEADER, -1, NULL);
	assert_int_equal(load_text(text, &t, msg), SD_OK);
	free(text);
	assert_non_null(t);
	assert_int_equal(sd_shard_generation(t), 42);
	assert_int_equal(sd_shard_node_count(t), 3);
	assert_string_equal(sd_shard_node_name(t, 1), "beta");
	assert_null(sd_shard_node_name(t, 3));
	assert_string_equal(sd_shard_node_addr(t, "alpha"), "127.0.0.1:9001");
	assert_string_equal(sd_shard_node_addr(t, "beta"), "unix:/run/sd/beta.sock");
	assert_string_equal(sd_shard_node_addr(t, "gamma-2"), "localhost:9003");
	assert_null(sd_shard_node_addr(t, "delta"));
	static const char *nodes[] = {"alpha", "beta", "gamma-2"};
	for (int i = 0; i < SD_BUCKETS; i++) {
		assert_string_equal(sd_shard_owner(t, i), nodes[i % 3]);
		assert_int_equal(sd_shard_state(t, i), i % 100 == 7 ? SD_BUCKET_FROZEN : SD_BUCKET_OWNED);
	}
	int frozen = -1;
	assert_int_equal(sd_shard_owned_count(t, "alpha", &frozen), SD_BUCKETS / 3);
	/* frozen: i%100 == 7 and i%3 == 0: 7+100k with (7+100k)%3==0 → k%3==2 */
	int want = 0;
	for (int i = 0; i < SD_BUCKETS; i++)
		want += i % 3 == 0 && i % 100 == 7;
	assert_int_equal(frozen, want);
	assert_int_equal(sd_shard_owned_count(t, "delta", &frozen), 0);
	assert_int_equal(frozen, 0);
	assert_null(sd_shard_owner(t, -1));
	assert_null(sd_shard_owner(t, SD_BUCKETS));
	sd_shard_free(t);
}

/* Node lines after the buckets that name them, CRLF line ends. */
static void test_valid_any_order(void **state)
{
	(void)state;
	char *text = table_text("generation 0\r\n", -1,
				"node gamma-2 h:1\r\nnode beta h:2\nnode alpha unix:/x\n");
	sd_shard *t = NULL;
	char msg[SD_MSG_MAX];
	assert_int_equal(load_text(text, &t, msg), SD_OK);
	free(text);
	assert_int_equal(sd_shard_generation(t), 0);
	assert_string_equal(sd_shard_owner(t, sd_bucket_index("AB")), "beta");
	sd_shard_free(t);
}

static void test_missing_bucket(void **state)
{
	(void)state;
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("Q7"), NULL), "bucket Q7 is not listed");
}

static void test_duplicate_bucket(void **state)
{
	(void)state;
	/* the table is 6 header lines, then AA on line 7 */
	expect_fail(table_text(GOOD_HEADER, -1, "AA beta owned\n"), ":1303: bucket AA listed twice (first on line 7)");
}

static void test_unknown_node(void **state)
{
	(void)state;
	char *text = table_text(GOOD_HEADER, sd_bucket_index("ZZ"), "ZZ delta owned\n");
	expect_fail(text, ":1302: bucket ZZ names node delta");
}

static void test_bad_state(void **state)
{
	(void)state;
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("ZZ"), "ZZ alpha moving\n"),
		    ":1302: bucket state must be owned or frozen");
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("ZZ"), "ZZ alpha OWNED\n"),
		    "bucket state must be owned or frozen");
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("ZZ"), "ZZ alpha\n"), ":1302: expected \"ZZ NODE");
}

static void test_bad_generation(void **state)
{
	(void)state;
	static const char *bad[] = {"generation -1\n", "generation x\n", "generation 1x\n",
				    "generation\n", "generation 1 2\n", "generation 99999999999999999999999\n",
				    "generation +3\n"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char header[256];
		snprintf(header, sizeof header, "%snode alpha h:1\nnode beta h:2\nnode gamma-2 h:3\n", bad[i]);
		expect_fail(table_text(header, -1, NULL), ":1: expected \"generation N\"");
	}
	expect_fail(table_text("node alpha h:1\nnode beta h:2\nnode gamma-2 h:3\n", -1, NULL),
		    "no \"generation N\" line");
	expect_fail(table_text(GOOD_HEADER, -1, "generation 43\n"), ":1303: generation given twice");
}

static void test_lower_case_bucket(void **state)
{
	(void)state;
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("AB"), "ab alpha owned\n"),
		    ":1302: bucket ab must be upper case");
	expect_fail(table_text(GOOD_HEADER, sd_bucket_index("AB"), "Ab alpha owned\n"), "must be upper case");
	expect_fail(table_text(GOOD_HEADER, -1, "A! alpha owned\n"), ":1303: expected \"generation\"");
	expect_fail(table_text(GOOD_HEADER, -1, "ABC alpha owned\n"), ":1303: expected \"generation\"");
}

static void test_names(void **state)
{
	(void)state;
	const char *n33 = "abcdefghijklmnopqrstuvwxyz0123456"; /* 33 chars */
	const char *n32 = "abcdefghijklmnopqrstuvwxyz012345";
	char header[512], extra[128];
	snprintf(header, sizeof header, "generation 1\nnode %s h:1\n", n33);
	expect_fail(table_text(header, -1, NULL), ":2: node name must be 1 to 32");
	/* 32 is fine, and a bucket may name it */
	snprintf(header, sizeof header, GOOD_HEADER "node %s h:1\n", n32);
	snprintf(extra, sizeof extra, "AA %s frozen\n", n32);
	char *text = table_text(header, 0, extra);
	sd_shard *t = NULL;
	char msg[SD_MSG_MAX];
	assert_int_equal(load_text(text, &t, msg), SD_OK);
	free(text);
	assert_string_equal(sd_shard_owner(t, 0), n32);
	assert_int_equal(sd_shard_state(t, 0), SD_BUCKET_FROZEN);
	sd_shard_free(t);
	/* a bucket naming a too-long node */
	snprintf(extra, sizeof extra, "AA %s owned\n", n33);
	expect_fail(table_text(GOOD_HEADER, 0, extra), ":1302: node name must be 1 to 32");
	expect_fail(table_text(GOOD_HEADER "node Alpha h:1\n", -1, NULL), ":7: node name");
	expect_fail(table_text(GOOD_HEADER "node a.b h:1\n", -1, NULL), ":7: node name");
	expect_fail(table_text(GOOD_HEADER "node alpha h:1\n", -1, NULL), ":7: node alpha declared twice");
	expect_fail(table_text(GOOD_HEADER "node delta\n", -1, NULL), ":7: expected \"node NAME ADDRESS\"");
	expect_fail(table_text(GOOD_HEADER "node delta h:1 x\n", -1, NULL), ":7: expected \"node NAME ADDRESS\"");
	static const char *bad_addr[] = {"h", "h:", ":80", "h:0", "h:65536", "h:8x", "unix:", "unix:rel"};
	for (size_t i = 0; i < sizeof bad_addr / sizeof *bad_addr; i++) {
		snprintf(header, sizeof header, GOOD_HEADER "node delta %s\n", bad_addr[i]);
		expect_fail(table_text(header, -1, NULL), ":7: node address");
	}
	/* an overlong line is refused, not cut into a shorter valid one */
	char *longline = malloc(2100);
	memset(longline, ' ', 2000);
	strcpy(longline + 2000, "generation 1\n");
	expect_fail(table_text(GOOD_HEADER, -1, longline), ":1303: line longer than");
	free(longline);
}

static void test_unreadable(void **state)
{
	(void)state;
	sd_shard *t = (sd_shard *)1;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_shard_load("/nonexistent/shard.table", &t, msg), SD_ERR_INTERNAL);
	assert_null(t);
	assert_non_null(strstr(msg, "/nonexistent/shard.table"));
	expect_fail(strdup(""), "no \"generation N\" line");
}

static void test_bucket_index(void **state)
{
	(void)state;
	assert_int_equal(sd_bucket_index("AA"), 0);
	assert_int_equal(sd_bucket_index("AB12CD34"), 1);
	assert_int_equal(sd_bucket_index("BA"), 36);
	assert_int_equal(sd_bucket_index("99"), SD_BUCKETS - 1);
	assert_int_equal(sd_bucket_index("0A"), 26 * 36);
	for (int i = 0; i < SD_BUCKETS; i++) {
		char up[3], lo[3], mx[3], rx[3];
		sd_bucket_name(i, up);
		snprintf(lo, sizeof lo, "%c%c", tolower(up[0]), tolower(up[1]));
		snprintf(mx, sizeof mx, "%c%c", tolower(up[0]), up[1]);
		snprintf(rx, sizeof rx, "%c%c", up[0], tolower(up[1]));
		assert_int_equal(sd_bucket_index(up), i);
		assert_int_equal(sd_bucket_index(lo), i);
		assert_int_equal(sd_bucket_index(mx), i);
		assert_int_equal(sd_bucket_index(rx), i);
	}
	assert_int_equal(sd_bucket_index(""), -1);
	assert_int_equal(sd_bucket_index("A"), -1);
	assert_int_equal(sd_bucket_index("A-"), -1);
	assert_int_equal(sd_bucket_index("!A"), -1);
	assert_int_equal(sd_bucket_index("\xc3\x84" "A"), -1);
	assert_int_equal(sd_bucket_index(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_valid_any_order),
		cmocka_unit_test(test_missing_bucket),
		cmocka_unit_test(test_duplicate_bucket),
		cmocka_unit_test(test_unknown_node),
		cmocka_unit_test(test_bad_state),
		cmocka_unit_test(test_bad_generation),
		cmocka_unit_test(test_lower_case_bucket),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_bucket_index),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
