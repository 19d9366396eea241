/* http.c: routing and HTTP semantics. Picks the operation for a path,
 * checks method and media type, parses keys and conditional headers, adds
 * CORS, and writes every answer, errors included, as JSON. This is the one
 * place where an sd_err becomes a status line. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sd_api.h"
#include "sd_http.h"
#include "sd_mem.h"
#include "sd_time.h"

const char *sd_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

int sd_response_header(sd_response *r, const char *fmt, ...)
{
	size_t room = sizeof r->headers - r->headers_len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->headers + r->headers_len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 >= room) {
		r->headers[r->headers_len] = '\0';
		return -1;
	}
	r->headers_len += (size_t)n;
	memcpy(r->headers + r->headers_len, "\r\n", 3);
	r->headers_len += 2;
	return 0;
}

void sd_response_free(sd_response *r)
{
	if (r) {
		free(r->body);
		r->body = NULL;
	}
}

/* Set resp's body to v (stolen) serialised on one line plus a newline. */
static void set_json(sd_response *resp, int status, json_t *v)
{
	resp->status = status;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	static const char fallback[] = "{\"error\":\"internal\",\"message\":\"Internal error.\"}\n";
	size_t n;
	char *s = v ? sd_doc_dump_compact(v, &n) : NULL;
	json_decref(v);
	if (!s) { /* out of memory, or a value that would not serialise */
		resp->status = 500;
		resp->body = strdup(fallback);
		resp->body_len = resp->body ? sizeof fallback - 1 : 0;
		return;
	}
	char *t = realloc(s, n + 2);
	if (!t) {
		free(s);
		return;
	}
	t[n++] = '\n';
	t[n] = '\0';
	resp->body = t;
	resp->body_len = n;
}

/* The single mapping from an error to an answer. current, when given, is
 * the session's current document (conflicts): it is borrowed. */
static void set_error(sd_response *resp, sd_err e, const char *msg, const json_t *current)
{
	if (e == SD_ERR_INTERNAL && sd_mem_exceeded()) { /* a JSON step ran out of budget */
		e = sd_mem_error(e);
		msg = sd_mem_message();
	}
	json_t *b = json_pack("{s:s, s:s}", "error", sd_err_code(e), "message",
			      (msg && *msg) ? msg : sd_err_message(e));
	if (!b) /* msg was not valid UTF-8: the fixed sentence always is */
		b = json_pack("{s:s, s:s}", "error", sd_err_code(e), "message", sd_err_message(e));
	if (b && current) {
		json_object_set_new(b, "version", json_integer(sd_doc_version(current)));
		json_object_set(b, "current", (json_t *)current);
	}
	/* busy's causes apart for operators: lock timeouts and frozen buckets
	 * have their counters, the memory pool this one (sd_mem says which) */
	if (e == SD_ERR_BUSY && sd_mem_exceeded() == SD_MEM_OVER_POOL)
		sd_metrics_add(SD_M_POOL_REFUSALS, 1);
	if (e == SD_ERR_MISDIRECTED || e == SD_ERR_FROZEN)
		sd_metrics_add(e == SD_ERR_MISDIRECTED ? SD_M_MISDIRECTED : SD_M_FROZEN_REJECTIONS, 1);
	if (e == SD_ERR_UNAUTHORIZED)
		sd_response_header(resp, "WWW-Authenticate: Bearer");
	set_json(resp, sd_err_status(e), b);
}

static void set_etag(sd_response *resp, int64_t version)
{
	sd_response_header(resp, "ETag: \"%lld\"", (long long)version);
}

/* The key in the URL: the query string is empty (*present 0), or exactly
 * NAME=KEY: one parameter, its name exactly NAME (lower case), so that the
 * router, which matches names in any case and takes the first, and this
 * node can never read different keys. Anything else is bad_key. */
static sd_err query_key(const char *query, const char *name, int *present, char key[SD_KEY_LEN + 1],
			char msg[SD_MSG_MAX])
{
	*present = query && *query;
	if (!*present)
		return SD_OK;
	size_t nl = strlen(name);
	if (strncmp(query, name, nl) != 0 || query[nl] != '=' || strchr(query, '&')) {
		snprintf(msg, SD_MSG_MAX, "The query string must be exactly %s=KEY: one parameter, named in lower case.",
			 name);
		return SD_ERR_BAD_KEY;
	}
	if (sd_key_normalize(query + nl + 1, strlen(query + nl + 1), key) != SD_OK) {
		snprintf(msg, SD_MSG_MAX, "%s in the URL must be exactly 8 letters or digits.", name);
		return SD_ERR_BAD_KEY;
	}
	return SD_OK;
}

/* The version an entity tag's opaque characters name: our tag for a
 * version is the decimal version in quotes, so only the same characters
 * name it ("01" never names version 1). 0 (no version) otherwise. */
static int64_t etag_version(const char *o, size_t len)
{
	if (len == 0 || len > 16 || o[0] == '0')
		return 0;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (o[i] < '0' || o[i] > '9')
			return 0;
		v = v * 10 + (o[i] - '0');
	}
	return v <= SD_DOC_MAX_VERSION ? v : 0;
}

/* One element of an entity-tag list: the version its tag names (0: none
 * of ours; for "*", any is set instead) and whether it is weak. */
typedef void (*etag_fn)(void *ctx, int any, int64_t version, int weak);

/* The one reader of If-Match and If-None-Match lists (RFC 9110 8.8.3,
 * 13.1.1, 13.1.2): "*" or comma-separated entity tags, [W/]"opaque", of
 * any number the header holds. Calls fn (may be NULL) for each element and
 * returns how many there are, or -1 when the header is not a list of
 * entity tags (the calls made so far then count for nothing: such a list
 * matches nothing, so If-Match fails with 412 and If-None-Match gives the
 * full answer). */
static int etag_scan(const char *h, etag_fn fn, void *ctx)
{
	int n = 0;
	const char *p = h;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',') { /* empty list elements are allowed */
			p++;
			continue;
		}
		if (!*p)
			break;
		if (*p == '*') {
			if (fn)
				fn(ctx, 1, 0, 0);
			p++;
		} else {
			int weak = 0;
			if (p[0] == 'W' && p[1] == '/') {
				weak = 1;
				p += 2;
			}
			if (*p != '"')
				return -1;
			const char *o = ++p;
			while ((unsigned char)*p == 0x21 || ((unsigned char)*p >= 0x23 && (unsigned char)*p != 0x7F))
				p++;
			if (*p != '"')
				return -1;
			if (fn)
				fn(ctx, 0, etag_version(o, (size_t)(p - o)), weak);
			p++;
		}
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',')
			return -1;
	}
	return n ? n : -1;
}

struct etag_match {
	int64_t version;
	int match;
};

/* Weak comparison (If-None-Match): W/"1" matches "1"; "*" matches any
 * current version (the caller asks only when the session exists). */
static void match_weak(void *ctx, int any, int64_t version, int weak)
{
	(void)weak;
	struct etag_match *m = ctx;
	if (any || (version && version == m->version))
		m->match = 1;
}

/* 1 when the If-None-Match list h names the version. */
static int none_match_hit(const char *h, int64_t version)
{
	struct etag_match m = {.version = version};
	return etag_scan(h, match_weak, &m) > 0 && m.match;
}

struct precond_build {
	sd_precond *pre;
	int64_t *room;
};

/* Strong comparison (If-Match): a weak tag never matches. */
static void add_strong(void *ctx, int any, int64_t version, int weak)
{
	struct precond_build *b = ctx;
	if (any)
		b->pre->kind = SD_PRE_ANY;
	else if (!weak && version)
		b->room[b->pre->n++] = version;
}

/* If-Match as api's precondition: none without the header, any for "*",
 * else the versions its strong tags name (none: it holds for nothing).
 * *room (malloc'd, freed by the caller) holds the list. */
static sd_err if_match_precond(const char *h, sd_precond *pre, int64_t **room)
{
	*pre = (sd_precond){.kind = h ? SD_PRE_VERSIONS : SD_PRE_NONE};
	*room = NULL;
	int n = h ? etag_scan(h, NULL, NULL) : -1;
	if (n <= 0)
		return SD_OK;
	*room = malloc((size_t)n * sizeof **room);
	if (!*room)
		return SD_ERR_INTERNAL;
	struct precond_build b = {.pre = pre, .room = *room};
	etag_scan(h, add_strong, &b);
	pre->versions = *room;
	return SD_OK;
}

/* The words of a write refused on its condition, once for save and
 * delete: If-Match (412) that does not hold or names no session, or a
 * body version (409) that is stale. */
static void word_condition(sd_err e, const sd_api_result *r, int64_t body_version, char msg[SD_MSG_MAX])
{
	long long cur = r->doc ? (long long)sd_doc_version(r->doc) : 0;
	if (e == SD_ERR_PRECONDITION && !r->doc)
		sd_msgf(msg, "If-Match is given but there is no session %s.", r->key);
	else if (e == SD_ERR_PRECONDITION)
		sd_msgf(msg, "If-Match does not match; the current version is %lld.", cur);
	else if (e == SD_ERR_CONFLICT)
		sd_msgf(msg, "Version %lld is stale; the current version is %lld.", (long long)body_version, cur);
}

/* A save (sb) or a delete (db) under the request's If-Match, with the
 * words of a refused condition in r->msg. */
static sd_err write_under_if_match(const sd_app *app, const sd_request *req, const sd_save_body *sb,
				   const sd_delete_body *db, sd_api_result *r)
{
	sd_precond pre;
	int64_t *room;
	sd_err e = if_match_precond(req->if_match, &pre, &room);
	if (e == SD_OK)
		e = sb ? sd_api_save(app->store, sb, &pre, r) : sd_api_delete(app->store, db, &pre, r);
	free(room);
	word_condition(e, r, sb ? sb->version : db->version, r->msg);
	return e;
}

static int media_ok(const char *ct)
{
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n == 10 && strncasecmp(ct, "text/plain", 10) == 0);
}

static json_t *time_field(const json_t *doc, const char *f) { return json_object_get(doc, f); }

/* The token of "Authorization: Bearer T" (scheme case-insensitive), NULL
 * when there is none. */
static const char *bearer(const char *h, size_t *len)
{
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	*len = n;
	return h;
}

sd_err sd_http_authorize(const sd_app *app, const sd_request *req, const char *key, sd_need need,
			 const char *body_token, size_t body_token_len)
{
	sd_access mode = app->cfg->access;
	if (mode == SD_ACCESS_OPEN || (need == SD_NEED_READ && mode == SD_ACCESS_TOKEN))
		return SD_OK;
	size_t hlen = 0;
	const char *htok = bearer(req->authorization, &hlen);
	const struct {
		const char *t;
		size_t n;
	} presented[] = {{htok, hlen}, {body_token, body_token_len}};
	/* During a rotation a token made with the previous secret still holds. */
	const sd_secret *secrets[] = {app->secret, app->previous};
	for (size_t i = 0; i < sizeof presented / sizeof presented[0]; i++) {
		if (!presented[i].t)
			continue;
		for (size_t j = 0; j < 2 && secrets[j]; j++) {
			if (sd_token_check(secrets[j], SD_TOKEN_WRITE, key, presented[i].t, presented[i].n))
				return SD_OK;
			if (need == SD_NEED_READ &&
			    sd_token_check(secrets[j], SD_TOKEN_READ, key, presented[i].t, presented[i].n))
				return SD_OK;
		}
	}
	return SD_ERR_UNAUTHORIZED;
}

/* Add the document's "expires" to an answer when it has one. */
static json_t *with_expires(json_t *answer, const json_t *doc)
{
	json_t *x = json_object_get(doc, "expires");
	if (answer && x)
		json_object_set(answer, "expires", x);
	return answer;
}

static void do_instantiate(const sd_app *app, const sd_request *req, sd_response *resp)
{
	sd_inst_body b = {0};
	sd_api_result r = {0};
	char from[SD_KEY_LEN + 1];
	int in_url;
	sd_key_draw draw;
	sd_err e = query_key(req->query, "from", &in_url, from, r.msg);
	if (e == SD_OK)
		e = sd_doc_parse_inst_canon_at(req->body, req->body_len, in_url ? from : NULL, &b, r.msg);
	if (e == SD_OK && b.has_from) /* copying reads the source: a frozen one too */
		e = sd_node_route(app->view, b.from, 0);
	if (e == SD_OK) /* the new key: in a bucket this node owns and is not moving */
		e = sd_node_key_draw(app->view, NULL, NULL, &draw);
	if (e == SD_OK && b.has_from)
		e = sd_http_authorize(app, req, b.from, SD_NEED_READ, b.token, b.token_len);
	if (e == SD_OK)
		e = sd_doc_check_ttl(&b.ttl, &app->cfg->ttl, 1, r.msg);
	if (e == SD_OK)
		e = sd_api_instantiate(app->store, &b, &draw, &r);
	sd_inst_body_free(&b);
	if (e == SD_ERR_UNSYNCED) { /* the session exists: the body names it */
		set_json(resp, sd_err_status(e), json_pack("{s:s, s:s, s:s}", "error", sd_err_code(e), "message",
							   r.msg, "key", r.key));
	} else if (e != SD_OK) {
		set_error(resp, e, r.msg, NULL);
	} else {
		char tok[SD_TOKEN_LEN + 1], rtok[SD_TOKEN_LEN + 1];
		sd_token_derive(app->secret, SD_TOKEN_WRITE, r.key, tok);
		json_t *a = json_pack("{s:s, s:i, s:O, s:O, s:s}", "key", r.key, "version", SD_DOC_FIRST_VERSION, "created",
				      time_field(r.doc, "created"), "updated", time_field(r.doc, "updated"),
				      "token", tok);
		if (a && app->cfg->access == SD_ACCESS_PRIVATE) {
			sd_token_derive(app->secret, SD_TOKEN_READ, r.key, rtok);
			json_object_set_new(a, "read_token", json_string(rtok));
		}
		sd_response_header(resp, "Location: /api/load?key=%s", r.key);
		set_etag(resp, SD_DOC_FIRST_VERSION);
		set_json(resp, 201, with_expires(a, r.doc));
	}
	sd_api_result_free(&r);
}

static void do_load(const sd_app *app, const sd_request *req, sd_response *resp)
{
	char key[SD_KEY_LEN + 1];
	sd_api_result r = {0};
	int in_url;
	sd_err e = query_key(req->query, "key", &in_url, key, r.msg);
	if (e == SD_OK && !in_url) {
		e = SD_ERR_BAD_KEY;
		snprintf(r.msg, sizeof r.msg, "Send the key in the URL: GET /api/load?key=KEY.");
	}
	if (e == SD_OK)
		e = sd_node_route(app->view, key, 0);
	if (e == SD_OK)
		e = sd_http_authorize(app, req, key, SD_NEED_READ, NULL, 0);
	if (e == SD_OK)
		e = sd_api_load(app->store, key, &r);
	if (e != SD_OK) {
		set_error(resp, e, r.msg, NULL);
	} else {
		set_etag(resp, r.version);
		if (req->if_none_match && none_match_hit(req->if_none_match, r.version)) {
			resp->status = 304;
		} else if (r.raw) { /* canonical file: its bytes are the answer */
			resp->status = 200;
			resp->body = r.raw;
			resp->body_len = r.raw_len;
			r.raw = NULL;
		} else {
			set_json(resp, 200, json_incref(r.doc));
		}
	}
	sd_api_result_free(&r);
}

static void do_save(const sd_app *app, const sd_request *req, sd_response *resp)
{
	sd_save_body b = {0};
	sd_api_result r = {0};
	char key[SD_KEY_LEN + 1];
	int in_url = 0;
	sd_err e = SD_OK;
	if (req->if_none_match) {
		e = SD_ERR_BAD_REQUEST;
		snprintf(r.msg, sizeof r.msg, "If-None-Match is not supported on save; use If-Match.");
	}
	if (e == SD_OK)
		e = query_key(req->query, "key", &in_url, key, r.msg);
	if (e == SD_OK)
		e = sd_doc_parse_save_canon_at(req->body, req->body_len, in_url ? key : NULL, &b, r.msg);
	if (e == SD_OK && !in_url) /* operators watch this reach 0 before going multi-node */
		sd_metrics_add(SD_M_SAVES_WITHOUT_URL_KEY, 1);
	if (e == SD_OK)
		e = sd_node_route(app->view, b.key, 1);
	if (e == SD_OK)
		e = sd_http_authorize(app, req, b.key, SD_NEED_WRITE, b.token, b.token_len);
	if (e == SD_OK)
		e = sd_doc_check_ttl(&b.ttl, &app->cfg->ttl, 0, r.msg);
	if (e == SD_OK)
		e = write_under_if_match(app, req, &b, NULL, &r);
	sd_save_body_free(&b);
	if (e != SD_OK) {
		set_error(resp, e, r.msg, r.doc);
	} else {
		int64_t v = sd_doc_version(r.doc);
		set_etag(resp, v);
		set_json(resp, 200, with_expires(json_pack("{s:s, s:I, s:O}", "key", r.key, "version", (json_int_t)v,
							   "updated", time_field(r.doc, "updated")),
						 r.doc));
	}
	sd_api_result_free(&r);
}

static void do_delete(const sd_app *app, const sd_request *req, sd_response *resp)
{
	sd_delete_body b = {0};
	sd_api_result r = {0};
	char key[SD_KEY_LEN + 1];
	int in_url;
	sd_err e = query_key(req->query, "key", &in_url, key, r.msg);
	if (e == SD_OK) /* with the key in the URL the body may be empty */
		e = in_url && req->body_len == 0 ? sd_doc_parse_delete_at("{}", 2, key, &b, r.msg)
						 : sd_doc_parse_delete_at(req->body, req->body_len, in_url ? key : NULL,
									  &b, r.msg);
	if (e == SD_OK)
		e = sd_node_route(app->view, b.key, 1);
	if (e == SD_OK) /* delete is a write: authorized like save */
		e = sd_http_authorize(app, req, b.key, SD_NEED_WRITE, b.token, b.token_len);
	if (e == SD_OK)
		e = write_under_if_match(app, req, NULL, &b, &r);
	sd_delete_body_free(&b);
	if (e != SD_OK)
		set_error(resp, e, r.msg, r.doc);
	else
		set_json(resp, 200, json_pack("{s:s, s:b}", "key", r.key, "deleted", 1));
	sd_api_result_free(&r);
}

/* Which node answers, its shard table and secret ids (never the secrets). */
static json_t *with_node(const sd_app *app, json_t *h)
{
	const sd_node_view *v = app->view;
	if (!h || !v)
		return h;
	if (v->table) {
		json_object_set_new(h, "node", json_string(v->id));
		json_object_set_new(h, "shard_table", json_pack("{s:I, s:i, s:i}", "generation",
								(json_int_t)sd_shard_generation(v->table),
								"buckets_owned", v->owned, "buckets_frozen", v->frozen));
	}
	json_object_set_new(h, "key_id", json_string(v->key_id));
	if (v->has_previous)
		json_object_set_new(h, "previous_key_id", json_string(v->previous_key_id));
	return h;
}

static void do_health(const sd_app *app, const sd_request *req, sd_response *resp)
{
	(void)req;
	const char *step;
	sd_err e = sd_store_probe(app->store, &step);
	unsigned long long free_b = 0, min_b = 0;
	sd_err space = sd_store_space(app->store, &free_b, &min_b);
	char now[SD_TIME_LEN], msg[SD_MSG_MAX];
	sd_time_now(now);
	json_t *storage = json_pack("{s:s, s:I, s:I}", "state", space == SD_OK ? "ok" : "below_min_free",
				    "free_bytes", (json_int_t)free_b, "min_free_bytes", (json_int_t)min_b);
	if (e == SD_OK && space == SD_OK) {
		set_json(resp, 200, with_node(app, json_pack("{s:s, s:s, s:s, s:o*}", "status", "ok", "time", now,
							     "durability",
							     app->cfg->durability == SD_DURABLE_FULL ? "full" : "none",
							     "storage", storage)));
	} else if (e == SD_OK) {
		set_json(resp, 503, with_node(app, json_pack("{s:s, s:s, s:s, s:o*}", "status", "unavailable", "error",
							     sd_err_code(space), "message",
							     "Free space is below --min-free: new sessions and growing "
							     "saves are refused; loads work.", "storage", storage)));
	} else {
		snprintf(msg, sizeof msg, "The data directory does not accept writes: the %s step of a test save failed.",
			 step);
		set_json(resp, 503, with_node(app, json_pack("{s:s, s:s, s:s, s:s, s:o*}", "status", "unavailable",
							     "error", sd_err_code(e), "step", step, "message", msg,
							     "storage", storage)));
	}
}

/* The node's gauges, appended to the process metrics; NULL on no memory. */
static char *node_metrics(const sd_node_view *v, char *text, size_t *n)
{
	char *more = NULL;
	int m = v ? asprintf(&more,
			     "# HELP sessiond_buckets_owned Key buckets this node owns in its shard table (all of them "
			     "without one).\n# TYPE sessiond_buckets_owned gauge\nsessiond_buckets_owned %d\n"
			     "# HELP sessiond_buckets_frozen Owned buckets frozen for a move.\n"
			     "# TYPE sessiond_buckets_frozen gauge\nsessiond_buckets_frozen %d\n"
			     "# HELP sessiond_shard_table_generation Generation of the shard table in use (0: none).\n"
			     "# TYPE sessiond_shard_table_generation gauge\nsessiond_shard_table_generation %lu\n"
			     "# HELP sessiond_node_info This node and the ids of the secrets tokens verify against.\n"
			     "# TYPE sessiond_node_info gauge\n"
			     "sessiond_node_info{node=\"%s\",key_id=\"%s\",previous_key_id=\"%s\"} 1\n",
			     v->owned, v->frozen, sd_shard_generation(v->table), v->id, v->key_id,
			     v->previous_key_id)
		  : 0;
	if (m < 0) {
		free(text);
		return NULL;
	}
	if (!more)
		return text;
	char *t = realloc(text, *n + (size_t)m + 1);
	if (t) {
		memcpy(t + *n, more, (size_t)m + 1);
		*n += (size_t)m;
	} else {
		free(text);
	}
	free(more);
	return t;
}

static void do_metrics(const sd_app *app, const sd_request *req, sd_response *resp)
{
	(void)req;
	size_t n;
	char *text = sd_metrics_render(&n);
	if (text)
		text = node_metrics(app->view, text, &n);
	if (!text) {
		set_error(resp, SD_ERR_INTERNAL, NULL, NULL);
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body = text;
	resp->body_len = n;
}

typedef void (*handler_fn)(const sd_app *, const sd_request *, sd_response *);

static const struct route {
	const char *path;
	const char *method;   /* GET routes also answer HEAD */
	handler_fn fn;
	sd_endpoint ep;
	int has_body;
} routes[] = {
	{"/api/instantiate", "POST", do_instantiate, SD_EP_INSTANTIATE, 1},
	{"/api/load", "GET", do_load, SD_EP_LOAD, 0},
	{"/api/save", "POST", do_save, SD_EP_SAVE, 1},
	{"/api/delete", "POST", do_delete, SD_EP_DELETE, 1},
	{"/api/health", "GET", do_health, SD_EP_HEALTH, 0},
	{"/api/metrics", "GET", do_metrics, SD_EP_METRICS, 0},
};

static void add_cors(const sd_app *app, const sd_request *req, sd_response *resp, int preflight)
{
	if (!sd_config_origin_allowed(app->cfg, req->origin))
		return;
	/* The origin itself, never "*": credentials are allowed. */
	sd_response_header(resp, "Access-Control-Allow-Origin: %.200s", req->origin);
	sd_response_header(resp, "Access-Control-Allow-Credentials: true");
	sd_response_header(resp, "Vary: Origin");
	if (preflight) {
		sd_response_header(resp, "Access-Control-Allow-Methods: GET, POST");
		sd_response_header(resp, "Access-Control-Allow-Headers: Authorization, Content-Type, If-Match, If-None-Match");
		sd_response_header(resp, "Access-Control-Max-Age: 600");
	} else {
		sd_response_header(resp, "Access-Control-Expose-Headers: ETag, Location, Retry-After, X-Sessiond-Node");
	}
}

/* Origin "scheme://host[:port]" without the scheme's default port, into
 * out; 0, or -1 when it does not fit. */
static int origin_norm(const char *scheme, const char *host, size_t hlen, char *out, size_t n)
{
	const char *dflt = strcmp(scheme, "https") == 0 ? ":443" : ":80";
	size_t dl = strlen(dflt);
	if (hlen > dl && strncmp(host + hlen - dl, dflt, dl) == 0)
		hlen -= dl;
	return snprintf(out, n, "%s://%.*s", scheme, (int)hlen, host) < (int)n ? 0 : -1;
}

/* 1 when Origin is the request's own: scheme (when nginx told it) and Host. */
static int same_origin(const sd_request *req)
{
	const char *o = req->origin, *sep = strstr(o, "://");
	if (!req->host || !*req->host || !sep)
		return 0;
	char oscheme[8];
	size_t sl = (size_t)(sep - o);
	if (sl >= sizeof oscheme)
		return 0;
	memcpy(oscheme, o, sl);
	oscheme[sl] = '\0';
	if (req->scheme ? strcmp(oscheme, req->scheme) != 0
			: (strcmp(oscheme, "http") != 0 && strcmp(oscheme, "https") != 0))
		return 0;
	char a[512], b[512];
	if (origin_norm(oscheme, req->host, strlen(req->host), a, sizeof a) ||
	    origin_norm(oscheme, sep + 3, strlen(sep + 3), b, sizeof b))
		return 0;
	return strcasecmp(a, b) == 0;
}

/* CSRF: a request that may write, from a browser page whose Origin is
 * neither this site nor allowed by --cors-origin. No Origin (curl,
 * servers) is not a browser's cross-site request. */
static int origin_forbidden(const sd_app *app, const sd_request *req)
{
	return req->origin && strcmp(req->method, "POST") == 0 && !same_origin(req) &&
	       !sd_config_origin_allowed(app->cfg, req->origin);
}

/* The miss limit: answers 429 when the client's address is over it. */
static int over_miss_limit(const sd_app *app, const sd_request *req, sd_response *resp)
{
	int wait_s = sd_limit_check(app->limit, req->remote_addr, sd_time_mono_ns());
	if (!wait_s)
		return 0;
	sd_metrics_add(SD_M_RATE_LIMITED, 1);
	sd_response_header(resp, "Retry-After: %d", wait_s);
	set_error(resp, SD_ERR_RATE_LIMITED, NULL, NULL);
	return 1;
}

/* A guess that failed: an unknown key on load or copy, or a bad token. */
static void count_miss(const sd_app *app, const sd_request *req, const sd_response *resp)
{
	int unknown = resp->status == 404 &&
		      (resp->endpoint == SD_EP_LOAD || resp->endpoint == SD_EP_INSTANTIATE);
	if (unknown || resp->status == sd_err_status(SD_ERR_UNAUTHORIZED)) {
		sd_metrics_add(SD_M_MISSES, 1);
		sd_limit_miss(app->limit, req->remote_addr, sd_time_mono_ns());
	}
}

static void handle(const sd_app *app, const sd_request *req, sd_response *resp);

/* Pin the node's view (shard table, secrets) for the whole request: a
 * SIGHUP reload swaps in a new one without freeing this. Retry-After goes
 * on the final answer, by its status (err.c). */
void sd_http_handle(const sd_app *app, const sd_request *req, sd_response *resp)
{
	memset(resp, 0, sizeof *resp);
	resp->endpoint = SD_EP_OTHER;
	if (!app->node) {
		handle(app, req, resp);
	} else {
		sd_app a = *app;
		a.view = sd_node_pin(app->node);
		a.secret = &a.view->secret;
		a.previous = a.view->has_previous ? &a.view->previous : NULL;
		if (a.view->id[0])
			sd_response_header(resp, "X-Sessiond-Node: %s", a.view->id);
		handle(&a, req, resp);
		sd_node_unpin(app->node, a.view);
	}
	int retry_s = sd_status_retry_after(resp->status);
	if (retry_s)
		sd_response_header(resp, "Retry-After: %d", retry_s);
}

static void handle(const sd_app *app, const sd_request *req, sd_response *resp)
{
	const struct route *rt = NULL;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (req->path && strcmp(req->path, routes[i].path) == 0)
			rt = &routes[i];
	if (!rt) {
		add_cors(app, req, resp, 0);
		if (!over_miss_limit(app, req, resp))
			set_error(resp, SD_ERR_NOT_FOUND, "No such endpoint.", NULL);
		return;
	}
	resp->endpoint = rt->ep;
	const char *m = req->method ? req->method : "";
	int is_get = strcmp(rt->method, "GET") == 0;
	if (strcmp(m, "OPTIONS") == 0) {
		resp->status = 204;
		sd_response_header(resp, "Allow: %s, OPTIONS", is_get ? "GET, HEAD" : rt->method);
		add_cors(app, req, resp, 1);
		return;
	}
	add_cors(app, req, resp, 0);
	if (over_miss_limit(app, req, resp))
		return;
	if (strcmp(m, rt->method) != 0 && !(is_get && strcmp(m, "HEAD") == 0)) {
		sd_response_header(resp, "Allow: %s, OPTIONS", is_get ? "GET, HEAD" : rt->method);
		set_error(resp, SD_ERR_METHOD, NULL, NULL);
		return;
	}
	if (origin_forbidden(app, req)) {
		set_error(resp, SD_ERR_FORBIDDEN, NULL, NULL);
		return;
	}
	if (req->body_too_large) {
		set_error(resp, SD_ERR_TOO_LARGE, NULL, NULL);
		return;
	}
	if (req->body_unreadable) {
		set_error(resp, SD_ERR_INTERNAL, NULL, NULL);
		return;
	}
	if (rt->has_body && req->body_len > 0 && !media_ok(req->content_type)) {
		set_error(resp, SD_ERR_MEDIA_TYPE, NULL, NULL);
		return;
	}
	sd_mem_begin(sd_mem_budget(app->cfg->max_body));
	rt->fn(app, req, resp);
	sd_mem_end();
	count_miss(app, req, resp);
}
