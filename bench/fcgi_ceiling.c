/* fcgi_ceiling: the FastCGI ceilings for `make bench`. A libfcgi responder
 * with sessiond's thread model (N threads, each with its own FCGX_Request,
 * all accepting on one listening socket), behind the same nginx, that does
 * per request what its --mode says and nothing else:
 *
 *   answer     (the default) the bytes of one session file, read once at
 *              start (--file), with the headers sessiond sends: no
 *              parameter looked at, no body read beyond what FCGX_Finish_r
 *              drains, no file system. What the FastCGI hop alone allows.
 *   load-file  the session named by QUERY_STRING's key=: open its file,
 *              the F_OFD read lock sessiond's readers take (store.c's
 *              read_lock), read it, close, send its bytes. What a load
 *              costs with one file per session and nothing of sessiond's
 *              own (no JSON validation, no canonical layout).
 *   replace    read the body; the session named by its "key":"..." (found
 *              by a plain search, no JSON parsing) is locked as sessiond
 *              locks it (open KEY.json, flock, and the inode check of the
 *              rename-safe lock, store.c I5-I6), its bytes read (a save must
 *              know the version it replaces), then the body written as its
 *              new content by fsops_replace (the spare written over,
 *              [fdatasync], RENAME_EXCHANGE, [folder fsync], with the
 *              spare's flock and F_OFD write lock: bench/fsops.h), and the
 *              session's lock let go. Answers a small fixed JSON.
 *   create     read the body, draw an 8-character key, create the file by
 *              fsops_create (temporary file, [fdatasync], link, [folder
 *              fsync]), answer a small JSON with the key.
 * The bracketed steps with --durability full only (the default). Tokens,
 * versions, meta, the canonical layout, memory budgets: none of it; a bad
 * request (no key, no body) gets a JSON 400, a missing session a 404.
 *
 *   fcgi_ceiling --listen unix:PATH [--mode MODE] [--file DOC]
 *                [--data-dir DIR] [--durability full|none] [--threads N]
 *
 * --data-dir (the sessions are DIR/sessions/XY/KEY.json, sessiond's
 * layout) is how scripts/stack.sh starts this program in sessiond's place;
 * the answer mode ignores it. Runs until SIGINT or SIGTERM. */
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fsops.h"

enum mode { ANSWER, LOAD_FILE, REPLACE, CREATE };

static enum mode mode = ANSWER;
static fsops_store store;
static char *answer;
static int answer_len;
static int listen_fd;

/* A body or a file larger than this is refused (nginx lets 1 MiB through). */
#define MAX_BYTES (2u << 20)
/* How often a replace opens KEY.json again because a writer exchanged it
 * while we waited for its lock (the inode check), before answering 503. */
#define LOCK_TRIES 100

/* A worker's buffer, kept from one request to the next. */
typedef struct buf {
	char *p;
	size_t cap;
} buf;

/* Room for want bytes in b: 0, or -1 (too large, or no memory). */
static int reserve(buf *b, size_t want)
{
	if (want <= b->cap)
		return 0;
	if (want > MAX_BYTES + 1)
		return -1;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void reply(FCGX_Request *rq, const char *status, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "Status: %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
			 "Content-Length: %zu\r\n\r\n", status, len);
	FCGX_PutStr(head, n, rq->out);
	FCGX_PutStr(body, (int)len, rq->out);
}

/* A JSON error: status ("400 Bad Request") and a short code. */
static void fail(FCGX_Request *rq, const char *status, const char *code)
{
	char body[128];
	int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", code);
	reply(rq, status, body, (size_t)n);
}

/* A request without what its mode needs: 400, except the health check
 * scripts/stack.sh waits for (looked at only here, off the measured path). */
static void bad_request(FCGX_Request *rq, const char *code)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	const char *uri = FCGX_GetParam("DOCUMENT_URI", rq->envp);
	if (uri && strcmp(uri, "/api/health") == 0)
		reply(rq, "200 OK", ok, sizeof ok - 1);
	else
		fail(rq, "400 Bad Request", code);
}

/* The answer to a failed open or lock (errno). */
static void fail_errno(FCGX_Request *rq)
{
	if (errno == ENOENT || errno == ENOTDIR)
		fail(rq, "404 Not Found", "not_found");
	else
		fail(rq, "500 Internal Server Error", "internal");
}

/* The key of query parameter key= in qs: 0, or -1 when none is valid. */
static int query_key(const char *qs, char key[SD_KEY_LEN + 1])
{
	for (const char *p = qs; p && *p; p += strcspn(p, "&"), p += *p == '&')
		if (strncmp(p, "key=", 4) == 0)
			return sd_key_normalize(p + 4, strcspn(p + 4, "&"), key) == SD_OK ? 0 : -1;
	return -1;
}

/* The key after the first "key":" in the body (no JSON parsing: the
 * benchmark's bodies carry it so): 0, or -1 when there is none. */
static int body_key(const char *b, size_t n, char key[SD_KEY_LEN + 1])
{
	static const char tag[] = "\"key\":\"";
	const char *p = memmem(b, n, tag, sizeof tag - 1);
	if (!p)
		return -1;
	p += sizeof tag - 1;
	const char *end = memchr(p, '"', n - (size_t)(p - b));
	return end && sd_key_normalize(p, (size_t)(end - p), key) == SD_OK ? 0 : -1;
}

/* The request body, read to its end, into b: its length, or -1 when it is
 * larger than MAX_BYTES (the rest is drained by FCGX_Finish_r). */
static long read_body(FCGX_Request *rq, buf *b)
{
	size_t n = 0;
	for (;;) {
		if (reserve(b, n + 4096) != 0)
			return -1;
		int got = FCGX_GetStr(b->p + n, (int)(b->cap - n), rq->in);
		if (got <= 0)
			return (long)n;
		n += (size_t)got;
	}
}

/* All of fd into b (from its start; size is fstat's, a hint): its length,
 * or -1 with errno. */
static long read_file(int fd, off_t size, buf *b)
{
	size_t n = 0;
	if (reserve(b, (size_t)size + 1) != 0) {
		errno = EFBIG;
		return -1;
	}
	for (;;) {
		ssize_t r = pread(fd, b->p + n, b->cap - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		n += (size_t)r;
		if (n < b->cap)
			return (long)n;
		if (reserve(b, b->cap + 1) != 0) {
			errno = EFBIG;
			return -1;
		}
	}
}

static void serve_load(FCGX_Request *rq, buf *b)
{
	char key[SD_KEY_LEN + 1], path[SD_PATH_MAX];
	if (query_key(FCGX_GetParam("QUERY_STRING", rq->envp), key) != 0) {
		bad_request(rq, "bad_key");
		return;
	}
	fsops_path(&store, key, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		fail_errno(rq);
		return;
	}
	struct stat st;
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	int r;
	while ((r = fstat(fd, &st)) == 0 && (r = fcntl(fd, F_OFD_SETLKW, &fl)) != 0 && errno == EINTR)
		;
	long n = r == 0 ? read_file(fd, st.st_size, b) : -1;
	int saved = errno;
	close(fd);
	errno = saved;
	if (n < 0)
		fail_errno(rq);
	else
		reply(rq, "200 OK", b->p, (size_t)n);
}

/* KEY.json opened and flocked while it is still the session's (store.c
 * I5-I6): the descriptor, or -1 with errno (EBUSY: replaced too often). */
static int lock_session(const char *path)
{
	for (int tries = 0; tries < LOCK_TRIES; tries++) {
		struct stat held, now;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;
		if (fd < 0)
			return -1;
		while ((r = fstat(fd, &held)) == 0 && (r = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
			;
		if (r == 0 && (r = stat(path, &now)) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev)
			return fd;
		int saved = errno;
		close(fd);
		if (r != 0) {
			errno = saved;
			return -1;
		}
	}
	errno = EBUSY;
	return -1;
}

static void serve_replace(FCGX_Request *rq, buf *body, buf *old)
{
	static const char ok[] = "{\"saved\":true}";
	char key[SD_KEY_LEN + 1], path[SD_PATH_MAX];
	long n = read_body(rq, body);
	if (n < 0) {
		fail(rq, "413 Payload Too Large", "too_large");
		return;
	}
	if (n == 0 || body_key(body->p, (size_t)n, key) != 0) {
		bad_request(rq, n == 0 ? "no_body" : "bad_key");
		return;
	}
	fsops_path(&store, key, path, sizeof path);
	int fd = lock_session(path);
	if (fd < 0) {
		fail_errno(rq);
		return;
	}
	struct stat st;
	int r = fstat(fd, &st) != 0 || read_file(fd, st.st_size, old) < 0 ||
		fsops_replace(&store, key, body->p, (size_t)n, 1) != 0;
	close(fd); /* lets the session's flock go, after the folder fsync */
	if (r)
		fail(rq, "500 Internal Server Error", "internal");
	else
		reply(rq, "200 OK", ok, sizeof ok - 1);
}

static void serve_create(FCGX_Request *rq, buf *body)
{
	char key[SD_KEY_LEN + 1], answer_body[64];
	long n = read_body(rq, body);
	if (n < 0) {
		fail(rq, "413 Payload Too Large", "too_large");
		return;
	}
	if (n == 0) {
		bad_request(rq, "no_body");
		return;
	}
	sd_key_generate(key, NULL, NULL);
	if (fsops_create(&store, key, body->p, (size_t)n) != 0) {
		fail(rq, "500 Internal Server Error", "internal");
		return;
	}
	int len = snprintf(answer_body, sizeof answer_body, "{\"key\":\"%s\"}", key);
	reply(rq, "201 Created", answer_body, (size_t)len);
}

static void *worker(void *p)
{
	(void)p;
	FCGX_Request rq;
	buf body = {0}, old = {0};
	FCGX_InitRequest(&rq, listen_fd, 0);
	while (FCGX_Accept_r(&rq) >= 0) {
		switch (mode) {
		case ANSWER: FCGX_PutStr(answer, answer_len, rq.out); break;
		case LOAD_FILE: serve_load(&rq, &body); break;
		case REPLACE: serve_replace(&rq, &body, &old); break;
		case CREATE: serve_create(&rq, &body); break;
		}
		FCGX_Finish_r(&rq);
	}
	FCGX_Free(&rq, 1);
	free(body.p);
	free(old.p);
	return NULL;
}

static int usage(void)
{
	fputs("usage: fcgi_ceiling --listen unix:PATH [--mode answer|load-file|replace|create]\n"
	      "                    [--file DOC] [--data-dir DIR] [--durability full|none] [--threads N]\n"
	      "  answer needs --file; the other modes need --data-dir\n", stderr);
	return 2;
}

/* The answer mode's one answer: sessiond's headers and the bytes of file. */
static int load_answer(const char *file)
{
	FILE *fp = fopen(file, "rb");
	if (!fp) {
		perror(file);
		return -1;
	}
	static char body[1 << 20];
	size_t n = fread(body, 1, sizeof body, fp);
	fclose(fp);
	char head[256];
	int hl = snprintf(head, sizeof head,
			  "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
			  "Content-Length: %zu\r\n\r\n", n);
	answer_len = hl + (int)n;
	answer = malloc((size_t)answer_len);
	if (!answer)
		return -1;
	memcpy(answer, head, (size_t)hl);
	memcpy(answer + hl, body, n);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, 0, 'l'},  {"file", required_argument, 0, 'f'},
		{"threads", required_argument, 0, 't'}, {"data-dir", required_argument, 0, 'd'},
		{"mode", required_argument, 0, 'm'},    {"durability", required_argument, 0, 'D'},
		{0, 0, 0, 0}};
	static const char *const modes[] = {"answer", "load-file", "replace", "create"};
	const char *spec = NULL, *file = NULL, *dir = NULL;
	int threads = 32, full = 1, c, known;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': spec = optarg; break;
		case 'f': file = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'm':
			known = 0;
			for (int i = 0; i < 4; i++)
				if (strcmp(optarg, modes[i]) == 0)
					mode = (enum mode)i, known = 1;
			if (!known)
				return usage();
			break;
		case 'D':
			if (strcmp(optarg, "full") != 0 && strcmp(optarg, "none") != 0)
				return usage();
			full = strcmp(optarg, "full") == 0;
			break;
		default: return usage();
		}
	}
	if (!spec || strncmp(spec, "unix:", 5) != 0 || threads < 1 || threads > 1024 || optind < argc ||
	    (mode == ANSWER ? !file : !dir))
		return usage();
	if (mode == ANSWER ? load_answer(file) != 0 : sodium_init() < 0 || fsops_open(&store, dir, full) != 0) {
		fprintf(stderr, "fcgi_ceiling: cannot start: %s\n", strerror(errno));
		return 1;
	}

	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0)
		return 1;
	mode_t old = umask(0117);
	listen_fd = FCGX_OpenSocket(spec + 5, 1024);
	umask(old);
	if (listen_fd < 0) {
		fprintf(stderr, "fcgi_ceiling: cannot listen on %s\n", spec);
		return 1;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1 << 20);
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, &attr, worker, NULL) != 0) {
			fprintf(stderr, "fcgi_ceiling: cannot start thread %d\n", i);
			return 1;
		}
		pthread_detach(t);
	}
	pthread_attr_destroy(&attr);
	int sig;
	sigwait(&stop, &sig);
	unlink(spec + 5);
	return 0; /* the workers may still be writing answer: not freed */
}
