/* main.c: sessiond's entry point. Reads the configuration, opens the
 * store, binds the socket, starts the FastCGI workers and waits for
 * SIGINT/SIGTERM to stop them cleanly. The only place that exits. */
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sd_config.h"
#include "sd_mem.h"
#include "sd_fcgi.h"
#include "sd_http.h"
#include "sd_log.h"
#include "sd_store.h"
#include "sd_sweep.h"
#include "sd_token.h"
#include "sd_limit.h"
#include "sd_version.h"
#include "sd_node.h"

/* The FastCGI socket: bound to --listen, or fd 0 as spawn-fcgi passes it.
 * Returns 0 with *fd set, or the exit status after saying why. */
static int open_listener(const sd_config *cfg, int *fd)
{
	char msg[SD_MSG_MAX];
	*fd = 0;
	if (cfg->listen[0]) {
		if (sd_fcgi_listen(cfg->listen, cfg->backlog, fd, msg) != SD_OK) {
			sd_log_error("%s", msg);
			return 1;
		}
		return 0;
	}
	int listening = 0;
	socklen_t sl = sizeof listening;
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) != 0 || !listening) {
		sd_log_error("no --listen given and fd 0 is not a listening socket (run under spawn-fcgi, or "
			     "pass --listen unix:PATH or --listen 127.0.0.1:PORT)");
		return 2;
	}
	return 0;
}

/* Block the stop and reload signals in every thread (they inherit the
 * mask); only the main thread takes them, with sigwait. */
static void block_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
	sigaddset(stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Wait for SIGINT or SIGTERM (returned); SIGHUP rereads the shard table and
 * the secrets, keeping those in use when that fails. */
static int wait_for_stop(const sigset_t *stop, sd_node *node)
{
	char msg[SD_MSG_MAX];
	int sig = 0;
	while (sigwait(stop, &sig) == 0 && sig == SIGHUP) {
		if (sd_node_reload(node, msg) != SD_OK) {
			sd_log_error("SIGHUP: reload failed, keeping the shard table and secrets in use: %s", msg);
			continue;
		}
		const sd_node_view *v = sd_node_pin(node);
		sd_log_info("SIGHUP: reloaded; shard table generation %lu, %d buckets owned (%d frozen), key id %s%s%s",
			    sd_shard_generation(v->table), v->owned, v->frozen, v->key_id,
			    v->has_previous ? ", previous key id " : "", v->previous_key_id);
		sd_node_unpin(node, v);
	}
	return sig;
}

/* The start-up sequence, step by step in order (each step one call and
 * its check); it is longer than 60 lines because splitting it would only
 * hide the order in which resources are taken and given back. */
int main(int argc, char **argv)
{
	sd_config cfg;
	char msg[SD_MSG_MAX];
	switch (sd_config_parse(&cfg, argc, argv, msg)) {
	case SD_CONFIG_HELP:
		fputs(sd_config_usage(), stdout);
		return 0;
	case SD_CONFIG_VERSION:
		printf("sessiond %s\n", sd_version);
		return 0;
	case SD_CONFIG_ERROR:
		fprintf(stderr, "sessiond: %s\n", msg);
		return 2;
	case SD_CONFIG_RUN:
		break;
	}
	sd_log_set_level(cfg.log_level);
	if (sodium_init() < 0) {
		sd_log_error("libsodium failed to initialise");
		return 1;
	}

	sigset_t stop;
	block_signals(&stop);
	int fd, st = open_listener(&cfg, &fd);
	if (st != 0)
		return st;

	sd_store_opts so = {.data_dir = cfg.data_dir, .durability = cfg.durability,
			    .lock_timeout_ms = cfg.lock_timeout_ms, .min_free_pct = cfg.min_free_pct,
			    .min_free_bytes = cfg.min_free_bytes};
	sd_store *store;
	if (sd_store_open(&so, &store, msg) != SD_OK) {
		sd_log_error("%s", msg);
		return 1;
	}
	/* Big blocks (bodies, files read) are mapped and unmapped at once, and
	 * every jansson allocation counts against the request's budget. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* One malloc arena (threads keep their small per-thread caches): memory
	 * one thread frees is reused by the next, instead of every thread's
	 * arena keeping its own high-water mark (measured by memory.sh: peak
	 * 51-56 MiB with one arena, 67-89 MiB with two). */
	mallopt(M_ARENA_MAX, 1);
	sd_mem_install(sd_mem_pool(cfg.max_body));
	/* The shard table and the secrets (in memory, never logged); SIGHUP
	 * reads them again. A bad table or secret file exits 2. */
	char secret_path[sizeof cfg.secret_file];
	if (cfg.secret_file[0])
		snprintf(secret_path, sizeof secret_path, "%s", cfg.secret_file);
	else
		snprintf(secret_path, sizeof secret_path, "%s/secret", cfg.data_dir);
	msg[0] = '\0';
	sd_node_opts no = {.shard_table = cfg.shard_table, .node_id = cfg.node_id, .secret_file = secret_path,
			   .previous_secret_file = cfg.previous_secret_file};
	sd_node *node = NULL;
	sd_err se = sd_node_open(&no, &node, msg);
	sd_limit *limit = NULL;
	if (se == SD_OK)
		se = sd_limit_new(cfg.miss_limit, cfg.miss_limit, &limit);
	if (se != SD_OK) {
		fprintf(stderr, "sessiond: %s\n", se == SD_ERR_INTERNAL && !msg[0] ? "out of memory" : msg);
		sd_node_close(node);
		sd_store_close(store);
		return se == SD_ERR_BAD_SECRET || se == SD_ERR_BAD_CONFIG ? 2 : 1; /* the operator's to fix */
	}
	sd_app app = {.store = store, .cfg = &cfg, .node = node, .limit = limit};
	sd_fcgi *f = NULL;
	if (sd_fcgi_start(&app, fd, cfg.threads, cfg.max_body, &f) != SD_OK) {
		sd_log_error("cannot start %d worker threads", cfg.threads);
		if (sd_fcgi_stop(f, SD_FCGI_STOP_GRACE_MS) == 0)
			sd_store_close(store);
		return 1;
	}
	sd_sweeper *sweeper = NULL;
	if (cfg.sweep_interval_ms > 0 && sd_sweeper_start(store, cfg.sweep_interval_ms, &sweeper) != SD_OK)
		sd_log_error("cannot start the sweeper; expired sessions stay on disk (they still answer 404)");
	sd_log_info("serving on %s with %d threads, data in %s, durability %s, access %s, miss limit %d/min",
		    cfg.listen[0] ? cfg.listen : "fd 0", cfg.threads, cfg.data_dir,
		    cfg.durability == SD_DURABLE_FULL ? "full" : "none", sd_access_names[cfg.access], cfg.miss_limit);

	const sd_node_view *v = sd_node_pin(node);
	if (v->table)
		sd_log_info("node %s: shard table %s generation %lu, %d buckets owned (%d frozen)", v->id,
			    cfg.shard_table, sd_shard_generation(v->table), v->owned, v->frozen);
	sd_node_unpin(node, v);
	int sig = wait_for_stop(&stop, node);
	sd_log_info("signal %d: finishing requests in progress", sig);
	sd_sweeper_stop(sweeper);
	int busy = sd_fcgi_stop(f, SD_FCGI_STOP_GRACE_MS);
	if (strncmp(cfg.listen, "unix:", 5) == 0)
		unlink(cfg.listen + 5);
	if (!busy) { /* else workers still hold the store: the exit frees it */
		close(fd);
		sd_store_close(store);
		sd_limit_free(limit);
		sd_node_close(node);
	}
	sd_log_info("stopped");
	return 0;
}
