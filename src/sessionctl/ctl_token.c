/* ctl_token.c: sessionctl token KEY, the session's tokens, so support can
 * re-issue a lost edit link. Needs the server secret (read, never made). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_ctl.h"
#include "sd_layout.h"
#include "sd_token.h"

static int set_secret(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	(void)c;
	(void)ch;
	*(const char **)ctx = arg;
	return CTL_OK;
}

int ctl_token(sd_ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"secret-file", required_argument, 0, 's'},
		{"json", no_argument, 0, 'j'},
		{0, 0, 0, 0},
	};
	const char *secret_file = getenv("SESSIOND_SECRET_FILE");
	int st = ctl_options(c, argc, argv, opts, set_secret, &secret_file);
	if (st != CTL_OK)
		return st;
	if (optind != argc - 1)
		return ctl_usage_error(c, optind >= argc ? "which session? give its KEY"
							 : "give one KEY, not several");
	char key[SD_KEY_LEN + 1], msg[SD_MSG_MAX], path[SD_PATH_MAX];
	if (sd_key_normalize(argv[optind], strlen(argv[optind]), key) != SD_OK)
		return ctl_usage_error(c, "'%s' is not a key (8 letters or digits)", argv[optind]);
	st = ctl_open(c, 0);
	if (st != CTL_OK)
		return st;
	if (secret_file && *secret_file)
		snprintf(path, sizeof path, "%s", secret_file);
	else
		snprintf(path, sizeof path, "%s/secret", c->data_dir);
	sd_secret secret;
	if (sodium_init() < 0 || sd_secret_load(path, 0, &secret, msg) != SD_OK) {
		ctl_warn(c, "%s", msg);
		return CTL_PROBLEMS;
	}
	json_t *doc;
	sd_error er;
	sd_err e = ctl_load(c, key, &doc, NULL, &er);
	json_decref(doc);
	if (e == SD_ERR_NOT_FOUND) { /* a token for no session helps nobody */
		sodium_memzero(&secret, sizeof secret);
		ctl_warn(c, "%s", er.msg);
		return CTL_PROBLEMS;
	}
	char w[SD_TOKEN_LEN + 1], r[SD_TOKEN_LEN + 1];
	sd_token_derive(&secret, SD_TOKEN_WRITE, key, w);
	sd_token_derive(&secret, SD_TOKEN_READ, key, r);
	sodium_memzero(&secret, sizeof secret);
	if (c->json)
		st = ctl_print_json(json_pack("{s:s, s:s, s:s}", "key", key, "token", w, "read_token", r)) ? CTL_PROBLEMS
														  : CTL_OK;
	else
		printf("key         %s\ntoken       %s\nread_token  %s\n", key, w, r);
	return ctl_finish(c, st);
}
