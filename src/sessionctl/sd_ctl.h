/* sd_ctl: sessionctl, the administration tool. main (sessionctl.c) reads
 * the global options, opens the store and runs one command; each command
 * reads its own options and works only through sd_store (layout, locks,
 * atomic writes) and sd_doc (validation, serialisation), so it obeys the
 * same protocol as a running sessiond. Commands return the exit status:
 * CTL_OK, CTL_PROBLEMS (something damaged or refused was met and reported)
 * or CTL_USAGE. Helpers shared by the commands live in ctl_util.c. */
#ifndef SD_CTL_H
#define SD_CTL_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "sd_err.h"
#include "sd_store.h"
#include "sd_time.h"

enum { CTL_OK = 0, CTL_PROBLEMS = 1, CTL_USAGE = 2 };

/* A temporary file older than this was left by a crash (fsck --repair). */
#define CTL_TEMP_MAX_AGE_MS (60 * SD_MS_PER_S)
/* gc --older-than under this deletes sessions in use: it needs --force. */
#define CTL_GC_MIN_AGE_MS (60 * SD_MS_PER_S)

typedef struct sd_ctl {
	sd_store *store;
	const char *data_dir;
	const char *cmd;     /* the command's name for messages, NULL before one is picked */
	int json;            /* --json */
	/* Tallies kept by ctl_each_session. */
	int64_t damaged;     /* session files that do not read or validate */
	int64_t stray;       /* entries that are not sessions, unreadable folders */
	int64_t temp;        /* temporary files (writes in progress or crash leftovers) */
	int64_t spares;      /* spares (.KEY.spare: the previous version of a saved session) */
	int64_t spare_bytes; /* their size */
} sd_ctl;

typedef int (*ctl_cmd_fn)(sd_ctl *c, int argc, char **argv);

/* The commands. argv[0] is the command name; each reads its options with
 * ctl_options (or ctl_start), then opens the store with ctl_open (main
 * closes it). */
int ctl_list(sd_ctl *c, int argc, char **argv);
int ctl_show(sd_ctl *c, int argc, char **argv);
int ctl_stats(sd_ctl *c, int argc, char **argv);
int ctl_export(sd_ctl *c, int argc, char **argv);
int ctl_fsck(sd_ctl *c, int argc, char **argv);
int ctl_gc(sd_ctl *c, int argc, char **argv);
int ctl_import(sd_ctl *c, int argc, char **argv);
int ctl_token(sd_ctl *c, int argc, char **argv);
int ctl_bucket(sd_ctl *c, int argc, char **argv);
int ctl_manifest(sd_ctl *c, int argc, char **argv);

/* A bucket argument: two characters of the key alphabet, any case. Sets
 * *bucket to its index; returns 0 or -1. */
int ctl_parse_bucket(const char *s, int *bucket);

/* One line of import, without the store: validate it as a stored session
 * (any key) and serialise it in canonical form. SD_OK with *doc (a new
 * reference) and *bytes (malloc'd, *len long); SD_ERR_CORRUPT with the
 * reason in msg; SD_ERR_INTERNAL when out of memory. The fuzz harness
 * tests/fuzz/fuzz_import.c drives it directly. */
sd_err ctl_import_prepare(const char *line, size_t n, json_t **doc, char **bytes, size_t *len,
			  char msg[SD_MSG_MAX]);

/* Open the store at c->data_dir. Without create, a missing store is an
 * error (a mistyped --data-dir must not grow an empty store). Returns
 * CTL_OK, or CTL_PROBLEMS after saying why. */
int ctl_open(sd_ctl *c, int create);

/* One option of a command other than --json, for ctl_options: ch is its
 * val, arg its value (NULL when it takes none). Returns CTL_OK to go on,
 * or the status to stop with after saying why (ctl_usage_error). */
typedef int (*ctl_option_fn)(sd_ctl *c, int ch, const char *arg, void *ctx);

/* Read a command's options with getopt_long: opts ends with {0}, --json
 * (val 'j') sets c->json, every other option goes to fn (NULL when opts
 * has only --json); a bad option or a missing value is reported. Returns
 * CTL_OK with optind at the first non-option argument, CTL_USAGE, or the
 * status fn stopped with. */
int ctl_options(sd_ctl *c, int argc, char **argv, const struct option *opts, ctl_option_fn fn, void *ctx);
/* A ctl_option_fn for a command whose one other option is a flag: sets
 * the int that ctx points to. Returns CTL_OK. */
int ctl_set_flag(sd_ctl *c, int ch, const char *arg, void *ctx);
/* No argument may be left after the options; hint ("" or " (why)") ends
 * the message. Returns CTL_OK, or CTL_USAGE after saying so. */
int ctl_no_args(const sd_ctl *c, int argc, char **argv, const char *hint);
/* The usual start of a command: ctl_options, ctl_no_args, then ctl_open
 * without create. Returns CTL_OK, or the status to stop with. */
int ctl_start(sd_ctl *c, int argc, char **argv, const struct option *opts, ctl_option_fn fn, void *ctx);

/* "sessionctl CMD: message" on stderr. */
void ctl_warn(const sd_ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A usage error: the message, a hint to --help; returns CTL_USAGE. */
int ctl_usage_error(const sd_ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Report the getopt_long failure just met (ch is '?' or ':'); CTL_USAGE. */
int ctl_bad_option(const sd_ctl *c, int ch, char **argv);

/* path relative to the data dir ("sessions/AB/ABCDEFGH.json") when it is
 * inside it, else path itself. */
const char *ctl_rel(const sd_ctl *c, const char *path);

/* A time argument: RFC 3339, or a duration ("2h") meaning that long ago.
 * Returns 0 or -1. */
int ctl_parse_when(const char *s, int64_t *epoch_ms);
/* A positive count for --limit. Returns 0 or -1. */
int ctl_parse_count(const char *s, int64_t *out);

/* ms since the epoch of a validated document's "created" or "updated". */
int64_t ctl_doc_time(const json_t *doc, const char *field);
/* Bytes as "1.5 KiB"; returns buf. */
const char *ctl_human_size(int64_t bytes, char *buf, size_t n);
/* A duration in ms as "3d4h", "12m", "40s"; returns buf. */
const char *ctl_human_age(int64_t ms, char *buf, size_t n);

/* Describe an entry that sd_store_scan could not take for a session: a
 * stray name, a folder where a file belongs, an unreadable folder. Returns
 * 0 when the entry has simply vanished since the scan read its name. */
int ctl_describe_stray(const sd_entry *e, char *buf, size_t n);

/* Read and validate one session. SD_ERR_NOT_FOUND when it is gone,
 * SD_ERR_CORRUPT when it does not validate, SD_ERR_INTERNAL when it cannot
 * be read; er says why (and the errno of a read that failed). *doc is a
 * new reference. */
sd_err ctl_load(sd_ctl *c, const char *key, json_t **doc, size_t *size, sd_error *er);

/* Every valid session of the store, read whole once (no lock: rename makes
 * each read consistent) and validated. Damaged files and stray entries are
 * reported on stderr and tallied in c; temporary files are tallied; the
 * walk goes on. fn returns non-zero to stop. Returns SD_OK, or the error
 * that kept the walk from starting. */
typedef int (*ctl_session_fn)(sd_ctl *c, const char *key, const json_t *doc, size_t size, void *ctx);
sd_err ctl_each_session(sd_ctl *c, ctl_session_fn fn, void *ctx);

/* ctl_each_session over one bucket's folder only (bucket < 0: every
 * session). */
sd_err ctl_each_session_in(sd_ctl *c, int bucket, ctl_session_fn fn, void *ctx);

/* CTL_PROBLEMS when ctl_each_session met damage or strays, else CTL_OK. */
int ctl_status(const sd_ctl *c);

/* Write json on one line to stdout (v is stolen). Returns 0 or -1. */
int ctl_print_json(json_t *v);
/* Flush stdout; CTL_PROBLEMS with a message when output failed, else st. */
int ctl_finish(const sd_ctl *c, int st);

#endif
