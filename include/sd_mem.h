/* sd_mem: a memory budget for the JSON work of a request. Once installed,
 * every jansson allocation in the process is counted. Between
 * sd_mem_begin() and sd_mem_end() on a thread, that thread's allocations
 * fail once they would pass the request's budget, or once all requests
 * together would pass the process's pool: the merge or dump then fails
 * (a parse is refused before it starts: sd_mem_reserve), and
 * sd_mem_exceeded() says why. Nothing else changes: the caller
 * turns an exceeded request budget into 413 too_large and an exhausted pool
 * into 503 busy, in err.c's table, and writes nothing. sd_mem_end() hands
 * large amounts of freed memory back to the system at once (malloc_trim),
 * so resident memory falls back after a burst.
 *
 * During a request, jansson's small blocks (up to 1 KiB) come from an arena
 * rather than from malloc: each thread bump-allocates from a chunk of its
 * own (128 KiB), which it rewinds and keeps for the next request once
 * nothing in it is live, so most requests call neither malloc nor free.
 * A block may be freed by any thread at any time (a chunk counts its live
 * blocks; one that its thread has moved on from goes back when its last
 * block is freed). Blocks are counted at the size malloc would have given
 * them, a chunk a thread moved on from at its whole size; mem.c says what
 * the arena holds beyond that and why it is bounded. */
#ifndef SD_MEM_H
#define SD_MEM_H

#include <stddef.h>
#include "sd_err.h"

typedef enum { SD_MEM_OK = 0, SD_MEM_OVER_REQUEST, SD_MEM_OVER_POOL } sd_mem_state;

/* One request's budget is SD_MEM_PER_BODY_BYTE bytes for each byte of
 * --max-body (40 MiB at the default 1 MiB): enough to parse a body of
 * ordinary JSON of that size (records of short fields take about 16 bytes
 * of memory per byte of text, and the bound reserved to parse them 25),
 * parse the stored document beside it and write the result. The pool all
 * requests share is the larger of SD_MEM_POOL_MIN and one request's
 * budget. */
#define SD_MEM_PER_BODY_BYTE 40
#define SD_MEM_POOL_MIN (40u * 1024 * 1024)
size_t sd_mem_budget(size_t max_body);
size_t sd_mem_pool(size_t max_body);

/* Route jansson's allocations through the counter; pool is the most all
 * requests together may hold (0: no pool). Call once, before threads. */
void sd_mem_install(size_t pool);
/* Start counting this thread's JSON work against budget bytes. */
void sd_mem_begin(size_t budget);
/* Stop; returns the most this thread held at once since sd_mem_begin. */
size_t sd_mem_end(void);
/* Parsing is never refused half-way: jansson's lexer (2.14, lex_save)
 * ignores a failed growth of its token buffer and then reads and writes
 * past it. So a parse first reserves an upper bound of what it will
 * allocate (sd_doc_parse_object computes it from the bytes): -1, with
 * sd_mem_exceeded() saying why, when the bound would pass the request's
 * budget or the pool (the pool never refuses a request's first 64 KiB);
 * 0 and then, until sd_mem_release(), this thread's allocations are
 * counted but never refused. The reservation counts towards the pool
 * (sd_mem_in_use) until it is released; sd_mem_end() releases one left
 * over. Outside sd_mem_begin/sd_mem_end it always succeeds. */
int sd_mem_reserve(size_t bound);
void sd_mem_release(void);
/* Whether an allocation of this thread's current request was refused. */
sd_mem_state sd_mem_exceeded(void);
/* SD_ERR_TOO_LARGE over the request's budget, SD_ERR_BUSY over the pool,
 * otherwise 'otherwise': for a JSON step that failed. */
sd_err sd_mem_error(sd_err otherwise);
/* The message that goes with sd_mem_error's answer (static storage). */
const char *sd_mem_message(void);
/* The message for a request refused on its budget (static storage). */
const char *sd_mem_too_complex(void);
/* Bytes of JSON memory held now by the whole process. */
size_t sd_mem_in_use(void);
/* For tests: the arena's chunks held now (threads' current ones and those
 * still holding blocks), and whether p is an arena block. */
size_t sd_mem_chunks(void);
int sd_mem_in_arena(const void *p);

#endif
