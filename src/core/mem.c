/* mem.c: the per-request memory budget for jansson, and the arena that
 * serves jansson's small allocations during a request.
 *
 * Counting. Every block is counted at its footprint: a block from malloc
 * at malloc_usable_size + 8 (glibc's header), a block from the arena at
 * the size glibc would give it when it splits a fresh chunk (the request
 * and an 8-byte header rounded up to 16, at least 32). So a request's
 * used/peak, and doc.c's bound (which allows 16 more a block), are what
 * they were with malloc alone.
 *
 * The arena. Inside a request (sd_mem_begin/end) a thread bump-allocates
 * blocks of up to SMALL bytes from its current chunk (CHUNK bytes), with
 * no lock and no free list: 28% of sessiond's CPU was glibc's malloc and
 * free (one arena, M_ARENA_MAX 1, so 32 workers wait on its lock), nearly
 * all of it jansson's nodes. Chunks are slots of one region of address
 * space reserved at sd_mem_install, so free() tells an arena block from a
 * malloc one by its address alone; each block carries its footprint in
 * the 8 bytes before it, as glibc does. Each chunk counts, atomically, the
 * bytes of its live blocks, so a block may be freed by any thread, at any
 * time:
 * - while the chunk is its thread's current one, that thread rewinds it
 *   once nothing in it is live (at sd_mem_end, the usual case, or when it
 *   is full), and keeps it for the next request: a steady state takes no
 *   lock and calls no malloc for small blocks;
 * - when it is full, or at sd_mem_end, with blocks still live, the thread
 *   retires it (and takes another when it needs one); a retired chunk goes
 *   back to the region when its last block is freed, by whichever thread.
 * What this holds beyond the blocks counted, and why it is bounded:
 * - a retired chunk is counted whole in the pool (sd_mem_in_use) from its
 *   retirement until it goes back: its freed blocks and unused tail are
 *   memory held, and the pool refuses requests for it as for live blocks;
 * - a current chunk holds at most CHUNK bytes beyond its live blocks
 *   (freed ones are reused only when it rewinds), not counted: at most one
 *   chunk a thread, CHUNK * threads in all (4 MiB at 32 threads);
 * - chunks back in the region keep their pages until the next trim (see
 *   sd_mem_end), like glibc's free memory; they are reused first.
 * Under AddressSanitizer freed blocks and unused chunk space are poisoned,
 * under valgrind each block is a heap block to memcheck, so use after free
 * and leaks in arena memory are reported as for malloc's. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <jansson.h>
#include "sd_mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define SD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SD_ASAN 1
#endif
#endif
#ifdef SD_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SD_MEMCHECK 1
#endif
#endif
#ifndef SD_MEMCHECK
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, z) ((void)(p))
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)(p))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p))
#endif

/* What glibc keeps beside each block. */
#define OVERHEAD 8
/* A request that held more than this returns its memory to the system. */
#define TRIM_ABOVE (1024 * 1024)
/* Every request may hold this much whatever the pool says, so that small
 * requests, and error answers, never fail for others' sake. */
#define FLOOR (64 * 1024)

/* The arena. 99% of jansson's allocations for a session document (3 KB
 * of data: parse, dump, delete; 464 of 467) are of 1 KiB or less; the
 * rest (the dump's buffer as it grows, large hash tables, long strings)
 * go to malloc. A save or an instantiate of such a document carves well
 * under one chunk. */
#define SMALL 1024
#define CHUNK ((size_t)128 * 1024)
#define SLOTS 8192 /* 1 GiB of address space; past it, malloc serves all */
/* A chunk starts with its count of live bytes; blocks follow, each with
 * its footprint in the 8 bytes before it, so that every block starts on
 * 16 bytes (chunks are page-aligned). */
#define CHUNK_HEAD 8
/* Added to a chunk's count when it is retired (far above any count). */
#define RETIRED ((int64_t)1 << 62)

struct chunk {
	/* Before retirement: minus the bytes freed since the chunk was taken
	 * or rewound (its owner knows what it carved); after: RETIRED plus
	 * the bytes still live. Atomic. */
	int64_t count;
};

static char *region;         /* SLOTS chunks, mapped PROT_NONE until used */
static uintptr_t region_span; /* 0 when there is no region */
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t spare[SLOTS]; /* chunks given back, last given on top */
static size_t spares, spares_warm; /* spare[spares_warm..spares) have pages */
static size_t slots_used;           /* slots ever made writable */
static pthread_key_t thread_key;

static __thread char *cur; /* this thread's chunk, or NULL */
static __thread size_t off; /* where its next block starts */
static __thread int key_set;

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

/* This thread now holds sz more bytes in the pool, or sz fewer. */
static void pool_add(size_t sz)
{
	if (reserving)
		resv_got += sz;
	else
		__atomic_add_fetch(&pool_used, sz, __ATOMIC_RELAXED);
}

static void pool_sub(size_t sz)
{
	if (reserving)
		resv_gave += sz;
	else
		__atomic_sub_fetch(&pool_used, sz, __ATOMIC_RELAXED);
}

static char *chunk_take(void)
{
	char *c = NULL;
	pthread_mutex_lock(&region_lock);
	if (spares) {
		c = region + (size_t)spare[--spares] * CHUNK;
		if (spares_warm > spares)
			spares_warm = spares;
	} else if (slots_used < SLOTS) {
		c = region + slots_used * CHUNK;
		if (mprotect(c, CHUNK, PROT_READ | PROT_WRITE) == 0)
			slots_used++;
		else
			c = NULL; /* no memory for it: malloc serves instead */
	}
	pthread_mutex_unlock(&region_lock);
	if (c) {
		UNPOISON(c, CHUNK_HEAD);
		((struct chunk *)c)->count = 0;
	}
	return c;
}

static void chunk_give(char *c)
{
	POISON(c, CHUNK);
	VALGRIND_MAKE_MEM_NOACCESS(c + CHUNK_HEAD, CHUNK - CHUNK_HEAD);
	pthread_mutex_lock(&region_lock);
	spare[spares++] = (uint32_t)((size_t)(c - region) / CHUNK);
	pthread_mutex_unlock(&region_lock);
}

/* Chunks given back since the last trim return their pages. */
static void chunks_trim(void)
{
	pthread_mutex_lock(&region_lock);
	for (; spares_warm < spares; spares_warm++)
		madvise(region + (size_t)spare[spares_warm] * CHUNK, CHUNK, MADV_DONTNEED);
	pthread_mutex_unlock(&region_lock);
}

/* The bytes of the current chunk's blocks still live. */
static int64_t cur_live(void)
{
	return (int64_t)(off - CHUNK_HEAD) + __atomic_load_n(&((struct chunk *)cur)->count, __ATOMIC_ACQUIRE);
}

/* Nothing in the current chunk is live: start it again. No other thread
 * touches it (a free poisons its block before its count). */
static void cur_rewind(void)
{
	((struct chunk *)cur)->count = 0;
	off = CHUNK_HEAD;
}

/* The current chunk, with blocks still live, is no longer this thread's:
 * the pool counts it whole from now on, and the free of its last block
 * gives it back. A chunk's whole count goes to the pool itself, never to a
 * reservation, as the free that takes it away may come from any thread. */
static void cur_retire(void)
{
	struct chunk *c = (struct chunk *)cur;
	int64_t carved = (int64_t)(off - CHUNK_HEAD);
	cur = NULL;
	/* Counted whole before the count is published (that free may come as
	 * soon as it is), then less its live blocks, already counted: the
	 * pool never goes below zero. */
	__atomic_add_fetch(&pool_used, CHUNK, __ATOMIC_RELAXED);
	int64_t live = __atomic_add_fetch(&c->count, RETIRED + carved, __ATOMIC_ACQ_REL) - RETIRED;
	__atomic_sub_fetch(&pool_used, (size_t)live, __ATOMIC_RELAXED);
	if (live == 0) {
		__atomic_sub_fetch(&pool_used, CHUNK, __ATOMIC_RELAXED);
		chunk_give((char *)c);
	}
}

/* At the end of a request, and of the thread. */
static void cur_settle(int keep)
{
	if (!cur)
		return;
	if (cur_live() != 0)
		cur_retire();
	else if (keep)
		cur_rewind();
	else {
		chunk_give(cur);
		cur = NULL;
	}
}

static void thread_gone(void *unused)
{
	(void)unused;
	cur_settle(0);
}

/* A block of n <= SMALL bytes from this thread's chunk, its footprint in
 * *sz; NULL when no chunk can be had. */
static void *arena_alloc(size_t n, size_t *sz)
{
	size_t need = (n + OVERHEAD + 15) & ~(size_t)15;
	if (need < 32)
		need = 32;
	if (cur && off + need > CHUNK) {
		if (cur_live() == 0)
			cur_rewind();
		else
			cur_retire();
	}
	if (!cur) {
		if (!key_set) { /* the thread's exit settles its chunk */
			pthread_setspecific(thread_key, &key_set);
			key_set = 1;
		}
		cur = chunk_take();
		if (!cur)
			return NULL;
		POISON(cur + CHUNK_HEAD, CHUNK - CHUNK_HEAD);
		VALGRIND_MAKE_MEM_NOACCESS(cur + CHUNK_HEAD, CHUNK - CHUNK_HEAD);
		off = CHUNK_HEAD;
	}
	char *h = cur + off;
	off += need;
	UNPOISON(h, OVERHEAD);
	VALGRIND_MAKE_MEM_UNDEFINED(h, OVERHEAD);
	*(size_t *)h = need;
	UNPOISON(h + OVERHEAD, n ? n : 1);
	VALGRIND_MALLOCLIKE_BLOCK(h + OVERHEAD, n, 0, 0);
	*sz = need;
	return h + OVERHEAD;
}

static int in_arena(const void *p) { return (uintptr_t)p - (uintptr_t)region < region_span; }

/* Frees an arena block; returns its footprint. */
static size_t arena_free(void *p)
{
#ifdef SD_ASAN
	(void)*(volatile char *)p; /* a block freed twice is reported here */
#endif
	char *h = (char *)p - OVERHEAD;
	size_t sz = *(size_t *)h;
	struct chunk *c = (struct chunk *)(region + ((uintptr_t)h - (uintptr_t)region) / CHUNK * CHUNK);
	VALGRIND_FREELIKE_BLOCK(p, 0);
	POISON(h, sz);
	int64_t was = __atomic_fetch_sub(&c->count, (int64_t)sz, __ATOMIC_ACQ_REL);
	if (was < RETIRED) /* its owner's still: counted as a block */
		pool_sub(sz);
	else if (was - (int64_t)sz == RETIRED) { /* the last block: counted whole */
		__atomic_sub_fetch(&pool_used, CHUNK, __ATOMIC_RELAXED);
		chunk_give((char *)c);
	}
	return sz;
}

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
	void *p = NULL;
	size_t sz;
	if (active && n <= SMALL && region_span)
		p = arena_alloc(n, &sz);
	if (!p) {
		p = malloc(n);
		if (!p)
			return NULL;
		sz = malloc_usable_size(p) + OVERHEAD;
	}
	pool_add(sz);
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
	size_t sz;
	if (in_arena(p)) {
		sz = arena_free(p);
	} else {
		sz = malloc_usable_size(p) + OVERHEAD;
		pool_sub(sz);
		free(p);
	}
	if (active)
		used = used > sz ? used - sz : 0;
}

void sd_mem_install(size_t pool)
{
	pool_max = pool;
	if (!region) {
		/* Address space only: a slot takes memory when first used. */
		void *r = mmap(NULL, SLOTS * CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r != MAP_FAILED && pthread_key_create(&thread_key, thread_gone) == 0) {
			region = r;
			region_span = SLOTS * CHUNK;
		} else if (r != MAP_FAILED) {
			munmap(r, SLOTS * CHUNK);
		}
	}
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
	cur_settle(1);
	if (p > TRIM_ABOVE)
		__atomic_store_n(&dirty, 1, __ATOMIC_RELAXED);
	/* Trim once the large requests are over (the process holds little
	 * again), whichever request ends last: its own peak may be small. */
	if (__atomic_load_n(&pool_used, __ATOMIC_RELAXED) < 4 * TRIM_ABOVE &&
	    __atomic_exchange_n(&dirty, 0, __ATOMIC_RELAXED)) {
		malloc_trim(0);
		chunks_trim();
	}
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

size_t sd_mem_chunks(void)
{
	pthread_mutex_lock(&region_lock);
	size_t n = slots_used - spares;
	pthread_mutex_unlock(&region_lock);
	return n;
}

int sd_mem_in_arena(const void *p) { return in_arena(p); }

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
