/* lg_check: what the load generator counts as a lost update or a
 * mismatch, kept apart from the network code so that it can be tested.
 *
 * A lost update is a write the server acknowledged that a later answer no
 * longer shows: a version below one already acknowledged (or already seen)
 * before the request was sent, or a final counter below the number of
 * acknowledged increments. A mismatch is any other answer that cannot be
 * right: the acknowledged version but other data, a version nobody wrote,
 * a counter that disagrees with its version, a save acknowledged with a
 * version other than the one it was sent with plus one.
 *
 * Two models. lg_owned: a session only one virtual user writes (scenarios
 * users and mixed), so every load must return exactly what that user last
 * saved; a save whose answer never came (timeout, 5xx) may or may not have
 * happened, and the next answer settles which. lg_counter: a hot session
 * many users increment with conditional saves (scenario contention).
 *
 * Also here: the loopback check on --url. Pure logic (jansson only). */
#ifndef LG_CHECK_H
#define LG_CHECK_H

#include <stdint.h>
#include <jansson.h>

typedef enum { LG_CHECK_OK = 0, LG_CHECK_LOST, LG_CHECK_MISMATCH } lg_verdict;

typedef struct lg_owned {
	int64_t version;      /* last acknowledged (or settled) version */
	json_t *data;         /* its data (owned reference) */
	int64_t alt_version;  /* 0, or a version a save without answer may have made */
	json_t *alt_data;     /* owned, NULL when alt_version is 0 */
} lg_owned;

/* Start tracking a session created at version with data (reference stolen). */
void lg_owned_init(lg_owned *o, int64_t version, json_t *data);
void lg_owned_free(lg_owned *o);
/* A save sent with version o->version was answered 200 with new_version;
 * data (stolen) is what it wrote. MISMATCH unless new_version is
 * o->version + 1 (the state moves to new_version either way). */
lg_verdict lg_owned_saved(lg_owned *o, int64_t new_version, json_t *data);
/* A save of data (stolen) sent with o->version got no usable answer: it
 * may have made version o->version + 1. */
void lg_owned_uncertain(lg_owned *o, json_t *data);
/* A load (or a 409's "current") returned version and data (borrowed).
 * OK when it is the acknowledged state, or the uncertain one (which then
 * becomes acknowledged); LOST when the version is below the acknowledged
 * one; MISMATCH otherwise. After LOST or MISMATCH the state follows what
 * the server said, so one fault is counted once. */
lg_verdict lg_owned_loaded(lg_owned *o, int64_t version, const json_t *data);
/* A save sent with o->version was refused with 409 and the server's
 * current document. On an owned session that is only right when an
 * uncertain save did happen; otherwise LOST (current below ours) or
 * MISMATCH. The state follows the server. */
lg_verdict lg_owned_conflict(lg_owned *o, int64_t cur_version, const json_t *cur_data);

typedef struct lg_counter {
	uint64_t acked;       /* increments answered 200 */
	uint64_t uncertain;   /* increments sent that got no usable answer */
	int64_t floor;        /* highest version acknowledged or seen in an answer */
} lg_counter;

void lg_counter_init(lg_counter *c);
/* A document of a counter session came back (load or 409 current);
 * floor is c->floor as it was when that request was sent. MISMATCH when
 * counter != version - 1, LOST when version < floor. Raises c->floor. */
lg_verdict lg_counter_observed(lg_counter *c, int64_t floor, int64_t version, int64_t counter);
/* An increment sent with sent_version was answered 200 with new_version. */
lg_verdict lg_counter_acked(lg_counter *c, int64_t sent_version, int64_t new_version);
/* An increment got no usable answer: it may or may not have been applied. */
void lg_counter_uncertain(lg_counter *c);
/* The final document: adds to *lost the acknowledged increments missing
 * from counter, to *mismatch one when counter != version - 1 and the
 * increments present that nobody sent. */
void lg_counter_final(const lg_counter *c, int64_t version, int64_t counter, uint64_t *lost,
		      uint64_t *mismatch);

/* 1 when url's host is a loopback address (127.0.0.0/8, ::1, localhost),
 * 0 otherwise or when the URL is not http://HOST[:PORT][/...]. */
int lg_url_is_loopback(const char *url);

#endif
