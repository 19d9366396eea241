/* limit.c: the miss limit's bounded table of token buckets. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include "sd_limit.h"

typedef struct {
	char addr[SD_LIMIT_ADDR_MAX]; /* "" when free */
	double tokens;                /* misses left, up to burst */
	int64_t at_ns;                /* when tokens was last brought up to date */
} entry;

typedef struct {
	pthread_mutex_t mu;
	entry e[SD_LIMIT_WAYS];
} set;

struct sd_limit {
	double burst;
	double per_ns; /* refill per nanosecond */
	unsigned char hkey[crypto_shorthash_KEYBYTES];
	set sets[SD_LIMIT_SETS];
};

sd_err sd_limit_new(int per_minute, int burst, sd_limit **out)
{
	*out = NULL;
	if (per_minute <= 0)
		return SD_OK;
	sd_limit *l = calloc(1, sizeof *l);
	if (!l)
		return SD_ERR_INTERNAL;
	l->burst = burst > 0 ? burst : per_minute;
	l->per_ns = per_minute / 60e9;
	/* A keyed hash: an attacker cannot pick addresses that share a set. */
	randombytes_buf(l->hkey, sizeof l->hkey);
	for (int i = 0; i < SD_LIMIT_SETS; i++)
		pthread_mutex_init(&l->sets[i].mu, NULL);
	*out = l;
	return SD_OK;
}

void sd_limit_free(sd_limit *l)
{
	if (!l)
		return;
	for (int i = 0; i < SD_LIMIT_SETS; i++)
		pthread_mutex_destroy(&l->sets[i].mu);
	free(l);
}

/* The address as the table holds it (REMOTE_ADDR is at most 45 bytes;
 * anything longer is cut, the same way every time). */
static const char *norm(const char *addr, char buf[SD_LIMIT_ADDR_MAX])
{
	size_t n = strnlen(addr, SD_LIMIT_ADDR_MAX - 1);
	memcpy(buf, addr, n);
	buf[n] = '\0';
	return buf;
}

static set *set_of(sd_limit *l, const char *addr)
{
	uint64_t h;
	crypto_shorthash((unsigned char *)&h, (const unsigned char *)addr, strlen(addr), l->hkey);
	return &l->sets[h % SD_LIMIT_SETS];
}

static void refill(const sd_limit *l, entry *e, int64_t now_ns)
{
	if (now_ns > e->at_ns) {
		e->tokens += (double)(now_ns - e->at_ns) * l->per_ns;
		if (e->tokens > l->burst)
			e->tokens = l->burst;
		e->at_ns = now_ns;
	}
}

/* The entry of addr in s, NULL when it has none. */
static entry *find(set *s, const char *addr)
{
	for (int i = 0; i < SD_LIMIT_WAYS; i++)
		if (s->e[i].addr[0] && strcmp(s->e[i].addr, addr) == 0)
			return &s->e[i];
	return NULL;
}

int sd_limit_check(sd_limit *l, const char *addr, int64_t now_ns)
{
	if (!l || !addr || !*addr)
		return 0;
	char buf[SD_LIMIT_ADDR_MAX];
	addr = norm(addr, buf);
	set *s = set_of(l, addr);
	int wait_s = 0;
	pthread_mutex_lock(&s->mu);
	entry *e = find(s, addr);
	if (e) {
		refill(l, e, now_ns);
		if (e->tokens < 1.0) {
			double ns = (1.0 - e->tokens) / l->per_ns;
			wait_s = (int)(ns / 1e9) + 1; /* round up, and never 0 */
		}
	}
	pthread_mutex_unlock(&s->mu);
	return wait_s;
}

void sd_limit_miss(sd_limit *l, const char *addr, int64_t now_ns)
{
	if (!l || !addr || !*addr)
		return;
	char buf[SD_LIMIT_ADDR_MAX];
	addr = norm(addr, buf);
	set *s = set_of(l, addr);
	pthread_mutex_lock(&s->mu);
	entry *e = find(s, addr);
	if (!e) {
		/* A free way; else the fullest bucket (forgetting it loses the
		 * least), the one idle longest among equals. */
		entry *victim = NULL;
		for (int i = 0; i < SD_LIMIT_WAYS; i++) {
			entry *c = &s->e[i];
			if (!c->addr[0]) {
				victim = c;
				break;
			}
			refill(l, c, now_ns);
			if (!victim || c->tokens > victim->tokens ||
			    (c->tokens == victim->tokens && c->at_ns < victim->at_ns))
				victim = c;
		}
		e = victim;
		memcpy(e->addr, addr, strlen(addr) + 1);
		e->tokens = l->burst;
		e->at_ns = now_ns;
	}
	refill(l, e, now_ns);
	e->tokens -= 1.0;
	if (e->tokens < 0)
		e->tokens = 0;
	pthread_mutex_unlock(&s->mu);
}

int sd_limit_entries(sd_limit *l)
{
	if (!l)
		return 0;
	int n = 0;
	for (int i = 0; i < SD_LIMIT_SETS; i++) {
		pthread_mutex_lock(&l->sets[i].mu);
		for (int j = 0; j < SD_LIMIT_WAYS; j++)
			n += l->sets[i].e[j].addr[0] != 0;
		pthread_mutex_unlock(&l->sets[i].mu);
	}
	return n;
}
