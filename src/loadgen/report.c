/* report.c: what the load generator prints at the end: the text report
 * (rates, latency percentiles per endpoint, statuses, conflicts, lost
 * updates and mismatches), the same as JSON (--json), the final check of
 * the contention counters, and the few samples of what went wrong. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include "lg_run.h"

/* Keep the first N_SAMPLES descriptions of failures, for the report. */
void sample(run *r, const char *fmt, ...)
{
	if (r->n_samples >= N_SAMPLES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->samples[r->n_samples++], sizeof r->samples[0], fmt, ap);
	va_end(ap);
}

/* ---- report ------------------------------------------------------------- */

int passed(const run *r)
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

void final_counters(run *r, uint64_t *matched)
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

/* status: per endpoint, the count of each status seen. */
static void print_status_line(const run *r)
{
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
}

void report_text(run *r, const lg_hist *all, double secs, uint64_t matched)
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
	if (r->st.busy)
		printf("refused: %" PRIu64 " answers 503 busy or 421 misdirected (nothing changed; retried)\n",
		       r->st.busy);
	printf("latency, ms (%s):\n", r->open_loop ? "from each request's intended send time"
						   : "from each request's send time");
	printf("  %-12s %9s %9s %9s %9s %9s %9s\n", "endpoint", "count", "p50", "p90", "p99", "p99.9", "max");
	for (int e = 0; e < EP__COUNT; e++)
		if (r->st.hist[e].count)
			print_hist_row(ep_names[e], &r->st.hist[e]);
	print_hist_row("all", all);
	print_status_line(r);
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

int report_json(run *r, const lg_hist *all, double secs)
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
		"{s:s, s:s, s:i, s:i, s:s, s:f, s:o, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:b}",
		"scenario", sc_names[o->sc], "url", o->url, "users", o->users, "keys", r->n_hot, "loop",
		r->open_loop ? "open" : "closed", "duration_s", secs, "offered_rps",
		r->open_loop ? json_real(o->rate) : json_null(), "achieved_rps", (double)r->st.completed / secs,
		"requests", (json_int_t)r->st.completed, "transport_errors", (json_int_t)r->st.transport_errors,
		"http_5xx", (json_int_t)r->st.http_5xx, "unexpected_status", (json_int_t)r->st.unexpected, "busy", (json_int_t)r->st.busy,
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

