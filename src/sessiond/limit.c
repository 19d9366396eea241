/* limit.c: the miss limit's bounded table of token buckets. Each bucket is
 * kept as one time, in integer nanoseconds (GCRA): tat, when the bucket
 * will be full again. A miss moves it on by one interval; the bucket is
 * empty when tat is more than (burst - 1) intervals ahead of now. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include "sd_limit.h"
#include "sd_time.h"

typedef struct {
	char addr[SD_LIMIT_ADDR_MAX]; /* "" when free */
	int64_t tat;                  /* when the bucket is full again */
} entry;

typedef struct {
	pthread_mutex_t mu;
	entry e[SD_LIMIT_WAYS];
} set;

struct sd_limit {
	int64_t interval; /* ns for one miss to refill */
	int64_t tau;      /* burst x interval */
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
	l->interval = 60000000000LL / per_minute;
	l->tau = (int64_t)(burst > 0 ? burst : per_minute) * l->interval;
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

/* How far ahead of now the bucket's full time is (0: full). */
static int64_t ahead(const entry *e, int64_t now_ns) { return e->tat > now_ns ? e->tat - now_ns : 0; }

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
		int64_t over = ahead(e, now_ns) - (l->tau - l->interval);
		if (over > 0) /* seconds until one miss has refilled, rounded up */
			wait_s = (int)((over + SD_NS_PER_S - 1) / SD_NS_PER_S);
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
		 * least), the one full for longest among equals. */
		entry *victim = NULL;
		for (int i = 0; i < SD_LIMIT_WAYS; i++) {
			entry *c = &s->e[i];
			if (!c->addr[0]) {
				victim = c;
				break;
			}
			if (!victim || ahead(c, now_ns) < ahead(victim, now_ns) ||
			    (ahead(c, now_ns) == ahead(victim, now_ns) && c->tat < victim->tat))
				victim = c;
		}
		e = victim;
		memcpy(e->addr, addr, strlen(addr) + 1);
		e->tat = now_ns;
	}
	int64_t from = e->tat > now_ns ? e->tat : now_ns;
	e->tat = from + l->interval;
	if (e->tat > now_ns + l->tau) /* never emptier than empty */
		e->tat = now_ns + l->tau;
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
