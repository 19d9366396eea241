/* loadgen.c: the load generator's main. A run has three phases: setup
 * (contention: create the hot sessions), run (the scenario, closed loop or
 * at a fixed rate, until --duration or --requests), verify (read back every
 * session the run wrote and settle lost updates). Every phase has a
 * deadline, every request a timeout, and every retry loop a count. The
 * pieces: see lg_run.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "lg_run.h"
#include "sd_time.h"

const char *const sc_names[] = {"users", "contention", "mixed", "raw"};
const char *const ep_names[] = {"instantiate", "load", "save", "raw", "delete"};

/* SIGINT/SIGTERM (see lg_run.h). */
volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
	(void)sig;
	if (interrupted < 2)
		interrupted++;
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

/* Run phase: decide whether to stop now, and why. */
static void check_stop(run *r, int64_t now)
{
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

/* Run phase: how long the loop may wait for answers before it has
 * something else to do (progress line, next send, a back-off ending, the
 * end of the run or of the drain). */
static int64_t main_wait(const run *r, int64_t now, int64_t drain_deadline)
{
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
	return wait;
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
		if (!r->stopping)
			check_stop(r, now);
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
		pump(r, main_wait(r, now, drain_deadline));
		progress(r, sd_time_mono_ns());
	}
	r->t_end = sd_time_mono_ns();
	r->idle_head = r->idle_tail = NULL;
	r->n_sleepers = 0;
	for (int i = 0; i < r->o.users; i++)
		clear_request(&r->vus[i]);
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
	if (!r->pad || net_init(r) != 0)
		return -1;
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
		if (net_user_init(r, u) != 0)
			return -1;
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
	free(r->raw_body);
	if (r->epfd >= 0)
		close(r->epfd);
}

/* --body's bytes into r->raw_body: 0, or -1 with a message printed (a file
 * that cannot be read, or holds a NUL: the body is sent as a C string). */
static int read_raw_body(run *r)
{
	const char *path = r->o.body_file;
	FILE *f = fopen(path, "rb");
	size_t cap = 0, len = 0;
	char *p = NULL;
	int bad = !f;
	while (!bad) {
		if (len + 4096 + 1 > cap) {
			char *q = realloc(p, cap = cap ? cap * 2 : 8192);
			if (!q) {
				bad = 1;
				break;
			}
			p = q;
		}
		size_t n = fread(p + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			bad = ferror(f);
			break;
		}
	}
	if (f)
		fclose(f);
	if (bad || memchr(p, '\0', len)) {
		fprintf(stderr, "loadgen: cannot use %s as a body: %s\n", path,
			bad ? strerror(errno ? errno : EIO) : "it holds a NUL byte");
		free(p);
		return -1;
	}
	p[len] = '\0';
	r->raw_body = p;
	return 0;
}

/* 0 pass, 1 checks failed, 3 could not run. */
static int loadgen(run *r)
{
	const opts *o = &r->o;
	if (o->body_file && read_raw_body(r) != 0)
		return 3;
	if (raise_fd_limit(o->users + 64) != 0) {
		fprintf(stderr, "loadgen: cannot raise the open-file limit to %d (ulimit -n)\n", o->users + 64);
		return 3;
	}
	if (run_init(r) != 0) {
		fprintf(stderr, "loadgen: out of memory or libcurl/epoll setup failed\n");
		return 3;
	}
	if (o->sc == SC_MIXED) {
		run_side_phase(r, PH_SETUP, 60 * SEC);
		if (r->setup_failed || interrupted) {
			fprintf(stderr, "loadgen: could not give every user a first session%s%s\n",
				r->n_samples ? ": " : "", r->n_samples ? r->samples[0] : "");
			return 3;
		}
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
