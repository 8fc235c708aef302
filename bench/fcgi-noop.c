/*
 * fcgi-noop.c - the ceiling for bench/accept: a FastCGI responder with the
 * same threading as repoflow-api that answers 202 with a small JSON body
 * without reading a database. Whatever nginx + FastCGI cost on this
 * machine, this measures it in the same run.
 *
 *   fcgi-noop SOCKET_PATH [THREADS]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int listen_fd;

static void *serve(void *arg)
{
	FCGX_Request rq;
	char body[4096];

	(void)arg;
	FCGX_InitRequest(&rq, listen_fd, 0);
	for (;;) {
		int r;

		/* As repoflow-api does: no lock around the accept (libfcgi's is thread-safe). */
		r = FCGX_Accept_r(&rq);
		if (r < 0)
			break;
		while (FCGX_GetStr(body, sizeof(body), rq.in) > 0)
			;
		FCGX_FPrintF(rq.out, "Status: 202 Accepted\r\nContent-Type: application/json\r\n"
				     "\r\n{\"id\":1,\"status\":\"queued\"}");
		FCGX_Finish_r(&rq);
	}
	return NULL;
}

/* libfcgi's accept does not return on a signal; end at once, nothing is held. */
static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 16;
	pthread_t tid[256];

	if (argc < 2 || threads < 1 || threads > 256) {
		fprintf(stderr, "usage: fcgi-noop SOCKET_PATH [THREADS]\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	FCGX_Init();
	unlink(argv[1]);
	listen_fd = FCGX_OpenSocket(argv[1], 1024);
	if (listen_fd < 0) {
		perror("FCGX_OpenSocket");
		return 1;
	}
	chmod(argv[1], 0666);
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, serve, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
