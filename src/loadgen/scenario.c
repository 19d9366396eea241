/* loadgen.c: the load generator's network side and report. Virtual users
 * are state machines, each with its own libcurl easy handle, driven by one
 * libcurl multi handle on epoll (curl_multi_socket_action), in one thread.
 * A run has three phases: setup (contention: create the hot sessions),
 * run (the scenario, closed loop or at a fixed rate, until --duration or
 * --requests), verify (read back every session the run wrote and settle
 * lost updates). Every phase has a deadline, every request a timeout, and
 * every retry loop a count. What counts as a lost update or a mismatch is
 * lg_check's; the histogram is lg_hist's; send times are lg_sched's. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "lg_check.h"
#include "lg_hist.h"
#include "lg_sched.h"
#include "sd_time.h"

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
static const char *const sc_names[] = {"users", "contention", "mixed", "raw"};

typedef enum { EP_INSTANTIATE = 0, EP_LOAD, EP_SAVE, EP_RAW, EP_DELETE, EP__COUNT } endpoint;
static const char *const ep_names[] = {"instantiate", "load", "save", "raw", "delete"};

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

/* SIGINT/SIGTERM: the first ends the run phase (the sessions written are
 * still verified and the report printed), the second cuts verification short. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	if (interrupted < 2)
		interrupted++;
}

static void sample(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sample(run *r, const char *fmt, ...)
{
	if (r->n_samples >= N_SAMPLES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->samples[r->n_samples++], sizeof r->samples[0], fmt, ap);
	va_end(ap);
}

/* ---- options ---------------------------------------------------------- */

static const char usage[] =
	"Usage: loadgen [OPTION]...\n"
	"Play virtual users against sessiond (through nginx) and check every answer.\n\n"
	"  --url URL           server base URL (default http://127.0.0.1:8080); only\n"
	"                      loopback addresses unless --allow-remote\n"
	"  --scenario NAME     users: each user creates its own session, then saves\n"
	"                        (conditionally) and loads it, checking every load;\n"
	"                      contention: all users increment --keys hot counters with\n"
	"                        conditional saves, retrying on 409; the final counters\n"
	"                        must equal the acknowledged increments;\n"
	"                      mixed: --mix of load/save/instantiate on own sessions,\n"
	"                        each with a 1-day expires_in; 1 save in 10 is a delete;\n"
	"                      raw: GET --path, expecting 2xx (for ceilings)\n"
	"                      (default users)\n"
	"  --users N           virtual users = concurrent connections (default 10, max 10000)\n"
	"  --duration D        how long to run, e.g. 30s, 500ms, 2m (default 30s; with\n"
	"                      --requests alone, at most 10m)\n"
	"  --requests N        stop after N requests (retries count)\n"
	"  --rate R            open loop: send R requests/s on a fixed schedule and measure\n"
	"                      latency from each request's intended send time; without it,\n"
	"                      closed loop (each user sends when its last answer is in)\n"
	"  --keys K            contention: number of hot sessions (default 1)\n"
	"  --mix L,S,I         mixed: percent load, save, instantiate (default 80,15,5)\n"
	"  --doc-bytes N       padding in each document's data (default 512)\n"
	"  --timeout D         per-request timeout (default 10s)\n"
	"  --max-retries N     contention: 409 retries per increment before giving it up\n"
	"                      (default 100)\n"
	"  --backoff D         contention: before a retry wait a random time up to\n"
	"                      min(D, 1ms * 2^retries) (default 0: retry at once)\n"
	"  --max-errors N      stop the run early after N errors (default 1000)\n"
	"  --path P            raw: the path to GET (default /api/health)\n"
	"  --json FILE         also write the report as JSON to FILE\n"
	"  --seed N            seed for keys and operation choices (default: time)\n"
	"  --quiet             no progress line\n"
	"  --allow-remote      allow a URL that is not loopback\n"
	"  --help              this text\n\n"
	"Exit status: 0 when every check passed; 1 on any lost update, mismatch,\n"
	"transport error, 5xx or other unexpected status; 2 on bad options; 3 when\n"
	"the run could not start.\n";

enum { O_URL = 256, O_SCENARIO, O_USERS, O_DURATION, O_REQUESTS, O_RATE, O_KEYS, O_MIX, O_DOC_BYTES,
       O_TIMEOUT, O_BACKOFF, O_MAX_RETRIES, O_MAX_ERRORS, O_PATH, O_JSON, O_SEED, O_QUIET, O_ALLOW_REMOTE, O_HELP };

static const struct option longopts[] = {
	{"url", required_argument, 0, O_URL},
	{"scenario", required_argument, 0, O_SCENARIO},
	{"users", required_argument, 0, O_USERS},
	{"duration", required_argument, 0, O_DURATION},
	{"requests", required_argument, 0, O_REQUESTS},
	{"rate", required_argument, 0, O_RATE},
	{"keys", required_argument, 0, O_KEYS},
	{"mix", required_argument, 0, O_MIX},
	{"doc-bytes", required_argument, 0, O_DOC_BYTES},
	{"timeout", required_argument, 0, O_TIMEOUT},
	{"backoff", required_argument, 0, O_BACKOFF},
	{"max-retries", required_argument, 0, O_MAX_RETRIES},
	{"max-errors", required_argument, 0, O_MAX_ERRORS},
	{"path", required_argument, 0, O_PATH},
	{"json", required_argument, 0, O_JSON},
	{"seed", required_argument, 0, O_SEED},
	{"quiet", no_argument, 0, O_QUIET},
	{"allow-remote", no_argument, 0, O_ALLOW_REMOTE},
	{"help", no_argument, 0, O_HELP},
	{0, 0, 0, 0},
};

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* 0: run; 1: help printed; 2: bad option (message printed). */
static int parse_opts(opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	snprintf(o->url, sizeof o->url, "http://127.0.0.1:8080");
	o->sc = SC_USERS;
	o->users = 10;
	o->duration_ns = 30 * SEC;
	o->keys = 1;
	lg_mix_parse("80,15,5", &o->mix);
	o->doc_bytes = 512;
	o->timeout_ms = 10000;
	o->max_retries = 100;
	o->max_errors = 1000;
	o->sessions_per_user = 8;
	snprintf(o->path, sizeof o->path, "/api/health");
	o->seed = (uint64_t)sd_time_epoch_ms() ^ ((uint64_t)getpid() << 32);
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		uint64_t n;
		int64_t ms;
		const char *v = optarg;
		switch (c) {
		case O_URL: {
			size_t l = strlen(v);
			while (l > 0 && v[l - 1] == '/')
				l--;
			if (l == 0 || l >= sizeof o->url)
				goto bad;
			memcpy(o->url, v, l);
			o->url[l] = '\0';
			break;
		}
		case O_SCENARIO: {
			int found = 0;
			for (int i = 0; i < 4; i++)
				if (strcmp(v, sc_names[i]) == 0) {
					o->sc = (scenario)i;
					found = 1;
				}
			if (!found)
				goto bad;
			break;
		}
		case O_USERS:
			if (parse_u64(v, 1, MAX_USERS, &n))
				goto bad;
			o->users = (int)n;
			break;
		case O_DURATION:
			if (sd_time_parse_duration(v, &ms) || ms < 1 || ms > 24 * 3600 * 1000LL)
				goto bad;
			o->duration_ns = ms * MS;
			o->duration_set = 1;
			break;
		case O_REQUESTS:
			if (parse_u64(v, 1, UINT64_C(1) << 40, &o->requests))
				goto bad;
			break;
		case O_RATE: {
			char *end;
			o->rate = strtod(v, &end);
			if (*end || !(o->rate > 0) || o->rate > 1e7)
				goto bad;
			break;
		}
		case O_KEYS:
			if (parse_u64(v, 1, MAX_KEYS, &n))
				goto bad;
			o->keys = (int)n;
			break;
		case O_MIX:
			if (lg_mix_parse(v, &o->mix))
				goto bad;
			break;
		case O_DOC_BYTES:
			if (parse_u64(v, 0, 512 * 1024, &n))
				goto bad;
			o->doc_bytes = (size_t)n;
			break;
		case O_TIMEOUT:
			if (sd_time_parse_duration(v, &ms) || ms < 1 || ms > 600000)
				goto bad;
			o->timeout_ms = ms;
			break;
		case O_BACKOFF:
			if (sd_time_parse_duration(v, &ms) || ms > 60000)
				goto bad;
			o->backoff_ns = ms * MS;
			break;
		case O_MAX_RETRIES:
			if (parse_u64(v, 0, 1000000, &n))
				goto bad;
			o->max_retries = (int)n;
			break;
		case O_MAX_ERRORS:
			if (parse_u64(v, 1, UINT64_C(1) << 40, &o->max_errors))
				goto bad;
			break;
		case O_PATH:
			if (v[0] != '/' || strlen(v) >= sizeof o->path)
				goto bad;
			snprintf(o->path, sizeof o->path, "%s", v);
			break;
		case O_JSON:
			o->json_file = v;
			break;
		case O_SEED:
			if (parse_u64(v, 0, UINT64_MAX, &o->seed))
				goto bad;
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case O_ALLOW_REMOTE:
			o->allow_remote = 1;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		default:
			fprintf(stderr, "loadgen: unknown option or missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			return 2;
		}
		continue;
	bad:
		for (const struct option *p = longopts; p->name; p++)
			if (p->val == c)
				fprintf(stderr, "loadgen: invalid value for --%s: '%s'\n", p->name, v);
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (o->requests && !o->duration_set)
		o->duration_ns = 600 * SEC;
	if (strncmp(o->url, "http://", 7) != 0) {
		fprintf(stderr, "loadgen: --url must start with http://\n");
		return 2;
	}
	if (!o->allow_remote && !lg_url_is_loopback(o->url)) {
		fprintf(stderr, "loadgen: refusing %s: not a loopback address (pass --allow-remote "
				"to load a remote server)\n", o->url);
		return 2;
	}
	return 0;
}

/* ---- libcurl on epoll ------------------------------------------------- */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	(void)socketp;
	run *r = userp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	struct epoll_event ev = {.events = 0, .data.fd = s};
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(r->epfd, EPOLL_CTL_ADD, s, &ev) == 0)
		return 0;
	return -1;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	(void)m;
	run *r = userp;
	r->curl_deadline = ms < 0 ? -1 : sd_time_mono_ns() + (int64_t)ms * MS;
	return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
	rbuf *b = userp;
	size_t len = size * n;
	if (b->len + len + 1 > RESP_MAX) {
		b->overflow = 1;
		return 0; /* makes curl fail the transfer */
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

static void vu_done(run *r, vu *u, CURLcode res);

static void drain_completions(run *r)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(r->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		vu *u = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&u);
		curl_multi_remove_handle(r->multi, e);
		vu_done(r, u, res);
	}
}

/* Wait for socket events at most wait_ns (or until curl's timer), and
 * act on them. */
static void pump(run *r, int64_t wait_ns)
{
	int64_t now = sd_time_mono_ns();
	if (r->curl_deadline >= 0) {
		int64_t t = r->curl_deadline - now;
		if (t < wait_ns)
			wait_ns = t < 0 ? 0 : t;
	}
	if (wait_ns < 0)
		wait_ns = 0;
	struct timespec ts = {.tv_sec = wait_ns / SEC, .tv_nsec = wait_ns % SEC};
	struct epoll_event ev[512];
	static int no_pwait2; /* kernels (and valgrind) without epoll_pwait2: ms resolution */
	int n = -1;
	if (!no_pwait2) {
		n = epoll_pwait2(r->epfd, ev, 512, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			no_pwait2 = 1;
	}
	if (no_pwait2)
		n = epoll_wait(r->epfd, ev, 512, (int)((wait_ns + MS - 1) / MS));
	int running;
	for (int i = 0; i < n; i++) {
		int flags = 0;
		if (ev[i].events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		curl_multi_socket_action(r->multi, ev[i].data.fd, flags, &running);
	}
	if (r->curl_deadline >= 0 && sd_time_mono_ns() >= r->curl_deadline) {
		r->curl_deadline = -1;
		curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	drain_completions(r);
}

/* ---- requests --------------------------------------------------------- */

static void idle_push(run *r, vu *u)
{
	u->next_idle = NULL;
	if (r->idle_tail)
		r->idle_tail->next_idle = u;
	else
		r->idle_head = u;
	r->idle_tail = u;
}

static int wakes_before(const vu *a, const vu *b) { return a->wake < b->wake; }

static void sleep_push(run *r, vu *u, int64_t wake)
{
	u->wake = wake;
	int i = r->n_sleepers++;
	r->sleepers[i] = u;
	while (i > 0 && wakes_before(r->sleepers[i], r->sleepers[(i - 1) / 2])) {
		vu *t = r->sleepers[i];
		r->sleepers[i] = r->sleepers[(i - 1) / 2];
		r->sleepers[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* Move every user whose back-off is over to the idle queue. */
static void wake_sleepers(run *r, int64_t now)
{
	while (r->n_sleepers > 0 && r->sleepers[0]->wake <= now) {
		idle_push(r, r->sleepers[0]);
		r->sleepers[0] = r->sleepers[--r->n_sleepers];
		int i = 0;
		for (;;) {
			int l = 2 * i + 1, m = i;
			if (l < r->n_sleepers && wakes_before(r->sleepers[l], r->sleepers[m]))
				m = l;
			if (l + 1 < r->n_sleepers && wakes_before(r->sleepers[l + 1], r->sleepers[m]))
				m = l + 1;
			if (m == i)
				break;
			vu *t = r->sleepers[i];
			r->sleepers[i] = r->sleepers[m];
			r->sleepers[m] = t;
			i = m;
		}
	}
}

static vu *idle_pop(run *r)
{
	vu *u = r->idle_head;
	if (u) {
		r->idle_head = u->next_idle;
		if (!r->idle_head)
			r->idle_tail = NULL;
		u->next_idle = NULL;
	}
	return u;
}

static void clear_request(vu *u)
{
	free(u->body);
	u->body = NULL;
	json_decref(u->sent_data);
	u->sent_data = NULL;
	u->next = NX_NONE;
	u->token = NULL;
}

/* Prepare a POST of obj (stolen) to path. */
static int prep_post(run *r, vu *u, endpoint ep, const char *path, json_t *obj)
{
	u->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!u->body)
		return -1;
	u->ep = ep;
	snprintf(u->url, sizeof u->url, "%s%s", r->o.url, path);
	return 0;
}

static void prep_get(run *r, vu *u, endpoint ep, const char *path, const char *key)
{
	u->ep = ep;
	if (key)
		snprintf(u->url, sizeof u->url, "%s%s?key=%s", r->o.url, path, key);
	else
		snprintf(u->url, sizeof u->url, "%s%s", r->o.url, path);
}

static int vu_send(run *r, vu *u, int64_t intended)
{
	CURL *e = u->easy;
	u->resp.len = 0;
	u->resp.overflow = 0;
	curl_easy_setopt(e, CURLOPT_URL, u->url);
	if (u->token && strcmp(u->token, u->auth_for) != 0) {
		/* a save carries its session's token (built once per session) */
		char line[128];
		snprintf(line, sizeof line, "Authorization: Bearer %s", u->token);
		curl_slist_free_all(u->auth);
		struct curl_slist *a = curl_slist_append(NULL, "Content-Type: application/json");
		struct curl_slist *b = a ? curl_slist_append(a, "Expect:") : NULL;
		struct curl_slist *c = b ? curl_slist_append(b, line) : NULL;
		if (!c) {
			curl_slist_free_all(a);
			u->auth = NULL;
			u->auth_for[0] = '\0';
			return -1;
		}
		u->auth = c;
		snprintf(u->auth_for, sizeof u->auth_for, "%s", u->token);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->token ? u->auth : r->hdrs);
	if (u->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(u->body));
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL); /* no pointer to a freed body */
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	u->sent = sd_time_mono_ns();
	u->intended = intended;
	if (curl_multi_add_handle(r->multi, e) != CURLM_OK)
		return -1;
	u->in_flight = 1;
	r->in_flight++;
	if (r->ph == PH_RUN && r->open_loop)
		lg_hist_record(&r->lag, (uint64_t)(u->sent > intended ? u->sent - intended : 0));
	return 0;
}

/* The data a user writes: who, which write, and padding to size. */
static json_t *user_data(run *r, vu *u, const char *field, json_int_t value)
{
	u->seq++;
	return json_pack("{s:I, s:i, s:I, s:O}", field, value, "u", u->id, "n", (json_int_t)u->seq, "pad",
			 r->pad);
}

/* ---- scenario: preparing the next request ------------------------------ */

static int prep_instantiate(run *r, vu *u)
{
	u->sent_data = user_data(r, u, "w", 0);
	u->idx = -1;
	u->next = NX_INSTANTIATE;
	json_t *b = json_pack("{s:O, s:{s:s}}", "data", u->sent_data, "meta", "lg", sc_names[r->o.sc]);
	if (b && r->o.sc == SC_MIXED)
		json_object_set_new(b, "expires_in", json_integer(MIXED_TTL_S));
	return prep_post(r, u, EP_INSTANTIATE, "/api/instantiate", b);
}

static int prep_owned_save(run *r, vu *u, int idx)
{
	owned_sess *s = &u->own[idx];
	u->idx = idx;
	u->sent_version = s->st.version;
	u->sent_data = user_data(r, u, "w", (json_int_t)s->st.version + 1);
	u->next = NX_SAVE;
	json_t *b = json_pack("{s:s, s:I, s:O}", "key", s->key, "version", (json_int_t)s->st.version, "data",
			      u->sent_data);
	if (b && r->o.sc == SC_MIXED)
		json_object_set_new(b, "expires_in", json_integer(MIXED_TTL_S));
	u->token = s->token;
	return prep_post(r, u, EP_SAVE, "/api/save", b);
}

/* mixed: delete an own session (unconditionally: a save of it may be
 * unsettled). */
static int prep_owned_delete(run *r, vu *u, int idx)
{
	u->idx = idx;
	u->next = NX_DELETE;
	u->token = u->own[idx].token;
	return prep_post(r, u, EP_DELETE, "/api/delete", json_pack("{s:s}", "key", u->own[idx].key));
}

static void prep_owned_load(run *r, vu *u, int idx)
{
	u->idx = idx;
	u->next = NX_LOAD;
	prep_get(r, u, EP_LOAD, "/api/load", u->own[idx].key);
}

static int prep_counter_save(run *r, vu *u)
{
	hot *h = &r->hot[u->idx];
	u->sent_version = u->cur_version;
	u->floor = h->c.floor;
	u->next = NX_SAVE;
	u->token = h->token;
	u->sent_data = user_data(r, u, "counter", (json_int_t)u->cur_counter + 1);
	return prep_post(r, u, EP_SAVE, "/api/save",
			 json_pack("{s:s, s:I, s:O}", "key", h->key, "version", (json_int_t)u->cur_version,
				   "data", u->sent_data));
}

static void prep_counter_load(run *r, vu *u, int idx)
{
	u->idx = idx;
	u->floor = r->hot[idx].c.floor;
	u->next = NX_LOAD;
	prep_get(r, u, EP_LOAD, "/api/load", r->hot[idx].key);
}

/* Setup (contention): user i creates hot keys i, i + users, ... */
static int prep_setup(run *r, vu *u)
{
	if (u->pos >= r->n_hot)
		return 1;
	u->idx = u->pos;
	u->next = NX_INSTANTIATE;
	u->sent_data = json_pack("{s:i, s:i, s:i, s:O}", "counter", 0, "u", -1, "n", 0, "pad", r->pad);
	return prep_post(r, u, EP_INSTANTIATE, "/api/instantiate",
			 json_pack("{s:O, s:{s:s}}", "data", u->sent_data, "meta", "lg", "contention"));
}

/* Verify: users and mixed read back their own sessions; in contention user
 * i reads hot keys i, i + users, ... */
static int prep_verify(run *r, vu *u)
{
	if (r->o.sc == SC_CONTENTION) {
		if (u->pos >= r->n_hot)
			return 1;
		prep_counter_load(r, u, u->pos);
		return 0;
	}
	if (r->o.sc == SC_RAW || u->pos >= u->n_own)
		return 1;
	prep_owned_load(r, u, u->pos);
	return 0;
}

/* Run phase: the scenario's next step for this user. 0 when prepared. */
static int prep_run(run *r, vu *u)
{
	switch (r->o.sc) {
	case SC_RAW:
		u->next = NX_RAW;
		prep_get(r, u, EP_RAW, r->o.path, NULL);
		return 0;
	case SC_USERS:
		if (u->n_own == 0)
			return prep_instantiate(r, u);
		if (u->want_load) {
			prep_owned_load(r, u, 0);
			return 0;
		}
		return prep_owned_save(r, u, 0);
	case SC_MIXED: {
		if (u->n_own == 0)
			return prep_instantiate(r, u);
		lg_mix_op op = lg_mix_pick(&r->o.mix, lg_rand_below(&u->rng, 100));
		int idx = (int)lg_rand_below(&u->rng, (uint32_t)u->n_own);
		if (op == LG_OP_INSTANTIATE)
			return prep_instantiate(r, u);
		if (op == LG_OP_SAVE && u->n_own > 1 && lg_rand_below(&u->rng, 100) < MIXED_DELETE_PCT)
			return prep_owned_delete(r, u, idx);
		if (op == LG_OP_SAVE)
			return prep_owned_save(r, u, idx);
		prep_owned_load(r, u, idx);
		return 0;
	}
	case SC_CONTENTION:
		if (u->have_doc)
			return prep_counter_save(r, u);
		prep_counter_load(r, u, (int)lg_rand_below(&u->rng, (uint32_t)r->n_hot));
		return 0;
	}
	return -1;
}

/* Prepare the next request for the current phase: 0 prepared, 1 nothing
 * left to do, -1 out of memory. */
static int vu_prepare(run *r, vu *u)
{
	clear_request(u);
	switch (r->ph) {
	case PH_SETUP:
		return prep_setup(r, u);
	case PH_VERIFY:
		return prep_verify(r, u);
	case PH_RUN:
		return prep_run(r, u);
	}
	return -1;
}

/* ---- scenario: answers -------------------------------------------------- */

static void verdict(run *r, vu *u, lg_verdict v, const char *what)
{
	if (v == LG_CHECK_OK)
		return;
	if (v == LG_CHECK_LOST)
		r->lost++;
	else
		r->mismatch++;
	sample(r, "%s: %s on %s (user %d): %.160s", v == LG_CHECK_LOST ? "lost update" : "mismatch", what,
	       u->url + strlen(r->o.url), u->id, u->resp.p ? u->resp.p : "");
}

static json_t *parse_body(vu *u)
{
	return u->resp.len ? json_loadb(u->resp.p, u->resp.len, 0, NULL) : NULL;
}

static int get_int(const json_t *o, const char *f, int64_t *out)
{
	json_t *v = json_object_get(o, f);
	if (!json_is_integer(v))
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* The ETag of a load must be the version, quoted. */
static int etag_ok(vu *u, int64_t version)
{
	struct curl_header *h;
	if (curl_easy_header(u->easy, "ETag", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	char want[32];
	snprintf(want, sizeof want, "\"%lld\"", (long long)version);
	return strcmp(h->value, want) == 0;
}

/* A document of key as a load returns it: key, version, data. */
static int doc_fields(const json_t *doc, const char *key, int64_t *version, json_t **data)
{
	const char *k = json_string_value(json_object_get(doc, "key"));
	*data = json_object_get(doc, "data");
	if (!k || strcmp(k, key) != 0 || get_int(doc, "version", version) || !*data)
		return -1;
	return 0;
}

static void add_owned(run *r, vu *u, const char *key, const char *token, json_t *data)
{
	int slot;
	if (u->n_own < r->o.sessions_per_user) {
		slot = u->n_own++;
	} else {
		slot = u->next_slot;
		u->next_slot = (u->next_slot + 1) % r->o.sessions_per_user;
		lg_owned_free(&u->own[slot].st);
	}
	snprintf(u->own[slot].key, sizeof u->own[slot].key, "%s", key);
	snprintf(u->own[slot].token, sizeof u->own[slot].token, "%s", token);
	lg_owned_init(&u->own[slot].st, 1, data);
}

/* An answer that is not the one expected. */
static void unexpected(run *r, vu *u, long status)
{
	r->st.unexpected++;
	sample(r, "unexpected %ld from %s %s: %.160s", status, u->body ? "POST" : "GET",
	       u->url + strlen(r->o.url), u->resp.p ? u->resp.p : "");
}

/* Stop tracking own session idx (gone); its slot is reused. */
static void forget_owned(vu *u, int idx)
{
	owned_sess *s = &u->own[idx];
	lg_owned_free(&s->st);
	s->st = u->own[u->n_own - 1].st;
	memcpy(s->key, u->own[u->n_own - 1].key, sizeof s->key);
	memcpy(s->token, u->own[u->n_own - 1].token, sizeof s->token);
	u->n_own--;
	if (u->next_slot >= u->n_own)
		u->next_slot = 0;
}

static void on_owned(run *r, vu *u, long status, json_t *j)
{
	int unsure = status == 0 || status >= 500;
	if (u->next == NX_INSTANTIATE) {
		const char *key = json_string_value(json_object_get(j, "key"));
		const char *tok = json_string_value(json_object_get(j, "token"));
		int64_t v = 0;
		if (status == 201 && key && tok && !get_int(j, "version", &v) && v == 1) {
			if (r->o.sc == SC_MIXED && !json_is_string(json_object_get(j, "expires")))
				verdict(r, u, LG_CHECK_MISMATCH, "instantiate with expires_in answered no expires");
			add_owned(r, u, key, tok, u->sent_data);
			u->sent_data = NULL;
		} else if (!unsure) {
			unexpected(r, u, status);
		}
		return;
	}
	owned_sess *s = &u->own[u->idx];
	if (u->next == NX_DELETE) {
		/* 404: a session created and acknowledged vanished before its delete */
		if (status == 404)
			verdict(r, u, LG_CHECK_LOST, "session gone before its delete");
		else if (status != 200 && !unsure)
			unexpected(r, u, status);
		forget_owned(u, u->idx); /* after an unsure answer it may or may not exist: not checked */
		return;
	}
	if (u->next == NX_SAVE) {
		u->want_load = 1;
		int64_t v;
		json_t *cur = json_object_get(j, "current"), *cd;
		if (status == 200 && !get_int(j, "version", &v)) {
			verdict(r, u, lg_owned_saved(&s->st, v, u->sent_data), "save answered");
			u->sent_data = NULL;
		} else if (status == 409 && cur && !doc_fields(cur, s->key, &v, &cd)) {
			r->st.conflicts += r->ph == PH_RUN;
			verdict(r, u, lg_owned_conflict(&s->st, v, cd), "409 on a session only this user writes");
		} else if (unsure) {
			r->st.uncertain += r->ph == PH_RUN;
			lg_owned_uncertain(&s->st, u->sent_data);
			u->sent_data = NULL;
		} else {
			unexpected(r, u, status);
		}
		return;
	}
	/* load */
	int64_t v;
	json_t *data;
	if (status == 200 && !doc_fields(j, s->key, &v, &data)) {
		u->want_load = 0;
		if (!etag_ok(u, v))
			verdict(r, u, LG_CHECK_MISMATCH, "ETag is not the version");
		verdict(r, u, lg_owned_loaded(&s->st, v, data), "load");
	} else if (status == 404) {
		verdict(r, u, LG_CHECK_LOST, "session created and acknowledged is gone");
		u->want_load = 0;
		if (r->ph != PH_RUN)
			return;
		forget_owned(u, u->idx); /* the slot is reused by the next instantiate */
	} else if (!unsure) {
		unexpected(r, u, status);
	}
}

static void on_counter(run *r, vu *u, long status, json_t *j)
{
	hot *h = &r->hot[u->idx];
	int unsure = status == 0 || status >= 500;
	int64_t v, c;
	json_t *data;
	if (u->next == NX_LOAD) {
		u->have_doc = 0;
		if (status == 200 && !doc_fields(j, h->key, &v, &data) && !get_int(data, "counter", &c)) {
			if (!etag_ok(u, v))
				verdict(r, u, LG_CHECK_MISMATCH, "ETag is not the version");
			verdict(r, u, lg_counter_observed(&h->c, u->floor, v, c), "load of a counter");
			if (r->ph == PH_VERIFY) {
				h->verified = 1;
				h->final_version = v;
				h->final_counter = c;
			} else {
				u->have_doc = 1;
				u->cur_version = v;
				u->cur_counter = c;
				u->retries = 0;
			}
		} else if (!unsure) {
			unexpected(r, u, status);
		}
		return;
	}
	/* save of an increment */
	json_t *cur = json_object_get(j, "current");
	u->have_doc = 0;
	if (status == 200 && !get_int(j, "version", &v)) {
		r->st.acked++;
		verdict(r, u, lg_counter_acked(&h->c, u->sent_version, v), "increment answered");
	} else if (status == 409 && cur && !doc_fields(cur, h->key, &v, &data) && !get_int(data, "counter", &c)) {
		r->st.conflicts++;
		if (v == u->sent_version)
			verdict(r, u, LG_CHECK_MISMATCH, "409 naming the version that was sent");
		verdict(r, u, lg_counter_observed(&h->c, u->floor, v, c), "409 current of a counter");
		if (u->retries < r->o.max_retries) {
			/* retry from the document the 409 carries: no extra load */
			u->retries++;
			r->st.retries++;
			u->have_doc = 1;
			if (r->o.backoff_ns > 0 && r->ph == PH_RUN) {
				int64_t cap = MS << (u->retries < 20 ? u->retries : 20);
				if (cap > r->o.backoff_ns)
					cap = r->o.backoff_ns;
				u->sleep_ns = (int64_t)lg_rand_below(&u->rng, (uint32_t)(cap / 1000) + 1) * 1000;
			}
			u->cur_version = v;
			u->cur_counter = c;
		} else {
			r->st.gave_up++;
		}
	} else if (unsure) {
		r->st.uncertain++;
		lg_counter_uncertain(&h->c);
	} else {
		unexpected(r, u, status);
	}
}

static void on_setup(run *r, vu *u, long status, json_t *j)
{
	hot *h = &r->hot[u->idx];
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (status == 201 && key && tok) {
		snprintf(h->key, sizeof h->key, "%s", key);
		snprintf(h->token, sizeof h->token, "%s", tok);
		lg_counter_init(&h->c);
		h->c.floor = 1;
		u->pos += r->o.users;
		u->retries = 0;
	} else if (++u->retries >= SETUP_TRIES) {
		r->setup_failed++;
		sample(r, "setup: instantiate answered %ld: %.160s", status, u->resp.p ? u->resp.p : "");
		u->pos = r->n_hot; /* this user stops; the run will not start */
	}
}

static void vu_done(run *r, vu *u, CURLcode res)
{
	int64_t now = sd_time_mono_ns();
	u->in_flight = 0;
	r->in_flight--;
	long status = 0;
	if (res == CURLE_OK)
		curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 0 || status >= NSTATUS)
		status = 0;
	int transport = res != CURLE_OK || status == 0;
	if (r->ph == PH_RUN) {
		stats *st = &r->st;
		st->completed++;
		st->status[u->ep][status]++;
		if (!transport)
			lg_hist_record(&st->hist[u->ep],
				       (uint64_t)lg_latency_ns(r->open_loop, u->intended, u->sent, now));
	}
	if (transport) {
		r->st.transport_errors += r->ph == PH_RUN;
		r->verify_errors += r->ph != PH_RUN;
		sample(r, "transport error on %s %s: %s", u->body ? "POST" : "GET", u->url + strlen(r->o.url),
		       res == CURLE_OK ? "no status" : curl_easy_strerror(res));
	} else if (status >= 500) {
		r->st.http_5xx += r->ph == PH_RUN;
		r->verify_errors += r->ph != PH_RUN;
		sample(r, "%ld from %s %s: %.160s", status, u->body ? "POST" : "GET", u->url + strlen(r->o.url),
		       u->resp.p ? u->resp.p : "");
	}
	json_t *j = transport ? NULL : parse_body(u);
	if (r->ph == PH_SETUP) {
		on_setup(r, u, status, j);
	} else if (r->o.sc == SC_RAW) {
		if (!transport && (status < 200 || status > 299) && status < 500)
			unexpected(r, u, status);
	} else if (r->o.sc == SC_CONTENTION) {
		on_counter(r, u, status, j);
	} else {
		on_owned(r, u, status, j);
	}
	json_decref(j);
	if (r->ph == PH_VERIFY) {
		int failed = transport || status >= 500;
		if (!failed || ++u->retries >= VERIFY_TRIES) {
			if (failed)
				r->unverified++;
			u->pos += r->o.sc == SC_CONTENTION ? r->o.users : 1;
			u->retries = 0;
		}
	}
	int rc = vu_prepare(r, u);
	if (rc < 0) {
		sample(r, "out of memory preparing a request");
		r->stopping = 1;
		r->stop_reason = "out of memory";
		return;
	}
	if (rc > 0)
		return; /* this user is done with the phase */
	if (r->ph == PH_RUN && u->sleep_ns > 0) {
		sleep_push(r, u, now + u->sleep_ns);
		u->sleep_ns = 0;
	} else if (r->ph == PH_RUN) {
		idle_push(r, u); /* the run loop decides when it leaves */
	}
	else if (vu_send(r, u, sd_time_mono_ns()) != 0)
		r->unverified++;
}

/* ---- phases ------------------------------------------------------------- */

/* Abort whatever is still in flight, answering each as a transport error. */
static void abort_in_flight(run *r)
{
	for (int i = 0; i < r->o.users && r->in_flight > 0; i++) {
		vu *u = &r->vus[i];
		if (!u->in_flight)
			continue;
		curl_multi_remove_handle(r->multi, u->easy);
		r->aborted++;
		if (r->ph == PH_RUN) {
			vu_done(r, u, CURLE_OPERATION_TIMEDOUT); /* settles the user's state; no resend */
		} else {
			u->in_flight = 0;
			r->in_flight--;
		}
	}
}

/* Setup and verify: every user works through its list, closed loop, until
 * all are done or the deadline passes. */
static void run_side_phase(run *r, phase ph, int64_t budget_ns)
{
	r->ph = ph;
	for (int i = 0; i < r->o.users; i++) {
		vu *u = &r->vus[i];
		u->pos = i;
		u->retries = 0;
		if (ph == PH_VERIFY && r->o.sc != SC_CONTENTION)
			u->pos = 0;
		if (vu_prepare(r, u) == 0 && vu_send(r, u, sd_time_mono_ns()) != 0)
			r->unverified++;
	}
	int64_t deadline = sd_time_mono_ns() + budget_ns;
	while (r->in_flight > 0) {
		int64_t now = sd_time_mono_ns();
		if (now >= deadline || interrupted >= (ph == PH_VERIFY ? 2 : 1)) {
			abort_in_flight(r);
			break;
		}
		pump(r, deadline - now < 100 * MS ? deadline - now : 100 * MS);
	}
	for (int i = 0; i < r->o.users; i++)
		clear_request(&r->vus[i]);
}

static uint64_t errors_so_far(const run *r)
{
	return r->st.transport_errors + r->st.http_5xx + r->st.unexpected + r->lost + r->mismatch;
}

static void progress(run *r, int64_t now)
{
	if (now < r->next_progress)
		return;
	double el = (double)(now - r->t_start) / 1e9;
	double since = (double)(now - r->last_progress) / 1e9;
	uint64_t done = r->st.completed;
	if (!r->o.quiet) {
		fprintf(stderr, "%7.1fs  requests %10" PRIu64 "  req/s %8.0f  errors %" PRIu64 "  conflicts %" PRIu64,
			el, done, since > 0 ? (double)(done - r->last_completed) / since : 0.0, errors_so_far(r),
			r->st.conflicts);
		if (r->open_loop)
			fprintf(stderr, "  backlog %" PRIu64, lg_sched_backlog(&r->sched, now));
		fputc('\n', stderr);
	}
	r->last_completed = done;
	r->last_progress = now;
	r->next_progress += SEC;
}

static void run_main_phase(run *r)
{
	r->ph = PH_RUN;
	r->t_start = sd_time_mono_ns();
	r->next_progress = r->t_start + SEC;
	r->last_progress = r->t_start;
	lg_sched_init(&r->sched, r->t_start, r->o.rate, r->o.requests, r->t_start + r->o.duration_ns);
	for (int i = 0; i < r->o.users; i++) {
		if (vu_prepare(r, &r->vus[i]) == 0)
			idle_push(r, &r->vus[i]);
	}
	int64_t drain_deadline = 0;
	for (;;) {
		int64_t now = sd_time_mono_ns();
		if (!r->stopping) {
			const char *why = NULL;
			if (interrupted)
				why = "interrupted";
			else if (errors_so_far(r) >= r->o.max_errors)
				why = "too many errors (--max-errors)";
			else if (lg_sched_finished(&r->sched, now))
				why = r->o.requests && r->sched.taken >= r->o.requests ? "request count reached"
											: "duration reached";
			if (why) {
				r->stopping = 1;
				r->stop_reason = why;
				r->backlog_at_end = lg_sched_backlog(&r->sched, now);
			}
		}
		if (r->stopping && !drain_deadline)
			drain_deadline = now + r->o.timeout_ms * MS + 2 * SEC;
		if (!r->stopping) {
			int64_t intended;
			wake_sleepers(r, now);
			while (r->idle_head && lg_sched_take(&r->sched, now, &intended)) {
				vu *u = idle_pop(r);
				if (vu_send(r, u, intended) != 0) {
					sample(r, "cannot add a request to libcurl");
					r->st.transport_errors++;
					idle_push(r, u);
					break;
				}
			}
		}
		if (r->stopping && r->in_flight == 0)
			break;
		if (r->stopping && now >= drain_deadline) {
			abort_in_flight(r);
			break;
		}
		int64_t wait = r->next_progress - now;
		if (!r->stopping && r->idle_head) {
			int64_t w = lg_sched_wait(&r->sched, now);
			if (w >= 0 && w < wait)
				wait = w;
		}
		if (!r->stopping && r->n_sleepers > 0 && r->sleepers[0]->wake - now < wait)
			wait = r->sleepers[0]->wake - now;
		int64_t to_end = r->sched.end_ns - now;
		if (!r->stopping && to_end < wait)
			wait = to_end;
		if (r->stopping && drain_deadline - now < wait)
			wait = drain_deadline - now;
		pump(r, wait);
		progress(r, sd_time_mono_ns());
	}
	r->t_end = sd_time_mono_ns();
	r->idle_head = r->idle_tail = NULL;
	r->n_sleepers = 0;
	for (int i = 0; i < r->o.users; i++)
		clear_request(&r->vus[i]);
}

/* ---- report ------------------------------------------------------------- */

static int passed(const run *r)
{
	return r->lost == 0 && r->mismatch == 0 && r->st.transport_errors == 0 && r->st.http_5xx == 0 &&
	       r->st.unexpected == 0 && r->unverified == 0 && r->verify_errors == 0 && r->setup_failed == 0;
}

static double ms_of(uint64_t ns) { return (double)ns / 1e6; }

static const double pcts[] = {50, 90, 99, 99.9};

static void print_hist_row(const char *name, const lg_hist *h)
{
	printf("  %-12s %9" PRIu64, name, h->count);
	for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
		printf(" %9.3f", ms_of(lg_hist_percentile(h, pcts[i])));
	printf(" %9.3f\n", ms_of(h->max));
}

static void final_counters(run *r, uint64_t *matched)
{
	*matched = 0;
	for (int i = 0; i < r->n_hot; i++) {
		hot *h = &r->hot[i];
		if (!h->verified) {
			r->unverified++;
			continue;
		}
		uint64_t lost = 0, mism = 0;
		lg_counter_final(&h->c, h->final_version, h->final_counter, &lost, &mism);
		r->lost += lost;
		r->mismatch += mism;
		if (!lost && !mism && (uint64_t)h->final_counter == h->c.acked)
			(*matched)++;
	}
}

static void report_text(run *r, const lg_hist *all, double secs, uint64_t matched)
{
	const opts *o = &r->o;
	printf("loadgen: scenario %s, %d users", sc_names[o->sc], o->users);
	if (o->sc == SC_CONTENTION)
		printf(", %d keys", r->n_hot);
	if (o->sc == SC_MIXED)
		printf(", mix load/save/instantiate %u/%u/%u", o->mix.weight[0], o->mix.weight[1],
		       o->mix.weight[2]);
	printf(", %s, %.2f s (%s)\n", r->open_loop ? "open loop" : "closed loop", secs,
	       r->stop_reason ? r->stop_reason : "?");
	if (r->open_loop)
		printf("rate: offered %.1f req/s, achieved %.1f req/s; sent late by p99 %.3f ms, max %.3f ms; "
		       "%" PRIu64 " due but never sent\n",
		       o->rate, (double)r->st.completed / secs, ms_of(lg_hist_percentile(&r->lag, 99)),
		       ms_of(r->lag.max), r->backlog_at_end);
	else
		printf("rate: offered closed loop (each user sends when its last answer is in), achieved %.1f "
		       "req/s\n", (double)r->st.completed / secs);
	printf("requests: %" PRIu64 " completed, %" PRIu64 " transport errors, %" PRIu64 " 5xx, %" PRIu64
	       " other unexpected status\n",
	       r->st.completed, r->st.transport_errors, r->st.http_5xx, r->st.unexpected);
	printf("latency, ms (%s):\n", r->open_loop ? "from each request's intended send time"
						   : "from each request's send time");
	printf("  %-12s %9s %9s %9s %9s %9s %9s\n", "endpoint", "count", "p50", "p90", "p99", "p99.9", "max");
	for (int e = 0; e < EP__COUNT; e++)
		if (r->st.hist[e].count)
			print_hist_row(ep_names[e], &r->st.hist[e]);
	print_hist_row("all", all);
	printf("status:");
	const char *sep = " ";
	for (int e = 0; e < EP__COUNT; e++) {
		int first = 1;
		for (int s = 0; s < NSTATUS; s++) {
			if (!r->st.status[e][s])
				continue;
			if (first)
				printf("%s%s", sep, ep_names[e]);
			first = 0;
			sep = "; ";
			if (s)
				printf(" %d=%" PRIu64, s, r->st.status[e][s]);
			else
				printf(" transport-error=%" PRIu64, r->st.status[e][s]);
		}
	}
	printf("\n");
	printf("conflicts: %" PRIu64 " (409), retries %" PRIu64 ", increments given up %" PRIu64
	       ", saves without answer %" PRIu64 "\n",
	       r->st.conflicts, r->st.retries, r->st.gave_up, r->st.uncertain);
	if (o->sc == SC_CONTENTION)
		printf("increments: %" PRIu64 " acknowledged; final counter = acknowledged and version = 1 + "
		       "counter on %" PRIu64 " of %d keys\n", r->st.acked, matched, r->n_hot);
	if (r->unverified || r->verify_errors || r->aborted || r->setup_failed)
		printf("unverified sessions %" PRIu64 ", verify errors %" PRIu64 ", requests aborted at "
		       "deadline %" PRIu64 ", setup failures %" PRIu64 "\n",
		       r->unverified, r->verify_errors, r->aborted, r->setup_failed);
	printf("lost updates: %" PRIu64 "\n", r->lost);
	printf("mismatches: %" PRIu64 "\n", r->mismatch);
	for (int i = 0; i < r->n_samples; i++)
		printf("  e.g. %s\n", r->samples[i]);
	printf("result: %s\n", passed(r) ? "PASS" : "FAIL");
	fflush(stdout);
}

static json_t *hist_json(const lg_hist *h)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)h->count, "mean_ms",
			 lg_hist_mean(h) / 1e6, "p50_ms", ms_of(lg_hist_percentile(h, 50)), "p90_ms",
			 ms_of(lg_hist_percentile(h, 90)), "p99_ms", ms_of(lg_hist_percentile(h, 99)), "p99_9_ms",
			 ms_of(lg_hist_percentile(h, 99.9)), "max_ms", ms_of(h->max));
}

static int report_json(run *r, const lg_hist *all, double secs)
{
	const opts *o = &r->o;
	json_t *eps = json_object(), *status = json_object(), *keys = json_array();
	for (int e = 0; e < EP__COUNT; e++) {
		json_t *by = json_object();
		for (int s = 0; s < NSTATUS; s++) {
			if (!r->st.status[e][s])
				continue;
			char name[32];
			snprintf(name, sizeof name, "%d", s);
			json_object_set_new(by, s ? name : "transport_error", json_integer((json_int_t)r->st.status[e][s]));
		}
		if (json_object_size(by)) {
			json_object_set_new(eps, ep_names[e], hist_json(&r->st.hist[e]));
			json_object_set_new(status, ep_names[e], by);
		} else {
			json_decref(by);
		}
	}
	for (int i = 0; i < r->n_hot; i++) {
		hot *h = &r->hot[i];
		json_array_append_new(keys, json_pack("{s:s, s:I, s:I, s:o, s:o}", "key", h->key, "acknowledged",
						      (json_int_t)h->c.acked, "uncertain", (json_int_t)h->c.uncertain,
						      "final_counter", h->verified ? json_integer(h->final_counter) : json_null(),
						      "final_version", h->verified ? json_integer(h->final_version) : json_null()));
	}
	json_t *samples = json_array();
	for (int i = 0; i < r->n_samples; i++)
		json_array_append_new(samples, json_string(r->samples[i]));
	json_t *doc = json_pack(
		"{s:s, s:s, s:i, s:i, s:s, s:f, s:o, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:b}",
		"scenario", sc_names[o->sc], "url", o->url, "users", o->users, "keys", r->n_hot, "loop",
		r->open_loop ? "open" : "closed", "duration_s", secs, "offered_rps",
		r->open_loop ? json_real(o->rate) : json_null(), "achieved_rps", (double)r->st.completed / secs,
		"requests", (json_int_t)r->st.completed, "transport_errors", (json_int_t)r->st.transport_errors,
		"http_5xx", (json_int_t)r->st.http_5xx, "unexpected_status", (json_int_t)r->st.unexpected,
		"not_sent_backlog", (json_int_t)r->backlog_at_end, "latency", eps, "latency_all", hist_json(all),
		"status", status, "conflicts", (json_int_t)r->st.conflicts, "retries", (json_int_t)r->st.retries,
		"gave_up", (json_int_t)r->st.gave_up, "uncertain", (json_int_t)r->st.uncertain, "acknowledged",
		(json_int_t)r->st.acked, "lost_updates", (json_int_t)r->lost, "mismatches", (json_int_t)r->mismatch,
		"unverified", (json_int_t)r->unverified, "verify_errors", (json_int_t)r->verify_errors,
		"aborted", (json_int_t)r->aborted, "setup_failures", (json_int_t)r->setup_failed, "counters", keys,
		"samples", samples, "pass", passed(r));
	if (!doc)
		return -1;
	if (r->open_loop)
		json_object_set_new(doc, "send_lag", hist_json(&r->lag));
	int rc = json_dump_file(doc, o->json_file, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) == 0 ? 0 : -1;
	json_decref(doc);
	return rc;
}

/* ---- setup and teardown ------------------------------------------------- */

static int raise_fd_limit(int want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur >= (rlim_t)want)
		return 0;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)want ? (rlim_t)want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	return rl.rlim_cur >= (rlim_t)want ? 0 : -1;
}

static int run_init(run *r)
{
	const opts *o = &r->o;
	r->epfd = -1;
	r->curl_deadline = -1;
	r->open_loop = o->rate > 0;
	lg_hist_init(&r->lag);
	for (int e = 0; e < EP__COUNT; e++)
		lg_hist_init(&r->st.hist[e]);
	char *pad = malloc(o->doc_bytes + 1);
	if (!pad)
		return -1;
	for (size_t i = 0; i < o->doc_bytes; i++)
		pad[i] = (char)('a' + i % 26);
	pad[o->doc_bytes] = '\0';
	r->pad = json_string(pad);
	free(pad);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->multi = curl_multi_init();
	r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = r->hdrs ? curl_slist_append(r->hdrs, "Expect:") : NULL;
	if (!r->pad || r->epfd < 0 || !r->multi || !h2)
		return -1;
	r->hdrs = h2;
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)o->users + 16);
	if (o->sc == SC_CONTENTION) {
		r->n_hot = o->keys;
		r->hot = calloc((size_t)r->n_hot, sizeof *r->hot);
		if (!r->hot)
			return -1;
	}
	r->vus = calloc((size_t)o->users, sizeof *r->vus);
	r->sleepers = calloc((size_t)o->users, sizeof *r->sleepers);
	if (!r->vus || !r->sleepers)
		return -1;
	for (int i = 0; i < o->users; i++) {
		vu *u = &r->vus[i];
		u->id = i;
		u->rng = o->seed + (uint64_t)i * UINT64_C(0x632BE59BD9B4E019);
		if (o->sc == SC_USERS || o->sc == SC_MIXED) {
			u->own = calloc((size_t)o->sessions_per_user, sizeof *u->own);
			if (!u->own)
				return -1;
		}
		CURL *e = u->easy = curl_easy_init();
		if (!e)
			return -1;
		curl_easy_setopt(e, CURLOPT_PRIVATE, u);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &u->resp);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(e, CURLOPT_PROXY, "");   /* never an http_proxy from the environment */
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "sessiond-loadgen");
	}
	return 0;
}

static void run_free(run *r)
{
	if (r->vus) {
		for (int i = 0; i < r->o.users; i++) {
			vu *u = &r->vus[i];
			if (u->easy) {
				if (u->in_flight)
					curl_multi_remove_handle(r->multi, u->easy);
				curl_easy_cleanup(u->easy);
			}
			clear_request(u);
			curl_slist_free_all(u->auth);
			free(u->resp.p);
			if (u->own)
				for (int k = 0; k < u->n_own; k++)
					lg_owned_free(&u->own[k].st);
			free(u->own);
		}
		free(r->vus);
	}
	free(r->hot);
	free(r->sleepers);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	curl_slist_free_all(r->hdrs);
	json_decref(r->pad);
	if (r->epfd >= 0)
		close(r->epfd);
}

/* 0 pass, 1 checks failed, 3 could not run. */
static int loadgen(run *r)
{
	const opts *o = &r->o;
	if (raise_fd_limit(o->users + 64) != 0) {
		fprintf(stderr, "loadgen: cannot raise the open-file limit to %d (ulimit -n)\n", o->users + 64);
		return 3;
	}
	if (run_init(r) != 0) {
		fprintf(stderr, "loadgen: out of memory or libcurl/epoll setup failed\n");
		return 3;
	}
	if (o->sc == SC_CONTENTION) {
		run_side_phase(r, PH_SETUP, 60 * SEC);
		int made = 0;
		for (int i = 0; i < r->n_hot; i++)
			made += r->hot[i].key[0] != '\0';
		if (made != r->n_hot || interrupted) {
			fprintf(stderr, "loadgen: could not create the %d hot sessions (%d made)%s%s\n", r->n_hot, made,
				r->n_samples ? ": " : "", r->n_samples ? r->samples[0] : "");
			return 3;
		}
	}
	if (!o->quiet)
		fprintf(stderr, "loadgen: %s, %d users, %s against %s\n", sc_names[o->sc], o->users,
			r->open_loop ? "open loop" : "closed loop", o->url);
	run_main_phase(r);
	int64_t verify_budget = 3 * o->timeout_ms * MS + 30 * SEC;
	if (o->sc != SC_RAW)
		run_side_phase(r, PH_VERIFY, verify_budget);
	if (o->sc == SC_USERS || o->sc == SC_MIXED)
		for (int i = 0; i < o->users; i++) /* sessions the deadline left unread */
			if (r->vus[i].pos < r->vus[i].n_own)
				r->unverified += (uint64_t)(r->vus[i].n_own - r->vus[i].pos);
	uint64_t matched = 0;
	if (o->sc == SC_CONTENTION)
		final_counters(r, &matched);
	lg_hist all;
	lg_hist_init(&all);
	for (int e = 0; e < EP__COUNT; e++)
		lg_hist_merge(&all, &r->st.hist[e]);
	double secs = (double)(r->t_end - r->t_start) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	report_text(r, &all, secs, matched);
	if (o->json_file && report_json(r, &all, secs) != 0) {
		fprintf(stderr, "loadgen: cannot write %s\n", o->json_file);
		return 1;
	}
	return passed(r) ? 0 : 1;
}

int main(int argc, char **argv)
{
	static run r; /* large (histograms): not on the stack */
	int rc = parse_opts(&r.o, argc, argv);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return 2;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "loadgen: libcurl failed to initialise\n");
		return 3;
	}
	rc = loadgen(&r);
	run_free(&r);
	curl_global_cleanup();
	return rc;
}
