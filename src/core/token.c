/* token.c: the server secret and the capabilities derived from it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sd_layout.h"
#include "sd_token.h"

static const char *const domain[] = {
	[SD_TOKEN_WRITE] = "sessiond-write-v1:",
	[SD_TOKEN_READ] = "sessiond-read-v1:",
};

void sd_token_derive(const sd_secret *s, sd_token_kind kind, const char *key, char out[SD_TOKEN_LEN + 1])
{
	unsigned char mac[32];
	crypto_generichash_state st;
	crypto_generichash_init(&st, s->k, sizeof s->k, sizeof mac);
	crypto_generichash_update(&st, (const unsigned char *)domain[kind], strlen(domain[kind]));
	crypto_generichash_update(&st, (const unsigned char *)key, strlen(key));
	crypto_generichash_final(&st, mac, sizeof mac);
	sodium_bin2base64(out, SD_TOKEN_LEN + 1, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(mac, sizeof mac);
}

int sd_token_check(const sd_secret *s, sd_token_kind kind, const char *key, const char *presented, size_t len)
{
	if (!presented || len != SD_TOKEN_LEN) /* the length is public: every token has it */
		return 0;
	char want[SD_TOKEN_LEN + 1];
	sd_token_derive(s, kind, key, want);
	int same = sodium_memcmp(want, presented, SD_TOKEN_LEN) == 0;
	sodium_memzero(want, sizeof want);
	return same;
}

/* Make path with fresh random bytes unless it exists. The bytes reach disk
 * in a temporary file first; link(2) then names it only if the name is
 * free, so of two processes starting at once one creates and the other
 * reads that same secret. Returns 0, or -1 with errno. */
static int create_secret(const char *path)
{
	char tmp[SD_PATH_MAX], dir[SD_PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -1;
	unsigned char k[SD_SECRET_LEN];
	randombytes_buf(k, sizeof k);
	int ok = fchmod(fd, 0600) == 0 && write(fd, k, sizeof k) == (ssize_t)sizeof k && fsync(fd) == 0;
	int saved = errno;
	sodium_memzero(k, sizeof k);
	close(fd);
	if (ok && link(tmp, path) != 0) {
		saved = errno;
		ok = saved == EEXIST; /* another process won: use its secret */
	}
	unlink(tmp);
	if (!ok) {
		errno = saved;
		return -1;
	}
	snprintf(dir, sizeof dir, "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

sd_err sd_secret_load(const char *path, int create, sd_secret *out, char msg[SD_MSG_MAX])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && create) {
		if (create_secret(path) != 0) {
			snprintf(msg, SD_MSG_MAX, "cannot create the secret file %s: %s", path, strerror(errno));
			return SD_ERR_INTERNAL;
		}
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		int e = errno;
		snprintf(msg, SD_MSG_MAX, "cannot open the secret file %s: %s", path, strerror(e));
		return e == ENOENT ? SD_ERR_NOT_FOUND : SD_ERR_INTERNAL;
	}
	struct stat st;
	sd_err r = SD_OK;
	if (fstat(fd, &st) != 0) {
		snprintf(msg, SD_MSG_MAX, "cannot stat the secret file %s: %s", path, strerror(errno));
		r = SD_ERR_INTERNAL;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(msg, SD_MSG_MAX, "the secret file %s is not a regular file", path);
		r = SD_ERR_BAD_SECRET;
	} else if (st.st_mode & 077) {
		snprintf(msg, SD_MSG_MAX, "the secret file %s has mode %04o; it must be readable by its owner only "
			 "(chmod 600)", path, (unsigned)(st.st_mode & 07777));
		r = SD_ERR_BAD_SECRET;
	} else if (st.st_size != SD_SECRET_LEN) {
		snprintf(msg, SD_MSG_MAX, "the secret file %s holds %lld bytes; it must hold exactly %d random bytes",
			 path, (long long)st.st_size, SD_SECRET_LEN);
		r = SD_ERR_BAD_SECRET;
	} else if (read(fd, out->k, sizeof out->k) != (ssize_t)sizeof out->k) {
		snprintf(msg, SD_MSG_MAX, "cannot read the secret file %s", path);
		r = SD_ERR_INTERNAL;
	}
	close(fd);
	if (r != SD_OK)
		sodium_memzero(out, sizeof *out);
	return r;
}
