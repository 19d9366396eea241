/* sd_node: what this node is in a cluster, as of the last (re)load: the
 * shard table and this node's id (which buckets it serves, which are
 * frozen, where its new keys may start), and the secrets tokens verify
 * against (current and, during a rotation, previous).
 *
 * Everything is held in an immutable view. Worker threads pin the current
 * view for one request (sd_node_pin / sd_node_unpin); SIGHUP builds a new
 * view (sd_node_reload) and swaps it in; the old one is freed when its last
 * request unpins it. A reload that fails keeps the old view. */
#ifndef SD_NODE_H
#define SD_NODE_H

#include <stdint.h>
#include "sd_err.h"
#include "sd_key.h"
#include "sd_shard.h"
#include "sd_token.h"

#define SD_KEY_ID_LEN 12 /* hex characters of a secret's public id */

typedef struct sd_node_opts {
	const char *shard_table;     /* NULL or "": single node, every bucket */
	const char *node_id;         /* with shard_table: a node it declares */
	const char *secret_file;     /* created when missing (first start only) */
	const char *previous_secret_file; /* NULL, "", or a file that does not
					     exist: no rotation under way */
} sd_node_opts;

typedef struct sd_node_view {
	const sd_shard *table;       /* NULL: single node owning every bucket */
	const char *id;              /* this node's id, "" without a table */
	int owned, frozen;           /* buckets this node owns, of them frozen */
	uint16_t draw[SD_BUCKETS];   /* owned and not frozen: where new keys start */
	size_t ndraw;
	sd_secret secret;            /* tokens are issued with this one */
	sd_secret previous;          /* and also verified against this one */
	int has_previous;
	char key_id[SD_KEY_ID_LEN + 1];
	char previous_key_id[SD_KEY_ID_LEN + 1]; /* "" without a previous secret */
} sd_node_view;

typedef struct sd_node sd_node;

/* Load everything opts names. On failure msg has a one-line reason;
 * SD_ERR_BAD_REQUEST means bad content (a bad table, an undeclared node, a
 * secret file of the wrong shape), other errors an unreadable file. */
sd_err sd_node_open(const sd_node_opts *opts, sd_node **out, char msg[SD_MSG_MAX]);
/* Read the table and the secrets again (never creating a secret). On
 * failure the current view stays and msg says why. */
sd_err sd_node_reload(sd_node *n, char msg[SD_MSG_MAX]);
void sd_node_close(sd_node *n);

/* The current view, valid until sd_node_unpin; thread-safe. */
const sd_node_view *sd_node_pin(sd_node *n);
void sd_node_unpin(sd_node *n, const sd_node_view *v);

/* May this node serve key? SD_OK; SD_ERR_MISDIRECTED when another node owns
 * its bucket; for a write (write != 0), SD_ERR_FROZEN when the bucket is
 * frozen. A view without a table serves everything. */
sd_err sd_node_route(const sd_node_view *v, const char *key, int write);

/* Where instantiate draws keys on this view (rng NULL: libsodium): only in
 * buckets this node owns and that are not frozen. SD_ERR_FROZEN when it
 * owns buckets but all are frozen, SD_ERR_MISDIRECTED when it owns none. */
sd_err sd_node_key_draw(const sd_node_view *v, sd_key_rng rng, void *ctx, sd_key_draw *out);

/* The public id of a secret: hex of a keyed hash of a fixed label, so it
 * names the secret without revealing it or any token. */
void sd_node_key_id(const sd_secret *s, char out[SD_KEY_ID_LEN + 1]);

#endif
