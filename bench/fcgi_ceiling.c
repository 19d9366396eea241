/* fcgi_ceiling: the FastCGI ceiling for `make bench`. A libfcgi responder
 * with sessiond's thread model (N threads, each with its own FCGX_Request,
 * all accepting on one listening socket) that answers every request with
 * the same headers sessiond sends and the bytes of one session file, read
 * once at start. It does nothing else (no parameters looked at, no body
 * read beyond what FCGX_Finish_r drains, no file system), so nginx in
 * front of it measures what the FastCGI hop alone allows.
 *
 *   fcgi_ceiling --listen unix:PATH --file DOC [--threads N] [--data-dir D]
 *
 * --data-dir is accepted and ignored, so that scripts/stack.sh can start
 * this program in sessiond's place. Runs until SIGINT or SIGTERM. */
#include <fcgiapp.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *answer;
static int answer_len;
static int listen_fd;

static void *worker(void *p)
{
	(void)p;
	FCGX_Request rq;
	FCGX_InitRequest(&rq, listen_fd, 0);
	while (FCGX_Accept_r(&rq) >= 0) {
		FCGX_PutStr(answer, answer_len, rq.out);
		FCGX_Finish_r(&rq);
	}
	FCGX_Free(&rq, 1);
	return NULL;
}

static int usage(void)
{
	fputs("usage: fcgi_ceiling --listen unix:PATH --file DOC [--threads N]\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, 0, 'l'}, {"file", required_argument, 0, 'f'},
		{"threads", required_argument, 0, 't'}, {"data-dir", required_argument, 0, 'd'},
		{0, 0, 0, 0}};
	const char *spec = NULL, *file = NULL;
	int threads = 32, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': spec = optarg; break;
		case 'f': file = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'd': break;
		default: return usage();
		}
	}
	if (!spec || strncmp(spec, "unix:", 5) != 0 || !file || threads < 1 || threads > 1024)
		return usage();

	FILE *fp = fopen(file, "rb");
	if (!fp) {
		perror(file);
		return 1;
	}
	char body[1 << 20];
	size_t n = fread(body, 1, sizeof body, fp);
	fclose(fp);
	char head[256];
	int hl = snprintf(head, sizeof head,
			  "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
			  "Content-Length: %zu\r\n\r\n", n);
	answer_len = hl + (int)n;
	answer = malloc((size_t)answer_len);
	if (!answer)
		return 1;
	memcpy(answer, head, (size_t)hl);
	memcpy(answer + hl, body, n);

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
