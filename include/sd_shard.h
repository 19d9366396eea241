/* sd_shard: the shard table, the one file that says which node owns each
 * key bucket and whether the bucket is frozen for a move.
 *
 * A key's bucket is its first two characters, upper-cased (the fan-out
 * folder sessions/XY/): 36*36 = 1296 buckets, index 36*pos(c0)+pos(c1) in
 * SD_KEY_ALPHABET order. The file is text, one item per line, '#' starts a
 * comment, blank lines are ignored:
 *     generation N          unsigned integer, exactly once
 *     node NAME ADDRESS     NAME [a-z0-9_-]{1,32}; ADDRESS host:port or unix:/path
 *     XY NAME STATE         every bucket exactly once, upper case;
 *                           NAME a declared node; STATE owned|frozen
 * A table is immutable once loaded; reloading means loading a new one. */
#ifndef SD_SHARD_H
#define SD_SHARD_H

#include <stddef.h>
#include "sd_err.h"

#define SD_BUCKETS 1296
#define SD_SHARD_NODE_MAX 32    /* longest node name */
#define SD_SHARD_NODES_MAX 256  /* most nodes one table declares */

typedef enum { SD_BUCKET_OWNED = 0, SD_BUCKET_FROZEN } sd_bucket_state;
typedef struct sd_shard sd_shard;

/* Parse the table at path. On failure *out is NULL, msg names the file and
 * line, and the result is SD_ERR_BAD_REQUEST (or SD_ERR_INTERNAL when the
 * file cannot be read or memory runs out). */
sd_err sd_shard_load(const char *path, sd_shard **out, char msg[SD_MSG_MAX]);
void sd_shard_free(sd_shard *t);

/* The bucket of a key: its first 2 chars, any case; -1 if not in the alphabet. */
int sd_bucket_index(const char *key);
/* The two upper-case characters of bucket (0 <= bucket < SD_BUCKETS) and a
 * NUL: the fan-out folder's name, sd_layout_fan_name (sd_layout.h). */
void sd_bucket_name(int bucket, char out[3]);

const char *sd_shard_owner(const sd_shard *t, int bucket);
sd_bucket_state sd_shard_state(const sd_shard *t, int bucket);
unsigned long sd_shard_generation(const sd_shard *t);
/* The address of a declared node; NULL if undeclared. */
const char *sd_shard_node_addr(const sd_shard *t, const char *node);
/* Declared nodes, in file order: count, and the name of the i-th. */
size_t sd_shard_node_count(const sd_shard *t);
const char *sd_shard_node_name(const sd_shard *t, size_t i);
/* Buckets node owns (any state), and how many of them are frozen. */
int sd_shard_owned_count(const sd_shard *t, const char *node, int *frozen);

#endif
