/* time.c: timestamps (RFC 3339, UTC, milliseconds), durations, clocks. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sd_time.h"

int64_t sd_timespec_ms(const struct timespec *t)
{
	return (int64_t)t->tv_sec * SD_MS_PER_S + t->tv_nsec / SD_NS_PER_MS;
}

void sd_timespec_add_ms(struct timespec *t, int64_t ms)
{
	t->tv_sec += (time_t)(ms / SD_MS_PER_S);
	t->tv_nsec += (long)(ms % SD_MS_PER_S * SD_NS_PER_MS);
	if (t->tv_nsec >= SD_NS_PER_S) {
		t->tv_sec++;
		t->tv_nsec -= SD_NS_PER_S;
	}
}

int64_t sd_time_epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return sd_timespec_ms(&ts);
}

int64_t sd_time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SD_NS_PER_S + ts.tv_nsec;
}

void sd_time_format(int64_t ms, char out[SD_TIME_LEN])
{
	time_t sec = (time_t)(ms / SD_MS_PER_S);
	int frac = (int)(ms % SD_MS_PER_S);
	if (frac < 0) {
		frac += SD_MS_PER_S;
		sec -= 1;
	}
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[80];
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	memcpy(out, tmp, SD_TIME_LEN - 1);
	out[SD_TIME_LEN - 1] = '\0';
}

void sd_time_now(char out[SD_TIME_LEN]) { sd_time_format(sd_time_epoch_ms(), out); }

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

int sd_time_parse(const char *s, int64_t *epoch_ms)
{
	int Y, M, D, h, m, sec, ms = 0;
	const char *p = s;
	if (!s || digits(&p, 4, &Y) || expect(&p, '-') || digits(&p, 2, &M) || expect(&p, '-') ||
	    digits(&p, 2, &D))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &m) || expect(&p, ':') ||
	    digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		int n = 0, scale = 100;
		while (isdigit((unsigned char)*p)) {
			ms += (*p - '0') * scale;
			scale /= 10;
			p++;
			n++;
		}
		if (n == 0)
			return -1;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) || expect(&p, ':') || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
		off = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	struct tm tm = {0};
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	struct tm back;
	/* timegm rolls 2026-02-30 over into March: refuse dates that moved. */
	if (!gmtime_r(&t, &back) || back.tm_mday != D || back.tm_mon != M - 1)
		return -1;
	*epoch_ms = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
	return 0;
}

int sd_time_parse_duration(const char *s, int64_t *ms)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno == ERANGE) /* saturated at LLONG_MAX: would pass as a valid huge value */
		return -1;
	int64_t unit;
	if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		unit = 1000;
	else if (strcmp(end, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		unit = 86400 * 1000LL;
	else if (strcmp(end, "w") == 0)
		unit = 7 * 86400 * 1000LL;
	else
		return -1;
	if (n < 0 || n > INT64_MAX / unit)
		return -1;
	*ms = n * unit;
	return 0;
}
