/* node.c: this node's view of the cluster, loaded at start and on SIGHUP,
 * pinned by each request (see sd_node.h). */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_log.h"
#include "sd_node.h"

/* A view and its reference count: one for being current, one per request
 * that pinned it. */
typedef struct view {
	sd_node_view v;              /* first: a pinned pointer is this struct */
	sd_shard *table;
	char id[SD_SHARD_NODE_MAX + 1];
	atomic_int refs;
} view;

struct sd_node {
	pthread_mutex_t mu;          /* guards cur against a swap while pinning */
	view *cur;
	char *shard_table, *node_id, *secret_file, *previous_secret_file;
};

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

void sd_node_key_id(const sd_secret *s, char out[SD_KEY_ID_LEN + 1])
{
	static const char label[] = "sessiond-key-id-v1";
	unsigned char h[16];
	crypto_generichash(h, sizeof h, (const unsigned char *)label, sizeof label - 1, s->k, sizeof s->k);
	sodium_bin2hex(out, SD_KEY_ID_LEN + 1, h, SD_KEY_ID_LEN / 2);
	sodium_memzero(h, sizeof h);
}

static void view_free(view *w)
{
	if (!w)
		return;
	sd_shard_free(w->table);
	sodium_memzero(w, sizeof *w);
	free(w);
}

/* A new view from n's paths; create: make the secret file when missing. */
static sd_err view_load(const sd_node *n, int create, view **out, char msg[SD_MSG_MAX])
{
	*out = NULL;
	view *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(msg, SD_MSG_MAX, "out of memory");
		return SD_ERR_INTERNAL;
	}
	atomic_init(&w->refs, 1);
	w->v.id = w->id;
	sd_err e = SD_OK;
	if (n->shard_table) {
		if (sd_shard_load(n->shard_table, &w->table, msg) != SD_OK)
			e = SD_ERR_BAD_CONFIG; /* unreadable or invalid: the operator's to fix */
		if (e == SD_OK && !sd_shard_node_addr(w->table, n->node_id)) {
			snprintf(msg, SD_MSG_MAX, "%s: no \"node %s ADDRESS\" line: --node-id must name a node the "
				 "table declares", n->shard_table, n->node_id);
			e = SD_ERR_BAD_CONFIG;
		}
		if (e == SD_OK) {
			snprintf(w->id, sizeof w->id, "%s", n->node_id);
			w->v.table = w->table;
			w->v.owned = sd_shard_owned_count(w->table, w->id, &w->v.frozen);
			for (int b = 0; b < SD_BUCKETS; b++)
				if (strcmp(sd_shard_owner(w->table, b), w->id) == 0 &&
				    sd_shard_state(w->table, b) == SD_BUCKET_OWNED)
					w->v.draw[w->v.ndraw++] = (uint16_t)b;
		}
	} else {
		w->v.owned = SD_BUCKETS;
	}
	if (e == SD_OK)
		e = sd_secret_load(n->secret_file, create, &w->v.secret, msg);
	if (e == SD_OK && n->previous_secret_file) {
		e = sd_secret_load(n->previous_secret_file, 0, &w->v.previous, msg);
		w->v.has_previous = e == SD_OK;
		if (e == SD_ERR_NOT_FOUND) /* no rotation under way (or it ended) */
			e = SD_OK;
	}
	if (e != SD_OK) {
		view_free(w);
		return e == SD_ERR_NOT_FOUND ? SD_ERR_BAD_CONFIG : e;
	}
	sd_node_key_id(&w->v.secret, w->v.key_id);
	if (w->v.has_previous) {
		sd_node_key_id(&w->v.previous, w->v.previous_key_id);
		if (strcmp(w->v.key_id, w->v.previous_key_id) == 0)
			sd_log_warn("the previous secret is the current one (key id %s): nothing is being rotated",
				    w->v.key_id);
	}
	*out = w;
	return SD_OK;
}

sd_err sd_node_open(const sd_node_opts *opts, sd_node **out, char msg[SD_MSG_MAX])
{
	*out = NULL;
	sd_node *n = calloc(1, sizeof *n);
	if (!n) {
		snprintf(msg, SD_MSG_MAX, "out of memory");
		return SD_ERR_INTERNAL;
	}
	pthread_mutex_init(&n->mu, NULL);
	n->shard_table = dup_or_null(opts->shard_table);
	n->node_id = dup_or_null(opts->node_id);
	n->secret_file = dup_or_null(opts->secret_file);
	n->previous_secret_file = dup_or_null(opts->previous_secret_file);
	sd_err e = SD_OK;
	if (!n->secret_file || (opts->shard_table && *opts->shard_table && !n->node_id) ||
	    (opts->previous_secret_file && *opts->previous_secret_file && !n->previous_secret_file)) {
		snprintf(msg, SD_MSG_MAX, "out of memory, or a shard table without a node id");
		e = SD_ERR_INTERNAL;
	}
	if (e == SD_OK)
		e = view_load(n, 1, &n->cur, msg);
	if (e != SD_OK) {
		sd_node_close(n);
		return e;
	}
	*out = n;
	return SD_OK;
}

sd_err sd_node_reload(sd_node *n, char msg[SD_MSG_MAX])
{
	view *w;
	sd_err e = view_load(n, 0, &w, msg);
	if (e != SD_OK)
		return e;
	pthread_mutex_lock(&n->mu);
	view *old = n->cur;
	n->cur = w;
	pthread_mutex_unlock(&n->mu);
	sd_node_unpin(n, &old->v); /* the reference "current" held */
	return SD_OK;
}

void sd_node_close(sd_node *n)
{
	if (!n)
		return;
	if (n->cur)
		sd_node_unpin(n, &n->cur->v);
	pthread_mutex_destroy(&n->mu);
	free(n->shard_table);
	free(n->node_id);
	free(n->secret_file);
	free(n->previous_secret_file);
	free(n);
}

const sd_node_view *sd_node_pin(sd_node *n)
{
	pthread_mutex_lock(&n->mu);
	view *w = n->cur;
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&n->mu);
	return &w->v;
}

void sd_node_unpin(sd_node *n, const sd_node_view *v)
{
	(void)n;
	view *w = (view *)v; /* v is the first member of its view */
	if (w && atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
		view_free(w);
}

sd_err sd_node_route(const sd_node_view *v, const char *key, int write)
{
	if (!v || !v->table)
		return SD_OK;
	int b = sd_bucket_index(key);
	if (b < 0 || strcmp(sd_shard_owner(v->table, b), v->id) != 0)
		return SD_ERR_MISDIRECTED;
	if (write && sd_shard_state(v->table, b) == SD_BUCKET_FROZEN)
		return SD_ERR_FROZEN;
	return SD_OK;
}

sd_err sd_node_key_draw(const sd_node_view *v, sd_key_rng rng, void *ctx, sd_key_draw *out)
{
	*out = (sd_key_draw){.rng = rng, .ctx = ctx};
	if (!v || !v->table)
		return SD_OK;
	if (v->ndraw == 0)
		return v->owned ? SD_ERR_FROZEN : SD_ERR_MISDIRECTED;
	out->buckets = v->draw;
	out->nbuckets = v->ndraw;
	return SD_OK;
}
