/* scenario.c: what each virtual user does. The scenarios (users,
 * contention, mixed, raw) choose each user's next request for the current
 * phase (setup: contention creates its hot sessions; run; verify: read back
 * every session the run wrote), and judge every answer: what counts as a
 * lost update or a mismatch is lg_check's, this file feeds it the answers
 * and keeps the counts. */
#include <stdio.h>
#include <string.h>
#include "lg_run.h"
#include "sd_time.h"

/* ---- scenario: preparing the next request ------------------------------ */

/* The data a user writes: who, which write, and padding to size. */
static json_t *user_data(run *r, vu *u, const char *field, json_int_t value)
{
	u->seq++;
	return json_pack("{s:I, s:i, s:I, s:O}", field, value, "u", u->id, "n", (json_int_t)u->seq, "pad",
			 r->pad);
}

static int prep_instantiate(run *r, vu *u)
{
	u->sent_data = user_data(r, u, "w", 0);
	u->idx = -1;
	u->next = NX_INSTANTIATE;
	json_t *b = json_pack("{s:O, s:{s:s}}", "data", u->sent_data, "meta", "lg", sc_names[r->o.sc]);
	if (b && r->o.sc == SC_MIXED)
		json_object_set_new(b, "expires_in", json_integer(MIXED_TTL_S));
	return prep_post(r, u, EP_INSTANTIATE, "/api/instantiate", NULL, b);
}

static int prep_owned_save(run *r, vu *u, int idx)
{
	owned_sess *s = &u->own[idx];
	u->idx = idx;
	u->sent_version = s->st.version;
	u->sent_data = user_data(r, u, "w", (json_int_t)s->st.version + 1);
	u->next = NX_SAVE;
	json_t *b = json_pack("{s:I, s:O}", "version", (json_int_t)s->st.version, "data", u->sent_data);
	if (b && r->o.sc == SC_MIXED)
		json_object_set_new(b, "expires_in", json_integer(MIXED_TTL_S));
	u->token = s->token;
	return prep_post(r, u, EP_SAVE, "/api/save", s->key, b);
}

/* mixed: delete an own session (unconditionally: a save of it may be
 * unsettled). */
static int prep_owned_delete(run *r, vu *u, int idx)
{
	u->idx = idx;
	u->next = NX_DELETE;
	u->token = u->own[idx].token;
	return prep_post(r, u, EP_DELETE, "/api/delete", u->own[idx].key, json_object());
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
	return prep_post(r, u, EP_SAVE, "/api/save", h->key,
			 json_pack("{s:I, s:O}", "version", (json_int_t)u->cur_version, "data", u->sent_data));
}

static void prep_counter_load(run *r, vu *u, int idx)
{
	u->idx = idx;
	u->floor = r->hot[idx].c.floor;
	u->next = NX_LOAD;
	prep_get(r, u, EP_LOAD, "/api/load", r->hot[idx].key);
}

/* Setup: contention's user i creates hot keys i, i + users, ...; mixed
 * gives each user its first own session, so that the measured run is the
 * mix from its first request (else every user's first request would be an
 * instantiate: a burst of creates at the start, seen as instantiate's
 * whole p99). */
static int prep_setup(run *r, vu *u)
{
	if (r->o.sc == SC_MIXED)
		return u->n_own > 0 || u->retries >= SETUP_TRIES ? 1 : prep_instantiate(r, u);
	if (u->pos >= r->n_hot)
		return 1;
	u->idx = u->pos;
	u->next = NX_INSTANTIATE;
	u->sent_data = json_pack("{s:i, s:i, s:i, s:O}", "counter", 0, "u", -1, "n", 0, "pad", r->pad);
	return prep_post(r, u, EP_INSTANTIATE, "/api/instantiate", NULL,
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
		if (r->raw_body && !(u->body = strdup(r->raw_body)))
			return -1;
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
int vu_prepare(run *r, vu *u)
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

/* A refusal that changed nothing, to be retried: 503 "busy" (a bucket
 * frozen while it moves, a lock timeout; Retry-After: 1) and 421
 * "misdirected" (a node that has just given the key's bucket away, while
 * the router reloads; RFC 9110 lets any method be retried). The JS client
 * retries both the same way. Not an error, and not unsure. */
static int refused_retry(const vu *u, long status)
{
	return (status == 503 && u->resp.p && strstr(u->resp.p, "\"error\":\"busy\"")) || status == 421;
}

/* Wait before the user's next request: Retry-After (1 s) for busy, a
 * moment for a misdirected request. */
static void back_off_refused(run *r, vu *u, long status)
{
	if (r->ph == PH_RUN)
		u->sleep_ns = status == 503 ? 1000 * MS : 20 * MS;
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

/* The answer to a save of an own session. */
static void on_owned_save(run *r, vu *u, owned_sess *s, long status, json_t *j)
{
	int busy = refused_retry(u, status);
	int unsure = status == 0 || (status >= 500 && !busy);
	u->want_load = 1;
	int64_t v;
	json_t *cur = json_object_get(j, "current"), *cd;
	if (status == 200 && !get_int(j, "version", &v)) {
		verdict(r, u, lg_owned_saved(&s->st, v, u->sent_data), "save answered");
		u->sent_data = NULL;
	} else if (status == 409 && cur && !doc_fields(cur, s->key, &v, &cd)) {
		r->st.conflicts += r->ph == PH_RUN;
		verdict(r, u, lg_owned_conflict(&s->st, v, cd), "409 on a session only this user writes");
	} else if (busy) {
		back_off_refused(r, u, status); /* the save was refused whole: the session is as it was */
	} else if (unsure) {
		r->st.uncertain += r->ph == PH_RUN;
		lg_owned_uncertain(&s->st, u->sent_data);
		u->sent_data = NULL;
	} else {
		unexpected(r, u, status);
	}
}

static void on_owned(run *r, vu *u, long status, json_t *j)
{
	int refused = refused_retry(u, status); /* nothing changed: loaded again, deleted or made later */
	int unsure = status == 0 || status >= 500 || refused;
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
		on_owned_save(r, u, s, status, j);
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
	} else if (refused) {
		back_off_refused(r, u, status);
	} else if (!unsure) {
		unexpected(r, u, status);
	}
}

/* The answer to a load of a counter. */
static void on_counter_load(run *r, vu *u, hot *h, long status, json_t *j)
{
	int64_t v, c;
	json_t *data;
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
	} else if (refused_retry(u, status)) {
		back_off_refused(r, u, status);
	} else if (status != 0 && status < 500) {
		unexpected(r, u, status);
	}
}

static void on_counter(run *r, vu *u, long status, json_t *j)
{
	hot *h = &r->hot[u->idx];
	if (u->next == NX_LOAD) {
		on_counter_load(r, u, h, status, j);
		return;
	}
	int busy = refused_retry(u, status);
	int unsure = status == 0 || (status >= 500 && !busy);
	int64_t v, c;
	json_t *data;
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
	} else if (busy) {
		back_off_refused(r, u, status); /* not applied: load, and increment again */
	} else if (unsure) {
		r->st.uncertain++;
		lg_counter_uncertain(&h->c);
	} else {
		unexpected(r, u, status);
	}
}

static void on_setup(run *r, vu *u, long status, json_t *j)
{
	if (r->o.sc == SC_MIXED) {
		on_owned(r, u, status, j);
		if (u->n_own == 0 && ++u->retries >= SETUP_TRIES) {
			r->setup_failed++;
			sample(r, "setup: instantiate answered %ld: %.160s", status, u->resp.p ? u->resp.p : "");
		}
		return;
	}
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

/* Count an answer: the run phase's statistics, and errors of any phase. */
static void count_answer(run *r, vu *u, CURLcode res, long status, int64_t now)
{
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
	} else if (refused_retry(u, status)) {
		r->st.busy += r->ph == PH_RUN;
	} else if (status >= 500) {
		r->st.http_5xx += r->ph == PH_RUN;
		r->verify_errors += r->ph != PH_RUN;
		sample(r, "%ld from %s %s: %.160s", status, u->body ? "POST" : "GET", u->url + strlen(r->o.url),
		       u->resp.p ? u->resp.p : "");
	}
}

void vu_done(run *r, vu *u, CURLcode res)
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
	count_answer(r, u, res, status, now);
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

