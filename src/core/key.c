/* key.c: session keys, drawn with libsodium, validated and normalised. */
#include <sodium.h>
#include "sd_key.h"

static uint32_t sodium_rng(uint32_t upper, void *ctx)
{
	(void)ctx;
	return randombytes_uniform(upper);
}

void sd_key_generate(char out[SD_KEY_LEN + 1], sd_key_rng rng, void *ctx)
{
	if (!rng)
		rng = sodium_rng;
	for (int i = 0; i < SD_KEY_LEN; i++)
		out[i] = SD_KEY_ALPHABET[rng(SD_KEY_ALPHABET_LEN, ctx) % SD_KEY_ALPHABET_LEN];
	out[SD_KEY_LEN] = '\0';
}

void sd_key_draw_new(char out[SD_KEY_LEN + 1], const sd_key_draw *d)
{
	sd_key_rng rng = d && d->rng ? d->rng : sodium_rng;
	void *ctx = d ? d->ctx : NULL;
	if (!d || d->nbuckets == 0) {
		sd_key_generate(out, rng, ctx);
		return;
	}
	uint32_t n = (uint32_t)d->nbuckets;
	unsigned b = d->buckets[rng(n, ctx) % n] % (SD_KEY_ALPHABET_LEN * SD_KEY_ALPHABET_LEN);
	out[0] = SD_KEY_ALPHABET[b / SD_KEY_ALPHABET_LEN];
	out[1] = SD_KEY_ALPHABET[b % SD_KEY_ALPHABET_LEN];
	for (int i = 2; i < SD_KEY_LEN; i++)
		out[i] = SD_KEY_ALPHABET[rng(SD_KEY_ALPHABET_LEN, ctx) % SD_KEY_ALPHABET_LEN];
	out[SD_KEY_LEN] = '\0';
}

int sd_key_pos(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '0' && c <= '9')
		return c - '0' + 26;
	return -1;
}

/* A client's key character, upper-cased; -1 when it is none. */
static int key_char(unsigned char c)
{
	int u = (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
	return sd_key_pos(u) < 0 ? -1 : u;
}

sd_err sd_key_normalize(const char *in, size_t len, char out[SD_KEY_LEN + 1])
{
	if (!in || len != SD_KEY_LEN)
		return SD_ERR_BAD_KEY;
	for (size_t i = 0; i < SD_KEY_LEN; i++) {
		int c = key_char((unsigned char)in[i]);
		if (c < 0)
			return SD_ERR_BAD_KEY;
		out[i] = (char)c;
	}
	out[SD_KEY_LEN] = '\0';
	return SD_OK;
}

int sd_key_is_canonical(const char *s)
{
	for (int i = 0; i < SD_KEY_LEN; i++)
		if (sd_key_pos((unsigned char)s[i]) < 0)
			return 0;
	return s[SD_KEY_LEN] == '\0';
}
