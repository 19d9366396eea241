/* test_mem.c: the per-request JSON memory budget (sd_mem), with the
 * counting allocator installed as sessiond installs it:
 * - a body over the request's budget is SD_ERR_TOO_LARGE with the "too
 *   complex" message, the same body under a larger budget parses;
 * - over the shared pool it is SD_ERR_BUSY;
 * - an instantiate whose new document does not fit in the pool is answered
 *   with the pool's message, not as if every key drawn had been taken, and
 *   writes nothing;
 * - everything a request allocated is given back (the process total
 *   returns to where it was), and outside a request nothing is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include "sd_api.h"
#include "sd_doc.h"
#include "sd_mem.h"
#include "sd_store.h"
#include "sd_test_util.h"

static void test_parse_over_the_request_budget_fails_and_frees_everything(void **state)
{
	(void)state;
	size_t len;
	char *s = sdt_worst_json(20000, &len);
	size_t base = sd_mem_in_use();
	json_t *v;
	char msg[SD_MSG_MAX];

	sd_mem_begin(256 * 1024); /* 20 KB of {} needs about 1.6 MB */
	assert_int_equal(sd_doc_parse_object(s, len, &v, msg), SD_ERR_TOO_LARGE);
	assert_null(v);
	assert_non_null(strstr(msg, "too complex"));
	assert_int_equal(sd_mem_exceeded(), SD_MEM_OVER_REQUEST);
	sd_mem_end();
	assert_int_equal(sd_mem_in_use(), base);

	sd_mem_begin(64 * 1024 * 1024);
	assert_int_equal(sd_doc_parse_object(s, len, &v, msg), SD_OK);
	assert_int_equal(sd_mem_exceeded(), SD_MEM_OK);
	json_decref(v);
	size_t peak = sd_mem_end();
	assert_true(peak > 1024 * 1024);
	assert_int_equal(sd_mem_in_use(), base);

	/* Outside a request nothing is refused. */
	assert_int_equal(sd_doc_parse_object(s, len, &v, msg), SD_OK);
	json_decref(v);
	assert_int_equal(sd_mem_in_use(), base);
	free(s);
}

static void test_request_finding_the_pool_taken_is_busy(void **state)
{
	(void)state;
	size_t len;
	char *s = sdt_worst_json(100000, &len);
	json_t *held, *v;
	char msg[SD_MSG_MAX];
	/* Another "request" holds most of the 4 MiB pool... */
	sd_mem_begin(64 * 1024 * 1024);
	char *small = sdt_worst_json(40000, &len);
	assert_int_equal(sd_doc_parse_object(small, len, &held, msg), SD_OK);
	sd_mem_end();
	/* ...so this one, within its own budget, finds the pool taken. */
	sd_mem_begin(64 * 1024 * 1024);
	size_t n = strlen(s);
	assert_int_equal(sd_doc_parse_object(s, n, &v, msg), SD_ERR_BUSY);
	assert_int_equal(sd_mem_exceeded(), SD_MEM_OVER_POOL);
	/* Small work still fits: every request may hold its first 64 KiB. */
	json_t *ok = json_pack("{s:s}", "error", "busy");
	assert_non_null(ok);
	json_decref(ok);
	sd_mem_end();
	json_decref(held);
	free(small);
	free(s);
}

/* The new document is made inside the request: when memory refuses it,
 * the answer is the memory outcome, not "every key drawn was taken" (which
 * instantiate said before). The document shares the body's data (no copy),
 * so what it allocates is small and within the floor every request may
 * hold whatever the pool says: the request's own budget is what refuses it
 * here, set below what the document needs. */
static void test_instantiate_refused_by_memory_says_so(void **state)
{
	(void)state;
	char *dir = sdt_mkdtemp("mem");
	assert_non_null(dir);
	sd_store_opts o = {.data_dir = dir, .durability = SD_DURABLE_NONE, .lock_timeout_ms = 1000};
	sd_store *s;
	assert_int_equal(sd_store_open(&o, &s, NULL), SD_OK);
	sd_inst_body b = {0};
	b.data = json_pack("{s:s}", "s", "x");
	assert_non_null(b.data);
	sd_key_draw draw = {0};
	sd_api_result r;
	char *snap = sdt_snapshot(dir);
	sd_mem_begin(64);
	sd_err e = sd_api_instantiate(s, &b, &draw, &r);
	assert_int_equal(sd_mem_exceeded(), SD_MEM_OVER_REQUEST);
	sd_mem_end();
	assert_int_equal(sd_mem_error(e), SD_ERR_TOO_LARGE);
	if (strstr(r.msg, "key"))
		fail_msg("instantiate refused by memory says: %s", r.msg);
	sd_api_result_free(&r);
	char *snap2 = sdt_snapshot(dir); /* nothing written, no temporary file left */
	assert_string_equal(snap, snap2);
	free(snap);
	free(snap2);
	json_decref(b.data);
	sd_store_close(s);
	assert_int_equal(sdt_rm_rf(dir), 0);
	free(dir);
}

static void test_budget_and_pool_scale_with_max_body(void **state)
{
	(void)state;
	assert_int_equal(sd_mem_budget(1024 * 1024), 40u * 1024 * 1024);
	assert_int_equal(sd_mem_pool(1024 * 1024), 40u * 1024 * 1024);
	assert_int_equal(sd_mem_budget(1024), 4u * 1024 * 1024);
	assert_int_equal(sd_mem_pool(8u * 1024 * 1024), 320u * 1024 * 1024);
}

int main(void)
{
	sd_mem_install(4u * 1024 * 1024);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_over_the_request_budget_fails_and_frees_everything),
		cmocka_unit_test(test_request_finding_the_pool_taken_is_busy),
		cmocka_unit_test(test_instantiate_refused_by_memory_says_so),
		cmocka_unit_test(test_budget_and_pool_scale_with_max_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
