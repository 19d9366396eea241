/* sd_key: session keys. Eight characters over A-Z0-9, drawn on the server
 * with libsodium's randombytes_uniform (no modulo bias). Client keys are
 * validated and upper-cased here before anything touches the disk. */
#ifndef SD_KEY_H
#define SD_KEY_H

#include <stddef.h>
#include <stdint.h>
#include "sd_err.h"

#define SD_KEY_LEN 8
#define SD_KEY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define SD_KEY_ALPHABET_LEN 36

/* A source of uniform integers in [0, upper). NULL means libsodium's
 * randombytes_uniform; tests inject their own to force collisions. */
typedef uint32_t (*sd_key_rng)(uint32_t upper, void *ctx);

/* Write a fresh key and a NUL into out. */
void sd_key_generate(char out[SD_KEY_LEN + 1], sd_key_rng rng, void *ctx);

/* Where instantiate draws keys: rng (NULL: libsodium) and, when nbuckets
 * is not 0, the buckets a key may start in (bucket b: the characters
 * SD_KEY_ALPHABET[b / 36], SD_KEY_ALPHABET[b % 36]), e.g. those this node
 * owns and that are not frozen. */
typedef struct sd_key_draw {
	sd_key_rng rng;
	void *ctx;
	const uint16_t *buckets;
	size_t nbuckets;
} sd_key_draw;

/* A fresh key by d (NULL: sd_key_generate with libsodium): the bucket
 * uniformly among d->buckets (rng(nbuckets)), the other six characters as
 * sd_key_generate draws them. */
void sd_key_draw_new(char out[SD_KEY_LEN + 1], const sd_key_draw *d);

/* Validate len bytes of in as a key; on success write the upper-case form
 * and a NUL into out. Returns SD_OK or SD_ERR_BAD_KEY. */
sd_err sd_key_normalize(const char *in, size_t len, char out[SD_KEY_LEN + 1]);

/* 1 when s is exactly a normalised key (8 of A-Z0-9 then NUL). */
int sd_key_is_canonical(const char *s);

/* The one key character class: the position of c in SD_KEY_ALPHABET
 * (upper case only), -1 when c is not a key character. */
int sd_key_pos(int c);

#endif
