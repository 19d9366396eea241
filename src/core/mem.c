/* mem.c: the per-request memory budget for jansson. Sizes come from
 * malloc_usable_size, so no header is added and memory jansson hands out
 * stays ordinary malloc memory. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>
#include "sd_mem.h"

/* What glibc keeps beside each block. */
#define OVERHEAD 8
/* A request that held more than this returns its memory to the system. */
#define TRIM_ABOVE (1024 * 1024)
/* Every request may hold this much whatever the pool says, so that small
 * requests, and error answers, never fail for others' sake. */
#define FLOOR (64 * 1024)

static size_t pool_max;
static size_t pool_used; /* atomic */

static __thread int active;
static __thread size_t budget, used, peak;
static __thread sd_mem_state state;
/* While a parse holds a reservation (sd_mem_reserve): its size, already
 * added to pool_used, and what the parse allocated and freed meanwhile,
 * which reach pool_used when the reservation is released. */
static __thread size_t resv, resv_got, resv_gave;
static __thread int reserving;

static void *counted_malloc(size_t n)
{
	if (active && !reserving) {
		size_t want = n + OVERHEAD;
		if (used + want > budget) {
			if (!state)
				state = SD_MEM_OVER_REQUEST;
			return NULL;
		}
		if (pool_max && used + want > FLOOR && __atomic_load_n(&pool_used, __ATOMIC_RELAXED) + want > pool_max) {
			if (!state)
				state = SD_MEM_OVER_POOL;
			return NULL;
		}
	}
	void *p = malloc(n);
	if (!p)
		return NULL;
	size_t sz = malloc_usable_size(p) + OVERHEAD;
	if (reserving)
		resv_got += sz;
	else
		__atomic_add_fetch(&pool_used, sz, __ATOMIC_RELAXED);
	if (active) {
		used += sz;
		if (used > peak)
			peak = used;
	}
	return p;
}

static void counted_free(void *p)
{
	if (!p)
		return;
	size_t sz = malloc_usable_size(p) + OVERHEAD;
	if (reserving)
		resv_gave += sz;
	else
		__atomic_sub_fetch(&pool_used, sz, __ATOMIC_RELAXED);
	if (active)
		used = used > sz ? used - sz : 0;
	free(p);
}

void sd_mem_install(size_t pool)
{
	pool_max = pool;
	json_set_alloc_funcs(counted_malloc, counted_free);
}

void sd_mem_begin(size_t b)
{
	active = 1;
	budget = b;
	used = peak = 0;
	state = SD_MEM_OK;
}

/* Set when a request held more than TRIM_ABOVE since the last trim. */
static int dirty;

int sd_mem_reserve(size_t bound)
{
	if (!active)
		return 0; /* outside a request nothing is refused */
	if (reserving)
		sd_mem_release();
	if (bound > budget || used + bound > budget) { /* (no overflow) */
		if (!state)
			state = SD_MEM_OVER_REQUEST;
		return -1;
	}
	/* Take it from the pool first, then look: two requests reserving at
	 * once cannot both pass on the same room. */
	size_t now = __atomic_add_fetch(&pool_used, bound, __ATOMIC_RELAXED);
	if (pool_max && used + bound > FLOOR && now > pool_max) {
		__atomic_sub_fetch(&pool_used, bound, __ATOMIC_RELAXED);
		if (!state)
			state = SD_MEM_OVER_POOL;
		return -1;
	}
	resv = bound;
	resv_got = resv_gave = 0;
	reserving = 1;
	return 0;
}

void sd_mem_release(void)
{
	if (!reserving)
		return;
	reserving = 0;
	/* Add before taking away: pool_used never wraps below zero. */
	__atomic_add_fetch(&pool_used, resv_got, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&pool_used, resv + resv_gave, __ATOMIC_RELAXED);
	resv = resv_got = resv_gave = 0;
}

size_t sd_mem_end(void)
{
	sd_mem_release();
	size_t p = peak;
	active = 0;
	if (p > TRIM_ABOVE)
		__atomic_store_n(&dirty, 1, __ATOMIC_RELAXED);
	/* Trim once the large requests are over (the process holds little
	 * again), whichever request ends last: its own peak may be small. */
	if (__atomic_load_n(&pool_used, __ATOMIC_RELAXED) < 4 * TRIM_ABOVE &&
	    __atomic_exchange_n(&dirty, 0, __ATOMIC_RELAXED))
		malloc_trim(0);
	return p;
}

sd_mem_state sd_mem_exceeded(void) { return active ? state : SD_MEM_OK; }

sd_err sd_mem_error(sd_err otherwise)
{
	switch (sd_mem_exceeded()) {
	case SD_MEM_OVER_REQUEST: return SD_ERR_TOO_LARGE;
	case SD_MEM_OVER_POOL: return SD_ERR_BUSY;
	default: return otherwise;
	}
}

const char *sd_mem_message(void)
{
	return sd_mem_exceeded() == SD_MEM_OVER_POOL
		       ? "The server is busy with other large requests; retry shortly."
		       : sd_mem_too_complex();
}

const char *sd_mem_too_complex(void)
{
	return "The body is too complex: its JSON needs more memory than one request may use.";
}

size_t sd_mem_in_use(void) { return __atomic_load_n(&pool_used, __ATOMIC_RELAXED); }

size_t sd_mem_budget(size_t max_body)
{
	size_t b = max_body * SD_MEM_PER_BODY_BYTE;
	return b < 4u * 1024 * 1024 ? 4u * 1024 * 1024 : b;
}

size_t sd_mem_pool(size_t max_body)
{
	size_t b = sd_mem_budget(max_body);
	return b > SD_MEM_POOL_MIN ? b : SD_MEM_POOL_MIN;
}
