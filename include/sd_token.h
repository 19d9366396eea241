/* sd_token: write and read capabilities. A session's tokens are derived
 * from its key and a server secret (a keyed BLAKE2b over a domain-separated
 * message), so nothing is stored per session and export/import keep them
 * valid. The secret is a 32-byte file, mode 0600, created at first start;
 * every process that serves the same data shares it. A new secret
 * invalidates every token. */
#ifndef SD_TOKEN_H
#define SD_TOKEN_H

#include <stddef.h>
#include "sd_err.h"

#define SD_SECRET_LEN 32
/* base64url without padding of 32 bytes: 256 bits in 43 characters. */
#define SD_TOKEN_LEN 43

typedef enum { SD_TOKEN_WRITE = 0, SD_TOKEN_READ } sd_token_kind;

typedef struct sd_secret {
	unsigned char k[SD_SECRET_LEN];
} sd_secret;

/* Read the secret file at path. With create, a missing file is made first
 * (random bytes, mode 0600, written to a temporary file that is fsynced and
 * then linked into place, so two processes starting at once agree on one
 * secret). A file that is not a regular file, is readable or writable by
 * group or others, or is not exactly SD_SECRET_LEN bytes is refused:
 * SD_ERR_BAD_SECRET with a one-line reason in msg. Other failures are
 * SD_ERR_NOT_FOUND (missing, without create) or SD_ERR_INTERNAL. */
sd_err sd_secret_load(const char *path, int create, sd_secret *out, char msg[SD_MSG_MAX]);

/* The token of kind for the canonical key: SD_TOKEN_LEN characters of
 * [A-Za-z0-9_-] and a NUL into out. */
void sd_token_derive(const sd_secret *s, sd_token_kind kind, const char *key, char out[SD_TOKEN_LEN + 1]);

/* 1 when presented (len bytes, not necessarily NUL-terminated) is the
 * token of kind for key; compared in constant time (sodium_memcmp). */
int sd_token_check(const sd_secret *s, sd_token_kind kind, const char *key, const char *presented, size_t len);

#endif
