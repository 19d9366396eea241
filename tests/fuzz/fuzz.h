/* fuzz.h: what the harnesses in tests/fuzz/ share. Each harness defines
 * LLVMFuzzerTestOneInput (and, when it needs set-up, LLVMFuzzerInitialize).
 * It is linked either with libFuzzer (make fuzz: clang, coverage-guided,
 * ASan+UBSan) or with replay.c (make test: gcc, normal and SAN builds),
 * which feeds it every file of its committed corpus. A broken invariant
 * calls fuzz_fail, which aborts, so both drivers report it as a crash.
 *
 * Inputs are handed over the way sessiond holds them: a malloc'd copy of
 * exactly the input's bytes plus a terminating NUL that is not counted
 * (fcgi.c and sd_store_read both NUL-terminate). */
#ifndef SD_FUZZ_H
#define SD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

__attribute__((noreturn, format(printf, 3, 4))) static inline void fuzz_fail(const char *file, int line,
									    const char *fmt, ...);

#include <stdarg.h>
static inline void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s:%d: invariant broken: ", file, line);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* FUZZ_CHECK(cond, "what, with %s", args...) */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
	} while (0)

/* A malloc'd copy of n bytes with a NUL after them; aborts when out of memory. */
static inline char *fuzz_copy(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* bytes are a session file for key holding doc at version: they validate
 * for key, parse to a value equal to doc, are what sd_doc_dump writes for
 * it (a fixed point), and load's fast path, when it takes them, reads
 * that version. */
static inline void fuzz_check_file(const char *bytes, size_t n, const json_t *doc, const char *key,
				   int64_t version)
{
	char msg[SD_MSG_MAX];
	json_t *back;
	size_t n2;
	int64_t pv = 0;
	FUZZ_CHECK(sd_doc_parse_stored(bytes, n, key, &back, msg) == SD_OK, "file does not validate: %s", msg);
	FUZZ_CHECK(json_equal(back, doc), "file does not round-trip");
	char *again = sd_doc_dump(back, &n2);
	FUZZ_CHECK(again && n2 == n && memcmp(again, bytes, n) == 0, "file is not a fixed point of parse + dump");
	/* The fast path may decline a valid file (numbers at the edge of
	 * range, escaped names: load then parses it in full), but when it
	 * takes one it must read the right version. */
	FUZZ_CHECK(sd_doc_peek(bytes, n, key, &pv) == 0 || pv == version,
		   "fast path takes a canonical file at the wrong version (peek version %lld, want %lld)",
		   (long long)pv, (long long)version);
	free(again);
	json_decref(back);
}

/* The canonical dump of doc passes fuzz_check_file. */
static inline void fuzz_check_canonical(const json_t *doc, const char *key, int64_t version)
{
	size_t n;
	char *bytes = sd_doc_dump(doc, &n);
	FUZZ_CHECK(bytes, "sd_doc_dump failed");
	fuzz_check_file(bytes, n, doc, key, version);
	free(bytes);
}

#endif
