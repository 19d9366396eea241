/* net.c: the load generator's network side. Virtual users each have
 * their own libcurl easy handle, driven by one libcurl multi handle on
 * epoll (curl_multi_socket_action), in one thread. Also here: the queue of
 * idle users, the min-heap of users backing off after a 409, and sending a
 * prepared request. Every request has a timeout (--timeout). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include "lg_run.h"
#include "sd_time.h"

/* ---- libcurl on epoll ------------------------------------------------- */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	(void)socketp;
	run *r = userp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	struct epoll_event ev = {.events = 0, .data.fd = s};
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(r->epfd, EPOLL_CTL_ADD, s, &ev) == 0)
		return 0;
	return -1;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	(void)m;
	run *r = userp;
	r->curl_deadline = ms < 0 ? -1 : sd_time_mono_ns() + (int64_t)ms * MS;
	return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
	rbuf *b = userp;
	size_t len = size * n;
	if (b->len + len + 1 > RESP_MAX) {
		b->overflow = 1;
		return 0; /* makes curl fail the transfer */
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

static void drain_completions(run *r)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(r->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		vu *u = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&u);
		curl_multi_remove_handle(r->multi, e);
		vu_done(r, u, res);
	}
}

/* Wait for socket events at most wait_ns (or until curl's timer), and
 * act on them. */
void pump(run *r, int64_t wait_ns)
{
	int64_t now = sd_time_mono_ns();
	if (r->curl_deadline >= 0) {
		int64_t t = r->curl_deadline - now;
		if (t < wait_ns)
			wait_ns = t < 0 ? 0 : t;
	}
	if (wait_ns < 0)
		wait_ns = 0;
	struct timespec ts = {.tv_sec = wait_ns / SEC, .tv_nsec = wait_ns % SEC};
	struct epoll_event ev[512];
	static int no_pwait2; /* kernels (and valgrind) without epoll_pwait2: ms resolution */
	int n = -1;
	if (!no_pwait2) {
		n = epoll_pwait2(r->epfd, ev, 512, &ts, NULL);
		if (n < 0 && errno == ENOSYS)
			no_pwait2 = 1;
	}
	if (no_pwait2)
		n = epoll_wait(r->epfd, ev, 512, (int)((wait_ns + MS - 1) / MS));
	int running;
	for (int i = 0; i < n; i++) {
		int flags = 0;
		if (ev[i].events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		curl_multi_socket_action(r->multi, ev[i].data.fd, flags, &running);
	}
	if (r->curl_deadline >= 0 && sd_time_mono_ns() >= r->curl_deadline) {
		r->curl_deadline = -1;
		curl_multi_socket_action(r->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	drain_completions(r);
}

/* ---- requests --------------------------------------------------------- */

void idle_push(run *r, vu *u)
{
	u->next_idle = NULL;
	if (r->idle_tail)
		r->idle_tail->next_idle = u;
	else
		r->idle_head = u;
	r->idle_tail = u;
}

static int wakes_before(const vu *a, const vu *b) { return a->wake < b->wake; }

void sleep_push(run *r, vu *u, int64_t wake)
{
	u->wake = wake;
	int i = r->n_sleepers++;
	r->sleepers[i] = u;
	while (i > 0 && wakes_before(r->sleepers[i], r->sleepers[(i - 1) / 2])) {
		vu *t = r->sleepers[i];
		r->sleepers[i] = r->sleepers[(i - 1) / 2];
		r->sleepers[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* Move every user whose back-off is over to the idle queue. */
void wake_sleepers(run *r, int64_t now)
{
	while (r->n_sleepers > 0 && r->sleepers[0]->wake <= now) {
		idle_push(r, r->sleepers[0]);
		r->sleepers[0] = r->sleepers[--r->n_sleepers];
		int i = 0;
		for (;;) {
			int l = 2 * i + 1, m = i;
			if (l < r->n_sleepers && wakes_before(r->sleepers[l], r->sleepers[m]))
				m = l;
			if (l + 1 < r->n_sleepers && wakes_before(r->sleepers[l + 1], r->sleepers[m]))
				m = l + 1;
			if (m == i)
				break;
			vu *t = r->sleepers[i];
			r->sleepers[i] = r->sleepers[m];
			r->sleepers[m] = t;
			i = m;
		}
	}
}

vu *idle_pop(run *r)
{
	vu *u = r->idle_head;
	if (u) {
		r->idle_head = u->next_idle;
		if (!r->idle_head)
			r->idle_tail = NULL;
		u->next_idle = NULL;
	}
	return u;
}

void clear_request(vu *u)
{
	free(u->body);
	u->body = NULL;
	json_decref(u->sent_data);
	u->sent_data = NULL;
	u->next = NX_NONE;
	u->token = NULL;
}

/* Prepare a POST of obj (stolen) to path. */
int prep_post(run *r, vu *u, endpoint ep, const char *path, json_t *obj)
{
	u->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!u->body)
		return -1;
	u->ep = ep;
	snprintf(u->url, sizeof u->url, "%s%s", r->o.url, path);
	return 0;
}

void prep_get(run *r, vu *u, endpoint ep, const char *path, const char *key)
{
	u->ep = ep;
	if (key)
		snprintf(u->url, sizeof u->url, "%s%s?key=%s", r->o.url, path, key);
	else
		snprintf(u->url, sizeof u->url, "%s%s", r->o.url, path);
}

int vu_send(run *r, vu *u, int64_t intended)
{
	CURL *e = u->easy;
	u->resp.len = 0;
	u->resp.overflow = 0;
	curl_easy_setopt(e, CURLOPT_URL, u->url);
	if (u->token && strcmp(u->token, u->auth_for) != 0) {
		/* a save carries its session's token (built once per session) */
		char line[128];
		snprintf(line, sizeof line, "Authorization: Bearer %s", u->token);
		curl_slist_free_all(u->auth);
		struct curl_slist *a = curl_slist_append(NULL, "Content-Type: application/json");
		struct curl_slist *b = a ? curl_slist_append(a, "Expect:") : NULL;
		struct curl_slist *c = b ? curl_slist_append(b, line) : NULL;
		if (!c) {
			curl_slist_free_all(a);
			u->auth = NULL;
			u->auth_for[0] = '\0';
			return -1;
		}
		u->auth = c;
		snprintf(u->auth_for, sizeof u->auth_for, "%s", u->token);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->token ? u->auth : r->hdrs);
	if (u->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(u->body));
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL); /* no pointer to a freed body */
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	u->sent = sd_time_mono_ns();
	u->intended = intended;
	if (curl_multi_add_handle(r->multi, e) != CURLM_OK)
		return -1;
	u->in_flight = 1;
	r->in_flight++;
	if (r->ph == PH_RUN && r->open_loop)
		lg_hist_record(&r->lag, (uint64_t)(u->sent > intended ? u->sent - intended : 0));
	return 0;
}

/* The data a user writes: who, which write, and padding to size. */

/* ---- setup -------------------------------------------------------------- */

int net_init(run *r)
{
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->multi = curl_multi_init();
	r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = r->hdrs ? curl_slist_append(r->hdrs, "Expect:") : NULL;
	if (r->epfd < 0 || !r->multi || !h2)
		return -1;
	r->hdrs = h2;
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(r->multi, CURLMOPT_SOCKETDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(r->multi, CURLMOPT_TIMERDATA, r);
	curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)r->o.users + 16);
	return 0;
}

int net_user_init(run *r, vu *u)
{
	CURL *e = u->easy = curl_easy_init();
	if (!e)
		return -1;
	curl_easy_setopt(e, CURLOPT_PRIVATE, u);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &u->resp);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->o.timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");   /* never an http_proxy from the environment */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sessiond-loadgen");
	return 0;
}
