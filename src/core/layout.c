/* layout.c: the names inside a data dir (see sd_layout.h). */
#include <stdio.h>
#include <string.h>
#include "sd_layout.h"

/* A key character's position, a-z as A-Z when fold. */
static int pos(unsigned char c, int fold)
{
	return sd_key_pos(fold && c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
}

int sd_layout_pair_index(const char *s, int fold)
{
	int a = pos((unsigned char)s[0], fold);
	int b = a < 0 ? -1 : pos((unsigned char)s[1], fold);
	return b < 0 ? -1 : a * SD_KEY_ALPHABET_LEN + b;
}

int sd_layout_fan_index(const char *name)
{
	int i = sd_layout_pair_index(name, 0);
	return i >= 0 && name[2] == '\0' ? i : -1; /* two characters read: name[2] is there */
}

void sd_layout_fan_name(int i, char out[3])
{
	out[0] = SD_KEY_ALPHABET[(i / SD_KEY_ALPHABET_LEN) % SD_KEY_ALPHABET_LEN];
	out[1] = SD_KEY_ALPHABET[i % SD_KEY_ALPHABET_LEN];
	out[2] = '\0';
}

/* 1 when name is prefix, a canonical key (in fan when fan is given), then
 * suffix, and nothing else; key (may be NULL) gets the key. */
static int key_between(const char *name, const char *prefix, const char *suffix, const char *fan,
		       char key[SD_KEY_LEN + 1])
{
	char k[SD_KEY_LEN + 1];
	size_t pl = strlen(prefix), el = strlen(suffix);
	if (strlen(name) != pl + SD_KEY_LEN + el || strncmp(name, prefix, pl) != 0 ||
	    strcmp(name + pl + SD_KEY_LEN, suffix) != 0)
		return 0;
	name += pl;
	memcpy(k, name, SD_KEY_LEN);
	k[SD_KEY_LEN] = '\0';
	if (!sd_key_is_canonical(k) || (fan && strncmp(k, fan, 2) != 0))
		return 0;
	if (key)
		memcpy(key, k, sizeof k);
	return 1;
}

int sd_layout_session_name(const char *name, const char *fan, char key[SD_KEY_LEN + 1])
{
	return key_between(name, "", SD_LAYOUT_SESSION_EXT, fan, key);
}

int sd_layout_spare_name(const char *name, const char *fan, char key[SD_KEY_LEN + 1])
{
	return key_between(name, ".", SD_LAYOUT_SPARE_SUFFIX, fan, key);
}

int sd_layout_is_temp(const char *name)
{
	size_t n = strlen(name), sl = strlen(SD_LAYOUT_TMP_SUFFIX);
	return name[0] == '.' && n > sl && strcmp(name + n - sl, SD_LAYOUT_TMP_SUFFIX) == 0;
}

void sd_layout_fan_dir(const char *sessions, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%.2s", sessions, key);
}

void sd_layout_session_path(const char *sessions, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%.2s/%s" SD_LAYOUT_SESSION_EXT, sessions, key, key);
}

void sd_layout_temp_template(const char *dir, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/.%s.XXXXXX" SD_LAYOUT_TMP_SUFFIX, dir, key);
}

void sd_layout_spare_path(const char *dir, const char *key, char *buf, size_t n)
{
	snprintf(buf, n, "%s/.%s" SD_LAYOUT_SPARE_SUFFIX, dir, key);
}
