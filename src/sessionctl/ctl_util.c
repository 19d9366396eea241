/* ctl_util.c: what sessionctl's commands share. Opening the store,
 * reading a command's options, messages and usage errors, time and count
 * arguments, human sizes and ages, describing stray entries, reading one
 * session, and the walk over every valid session that reports damage and
 * carries on. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sd_ctl.h"
#include "sd_shard.h"
#include "sd_doc.h"
#include "sd_layout.h"
#include "sd_time.h"


int ctl_open(sd_ctl *c, int create)
{
	if (strlen(c->data_dir) > 3000) {
		ctl_warn(c, "the data dir path is too long");
		return CTL_PROBLEMS;
	}
	sd_store_opts o = {.data_dir = c->data_dir, .durability = SD_DURABLE_FULL,
			   .lock_timeout_ms = SD_STORE_LOCK_TIMEOUT_MS, .must_exist = !create};
	char msg[SD_MSG_MAX] = "";
	sd_err e = sd_store_open(&o, &c->store, msg);
	if (e != SD_OK) {
		ctl_warn(c, "%s", *msg ? msg : sd_err_message(e));
		return CTL_PROBLEMS;
	}
	return CTL_OK;
}

static void vwarn(const sd_ctl *c, const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof line, "sessionctl%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd : "");
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	fflush(stdout); /* keep stdout and stderr in order on a terminal */
	fprintf(stderr, "%s\n", line);
}

void ctl_warn(const sd_ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(c, fmt, ap);
	va_end(ap);
}

int ctl_usage_error(const sd_ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(c, fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try 'sessionctl%s%s --help'.\n", c->cmd ? " " : "", c->cmd ? c->cmd : "");
	return CTL_USAGE;
}

int ctl_bad_option(const sd_ctl *c, int ch, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (ch == ':')
		return ctl_usage_error(c, "option '%s' needs a value", arg);
	if (strncmp(arg, "--", 2) == 0 || !optopt)
		return ctl_usage_error(c, "unrecognised option '%s'", arg);
	return ctl_usage_error(c, "unrecognised option '-%c'", optopt);
}

int ctl_options(sd_ctl *c, int argc, char **argv, const struct option *opts, ctl_option_fn fn, void *ctx)
{
	int ch;
	optind = 0; /* start again from argv[1]: main has run getopt already */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (ch == '?' || ch == ':')
			return ctl_bad_option(c, ch, argv);
		if (ch == 'j') {
			c->json = 1;
			continue;
		}
		int st = fn ? fn(c, ch, optarg, ctx) : CTL_OK;
		if (st != CTL_OK)
			return st;
	}
	return CTL_OK;
}

int ctl_set_flag(sd_ctl *c, int ch, const char *arg, void *ctx)
{
	(void)c;
	(void)ch;
	(void)arg;
	*(int *)ctx = 1;
	return CTL_OK;
}

int ctl_no_args(const sd_ctl *c, int argc, char **argv, const char *hint)
{
	if (optind < argc)
		return ctl_usage_error(c, "unexpected argument '%s'%s", argv[optind], hint);
	return CTL_OK;
}

int ctl_start(sd_ctl *c, int argc, char **argv, const struct option *opts, ctl_option_fn fn, void *ctx)
{
	int st = ctl_options(c, argc, argv, opts, fn, ctx);
	if (st == CTL_OK)
		st = ctl_no_args(c, argc, argv, "");
	if (st == CTL_OK)
		st = ctl_open(c, 0);
	return st;
}

const char *ctl_rel(const sd_ctl *c, const char *path)
{
	const char *dir = c->store ? sd_store_dir(c->store) : c->data_dir;
	size_t n = strlen(dir);
	if (strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1])
		return path + n + 1;
	return path;
}

int ctl_parse_when(const char *s, int64_t *epoch_ms)
{
	int64_t ago;
	if (sd_time_parse(s, epoch_ms) == 0)
		return 0;
	if (sd_time_parse_duration(s, &ago) == 0) {
		*epoch_ms = sd_time_epoch_ms() - ago;
		return 0;
	}
	return -1;
}

int ctl_parse_count(const char *s, int64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end || errno || v < 1)
		return -1;
	*out = v;
	return 0;
}

int64_t ctl_doc_time(const json_t *doc, const char *field)
{
	int64_t ms = 0;
	sd_time_parse(json_string_value(json_object_get(doc, field)), &ms);
	return ms;
}

const char *ctl_human_size(int64_t bytes, char *buf, size_t n)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	if (bytes < 1024) {
		snprintf(buf, n, "%lld B", (long long)bytes);
		return buf;
	}
	double v = (double)bytes / 1024;
	int u = 0;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f %s", v, units[u]);
	return buf;
}

const char *ctl_human_age(int64_t ms, char *buf, size_t n)
{
	static const struct {
		int64_t ms;
		char unit;
	} u[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
	if (ms < 0)
		ms = 0;
	for (int i = 0; i < 3; i++) {
		if (ms >= u[i].ms) {
			long long a = ms / u[i].ms, b = (ms % u[i].ms) / u[i + 1].ms;
			if (b)
				snprintf(buf, n, "%lld%c%lld%c", a, u[i].unit, b, u[i + 1].unit);
			else
				snprintf(buf, n, "%lld%c", a, u[i].unit);
			return buf;
		}
	}
	snprintf(buf, n, "%llds", (long long)(ms / 1000));
	return buf;
}

/* 1 when name is two characters of A-Z 0-9 (a fan-out folder's name). */
static int fan_like(const char *name, size_t len)
{
	char fan[3] = {0};
	if (len != 2)
		return 0;
	memcpy(fan, name, 2);
	return sd_layout_fan_index(fan) >= 0;
}

/* 1 when base is KEY.json with a canonical key. */
static int session_like(const char *base) { return sd_layout_session_name(base, NULL, NULL); }

int ctl_describe_stray(const sd_entry *e, char *buf, size_t n)
{
	if (e->stat_errno == ENOENT)
		return 0;
	if (e->stat_errno) {
		snprintf(buf, n, "cannot read this %s: %s", S_ISDIR(e->st.st_mode) ? "folder" : "entry",
			 strerror(e->stat_errno));
		return 1;
	}
	const char *base = strrchr(e->path, '/');
	base = base ? base + 1 : e->path;
	/* The parent's name tells a fan-out folder from sessions/ itself. */
	const char *pend = base > e->path ? base - 1 : e->path, *pstart = pend;
	while (pstart > e->path && pstart[-1] != '/')
		pstart--;
	int in_fan = fan_like(pstart, (size_t)(pend - pstart));
	mode_t m = e->st.st_mode;
	if (S_ISDIR(m) && session_like(base))
		snprintf(buf, n, "a folder where a session file belongs");
	else if (S_ISDIR(m) && in_fan)
		snprintf(buf, n, "a folder inside a fan-out folder");
	else if (S_ISDIR(m))
		snprintf(buf, n, "a folder that is not a fan-out folder (two of A-Z 0-9)");
	else if (S_ISLNK(m))
		snprintf(buf, n, "a symbolic link, not a session file");
	else if (!S_ISREG(m))
		snprintf(buf, n, "not a regular file");
	else if (session_like(base) && in_fan)
		snprintf(buf, n, "a session file in the wrong fan-out folder (it belongs in %.2s/)", base);
	else if (session_like(base))
		snprintf(buf, n, "a session file outside its fan-out folder (it belongs in %.2s/)", base);
	else if (in_fan)
		snprintf(buf, n, "a stray file: not KEY.json with KEY of 8 characters A-Z 0-9");
	else
		snprintf(buf, n, "a stray file: only fan-out folders belong here");
	return 1;
}

sd_err ctl_load(sd_ctl *c, const char *key, json_t **doc, size_t *size, sd_error *er)
{
	char *buf = NULL;
	size_t len = 0;
	*doc = NULL;
	sd_error rd = {0};
	sd_err e = sd_store_read(c->store, key, &buf, &len, &rd);
	if (e == SD_ERR_NOT_FOUND)
		return sd_error_set(er, e, rd.sys_errno, "no session %s", key);
	if (e != SD_OK)
		return sd_error_set(er, SD_ERR_INTERNAL, rd.sys_errno, "cannot read: %s", rd.msg);
	char why[SD_MSG_MAX];
	e = sd_doc_parse_stored(buf, len, key, doc, why);
	free(buf);
	if (e != SD_OK)
		return sd_error_set(er, SD_ERR_CORRUPT, 0, "%s", why);
	if (size)
		*size = len;
	return SD_OK;
}

struct walk {
	sd_ctl *c;
	ctl_session_fn fn;
	void *ctx;
};

static int walk_visit(const sd_entry *e, void *arg)
{
	struct walk *w = arg;
	sd_ctl *c = w->c;
	char msg[SD_MSG_MAX];
	if (e->kind == SD_ENTRY_SESSION) {
		json_t *doc;
		size_t size;
		sd_error er;
		sd_err err = ctl_load(c, e->key, &doc, &size, &er);
		if (err == SD_ERR_NOT_FOUND) /* removed since the scan read its name */
			return 0;
		if (err != SD_OK) {
			c->damaged++;
			ctl_warn(c, "%s: %s%s", e->path, err == SD_ERR_CORRUPT ? "damaged: " : "", er.msg);
			return 0;
		}
		int stop = w->fn(c, e->key, doc, size, w->ctx);
		json_decref(doc);
		return stop;
	}
	if (e->kind == SD_ENTRY_SPARE) { /* fsck checks that its session exists */
		if (e->stat_errno == 0) {
			c->spares++;
			c->spare_bytes += (int64_t)e->st.st_size;
		}
		return 0;
	}
	if (e->kind == SD_ENTRY_TEMP && (e->stat_errno == ENOENT || S_ISREG(e->st.st_mode))) {
		if (e->stat_errno == 0)
			c->temp++;
		return 0;
	}
	if (ctl_describe_stray(e, msg, sizeof msg)) {
		c->stray++;
		ctl_warn(c, "%s: %s", e->path, msg);
	}
	return 0;
}

sd_err ctl_each_session(sd_ctl *c, ctl_session_fn fn, void *ctx)
{
	struct walk w = {.c = c, .fn = fn, .ctx = ctx};
	sd_error er;
	sd_err e = sd_store_scan(c->store, walk_visit, &w, &er);
	if (e != SD_OK)
		ctl_warn(c, "cannot read the sessions folder of %s: %s", c->data_dir, er.msg);
	return e;
}

sd_err ctl_each_session_in(sd_ctl *c, int bucket, ctl_session_fn fn, void *ctx)
{
	if (bucket < 0)
		return ctl_each_session(c, fn, ctx);
	char fan[3];
	sd_bucket_name(bucket, fan);
	struct walk w = {.c = c, .fn = fn, .ctx = ctx};
	sd_err e = sd_store_scan_bucket(c->store, fan, walk_visit, &w);
	if (e != SD_OK)
		ctl_warn(c, "cannot read the folder of bucket %s in %s: %s", fan, c->data_dir, strerror(errno));
	return e;
}

int ctl_status(const sd_ctl *c)
{
	return (c->damaged || c->stray) ? CTL_PROBLEMS : CTL_OK;
}

int ctl_print_json(json_t *v)
{
	if (!v)
		return -1;
	int r = json_dumpf(v, stdout, JSON_COMPACT);
	json_decref(v);
	if (r != 0)
		return -1;
	return fputc('\n', stdout) == EOF ? -1 : 0;
}

int ctl_finish(const sd_ctl *c, int st)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_warn(c, "cannot write the output: %s", strerror(errno));
		return CTL_PROBLEMS;
	}
	return st;
}
