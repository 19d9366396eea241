/* test_token.c: write and read capabilities (sd_token) and the server
 * secret file.
 *
 * - derivation: 43 characters of base64url without padding, 32 bytes
 *   (256 bits) of keyed BLAKE2b over "sessiond-write-v1:" / "sessiond-read-v1:"
 *   + KEY, checked against libsodium's one-shot hash; the same secret read
 *   again (a restart) gives the same tokens, another secret other ones;
 * - sd_token_check: the right token passes, a wrong, short or long one and
 *   the read token for a write do not, and the comparison goes through
 *   sodium_memcmp (this file defines it, counting calls: the static
 *   library's references bind to it);
 * - the secret file: created mode 0600, 32 bytes; a group/world-readable
 *   file, a file of the wrong size, a symlink and a missing file (without
 *   create) are refused; many processes starting at once agree on one
 *   secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <sys/wait.h>
#include "sd_test_util.h"
#include "sd_token.h"

static int memcmp_calls;

/* Stands in for libsodium's: counts calls, and compares without an early
 * exit as the real one does. */
int sodium_memcmp(const void *const b1_, const void *const b2_, size_t len)
{
	const volatile unsigned char *a = b1_, *b = b2_;
	unsigned char d = 0;
	memcmp_calls++;
	for (size_t i = 0; i < len; i++)
		d |= a[i] ^ b[i];
	return d ? -1 : 0;
}

static char *dir;
static char path[512];

static int setup(void **state)
{
	(void)state;
	dir = sdt_mkdtemp("token");
	if (!dir)
		return -1;
	snprintf(path, sizeof path, "%s/secret", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sdt_rm_rf(dir);
	free(dir);
	return 0;
}

static void load_new(sd_secret *s)
{
	char msg[SD_MSG_MAX] = "";
	assert_int_equal(sd_secret_load(path, 1, s, msg), SD_OK);
}

static void test_tokens_are_the_keyed_hash_in_43_base64url_characters(void **state)
{
	(void)state;
	sd_secret s;
	load_new(&s);
	char t[SD_TOKEN_LEN + 1];
	sd_token_derive(&s, SD_TOKEN_WRITE, "ABCDEFGH", t);
	assert_int_equal(strlen(t), 43);
	for (const char *p = t; *p; p++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
	unsigned char raw[64];
	size_t n = 0;
	assert_int_equal(sodium_base642bin(raw, sizeof raw, t, strlen(t), NULL, &n, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	assert_true(n * 8 >= 128);
	assert_int_equal(n, 32);
	/* The shared contract, computed independently. */
	unsigned char want[32];
	const char *msg = "sessiond-write-v1:ABCDEFGH";
	crypto_generichash(want, sizeof want, (const unsigned char *)msg, strlen(msg), s.k, sizeof s.k);
	assert_memory_equal(raw, want, 32);
	msg = "sessiond-read-v1:ABCDEFGH";
	crypto_generichash(want, sizeof want, (const unsigned char *)msg, strlen(msg), s.k, sizeof s.k);
	sd_token_derive(&s, SD_TOKEN_READ, "ABCDEFGH", t);
	assert_int_equal(sodium_base642bin(raw, sizeof raw, t, strlen(t), NULL, &n, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	assert_memory_equal(raw, want, 32);
}

static void test_tokens_survive_a_restart_and_change_with_the_secret(void **state)
{
	(void)state;
	sd_secret a, again, other;
	char msg[SD_MSG_MAX];
	load_new(&a);
	assert_int_equal(sd_secret_load(path, 0, &again, msg), SD_OK); /* a restart */
	char t1[SD_TOKEN_LEN + 1], t2[SD_TOKEN_LEN + 1], t3[SD_TOKEN_LEN + 1];
	sd_token_derive(&a, SD_TOKEN_WRITE, "KEY00001", t1);
	sd_token_derive(&again, SD_TOKEN_WRITE, "KEY00001", t2);
	assert_string_equal(t1, t2);
	/* a new secret (rotation) */
	unlink(path);
	load_new(&other);
	assert_memory_not_equal(a.k, other.k, SD_SECRET_LEN);
	sd_token_derive(&other, SD_TOKEN_WRITE, "KEY00001", t3);
	assert_string_not_equal(t1, t3);
	/* another key, the other kind */
	sd_token_derive(&a, SD_TOKEN_WRITE, "KEY00002", t2);
	assert_string_not_equal(t1, t2);
	sd_token_derive(&a, SD_TOKEN_READ, "KEY00001", t2);
	assert_string_not_equal(t1, t2);
}

static void test_token_check_compares_in_constant_time(void **state)
{
	(void)state;
	sd_secret s;
	load_new(&s);
	char w[SD_TOKEN_LEN + 1], r[SD_TOKEN_LEN + 1];
	sd_token_derive(&s, SD_TOKEN_WRITE, "KEY00001", w);
	sd_token_derive(&s, SD_TOKEN_READ, "KEY00001", r);
	memcmp_calls = 0;
	assert_true(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", w, strlen(w)));
	assert_int_equal(memcmp_calls, 1);
	char bad[SD_TOKEN_LEN + 1];
	memcpy(bad, w, sizeof bad);
	bad[SD_TOKEN_LEN - 1] = bad[SD_TOKEN_LEN - 1] == 'A' ? 'B' : 'A'; /* differs in the last byte only */
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", bad, strlen(bad)));
	assert_int_equal(memcmp_calls, 2);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", bad, strlen(bad)));
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", r, strlen(r)));   /* read is not write */
	assert_true(sd_token_check(&s, SD_TOKEN_READ, "KEY00001", r, strlen(r)));
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00002", w, strlen(w)));   /* another session's */
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", w, strlen(w) - 1)); /* a prefix */
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", "", 0));
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", NULL, 0));
	char longer[SD_TOKEN_LEN + 2];
	snprintf(longer, sizeof longer, "%sA", w);
	assert_false(sd_token_check(&s, SD_TOKEN_WRITE, "KEY00001", longer, strlen(longer)));
}

static void test_secret_file_is_created_0600_and_checked_on_load(void **state)
{
	(void)state;
	sd_secret s;
	char msg[SD_MSG_MAX];
	assert_int_equal(sd_secret_load(path, 0, &s, msg), SD_ERR_NOT_FOUND);
	load_new(&s);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SD_SECRET_LEN);
	chmod(path, 0640);
	assert_int_equal(sd_secret_load(path, 1, &s, msg), SD_ERR_BAD_SECRET);
	assert_non_null(strstr(msg, "chmod 600"));
	chmod(path, 0604);
	assert_int_equal(sd_secret_load(path, 1, &s, msg), SD_ERR_BAD_SECRET);
	chmod(path, 0600);
	FILE *f = fopen(path, "a");
	fputc('x', f);
	fclose(f);
	assert_int_equal(sd_secret_load(path, 1, &s, msg), SD_ERR_BAD_SECRET);
	assert_non_null(strstr(msg, "33 bytes"));
	char link_path[600];
	snprintf(link_path, sizeof link_path, "%s/link", dir);
	truncate(path, SD_SECRET_LEN);
	assert_int_equal(symlink(path, link_path), 0);
	assert_int_not_equal(sd_secret_load(link_path, 1, &s, msg), SD_OK);
}

/* Many processes start at once on a fresh data dir: all must end up with
 * one secret, and none may read a half-written file. Seen failing with the
 * creation replaced by open(O_CREAT | O_TRUNC) + write: processes got
 * different secrets, or "holds 0 bytes". */
static void test_processes_starting_at_once_share_one_secret(void **state)
{
	(void)state;
	enum { PROCS = 8 };
	int rounds = sdt_under_valgrind() ? 3 : 20; /* valgrind serialises: a few rounds check leaks */
	for (int round = 0; round < rounds; round++) {
		unlink(path);
		int fds[PROCS][2];
		pid_t pids[PROCS];
		for (int i = 0; i < PROCS; i++) {
			assert_int_equal(pipe(fds[i]), 0);
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				sd_secret s;
				char msg[SD_MSG_MAX];
				int ok = sd_secret_load(path, 1, &s, msg) == SD_OK;
				unsigned char out[SD_SECRET_LEN + 1] = {(unsigned char)ok};
				memcpy(out + 1, s.k, SD_SECRET_LEN);
				_exit(write(fds[i][1], out, sizeof out) == (ssize_t)sizeof out ? 0 : 1);
			}
			close(fds[i][1]);
		}
		unsigned char first[SD_SECRET_LEN + 1];
		for (int i = 0; i < PROCS; i++) {
			unsigned char got[SD_SECRET_LEN + 1];
			assert_int_equal(read(fds[i][0], got, sizeof got), sizeof got);
			close(fds[i][0]);
			int st;
			waitpid(pids[i], &st, 0);
			assert_int_equal(got[0], 1);
			if (i == 0)
				memcpy(first, got, sizeof got);
			else
				assert_memory_equal(got, first, sizeof got);
		}
		sd_secret s;
		char msg[SD_MSG_MAX];
		assert_int_equal(sd_secret_load(path, 0, &s, msg), SD_OK);
		assert_memory_equal(s.k, first + 1, SD_SECRET_LEN);
	}
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tokens_are_the_keyed_hash_in_43_base64url_characters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_survive_a_restart_and_change_with_the_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_check_compares_in_constant_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_file_is_created_0600_and_checked_on_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_processes_starting_at_once_share_one_secret, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
