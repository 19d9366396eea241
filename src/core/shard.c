/* shard.c: load and query the shard table (see include/sd_shard.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_layout.h"
#include "sd_shard.h"

#define LINE_MAX_LEN 1024 /* a longer line is an error, not a truncation */
#define ADDR_MAX 256

typedef struct shard_node {
	char name[SD_SHARD_NODE_MAX + 1];
	char addr[ADDR_MAX + 1];
} shard_node;

struct sd_shard {
	unsigned long generation;
	size_t nnodes;
	shard_node nodes[SD_SHARD_NODES_MAX];
	unsigned short owner[SD_BUCKETS]; /* index into nodes */
	unsigned char state[SD_BUCKETS];
};

int sd_bucket_index(const char *key) { return key ? sd_layout_pair_index(key, 1) : -1; }

void sd_bucket_name(int bucket, char out[3]) { sd_layout_fan_name(bucket, out); }

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > SD_SHARD_NODE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* host:port (port 1-65535, host non-empty) or unix:/absolute/path. */
static int valid_addr(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > ADDR_MAX)
		return 0;
	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && s[6] != '\0';
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || colon[1] == '\0')
		return 0;
	unsigned long port = 0;
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return 0;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}

static int parse_ulong(const char *s, unsigned long *out)
{
	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return 0;
	*out = v;
	return 1;
}

static int find_node(const sd_shard *t, const char *name)
{
	for (size_t i = 0; i < t->nnodes; i++)
		if (strcmp(t->nodes[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* What a file being parsed remembers until every node is known. */
typedef struct pending {
	unsigned line[SD_BUCKETS];                /* 0: not listed yet */
	char owner[SD_BUCKETS][SD_SHARD_NODE_MAX + 1];
} pending;

#define FAIL(...) do { snprintf(msg, SD_MSG_MAX, __VA_ARGS__); return 0; } while (0)

/* One line, already stripped of its comment, split into tok[0..ntok). */
static int parse_line(sd_shard *t, pending *pd, int *have_gen, const char *path, unsigned ln,
		      char **tok, int ntok, char msg[SD_MSG_MAX])
{
	if (strcmp(tok[0], "generation") == 0) {
		if (ntok != 2 || !parse_ulong(tok[1], &t->generation))
			FAIL("%s:%u: expected \"generation N\" with N an unsigned integer", path, ln);
		if ((*have_gen)++)
			FAIL("%s:%u: generation given twice", path, ln);
		return 1;
	}
	if (strcmp(tok[0], "node") == 0) {
		if (ntok != 3)
			FAIL("%s:%u: expected \"node NAME ADDRESS\"", path, ln);
		if (!valid_name(tok[1]))
			FAIL("%s:%u: node name must be 1 to %d of a-z 0-9 _ -", path, ln, SD_SHARD_NODE_MAX);
		if (!valid_addr(tok[2]))
			FAIL("%s:%u: node address must be host:port or unix:/path", path, ln);
		if (find_node(t, tok[1]) >= 0)
			FAIL("%s:%u: node %s declared twice", path, ln, tok[1]);
		if (t->nnodes == SD_SHARD_NODES_MAX)
			FAIL("%s:%u: more than %d nodes", path, ln, SD_SHARD_NODES_MAX);
		shard_node *n = &t->nodes[t->nnodes++];
		snprintf(n->name, sizeof n->name, "%s", tok[1]);
		snprintf(n->addr, sizeof n->addr, "%s", tok[2]);
		return 1;
	}
	const char *b = tok[0];
	int idx = strlen(b) == 2 ? sd_bucket_index(b) : -1;
	if (idx < 0)
		FAIL("%s:%u: expected \"generation\", \"node\" or a bucket (two of A-Z0-9), got \"%.40s\"", path, ln, b);
	if (b[0] >= 'a' || b[1] >= 'a') /* the alphabet's letters are upper case */
		FAIL("%s:%u: bucket %s must be upper case", path, ln, b);
	if (ntok != 3)
		FAIL("%s:%u: expected \"%s NODE owned|frozen\"", path, ln, b);
	if (pd->line[idx])
		FAIL("%s:%u: bucket %s listed twice (first on line %u)", path, ln, b, pd->line[idx]);
	if (!valid_name(tok[1]))
		FAIL("%s:%u: node name must be 1 to %d of a-z 0-9 _ -", path, ln, SD_SHARD_NODE_MAX);
	if (strcmp(tok[2], "owned") == 0)
		t->state[idx] = SD_BUCKET_OWNED;
	else if (strcmp(tok[2], "frozen") == 0)
		t->state[idx] = SD_BUCKET_FROZEN;
	else
		FAIL("%s:%u: bucket state must be owned or frozen, got \"%.40s\"", path, ln, tok[2]);
	pd->line[idx] = ln;
	snprintf(pd->owner[idx], sizeof pd->owner[idx], "%s", tok[1]);
	return 1;
}

/* After the last line: every bucket listed, every owner declared. */
static int resolve(sd_shard *t, const pending *pd, int have_gen, const char *path, char msg[SD_MSG_MAX])
{
	if (!have_gen)
		FAIL("%s: no \"generation N\" line", path);
	for (int i = 0; i < SD_BUCKETS; i++) {
		char name[3];
		sd_bucket_name(i, name);
		if (!pd->line[i])
			FAIL("%s: bucket %s is not listed (every one of the %d buckets needs a line)", path, name, SD_BUCKETS);
		int n = find_node(t, pd->owner[i]);
		if (n < 0)
			FAIL("%s:%u: bucket %s names node %s, which no \"node\" line declares", path, pd->line[i], name, pd->owner[i]);
		t->owner[i] = (unsigned short)n;
	}
	return 1;
}
#undef FAIL

static int parse_file(FILE *f, sd_shard *t, pending *pd, const char *path, char msg[SD_MSG_MAX])
{
	char buf[LINE_MAX_LEN + 2];
	unsigned ln = 0;
	int have_gen = 0;
	while (fgets(buf, sizeof buf, f)) {
		ln++;
		size_t len = strlen(buf);
		if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
			snprintf(msg, SD_MSG_MAX, "%s:%u: line longer than %d bytes", path, ln, LINE_MAX_LEN);
			return 0;
		}
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *tok[4], *save = NULL;
		int ntok = 0;
		for (char *p = strtok_r(buf, " \t\r\n", &save); p; p = strtok_r(NULL, " \t\r\n", &save)) {
			if (ntok == 4)
				break;
			tok[ntok++] = p;
		}
		if (ntok == 0)
			continue;
		if (!parse_line(t, pd, &have_gen, path, ln, tok, ntok, msg))
			return 0;
	}
	if (ferror(f)) {
		snprintf(msg, SD_MSG_MAX, "%s: read error: %s", path, strerror(errno));
		return 0;
	}
	return resolve(t, pd, have_gen, path, msg);
}

sd_err sd_shard_load(const char *path, sd_shard **out, char msg[SD_MSG_MAX])
{
	*out = NULL;
	msg[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(msg, SD_MSG_MAX, "%s: %s", path, strerror(errno));
		return SD_ERR_INTERNAL;
	}
	sd_shard *t = calloc(1, sizeof *t);
	pending *pd = calloc(1, sizeof *pd);
	if (!t || !pd) {
		fclose(f);
		free(t);
		free(pd);
		snprintf(msg, SD_MSG_MAX, "%s: out of memory", path);
		return SD_ERR_INTERNAL;
	}
	int ok = parse_file(f, t, pd, path, msg);
	fclose(f);
	free(pd);
	if (!ok) {
		free(t);
		return SD_ERR_BAD_CONFIG;
	}
	*out = t;
	return SD_OK;
}

void sd_shard_free(sd_shard *t) { free(t); }

const char *sd_shard_owner(const sd_shard *t, int bucket)
{
	if (!t || bucket < 0 || bucket >= SD_BUCKETS)
		return NULL;
	return t->nodes[t->owner[bucket]].name;
}

sd_bucket_state sd_shard_state(const sd_shard *t, int bucket)
{
	if (!t || bucket < 0 || bucket >= SD_BUCKETS)
		return SD_BUCKET_OWNED;
	return (sd_bucket_state)t->state[bucket];
}

unsigned long sd_shard_generation(const sd_shard *t) { return t ? t->generation : 0; }

const char *sd_shard_node_addr(const sd_shard *t, const char *node)
{
	int i = t && node ? find_node(t, node) : -1;
	return i < 0 ? NULL : t->nodes[i].addr;
}

size_t sd_shard_node_count(const sd_shard *t) { return t ? t->nnodes : 0; }

const char *sd_shard_node_name(const sd_shard *t, size_t i)
{
	return t && i < t->nnodes ? t->nodes[i].name : NULL;
}

int sd_shard_owned_count(const sd_shard *t, const char *node, int *frozen)
{
	int n = 0, fz = 0, idx = t && node ? find_node(t, node) : -1;
	if (idx >= 0)
		for (int i = 0; i < SD_BUCKETS; i++)
			if (t->owner[i] == idx) {
				n++;
				fz += t->state[i] == SD_BUCKET_FROZEN;
			}
	if (frozen)
		*frozen = fz;
	return n;
}
