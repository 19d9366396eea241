/* sd_fcgi: the FastCGI side. Binds the listening socket, runs worker
 * threads that each own an FCGX_Request, turns every FastCGI request into
 * an sd_request, hands it to sd_http_handle, and writes the sd_response
 * back with the headers every answer carries. */
#ifndef SD_FCGI_H
#define SD_FCGI_H

#include <signal.h>
#include <stddef.h>
#include "sd_err.h"
#include "sd_http.h"

typedef struct sd_fcgi sd_fcgi;

/* sd_fcgi_stop wakes workers blocked in accept() with this signal (its
 * handler does nothing); it must not be blocked in the worker threads. */
#define SD_FCGI_WAKE_SIGNAL SIGUSR1

/* Bind spec ("unix:PATH" or "HOST:PORT") and listen. A unix path held by a
 * live server is refused; a stale one is replaced. */
sd_err sd_fcgi_listen(const char *spec, int backlog, int *fd, char msg[SD_MSG_MAX]);

/* Start n worker threads serving listen_fd. */
sd_err sd_fcgi_start(const sd_app *app, int listen_fd, int threads, size_t max_body, sd_fcgi **out);
/* Stop accepting, let requests in progress finish (up to grace_ms), join
 * the workers and free f. Returns how many workers were still busy (held
 * by a kept-alive connection) when the grace ran out: then f is left to
 * them and the caller must not free what they use. */
int sd_fcgi_stop(sd_fcgi *f, int grace_ms);
/* The grace sessiond gives requests in progress when it stops. */
#define SD_FCGI_STOP_GRACE_MS 5000

#endif
