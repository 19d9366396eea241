/* lg_sched.c: the open-loop rate scheduler, the operation mix and the
 * PRNG of the load generator (see lg_sched.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lg_sched.h"

void lg_sched_init(lg_sched *s, int64_t start_ns, double rate, uint64_t limit, int64_t end_ns)
{
	memset(s, 0, sizeof *s);
	s->start_ns = start_ns;
	s->rate = rate > 0 ? rate : 0;
	s->limit = limit;
	s->end_ns = end_ns;
}

int64_t lg_sched_intended(const lg_sched *s, uint64_t i)
{
	if (s->rate <= 0)
		return s->start_ns;
	/* computed from i each time, never accumulated: no drift */
	return s->start_ns + (int64_t)((double)i * 1e9 / s->rate);
}

static int limit_reached(const lg_sched *s) { return s->limit && s->taken >= s->limit; }

int lg_sched_finished(const lg_sched *s, int64_t now)
{
	if (limit_reached(s) || now >= s->end_ns)
		return 1;
	/* open loop: the next slot would fall at or after the end */
	return s->rate > 0 && lg_sched_intended(s, s->taken) >= s->end_ns;
}

int lg_sched_take(lg_sched *s, int64_t now, int64_t *intended)
{
	if (lg_sched_finished(s, now))
		return 0;
	if (s->rate <= 0) {
		*intended = now;
		s->taken++;
		return 1;
	}
	int64_t t = lg_sched_intended(s, s->taken);
	if (t > now)
		return 0;
	*intended = t;
	s->taken++;
	return 1;
}

uint64_t lg_sched_backlog(const lg_sched *s, int64_t now)
{
	if (s->rate <= 0 || now < s->start_ns)
		return 0;
	int64_t horizon = now < s->end_ns ? now : s->end_ns - 1;
	if (horizon < s->start_ns)
		return 0;
	/* slots 0..k have intended <= horizon */
	uint64_t k = (uint64_t)((double)(horizon - s->start_ns) * s->rate / 1e9);
	while (k > 0 && lg_sched_intended(s, k) > horizon)
		k--;
	while (lg_sched_intended(s, k + 1) <= horizon)
		k++;
	uint64_t due = k + 1;
	if (s->limit && due > s->limit)
		due = s->limit;
	return due > s->taken ? due - s->taken : 0;
}

int64_t lg_sched_wait(const lg_sched *s, int64_t now)
{
	if (lg_sched_finished(s, now))
		return -1;
	if (s->rate <= 0)
		return 0;
	int64_t t = lg_sched_intended(s, s->taken);
	return t > now ? t - now : 0;
}

int64_t lg_latency_ns(int open_loop, int64_t intended, int64_t sent, int64_t done)
{
	int64_t from = open_loop ? intended : sent;
	return done > from ? done - from : 0;
}

int lg_mix_parse(const char *s, lg_mix *m)
{
	memset(m, 0, sizeof *m);
	const char *p = s;
	unsigned sum = 0;
	for (int i = 0; i < LG_OP__MIX; i++) {
		char *end;
		if (!p || *p < '0' || *p > '9')
			return -1;
		unsigned long v = strtoul(p, &end, 10);
		if (v > 100)
			return -1;
		m->weight[i] = (unsigned)v;
		sum += (unsigned)v;
		if (i < LG_OP__MIX - 1) {
			if (*end != ',')
				return -1;
			p = end + 1;
		} else if (*end) {
			return -1;
		}
	}
	return sum == 100 ? 0 : -1;
}

lg_mix_op lg_mix_pick(const lg_mix *m, uint32_t r)
{
	unsigned acc = 0;
	for (int i = 0; i < LG_OP__MIX; i++) {
		acc += m->weight[i];
		if (r < acc)
			return (lg_mix_op)i;
	}
	return LG_OP_LOAD;
}

uint64_t lg_rand(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

uint32_t lg_rand_below(uint64_t *state, uint32_t n)
{
	uint32_t limit = UINT32_MAX - UINT32_MAX % n; /* a multiple of n, >= 2^31 */
	uint32_t r = 0;
	/* each draw is accepted with probability > 1/2; 64 misses in a row
	 * does not happen, but the loop is bounded all the same */
	for (int i = 0; i < 64; i++) {
		r = (uint32_t)(lg_rand(state) >> 32);
		if (r < limit)
			break;
	}
	return r % n;
}
