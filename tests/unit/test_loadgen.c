/* test_loadgen: the load generator's own logic, without a network: the
 * histogram (bucket bounds, percentiles, merge), the open-loop scheduler
 * (intended times, backlog, limits, latency from the intended time), the
 * operation mix, and the lost-update / mismatch accounting, including a
 * simulated read-modify-write race against a store that does and one
 * that does not check versions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "lg_check.h"
#include "lg_hist.h"
#include "lg_sched.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* ---- histogram ---- */

static void test_hist_buckets_tile_the_range(void **state)
{
	(void)state;
	assert_int_equal(lg_hist_bucket_low(0), 0);
	for (size_t i = 0; i + 1 < LG_HIST_BUCKETS; i++) {
		assert_true(lg_hist_bucket_low(i) <= lg_hist_bucket_high(i));
		assert_int_equal(lg_hist_bucket_high(i) + 1, lg_hist_bucket_low(i + 1));
		assert_int_equal(lg_hist_index(lg_hist_bucket_low(i)), i);
		assert_int_equal(lg_hist_index(lg_hist_bucket_high(i)), i);
	}
	assert_int_equal(lg_hist_bucket_high(LG_HIST_BUCKETS - 1), LG_HIST_MAX_VALUE);
	assert_int_equal(lg_hist_index(LG_HIST_MAX_VALUE), LG_HIST_BUCKETS - 1);
	assert_int_equal(lg_hist_index(UINT64_MAX), LG_HIST_BUCKETS - 1);
}

static void test_hist_exact_below_sub_and_bounded_error_above(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < LG_HIST_SUB; v++)
		assert_int_equal(lg_hist_bucket_high(lg_hist_index(v)), v);
	/* width of any bucket above is at most 1/128 of its lowest value */
	for (size_t i = LG_HIST_SUB; i < LG_HIST_BUCKETS; i++) {
		uint64_t lo = lg_hist_bucket_low(i), hi = lg_hist_bucket_high(i);
		assert_true((hi - lo + 1) * 128 <= lo);
	}
}

static void test_hist_percentiles_of_1_to_100(void **state)
{
	(void)state;
	lg_hist h;
	lg_hist_init(&h);
	for (uint64_t v = 100; v >= 1; v--) /* order does not matter */
		lg_hist_record(&h, v);
	assert_int_equal(h.count, 100);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 100);
	assert_int_equal(lg_hist_percentile(&h, 50), 50);
	assert_int_equal(lg_hist_percentile(&h, 90), 90);
	assert_int_equal(lg_hist_percentile(&h, 99), 99);
	assert_int_equal(lg_hist_percentile(&h, 99.9), 100);
	assert_int_equal(lg_hist_percentile(&h, 100), 100);
	assert_int_equal(lg_hist_percentile(&h, 0.001), 1);
	assert_true(lg_hist_mean(&h) > 50.49 && lg_hist_mean(&h) < 50.51);
}

static void test_hist_percentiles_of_a_uniform_ms_range(void **state)
{
	(void)state;
	static lg_hist h;
	lg_hist_init(&h);
	/* 1 us .. 100 ms in 1 us steps: the value at p is p% of 100 ms */
	for (uint64_t us = 1; us <= 100000; us++)
		lg_hist_record(&h, us * 1000);
	const double ps[] = {50, 90, 99, 99.9};
	for (size_t i = 0; i < 4; i++) {
		uint64_t exact = (uint64_t)(ps[i] * 1000.0) * 1000; /* ns */
		uint64_t got = lg_hist_percentile(&h, ps[i]);
		assert_true(got >= exact);                 /* never below */
		assert_true(got <= exact + exact / 128);   /* at most 1/128 above */
	}
	assert_int_equal(lg_hist_percentile(&h, 100), 100000000);
}

static void test_hist_tail_is_not_hidden(void **state)
{
	(void)state;
	lg_hist h;
	lg_hist_init(&h);
	/* 990 fast answers at 1 ms, 10 stalls at 250 ms */
	for (int i = 0; i < 990; i++)
		lg_hist_record(&h, 1 * MS);
	for (int i = 0; i < 10; i++)
		lg_hist_record(&h, 250 * MS);
	assert_true(lg_hist_percentile(&h, 50) <= MS + MS / 128);
	assert_true(lg_hist_percentile(&h, 99) <= MS + MS / 128);
	assert_true(lg_hist_percentile(&h, 99.1) >= 250 * MS);
	assert_int_equal(lg_hist_percentile(&h, 99.9), 250 * MS);
	assert_int_equal(h.max, 250 * MS);
}

static void test_hist_empty_single_and_clamped(void **state)
{
	(void)state;
	lg_hist h;
	lg_hist_init(&h);
	assert_int_equal(lg_hist_percentile(&h, 50), 0);
	assert_true(lg_hist_mean(&h) == 0.0);
	lg_hist_record(&h, 123456789);
	/* one value: every percentile is that value (clamped to min/max) */
	assert_int_equal(lg_hist_percentile(&h, 1), 123456789);
	assert_int_equal(lg_hist_percentile(&h, 99.9), 123456789);
	uint64_t huge = LG_HIST_MAX_VALUE * 4;
	lg_hist_record(&h, huge);
	assert_int_equal(h.clamped, 1);
	assert_int_equal(h.max, huge);
	assert_int_equal(lg_hist_percentile(&h, 100), huge);
	assert_true(lg_hist_percentile(&h, 99) >= LG_HIST_MAX_VALUE / 2);
}

static void test_hist_merge_equals_recording_together(void **state)
{
	(void)state;
	static lg_hist a, b, both;
	lg_hist_init(&a);
	lg_hist_init(&b);
	lg_hist_init(&both);
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 5000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t v = x % (2 * SEC);
		lg_hist_record(i % 3 ? &a : &b, v);
		lg_hist_record(&both, v);
	}
	lg_hist_merge(&a, &b);
	assert_int_equal(a.count, both.count);
	assert_int_equal(a.min, both.min);
	assert_int_equal(a.max, both.max);
	assert_memory_equal(a.bucket, both.bucket, sizeof a.bucket);
	assert_int_equal(lg_hist_percentile(&a, 99.9), lg_hist_percentile(&both, 99.9));
	lg_hist empty;
	lg_hist_init(&empty);
	lg_hist_merge(&a, &empty);
	assert_int_equal(a.count, both.count);
}

/* ---- scheduler ---- */

static void test_sched_intended_times_follow_the_rate_without_drift(void **state)
{
	(void)state;
	lg_sched s;
	lg_sched_init(&s, 5 * SEC, 1000.0, 0, INT64_MAX);
	assert_int_equal(lg_sched_intended(&s, 0), 5 * SEC);
	assert_int_equal(lg_sched_intended(&s, 1), 5 * SEC + MS);
	assert_int_equal(lg_sched_intended(&s, 1000000), 5 * SEC + 1000 * SEC);
	lg_sched_init(&s, 0, 3.0, 0, INT64_MAX); /* not a whole number of ns apart */
	assert_int_equal(lg_sched_intended(&s, 3000000), 1000000 * SEC);
}

static void test_sched_open_loop_hands_out_due_slots_only(void **state)
{
	(void)state;
	lg_sched s;
	int64_t t0 = 10 * SEC, when;
	lg_sched_init(&s, t0, 100.0, 0, INT64_MAX); /* every 10 ms */
	assert_int_equal(lg_sched_take(&s, t0 - 1, &when), 0);
	assert_int_equal(lg_sched_wait(&s, t0 - 5), 5);
	assert_int_equal(lg_sched_take(&s, t0, &when), 1);
	assert_int_equal(when, t0);
	assert_int_equal(lg_sched_take(&s, t0 + 9 * MS, &when), 0);
	assert_int_equal(lg_sched_wait(&s, t0 + 9 * MS), MS);
	assert_int_equal(lg_sched_take(&s, t0 + 10 * MS, &when), 1);
	assert_int_equal(when, t0 + 10 * MS);
	assert_int_equal(s.taken, 2);
}

static void test_sched_a_stall_leaves_a_backlog_with_the_original_times(void **state)
{
	(void)state;
	lg_sched s;
	int64_t t0 = 0, when;
	lg_sched_init(&s, t0, 1000.0, 0, INT64_MAX);
	/* the sender was stuck for 50 ms: slots 0..50 are due */
	int64_t now = 50 * MS;
	assert_int_equal(lg_sched_backlog(&s, now), 51);
	assert_int_equal(lg_sched_wait(&s, now), 0);
	for (int i = 0; i <= 50; i++) {
		assert_int_equal(lg_sched_take(&s, now, &when), 1);
		assert_int_equal(when, i * MS); /* the intended time, not now */
		/* the latency charged includes the 50 - i ms the slot waited */
		assert_int_equal(lg_latency_ns(1, when, now, now + MS), (50 - i) * MS + MS);
	}
	assert_int_equal(lg_sched_take(&s, now, &when), 0);
	assert_int_equal(lg_sched_backlog(&s, now), 0);
}

static void test_sched_stops_at_limit_and_end(void **state)
{
	(void)state;
	lg_sched s;
	int64_t when;
	lg_sched_init(&s, 0, 1000.0, 3, INT64_MAX);
	for (int i = 0; i < 3; i++)
		assert_int_equal(lg_sched_take(&s, SEC, &when), 1);
	assert_int_equal(lg_sched_take(&s, SEC, &when), 0);
	assert_true(lg_sched_finished(&s, SEC));
	assert_int_equal(lg_sched_wait(&s, SEC), -1);
	assert_int_equal(lg_sched_backlog(&s, SEC), 0);

	/* 1000/s for 10 ms: slots at 0..9 ms, none at 10 ms */
	lg_sched_init(&s, 0, 1000.0, 0, 10 * MS);
	int n = 0;
	while (lg_sched_take(&s, 9 * MS, &when))
		n++;
	assert_int_equal(n, 10);
	assert_true(lg_sched_finished(&s, 9 * MS));
	assert_int_equal(lg_sched_backlog(&s, 20 * MS), 0);
	/* a sender that wakes after the end sends nothing more; what was due
	 * and not sent is reported as backlog */
	lg_sched_init(&s, 0, 1000.0, 0, 10 * MS);
	assert_int_equal(lg_sched_take(&s, 3 * MS, &when), 1);
	assert_int_equal(lg_sched_take(&s, 20 * MS, &when), 0);
	assert_int_equal(lg_sched_backlog(&s, 20 * MS), 9);
}

static void test_sched_closed_loop_sends_at_once_within_bounds(void **state)
{
	(void)state;
	lg_sched s;
	int64_t when;
	lg_sched_init(&s, 0, 0, 2, SEC);
	assert_int_equal(lg_sched_wait(&s, 5), 0);
	assert_int_equal(lg_sched_take(&s, 7, &when), 1);
	assert_int_equal(when, 7);
	assert_int_equal(lg_sched_backlog(&s, 7), 0);
	assert_int_equal(lg_sched_take(&s, 8, &when), 1);
	assert_int_equal(lg_sched_take(&s, 9, &when), 0); /* limit */
	lg_sched_init(&s, 0, 0, 0, SEC);
	assert_int_equal(lg_sched_take(&s, SEC - 1, &when), 1);
	assert_int_equal(lg_sched_take(&s, SEC, &when), 0); /* end */
}

static void test_latency_is_from_intended_in_open_loop_only(void **state)
{
	(void)state;
	assert_int_equal(lg_latency_ns(1, 100, 150, 200), 100);
	assert_int_equal(lg_latency_ns(0, 100, 150, 200), 50);
	assert_int_equal(lg_latency_ns(0, 100, 150, 140), 0); /* never negative */
}

static void test_mix_parse_and_pick(void **state)
{
	(void)state;
	lg_mix m;
	assert_int_equal(lg_mix_parse("80,15,5", &m), 0);
	assert_int_equal(lg_mix_pick(&m, 0), LG_OP_LOAD);
	assert_int_equal(lg_mix_pick(&m, 79), LG_OP_LOAD);
	assert_int_equal(lg_mix_pick(&m, 80), LG_OP_SAVE);
	assert_int_equal(lg_mix_pick(&m, 94), LG_OP_SAVE);
	assert_int_equal(lg_mix_pick(&m, 95), LG_OP_INSTANTIATE);
	assert_int_equal(lg_mix_pick(&m, 99), LG_OP_INSTANTIATE);
	assert_int_equal(lg_mix_parse("0,100,0", &m), 0);
	assert_int_equal(lg_mix_pick(&m, 0), LG_OP_SAVE);
	assert_int_equal(lg_mix_parse("80,15", &m), -1);
	assert_int_equal(lg_mix_parse("80,15,6", &m), -1);
	assert_int_equal(lg_mix_parse("80,15,5,0", &m), -1);
	assert_int_equal(lg_mix_parse("80,-15,35", &m), -1);
	assert_int_equal(lg_mix_parse("", &m), -1);
}

static void test_rand_below_stays_in_range_and_spreads(void **state)
{
	(void)state;
	uint64_t st = 42;
	unsigned seen[7] = {0};
	for (int i = 0; i < 70000; i++) {
		uint32_t v = lg_rand_below(&st, 7);
		assert_true(v < 7);
		seen[v]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(seen[i] > 9000 && seen[i] < 11000);
	assert_int_equal(lg_rand_below(&st, 1), 0);
}

/* ---- lost-update / mismatch accounting: owned sessions ---- */

static json_t *d(int n) { return json_pack("{s:i}", "n", n); }

static void test_owned_save_then_load_is_ok(void **state)
{
	(void)state;
	lg_owned o;
	lg_owned_init(&o, 1, d(0));
	assert_int_equal(lg_owned_saved(&o, 2, d(1)), LG_CHECK_OK);
	json_t *x = d(1);
	assert_int_equal(lg_owned_loaded(&o, 2, x), LG_CHECK_OK);
	json_decref(x);
	/* a save acknowledged with a version other than sent + 1 */
	assert_int_equal(lg_owned_saved(&o, 4, d(2)), LG_CHECK_MISMATCH);
	assert_int_equal(o.version, 4);
	lg_owned_free(&o);
}

static void test_owned_load_of_an_older_version_is_a_lost_update(void **state)
{
	(void)state;
	lg_owned o;
	lg_owned_init(&o, 1, d(0));
	assert_int_equal(lg_owned_saved(&o, 2, d(1)), LG_CHECK_OK);
	json_t *old = d(0);
	assert_int_equal(lg_owned_loaded(&o, 1, old), LG_CHECK_LOST);
	/* counted once: the state now follows the server */
	assert_int_equal(lg_owned_loaded(&o, 1, old), LG_CHECK_OK);
	json_decref(old);
	lg_owned_free(&o);
}

static void test_owned_wrong_data_or_unknown_version_is_a_mismatch(void **state)
{
	(void)state;
	lg_owned o;
	lg_owned_init(&o, 3, d(3));
	json_t *other = d(99);
	assert_int_equal(lg_owned_loaded(&o, 3, other), LG_CHECK_MISMATCH);
	json_decref(other);
	json_t *later = d(3);
	assert_int_equal(lg_owned_loaded(&o, 7, later), LG_CHECK_MISMATCH);
	assert_int_equal(lg_owned_loaded(&o, 7, NULL), LG_CHECK_MISMATCH);
	json_decref(later);
	lg_owned_free(&o);
}

static void test_owned_unanswered_save_is_settled_by_the_next_answer(void **state)
{
	(void)state;
	lg_owned o;
	json_t *v1 = d(1), *v2 = d(2);
	/* it did happen: the load shows it, and it becomes the state */
	lg_owned_init(&o, 1, d(1));
	lg_owned_uncertain(&o, d(2));
	assert_int_equal(lg_owned_loaded(&o, 2, v2), LG_CHECK_OK);
	assert_int_equal(o.version, 2);
	assert_int_equal(o.alt_version, 0);
	lg_owned_free(&o);
	/* it did not happen: the old state is still right */
	lg_owned_init(&o, 1, d(1));
	lg_owned_uncertain(&o, d(2));
	assert_int_equal(lg_owned_loaded(&o, 1, v1), LG_CHECK_OK);
	assert_int_equal(o.version, 1);
	assert_int_equal(lg_owned_loaded(&o, 2, v2), LG_CHECK_MISMATCH); /* no longer possible */
	lg_owned_free(&o);
	/* it happened and the next save got 409 with it as current */
	lg_owned_init(&o, 1, d(1));
	lg_owned_uncertain(&o, d(2));
	assert_int_equal(lg_owned_conflict(&o, 2, v2), LG_CHECK_OK);
	assert_int_equal(o.version, 2);
	lg_owned_free(&o);
	json_decref(v1);
	json_decref(v2);
}

static void test_owned_conflict_without_cause_is_lost_or_mismatch(void **state)
{
	(void)state;
	lg_owned o;
	json_t *x = d(5);
	lg_owned_init(&o, 4, d(4));
	assert_int_equal(lg_owned_conflict(&o, 3, x), LG_CHECK_LOST);
	lg_owned_free(&o);
	lg_owned_init(&o, 4, d(4));
	assert_int_equal(lg_owned_conflict(&o, 5, x), LG_CHECK_MISMATCH);
	lg_owned_free(&o);
	json_decref(x);
}

/* ---- counters ---- */

static void test_counter_observations(void **state)
{
	(void)state;
	lg_counter c;
	lg_counter_init(&c);
	c.floor = 1;
	assert_int_equal(lg_counter_observed(&c, 1, 1, 0), LG_CHECK_OK);
	assert_int_equal(lg_counter_acked(&c, 1, 2), LG_CHECK_OK);
	assert_int_equal(c.floor, 2);
	/* a read sent after version 2 was acknowledged shows version 1 */
	assert_int_equal(lg_counter_observed(&c, 2, 1, 0), LG_CHECK_LOST);
	/* a read sent before the acknowledgement may show version 1 */
	assert_int_equal(lg_counter_observed(&c, 1, 1, 0), LG_CHECK_OK);
	/* counter and version disagree */
	assert_int_equal(lg_counter_observed(&c, 2, 3, 5), LG_CHECK_MISMATCH);
	assert_int_equal(c.floor, 3); /* seen, so later reads must not go below */
	assert_int_equal(lg_counter_acked(&c, 3, 5), LG_CHECK_MISMATCH);
}

static void test_counter_final_accounting(void **state)
{
	(void)state;
	lg_counter c;
	uint64_t lost = 0, mism = 0;
	lg_counter_init(&c);
	c.acked = 10;
	lg_counter_final(&c, 11, 10, &lost, &mism);
	assert_int_equal(lost, 0);
	assert_int_equal(mism, 0);
	lg_counter_final(&c, 8, 7, &lost, &mism); /* three acknowledged increments missing */
	assert_int_equal(lost, 3);
	assert_int_equal(mism, 0);
	lg_counter_final(&c, 11, 11, &lost, &mism); /* version and counter disagree */
	assert_int_equal(mism, 2);                  /* ... and one increment nobody sent */
	mism = 0;
	lg_counter_final(&c, 13, 12, &lost, &mism); /* two increments nobody sent */
	assert_int_equal(mism, 2);
	assert_int_equal(lost, 3);
	c.uncertain = 2; /* ... unless two went unanswered: they may have landed */
	lost = mism = 0;
	lg_counter_final(&c, 13, 12, &lost, &mism);
	lg_counter_final(&c, 11, 10, &lost, &mism);
	assert_int_equal(lost, 0);
	assert_int_equal(mism, 0);
}

/* A tiny in-memory store and two clients doing read-modify-write
 * increments, interleaved so that both read before either writes. */
typedef struct {
	int64_t version, counter;
	int check_version;
} mem_store;

/* 200 -> 1 and *new_version; 409 -> 0 */
static int mem_save(mem_store *s, int64_t sent_version, int64_t counter, int64_t *new_version)
{
	if (s->check_version && sent_version != s->version)
		return 0;
	s->counter = counter;
	*new_version = ++s->version;
	return 1;
}

static uint64_t race(int check_version, uint64_t *mismatches)
{
	mem_store s = {.version = 1, .counter = 0, .check_version = check_version};
	lg_counter c;
	lg_counter_init(&c);
	c.floor = 1;
	*mismatches = 0;
	for (int round = 0; round < 100; round++) {
		int64_t floor = c.floor;
		int64_t va = s.version, ca = s.counter; /* client A loads */
		int64_t vb = s.version, cb = s.counter; /* client B loads */
		if (lg_counter_observed(&c, floor, va, ca) != LG_CHECK_OK)
			(*mismatches)++;
		if (lg_counter_observed(&c, floor, vb, cb) != LG_CHECK_OK)
			(*mismatches)++;
		for (int tries = 0; tries < 10; tries++) { /* A, retrying on 409 */
			int64_t nv;
			if (mem_save(&s, va, ca + 1, &nv)) {
				if (lg_counter_acked(&c, va, nv) != LG_CHECK_OK)
					(*mismatches)++;
				break;
			}
			va = s.version; /* the 409's current */
			ca = s.counter;
		}
		for (int tries = 0; tries < 10; tries++) { /* B, retrying on 409 */
			int64_t nv;
			if (mem_save(&s, vb, cb + 1, &nv)) {
				if (lg_counter_acked(&c, vb, nv) != LG_CHECK_OK)
					(*mismatches)++;
				break;
			}
			vb = s.version;
			cb = s.counter;
		}
	}
	uint64_t lost = 0;
	lg_counter_final(&c, s.version, s.counter, &lost, mismatches);
	assert_int_equal(c.acked, 200);
	return lost;
}

static void test_counter_race_with_version_check_loses_nothing(void **state)
{
	(void)state;
	uint64_t mism;
	assert_int_equal(race(1, &mism), 0);
	assert_int_equal(mism, 0);
}

static void test_counter_race_without_version_check_is_caught(void **state)
{
	(void)state;
	uint64_t mism;
	/* last writer wins: each round one of the two increments is lost, and
	 * the counter drifts away from its version */
	assert_int_equal(race(0, &mism), 100);
	assert_true(mism > 0);
}

/* ---- loopback ---- */

static void test_url_loopback(void **state)
{
	(void)state;
	assert_true(lg_url_is_loopback("http://127.0.0.1:8080"));
	assert_true(lg_url_is_loopback("http://127.0.0.1"));
	assert_true(lg_url_is_loopback("http://127.1.2.3:80/x"));
	assert_true(lg_url_is_loopback("http://localhost:8080/"));
	assert_true(lg_url_is_loopback("HTTP://LOCALHOST"));
	assert_true(lg_url_is_loopback("http://[::1]:8080"));
	assert_false(lg_url_is_loopback("http://10.0.0.1:8080"));
	assert_false(lg_url_is_loopback("http://128.0.0.1"));
	assert_false(lg_url_is_loopback("http://example.com"));
	assert_false(lg_url_is_loopback("http://127.0.0.1.example.com/"));
	assert_false(lg_url_is_loopback("http://localhost.example.com"));
	assert_false(lg_url_is_loopback("http://127.0.0.1@example.com/"));
	assert_false(lg_url_is_loopback("http://[::2]:80"));
	assert_false(lg_url_is_loopback("https://127.0.0.1"));
	assert_false(lg_url_is_loopback("127.0.0.1:8080"));
	assert_false(lg_url_is_loopback("http://"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_buckets_tile_the_range),
		cmocka_unit_test(test_hist_exact_below_sub_and_bounded_error_above),
		cmocka_unit_test(test_hist_percentiles_of_1_to_100),
		cmocka_unit_test(test_hist_percentiles_of_a_uniform_ms_range),
		cmocka_unit_test(test_hist_tail_is_not_hidden),
		cmocka_unit_test(test_hist_empty_single_and_clamped),
		cmocka_unit_test(test_hist_merge_equals_recording_together),
		cmocka_unit_test(test_sched_intended_times_follow_the_rate_without_drift),
		cmocka_unit_test(test_sched_open_loop_hands_out_due_slots_only),
		cmocka_unit_test(test_sched_a_stall_leaves_a_backlog_with_the_original_times),
		cmocka_unit_test(test_sched_stops_at_limit_and_end),
		cmocka_unit_test(test_sched_closed_loop_sends_at_once_within_bounds),
		cmocka_unit_test(test_latency_is_from_intended_in_open_loop_only),
		cmocka_unit_test(test_mix_parse_and_pick),
		cmocka_unit_test(test_rand_below_stays_in_range_and_spreads),
		cmocka_unit_test(test_owned_save_then_load_is_ok),
		cmocka_unit_test(test_owned_load_of_an_older_version_is_a_lost_update),
		cmocka_unit_test(test_owned_wrong_data_or_unknown_version_is_a_mismatch),
		cmocka_unit_test(test_owned_unanswered_save_is_settled_by_the_next_answer),
		cmocka_unit_test(test_owned_conflict_without_cause_is_lost_or_mismatch),
		cmocka_unit_test(test_counter_observations),
		cmocka_unit_test(test_counter_final_accounting),
		cmocka_unit_test(test_counter_race_with_version_check_loses_nothing),
		cmocka_unit_test(test_counter_race_without_version_check_is_caught),
		cmocka_unit_test(test_url_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
