/* sd_http: HTTP semantics, independent of FastCGI. A plain request comes in
 * (method, path, query, headers we care about, body); routing picks the
 * handler, checks method and media type, evaluates conditional headers,
 * adds CORS, and turns every sd_err into a status and a JSON error body in
 * one place. The FastCGI loop (fcgi.c) only fills sd_request and writes
 * sd_response. */
#ifndef SD_HTTP_H
#define SD_HTTP_H

#include <stddef.h>
#include "sd_config.h"
#include "sd_metrics.h"
#include "sd_limit.h"
#include "sd_node.h"
#include "sd_store.h"
#include "sd_token.h"

typedef struct sd_request {
	const char *method;         /* "GET", "POST", ... */
	const char *path;           /* without the query string */
	const char *query;          /* after '?', may be NULL */
	const char *content_type;   /* may be NULL */
	const char *if_match;       /* may be NULL */
	const char *if_none_match;  /* may be NULL */
	const char *origin;         /* may be NULL */
	const char *authorization;  /* the Authorization header, may be NULL */
	const char *host;           /* the Host header, may be NULL */
	const char *scheme;         /* "http" or "https" as nginx saw it; NULL: unknown */
	const char *remote_addr;    /* the client address (REMOTE_ADDR), may be NULL */
	const char *body;           /* may be NULL when body_len is 0 */
	size_t body_len;
	int body_too_large;         /* Content-Length exceeded --max-body: body not read */
	int body_unreadable;        /* the body could not be read (out of memory) */
} sd_request;

#define SD_HDR_MAX 1024

typedef struct sd_response {
	int status;
	char headers[SD_HDR_MAX];   /* extra header lines, each ending "\r\n" */
	size_t headers_len;
	const char *content_type;   /* NULL: application/json */
	char *body;                 /* malloc'd, may be NULL (204, 304) */
	size_t body_len;
	sd_endpoint endpoint;       /* for metrics */
} sd_response;

typedef struct sd_app {
	sd_store *store;
	const sd_config *cfg;
	const sd_secret *secret;    /* tokens derive from it */
	const sd_secret *previous;  /* tokens made with it still verify; NULL: none */
	sd_limit *limit;            /* the miss limit; NULL: off */
	sd_node *node;              /* shard table and secrets; NULL: tests' fixed secret */
	const sd_node_view *view;   /* set by sd_http_handle: node's view, pinned
				       for this request (NULL: single node) */
} sd_app;

/* What a keyed request needs the client to hold. */
typedef enum { SD_NEED_READ = 0, SD_NEED_WRITE } sd_need;

/* The one authorization of every keyed operation: SD_OK when the request
 * may do need on the session key under --access, SD_ERR_UNAUTHORIZED
 * otherwise (missing and wrong tokens alike). The token comes from
 * "Authorization: Bearer T" or, when the body had one, body_token. */
sd_err sd_http_authorize(const sd_app *app, const sd_request *req, const char *key, sd_need need,
			 const char *body_token, size_t body_token_len);

/* Handle one request. Always fills resp; release with sd_response_free. */
void sd_http_handle(const sd_app *app, const sd_request *req, sd_response *resp);
void sd_response_free(sd_response *r);

/* Append a header line ("Name: value") to resp. Returns 0, or -1 if full. */
int sd_response_header(sd_response *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reason phrase for a status code. */
const char *sd_http_reason(int status);

#endif
