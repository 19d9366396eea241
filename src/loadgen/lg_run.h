/* lg_run.h: the load generator's run, private to src/loadgen: the options,
 * the virtual users, the counters, and the functions its pieces share.
 *   loadgen.c   main, the phases (setup, run, verify), setup and teardown
 *   opts.c      the command line
 *   net.c       libcurl on epoll, the idle and back-off queues, sending
 *   scenario.c  what each user asks next, and what each answer means
 *   report.c    the text and JSON reports, the samples of what went wrong
 * The pure logic (histogram, schedule, checks) is lg_hist, lg_sched and
 * lg_check, which the unit tests link without a network. */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "lg_check.h"
#include "lg_hist.h"
#include "lg_sched.h"

#define MAX_USERS 10000
#define MAX_KEYS 100000
#define RESP_MAX (4u << 20)
#define SETUP_TRIES 3
#define VERIFY_TRIES 3
#define N_SAMPLES 5
#define NSTATUS 600
#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)

typedef enum { SC_USERS = 0, SC_CONTENTION, SC_MIXED, SC_RAW } scenario;
extern const char *const sc_names[]; /* by scenario */

typedef enum { EP_INSTANTIATE = 0, EP_LOAD, EP_SAVE, EP_RAW, EP_DELETE, EP__COUNT } endpoint;
extern const char *const ep_names[]; /* by endpoint */

/* mixed: every instantiate and save asks for this lifetime (so expiry is
 * exercised; long enough that nothing expires during a run), and this
 * percentage of the saves deletes the session instead. */
#define MIXED_TTL_S 86400
#define MIXED_DELETE_PCT 10

typedef enum { PH_SETUP = 0, PH_RUN, PH_VERIFY } phase;

typedef struct opts {
	char url[1024];       /* base, without a trailing slash */
	scenario sc;
	int users;
	int64_t duration_ns;
	int duration_set;
	uint64_t requests;
	double rate;
	int keys;
	lg_mix mix;
	size_t doc_bytes;
	int64_t timeout_ms;
	int64_t backoff_ns;
	int max_retries;
	uint64_t max_errors;
	int sessions_per_user;
	char path[512];
	const char *body_file; /* raw: POST this file's bytes (NULL: GET) */
	const char *json_file;
	uint64_t seed;
	int quiet;
	int allow_remote;
} opts;

typedef struct rbuf {
	char *p;
	size_t len, cap;
	int overflow;
} rbuf;

typedef struct owned_sess {
	char key[16];
	char token[64];        /* its write token, from the instantiate answer */
	lg_owned st;
} owned_sess;

typedef struct hot {
	char key[16];
	char token[64];
	lg_counter c;
	int verified;
	int64_t final_version, final_counter;
} hot;

typedef enum { NX_NONE = 0, NX_INSTANTIATE, NX_LOAD, NX_SAVE, NX_RAW, NX_DELETE } next_kind;

typedef struct vu {
	int id;
	CURL *easy;
	rbuf resp;
	char url[1400];
	char *body;            /* request body (json_dumps), freed when answered */
	json_t *sent_data;     /* the data a save or instantiate sends */
	endpoint ep;
	next_kind next;        /* what the prepared request is */
	int in_flight;
	int64_t intended, sent;
	int idx;               /* owned session or hot key the request is about; -1: new */
	int64_t floor;         /* contention: the key's floor when the request was sent */
	int64_t sent_version;  /* save: the version in the body */
	int64_t cur_version, cur_counter; /* contention: the document being incremented */
	int have_doc;          /* contention: cur_* hold a document to increment */
	int retries;           /* 409 retries of the current increment / tries of a step */
	int want_load;         /* users: load after a save */
	int64_t sleep_ns;      /* contention: back off this long before the retry */
	int64_t wake;          /* when a backing-off user may send again */
	owned_sess *own;
	int n_own, next_slot;
	int pos;               /* setup / verify cursor */
	uint64_t seq;
	uint64_t rng;
	struct vu *next_idle;
	const char *token;     /* the write token this request carries; NULL: none */
	struct curl_slist *auth; /* r->hdrs plus "Authorization: Bearer" auth_for */
	char auth_for[64];
} vu;

typedef struct stats {
	lg_hist hist[EP__COUNT];
	uint64_t status[EP__COUNT][NSTATUS]; /* [ep][0]: transport error */
	uint64_t completed, transport_errors, http_5xx, unexpected, conflicts, retries, gave_up;
	uint64_t busy; /* 503 busy or 421 misdirected: refused, nothing changed, retried */
	uint64_t acked, uncertain;
} stats;

typedef struct run {
	opts o;
	CURLM *multi;
	int epfd;
	int64_t curl_deadline;  /* -1: none */
	struct curl_slist *hdrs;
	vu *vus;
	hot *hot;
	int n_hot;
	json_t *pad;
	char *raw_body;         /* raw: --body's bytes, NUL-terminated */
	phase ph;
	int open_loop;
	lg_sched sched;
	vu *idle_head, *idle_tail;
	vu **sleepers;          /* min-heap on wake: users backing off after a 409 */
	int n_sleepers;
	int in_flight;
	int stopping;
	const char *stop_reason;
	stats st;               /* run phase */
	lg_hist lag;            /* open loop: how late requests left */
	uint64_t lost, mismatch, unverified, setup_failed, verify_errors, aborted;
	uint64_t backlog_at_end;
	int64_t t_start, t_end;
	int64_t next_progress, last_progress;
	uint64_t last_completed;
	char samples[N_SAMPLES][240];
	int n_samples;
} run;

/* SIGINT/SIGTERM count (loadgen.c): the first ends the run phase (the
 * sessions written are still verified and the report printed), the second
 * cuts verification short. */
extern volatile sig_atomic_t interrupted;

/* opts.c: 0 run; 1 help or version printed; 2 bad option (message printed). */
int parse_opts(opts *o, int argc, char **argv);

/* net.c */
int net_init(run *r);                 /* epoll, the multi handle, shared headers */
int net_user_init(run *r, vu *u);     /* the user's easy handle */
void pump(run *r, int64_t wait_ns);   /* wait for events at most wait_ns, act on them */
void idle_push(run *r, vu *u);
vu *idle_pop(run *r);
void sleep_push(run *r, vu *u, int64_t wake);
void wake_sleepers(run *r, int64_t now);
void clear_request(vu *u);
int prep_post(run *r, vu *u, endpoint ep, const char *path, const char *key, json_t *obj);
void prep_get(run *r, vu *u, endpoint ep, const char *path, const char *key);
int vu_send(run *r, vu *u, int64_t intended);

/* scenario.c */
int vu_prepare(run *r, vu *u);        /* 0 prepared, 1 nothing left, -1 out of memory */
void vu_done(run *r, vu *u, CURLcode res);

/* report.c */
void sample(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int passed(const run *r);
void final_counters(run *r, uint64_t *matched);
void report_text(run *r, const lg_hist *all, double secs, uint64_t matched);
int report_json(run *r, const lg_hist *all, double secs);

#endif
