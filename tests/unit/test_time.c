/* test_time.c: the clock (sd_time): RFC 3339 formatting and parsing
 * (round trips, known instants, offsets, fractions, bad strings), durations
 * ("30d", "12h", "500ms", "5s", bad and overflowing ones) and the clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include "sd_time.h"

static const struct {
	int64_t ms;
	const char *text;
} known[] = {
	{0, "1970-01-01T00:00:00.000Z"},
	{1, "1970-01-01T00:00:00.001Z"},
	{999, "1970-01-01T00:00:00.999Z"},
	{1795724937123LL, "2026-11-26T20:28:57.123Z"},
	{1764188937123LL, "2025-11-26T20:28:57.123Z"},
	{951782400000LL, "2000-02-29T00:00:00.000Z"},   /* leap day, century rule */
	{1709208000000LL, "2024-02-29T12:00:00.000Z"},
	{4102444799999LL, "2099-12-31T23:59:59.999Z"},
	{-1, "1969-12-31T23:59:59.999Z"},               /* before the epoch */
	{-1000, "1969-12-31T23:59:59.000Z"},
};

static void test_format_gives_the_known_texts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		char out[SD_TIME_LEN];
		memset(out, 'x', sizeof out);
		sd_time_format(known[i].ms, out);
		assert_string_equal(out, known[i].text);
		assert_int_equal(strlen(out), SD_TIME_LEN - 1);
		int64_t back = -42;
		assert_int_equal(sd_time_parse(known[i].text, &back), 0);
		assert_int_equal(back, known[i].ms);
	}
}

static void test_format_then_parse_round_trips(void **state)
{
	(void)state;
	/* A deterministic spread over 1970..2100. */
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t ms = (int64_t)(x % 4102444800000ULL);
		char out[SD_TIME_LEN];
		sd_time_format(ms, out);
		int64_t back;
		if (sd_time_parse(out, &back) != 0 || back != ms)
			fail_msg("%lld -> %s -> %lld", (long long)ms, out, (long long)back);
	}
	/* The current time, too. */
	char now[SD_TIME_LEN];
	int64_t before = sd_time_epoch_ms();
	sd_time_now(now);
	int64_t after = sd_time_epoch_ms(), parsed;
	assert_int_equal(sd_time_parse(now, &parsed), 0);
	assert_true(parsed >= before && parsed <= after);
}

static void test_parse_takes_offsets_lower_case_and_a_space(void **state)
{
	(void)state;
	const int64_t t = 1795724937123LL; /* 2026-11-26T20:28:57.123Z */
	static const struct {
		const char *s;
		int64_t delta; /* result - t */
	} cases[] = {
		{"2026-11-26T20:28:57.123Z", 0},
		{"2026-11-26t20:28:57.123z", 0},
		{"2026-11-26 20:28:57.123Z", 0},
		{"2026-11-26T22:28:57.123+02:00", 0},
		{"2026-11-26T15:58:57.123-04:30", 0},
		{"2026-11-27T05:28:57.123+09:00", 0},   /* the next day, local */
		{"2026-11-26T20:28:57.123+00:00", 0},
		{"2026-11-26T20:28:57.123-00:00", 0},
		{"2026-11-26T20:28:57Z", -123},         /* no fraction */
		{"2026-11-26T20:28:57.1Z", -23},        /* one digit: tenths */
		{"2026-11-26T20:28:57.12Z", -3},
		{"2026-11-26T20:28:57.123456789Z", 0},  /* beyond ms: truncated */
		{"2026-11-26T20:28:57.1239Z", 0},
		{"2026-11-26T20:28:57.000Z", -123},
		{"2026-11-26T20:29:57.123+00:01", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t ms;
		if (sd_time_parse(cases[i].s, &ms) != 0)
			fail_msg("%s refused", cases[i].s);
		if (ms - t != cases[i].delta)
			fail_msg("%s: off by %lld ms, want %lld", cases[i].s, (long long)(ms - t),
				 (long long)cases[i].delta);
	}
}

static void test_parse_refuses_impossible_dates_and_offsets(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"2026-02-30T00:00:00Z",      /* no such day: timegm would roll it into March */
		"2026-04-31T00:00:00Z",
		"2026-11-26T20:28:57+99:99",  /* offset out of range */
		"2026",
		"2026-11-26",
		"2026-11-26T",
		"2026-11-26T20:28",
		"2026-11-26T20:28:57",          /* no zone */
		"2026-11-26T20:28:57.123",
		"2026-11-26X20:28:57Z",         /* separator */
		"2026-11-26T20-28-57Z",
		"2026/11/26T20:28:57Z",
		"26-11-26T20:28:57Z",           /* two-digit year */
		"02026-11-26T20:28:57Z",
		"2026-1-26T20:28:57Z",          /* one-digit month */
		"2026-13-01T00:00:00Z",         /* month 13 */
		"2026-00-01T00:00:00Z",         /* month 0 */
		"2026-01-00T00:00:00Z",         /* day 0 */
		"2026-01-32T00:00:00Z",         /* day 32 */
		"2026-01-01T24:00:00Z",         /* hour 24 */
		"2026-01-01T23:60:00Z",         /* minute 60 */
		"2026-01-01T23:59:61Z",         /* second 61 */
		"2026-11-26T20:28:57.Z",        /* empty fraction */
		"2026-11-26T20:28:57,123Z",     /* comma */
		"2026-11-26T20:28:57.123 Z",
		"2026-11-26T20:28:57Zjunk",     /* trailing garbage */
		"2026-11-26T20:28:57Z ",
		" 2026-11-26T20:28:57Z",        /* leading space */
		"2026-11-26T20:28:57+0200",     /* offset without colon */
		"2026-11-26T20:28:57+02",
		"2026-11-26T20:28:57+2:00",
		"2026-11-26T20:28:57UTC",
		"2026-11-26T20:28:57GMT",
		"yesterday",
		"2026-11-26T2O:28:57Z",         /* letter O */
		"+026-11-26T20:28:57Z",
		"-026-11-26T20:28:57Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms = 12345;
		if (sd_time_parse(bad[i], &ms) != -1)
			fail_msg("\"%s\" accepted as %lld", bad[i], (long long)ms);
		assert_int_equal(ms, 12345); /* untouched on failure */
	}
	int64_t ms;
	assert_int_equal(sd_time_parse(NULL, &ms), -1);
}

static void test_durations_parse_with_units_or_are_refused(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{"30d", 30LL * 86400 * 1000},
		{"12h", 12LL * 3600 * 1000},
		{"500ms", 500},
		{"5s", 5000},
		{"15m", 15 * 60 * 1000},
		{"90s", 90000},
		{"2w", 14LL * 86400 * 1000},
		{"0s", 0},
		{"0ms", 0},
		{"1ms", 1},
		{"90", 90000},                     /* a bare number is seconds */
		{"007s", 7000},
		{"106751991167d", 106751991167LL * 86400 * 1000}, /* near the top */
		{"9223372036854775807ms", INT64_MAX},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t ms = -7;
		if (sd_time_parse_duration(ok[i].s, &ms) != 0)
			fail_msg("\"%s\" refused", ok[i].s);
		if (ms != ok[i].ms)
			fail_msg("\"%s\" = %lld, want %lld", ok[i].s, (long long)ms, (long long)ok[i].ms);
	}
	static const char *const bad[] = {
		"",
		"s",
		"ms",
		"d",
		"-5s",
		"+5s",
		" 5s",
		"5 s",
		"5s ",
		"1.5s",
		"5x",
		"5sec",
		"5mss",
		"5y",
		"5ss",
		"5s5",
		"0x10s",
		"106751991168d",                   /* overflows int64 ms */
		"9223372036854775807s",
		"9223372036854775808ms",           /* beyond long long */
		"99999999999999999999ms",
		"99999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms = -7;
		if (sd_time_parse_duration(bad[i], &ms) != -1)
			fail_msg("\"%s\" accepted as %lld", bad[i], (long long)ms);
		assert_int_equal(ms, -7);
	}
	int64_t ms;
	assert_int_equal(sd_time_parse_duration(NULL, &ms), -1);
}

static void test_clocks_are_monotonic_and_in_epoch_ms(void **state)
{
	(void)state;
	int64_t a = sd_time_mono_ns(), b = sd_time_mono_ns();
	assert_true(a > 0);
	assert_true(b >= a);
	/* The wall clock is after 2020 and in ms (not s or ns). */
	int64_t w = sd_time_epoch_ms();
	assert_true(w > 1577836800000LL);
	assert_true(w < 32503680000000LL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_gives_the_known_texts),
		cmocka_unit_test(test_format_then_parse_round_trips),
		cmocka_unit_test(test_parse_takes_offsets_lower_case_and_a_space),
		cmocka_unit_test(test_parse_refuses_impossible_dates_and_offsets),
		cmocka_unit_test(test_durations_parse_with_units_or_are_refused),
		cmocka_unit_test(test_clocks_are_monotonic_and_in_epoch_ms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
