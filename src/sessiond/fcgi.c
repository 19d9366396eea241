/* fcgi.c: the FastCGI loop. One FCGX_Request per worker thread; each
 * request becomes a plain sd_request, sd_http_handle answers it, and the
 * answer goes back with Content-Type, Cache-Control: no-store and
 * Content-Length. Timing and metrics for every request are taken here. */
#include <errno.h>
#include <fcgiapp.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "sd_fcgi.h"
#include "sd_log.h"
#include "sd_time.h"

struct sd_fcgi {
	const sd_app *app;
	int listen_fd;
	size_t max_body;
	int n;
	volatile int stopping;
	pthread_t *tids;
	int *done;
};

typedef struct {
	sd_fcgi *f;
	int idx;
} worker_arg;

static int listen_unix(const char *path, int backlog, char msg[SD_MSG_MAX])
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(msg, SD_MSG_MAX, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		snprintf(msg, SD_MSG_MAX, "%s is in use by a running server", path);
		close(fd);
		return -1;
	}
	unlink(path); /* stale socket from a crash */
	mode_t old = umask(0117);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r != 0 || listen(fd, backlog) != 0)
		goto fail;
	return fd;
fail:
	snprintf(msg, SD_MSG_MAX, "cannot listen on unix:%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int listen_tcp(const char *spec, int backlog, char msg[SD_MSG_MAX])
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hl = (size_t)(colon - spec);
	if (hl >= sizeof host) {
		snprintf(msg, SD_MSG_MAX, "bad listen address: %s", spec);
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	int gr = getaddrinfo(*host ? host : "127.0.0.1", colon + 1, &hints, &ai);
	if (gr != 0) {
		snprintf(msg, SD_MSG_MAX, "bad listen address %s: %s", spec, gai_strerror(gr));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		snprintf(msg, SD_MSG_MAX, "cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

sd_err sd_fcgi_listen(const char *spec, int backlog, int *fd, char msg[SD_MSG_MAX])
{
	*fd = strncmp(spec, "unix:", 5) == 0 ? listen_unix(spec + 5, backlog, msg)
					      : listen_tcp(spec, backlog, msg);
	return *fd < 0 ? SD_ERR_INTERNAL : SD_OK;
}

static const char *param(FCGX_Request *rq, const char *name) { return FCGX_GetParam(name, rq->envp); }

/* Read the body into a malloc'd buffer (NUL-terminated). A body longer
 * than max is drained and flagged instead. CONTENT_LENGTH only sizes the
 * first allocation: the stream's end is what counts (chunked uploads). */
static int read_body(FCGX_Request *rq, size_t max, sd_request *req, char **owned)
{
	const char *cl = param(rq, "CONTENT_LENGTH");
	unsigned long long want = cl && *cl ? strtoull(cl, NULL, 10) : 0;
	*owned = NULL;
	if (want > max) {
		char sink[16384];
		while (FCGX_GetStr(sink, sizeof sink, rq->in) > 0)
			;
		req->body_too_large = 1;
		return 0;
	}
	size_t cap = want ? (size_t)want + 1 : 4096, n = 0;
	char *b = malloc(cap);
	if (!b)
		return -1;
	if (want) { /* nginx sets CONTENT_LENGTH once it has the whole body */
		int got = FCGX_GetStr(b, (int)want, rq->in);
		n = got > 0 ? (size_t)got : 0;
		goto done;
	}
	for (;;) {
		if (n + 1 == cap) {
			if (n > max)
				break;
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return -1;
			}
			b = nb;
			cap *= 2;
		}
		int got = FCGX_GetStr(b + n, (int)(cap - n - 1), rq->in);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
done:
	if (n > max) {
		char sink[16384];
		while (FCGX_GetStr(sink, sizeof sink, rq->in) > 0)
			;
		free(b);
		req->body_too_large = 1;
		return 0;
	}
	b[n] = '\0';
	req->body = b;
	req->body_len = n;
	*owned = b;
	return 0;
}

static void write_response(FCGX_Request *rq, const sd_response *resp)
{
	/* Formatted here: FCGX_FPrintF has its own printf without %zu. */
	char head[SD_HDR_MAX + 256];
	int n = snprintf(head, sizeof head,
			 "Status: %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
			 "Content-Length: %lu\r\n%.*s\r\n",
			 resp->status, sd_http_reason(resp->status),
			 resp->content_type ? resp->content_type : "application/json",
			 (unsigned long)resp->body_len, (int)resp->headers_len, resp->headers);
	if (n > (int)sizeof head - 1)
		n = (int)sizeof head - 1;
	FCGX_PutStr(head, n, rq->out);
	if (resp->body_len)
		FCGX_PutStr(resp->body, (int)resp->body_len, rq->out);
}

static void serve_one(sd_fcgi *f, FCGX_Request *rq)
{
	int64_t t0 = sd_time_mono_ns();
	sd_request req = {0};
	char pathbuf[1024];
	req.method = param(rq, "REQUEST_METHOD");
	req.path = param(rq, "DOCUMENT_URI");
	if (!req.path) {
		const char *uri = param(rq, "REQUEST_URI");
		snprintf(pathbuf, sizeof pathbuf, "%s", uri ? uri : "/");
		pathbuf[strcspn(pathbuf, "?")] = '\0';
		req.path = pathbuf;
	}
	req.query = param(rq, "QUERY_STRING");
	req.content_type = param(rq, "CONTENT_TYPE");
	req.if_match = param(rq, "HTTP_IF_MATCH");
	req.if_none_match = param(rq, "HTTP_IF_NONE_MATCH");
	req.origin = param(rq, "HTTP_ORIGIN");
	req.authorization = param(rq, "HTTP_AUTHORIZATION");
	req.host = param(rq, "HTTP_HOST");
	req.remote_addr = param(rq, "REMOTE_ADDR");
	/* nginx: fastcgi_param REQUEST_SCHEME $scheme; HTTPS $https if_not_empty */
	const char *https = param(rq, "HTTPS"), *scheme = param(rq, "REQUEST_SCHEME");
	if (https && *https && strcasecmp(https, "off") != 0)
		req.scheme = "https";
	else if (scheme && (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
		req.scheme = scheme;
	char *body = NULL;
	sd_response resp;
	if (read_body(rq, f->max_body, &req, &body) != 0)
		req.body_unreadable = 1;
	sd_http_handle(f->app, &req, &resp);
	write_response(rq, &resp);
	sd_metrics_request(resp.endpoint, resp.status, sd_time_mono_ns() - t0);
	if (resp.status >= 500)
		sd_log_warn("%s %s -> %d", req.method ? req.method : "?", req.path, resp.status);
	else
		sd_log_debug("%s %s -> %d", req.method ? req.method : "?", req.path, resp.status);
	sd_response_free(&resp);
	free(body);
}

static void *worker(void *p)
{
	worker_arg *a = p;
	sd_fcgi *f = a->f;
	FCGX_Request rq;
	/* Fail accept() on EINTR, so sd_fcgi_stop's wake-up signal ends it. */
	FCGX_InitRequest(&rq, f->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!f->stopping) {
		if (FCGX_Accept_r(&rq) < 0) {
			if (f->stopping)
				break;
			/* Back off, as slowcgi does, instead of dying or spinning
			 * (EMFILE, ENOMEM, or a socket that cannot accept). */
			if (errno != EINTR)
				usleep(10000);
			continue;
		}
		serve_one(f, &rq);
		FCGX_Finish_r(&rq);
	}
	FCGX_Free(&rq, 1);
	__atomic_store_n(&f->done[a->idx], 1, __ATOMIC_RELEASE);
	free(a);
	return NULL;
}

static void on_wake(int sig) { (void)sig; }

sd_err sd_fcgi_start(const sd_app *app, int listen_fd, int threads, size_t max_body, sd_fcgi **out)
{
	*out = NULL;
	/* No SA_RESTART: the signal must interrupt accept(). */
	struct sigaction sa = {.sa_handler = on_wake};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SD_FCGI_WAKE_SIGNAL, &sa, NULL) != 0)
		return SD_ERR_INTERNAL;
	if (FCGX_Init() != 0)
		return SD_ERR_INTERNAL;
	sd_fcgi *f = calloc(1, sizeof *f);
	if (!f)
		return SD_ERR_INTERNAL;
	f->app = app;
	f->listen_fd = listen_fd;
	f->max_body = max_body;
	f->tids = calloc((size_t)threads, sizeof *f->tids);
	f->done = calloc((size_t)threads, sizeof *f->done);
	if (!f->tids || !f->done) {
		free(f->tids);
		free(f->done);
		free(f);
		return SD_ERR_INTERNAL;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1 << 20);
	for (int i = 0; i < threads; i++) {
		worker_arg *a = malloc(sizeof *a);
		if (!a)
			break;
		a->f = f;
		a->idx = i;
		if (pthread_create(&f->tids[i], &attr, worker, a) != 0) {
			free(a);
			break;
		}
		f->n++;
	}
	pthread_attr_destroy(&attr);
	*out = f;
	return f->n == threads ? SD_OK : SD_ERR_INTERNAL;
}

int sd_fcgi_stop(sd_fcgi *f, int grace_ms)
{
	if (!f)
		return 0;
	f->stopping = 1;
	/* Wake the workers blocked in accept() with a signal rather than by
	 * shutting the socket down: under systemd or spawn-fcgi the socket is
	 * not ours, and must still listen for the next sessiond. A worker that
	 * was between its check and accept() misses one signal, so keep
	 * sending until it is done or the grace runs out. */
	int64_t deadline = sd_time_mono_ns() + (int64_t)grace_ms * SD_NS_PER_MS;
	int stuck = 0;
	for (int i = 0; i < f->n; i++) {
		while (!__atomic_load_n(&f->done[i], __ATOMIC_ACQUIRE) && sd_time_mono_ns() < deadline) {
			pthread_kill(f->tids[i], SD_FCGI_WAKE_SIGNAL);
			usleep(2000);
		}
		if (__atomic_load_n(&f->done[i], __ATOMIC_ACQUIRE)) {
			pthread_join(f->tids[i], NULL);
		} else {
			pthread_detach(f->tids[i]); /* idle on a kept-alive connection */
			stuck++;
		}
	}
	if (stuck) {
		/* Those threads still read f; the process is about to exit. */
		sd_log_info("%d idle keep-alive connections closed at exit", stuck);
		return stuck;
	}
	free(f->tids);
	free(f->done);
	free(f);
	return 0;
}
