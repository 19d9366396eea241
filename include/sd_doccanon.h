/* sd_doccanon: a JSON value written in the canonical layout without
 * building a tree (docscan.c). sd_doc_canon reads the bytes of one value
 * once and writes exactly what sd_doc_dump (jansson's JSON_INDENT(2)) would
 * write for that value nested at a given depth: the layout, the escapes
 * jansson writes, integers in decimal and reals as jansson 2.14 prints
 * them. When it is not sure (text jansson refuses or might refuse: bad
 * syntax, invalid UTF-8, a duplicate name, a NUL in a name, an integer
 * past 64 bits, a real past DBL_MAX; or what it does not decode: nesting
 * past SD_DOC_MAX_DEPTH, a long number, output past the limit) it answers
 * 0 and writes nothing: the caller parses with jansson, which gives the
 * exact verdict and its message. tests/unit/test_doccanon.c and
 * tests/fuzz/fuzz_canon.c compare it with jansson's dump. */
#ifndef SD_DOCCANON_H
#define SD_DOCCANON_H

#include <stddef.h>
#include <stdint.h>

/* 1 when v..v+n (one JSON value, white space around it allowed) parses
 * as jansson's json_loadb with JSON_REJECT_DUPLICATES | JSON_DECODE_ANY |
 * JSON_ALLOW_NUL would, with *out (*out_len bytes, NUL-terminated, not
 * counted) what json_dumpb with JSON_INDENT(2) | JSON_ENCODE_ANY writes for
 * it at depth (a document's members are at depth 1: their containers'
 * members get 2 * (depth + 1) spaces). The output is held in memory from
 * jansson's allocator (sd_mem counts it; free it with sd_doc_canon_free)
 * and is at most limit bytes: past that the answer is 0. 0, *out NULL,
 * when not sure. */
int sd_doc_canon(const char *v, size_t n, int depth, size_t limit, char **out, size_t *out_len);
void sd_doc_canon_free(char *out);

/* One member of an object, as sd_doc_canon_members found it. */
typedef struct sd_doc_member {
	const char *name;   /* the name's bytes (it has no escapes) */
	size_t name_len;
	const char *value;  /* the value's bytes; for kind 's' those between the quotes */
	size_t value_len;
	char kind;          /* 's' a string without escapes, 'i' an integer of at
			       most 18 digits (num), 'n' null, '{' an object,
			       'c' the member written canonically, '?' any other value */
	int64_t num;
} sd_doc_member;

/* 1 when buf (the whole of it) is one JSON object that jansson parses as
 * sd_doc_canon would, with at most max members, their names without
 * escapes and each once; m[0..*count) are its members, in order. The
 * value of the member named canon (when there is one) is written by
 * sd_doc_canon at depth into *out, *out_len (NULL when the member is
 * absent), at most limit bytes. 0, with nothing held, when not sure. */
int sd_doc_canon_members(const char *buf, size_t len, const char *canon, int depth, size_t limit,
			 sd_doc_member *m, int max, int *count, char **out, size_t *out_len);

#endif
