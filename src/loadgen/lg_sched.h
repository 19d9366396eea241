/* lg_sched: when the load generator sends, and what. The open-loop
 * scheduler hands out request slots at a fixed rate: slot i is due at
 * start + i/rate, whether or not the server kept up, and the latency of the
 * request sent in that slot is measured from that intended time, so a
 * stalled server shows up as latency instead of as fewer requests
 * (coordinated omission). Without a rate (closed loop) a slot is due as
 * soon as it is asked for. Both stop at a request limit and an end time.
 * Also here: the operation mix of the mixed scenario and the small PRNG
 * that drives it. Pure logic, no I/O, no clock reads. */
#ifndef LG_SCHED_H
#define LG_SCHED_H

#include <stdint.h>

typedef struct lg_sched {
	int64_t start_ns;
	double rate;        /* slots per second; 0: closed loop */
	uint64_t limit;     /* at most this many slots; 0: no limit */
	int64_t end_ns;     /* no slot is handed out at or after this time */
	uint64_t taken;     /* slots handed out so far */
} lg_sched;

/* rate 0 means closed loop; limit 0 means no request limit; end_ns is an
 * absolute time on the same clock as start_ns (INT64_MAX: none). */
void lg_sched_init(lg_sched *s, int64_t start_ns, double rate, uint64_t limit, int64_t end_ns);
/* Intended send time of slot i (open loop). */
int64_t lg_sched_intended(const lg_sched *s, uint64_t i);
/* Hand out the next slot if it is due at now: returns 1 and its intended
 * send time (now in closed loop). Returns 0 when it is not due yet, or
 * when the limit or the end time has been reached. */
int lg_sched_take(lg_sched *s, int64_t now, int64_t *intended);
/* Slots due at now and not taken yet (open loop; 0 in closed loop). */
uint64_t lg_sched_backlog(const lg_sched *s, int64_t now);
/* Nanoseconds until the next slot is due: 0 when due now, -1 when no
 * slot will ever be due again (limit or end time reached). */
int64_t lg_sched_wait(const lg_sched *s, int64_t now);
/* 1 once the limit or the end time has been reached. */
int lg_sched_finished(const lg_sched *s, int64_t now);

/* The latency to report: from the intended time in open loop (a request
 * that waited for a free connection is charged for the wait), from the
 * real send time in closed loop. Never negative. */
int64_t lg_latency_ns(int open_loop, int64_t intended, int64_t sent, int64_t done);

/* The mixed scenario's operations and their weights (percent). */
typedef enum { LG_OP_LOAD = 0, LG_OP_SAVE, LG_OP_INSTANTIATE, LG_OP__MIX } lg_mix_op;
typedef struct lg_mix {
	unsigned weight[LG_OP__MIX];
} lg_mix;
/* Parse "LOAD,SAVE,INSTANTIATE" (e.g. "80,15,5"); the weights must sum
 * to 100. Returns 0, or -1 on a malformed list. */
int lg_mix_parse(const char *s, lg_mix *m);
/* The operation for a draw r in [0, 100). */
lg_mix_op lg_mix_pick(const lg_mix *m, uint32_t r);

/* splitmix64: small, fast, good enough to spread keys and operations. */
uint64_t lg_rand(uint64_t *state);
/* Uniform in [0, n) (n > 0), by rejection: no modulo bias. */
uint32_t lg_rand_below(uint64_t *state, uint32_t n);

#endif
