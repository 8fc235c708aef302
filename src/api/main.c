/*
 * main.c - repoflow-api, the FastCGI responder behind nginx.
 *
 * It finds its listening socket in this order: from systemd (LISTEN_FDS,
 * the production path: repoflow-api.socket); from fd 0 when that is a
 * listening socket (spawn-fcgi and friends); else it binds the path given
 * with --socket or the configuration's api_socket. When none applies and
 * REQUEST_METHOD is set it runs as a CGI program instead and serves the
 * one request in its environment, which is how tests call it without a
 * web server:
 *
 *   REQUEST_METHOD=GET REQUEST_URI=/v1/health ./repoflow-api
 *
 * The mode is decided from sd_listen_fds() before anything else, because
 * libfcgi's own test (FCGX_IsCGI) only looks at fd 0 and calls a socket
 * on fd 3 "CGI".
 *
 * Concurrency: conf->api_threads threads, each with its own FCGX_Request
 * and its own SQLite connection, all accepting on the one socket. Reads
 * run in parallel (WAL); writes meet in the group commit (commit.c). The
 * listening socket gets a receive timeout so that accept() returns every
 * ACCEPT_TIMEOUT_MS and a thread notices a stop request without signals
 * aimed at threads, and without shutting down a socket that systemd still
 * holds and will hand to our successor. On SIGTERM or SIGINT (or libfcgi's
 * SIGUSR1) the threads finish the request in hand and exit (a thread
 * waiting on a connection nginx keeps open gets back within
 * CONN_IDLE_TIMEOUT_MS); connections not yet accepted stay queued on
 * systemd's socket for the next start.
 */
#include <fcgiapp.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "commit.h"
#include "publish.h"
#include "request.h"
#include "route.h"
#include "store.h"

#define ACCEPT_TIMEOUT_MS 250
/* A kept-alive FastCGI connection idle this long is closed (see serve_thread). */
#define CONN_IDLE_TIMEOUT_MS 2000

struct server {
	const struct conf *conf;
	int listen_fd;
	bool inet; /* TCP: accepted connections inherit the listener's timeout */
	atomic_bool stopping;
};

/* --- the transports ------------------------------------------------------ */

static const char *fcgi_param(void *cookie, const char *name)
{
	FCGX_Request *q = cookie;

	return FCGX_GetParam(name, q->envp);
}

static ssize_t fcgi_read(void *cookie, char *buf, size_t n)
{
	FCGX_Request *q = cookie;
	int got = FCGX_GetStr(buf, n > INT_MAX ? INT_MAX : (int)n, q->in);

	if (got <= 0 && FCGX_GetError(q->in) != 0)
		return -EIO;
	return got;
}

static int fcgi_write(void *cookie, const char *buf, size_t n)
{
	FCGX_Request *q = cookie;

	if (n > INT_MAX || FCGX_PutStr(buf, (int)n, q->out) != (int)n)
		return -EIO;
	return 0;
}

static const char *cgi_param(void *cookie, const char *name)
{
	return getenv(name);
}

static ssize_t cgi_read(void *cookie, char *buf, size_t n)
{
	ssize_t got;

	do
		got = read(STDIN_FILENO, buf, n);
	while (got < 0 && errno == EINTR);
	return got < 0 ? -errno : got;
}

static int cgi_write(void *cookie, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t k = write(STDOUT_FILENO, buf, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Serve one request over io: parse, route, handle, respond. */
static int serve_one(const struct conf *conf, struct store *store, const struct request_io *io)
{
	struct request r;
	int ret;

	if (request_init(&r, conf, store, io) < 0 && !r.responded)
		respond_errno(&r, -ENOMEM, NULL);
	route_request(&r);
	ret = request_finish(&r);
	request_release(&r);
	return ret;
}

/* --- the FastCGI threads ------------------------------------------------- */

static struct store *thread_store_open(const struct conf *conf)
{
	struct store *s = NULL;
	struct err e = {{0}, {0}};

	if (store_open(conf->database, conf->busy_timeout_ms,
		       STORE_SMALL_CACHE | STORE_NO_AUTOCHECKPOINT, &s, &e) < 0) {
		log_msg(LOG_ERR, "database: %s", e.msg);
		return NULL;
	}
	return s;
}

static void *serve_thread(void *arg)
{
	struct server *srv = arg;
	struct store *store = thread_store_open(srv->conf);
	FCGX_Request q;
	const struct request_io io = {
	    .param = fcgi_param,
	    .read = fcgi_read,
	    .write = fcgi_write,
	    .cookie = &q,
	    .body_has_eof = true,
	};

	if (FCGX_InitRequest(&q, srv->listen_fd, 0) != 0) {
		log_msg(LOG_ERR, "cannot set up a FastCGI request");
		store_close(store);
		return NULL;
	}
	while (!atomic_load(&srv->stopping)) {
		static const struct timeval idle_timeout = {CONN_IDLE_TIMEOUT_MS / 1000,
							    CONN_IDLE_TIMEOUT_MS % 1000 * 1000};
		int rc = FCGX_Accept_r(&q);

		if (rc < 0) {
			/* The receive timeout of the listening socket: look at the stop flag. */
			if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
				continue;
			if (atomic_load(&srv->stopping))
				break;
			log_msg(LOG_ERR, "accept failed: %s", strerror(-rc));
			sleep_ms(100);
			continue;
		}
		/*
		 * When nginx keeps the connection (fastcgi_keep_conn), the next
		 * FCGX_Accept_r() waits on it for the next request; the timeout
		 * closes it after CONN_IDLE_TIMEOUT_MS of silence so the thread
		 * gets back to the stop flag. A TCP connection needs it in any
		 * case: it inherits the listener's much shorter timeout.
		 */
		if (q.keepConnection || srv->inet)
			(void)setsockopt(q.ipcFd, SOL_SOCKET, SO_RCVTIMEO, &idle_timeout,
					 sizeof(idle_timeout));
		if (store == NULL)
			store = thread_store_open(srv->conf);
		if (serve_one(srv->conf, store, &io) < 0)
			log_msg(LOG_DEBUG, "a response could not be written (client gone?)");
		FCGX_Finish_r(&q);
	}
	FCGX_Free(&q, 1);
	store_close(store);
	return NULL;
}

/* The socket file we bound, to remove it on exit only if it is still ours. */
static struct stat bound_stat;

static void unlink_ours(const char *path)
{
	struct stat st;

	/* A successor may have replaced the file already; leave its socket alone. */
	if (lstat(path, &st) == 0 && st.st_dev == bound_stat.st_dev &&
	    st.st_ino == bound_stat.st_ino)
		unlink(path);
}

/*
 * Bind a unix stream socket at path, mode 0660. A socket file left behind
 * by a previous run is replaced; one that still accepts connections (a
 * running instance) is not taken over.
 */
static int bind_unix(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		close(probe);
		if (r == 0)
			return -EADDRINUSE;
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    lstat(path, &bound_stat) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/*
 * The WAL checkpointer. Request threads open their connections without
 * SQLite's auto-checkpoint, which would otherwise run inside whichever
 * COMMIT crossed the threshold: the group-commit leader, with a whole
 * batch of requests waiting on its fsync of the database file. This
 * thread copies the WAL back a few times a second instead, off every
 * request's path.
 */
#define CHECKPOINT_INTERVAL_MS 200

static void *checkpoint_thread(void *arg)
{
	struct server *srv = arg;
	struct store *s = thread_store_open(srv->conf);
	struct err e = {{0}, {0}};

	if (s == NULL)
		return NULL;
	while (!atomic_load(&srv->stopping)) {
		sleep_ms(CHECKPOINT_INTERVAL_MS);
		if (store_checkpoint(s, &e) < 0 && e.code[0] != 'b')
			log_msg(LOG_WARNING, "WAL checkpoint failed: %s", e.msg);
	}
	store_checkpoint(s, NULL);
	store_close(s);
	return NULL;
}

static int serve_fastcgi(const struct conf *conf, int listen_fd)
{
	const struct timeval accept_timeout = {0, ACCEPT_TIMEOUT_MS * 1000};
	struct server srv = {.conf = conf, .listen_fd = listen_fd};
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	pthread_t *threads, checkpointer;
	bool checkpointing;
	sigset_t stop;
	int nthreads = 0, sig = 0;

	if (FCGX_Init() != 0) {
		log_msg(LOG_ERR, "cannot initialise libfcgi");
		return 1;
	}
	if (getsockname(listen_fd, (struct sockaddr *)&ss, &sslen) == 0)
		srv.inet = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
	if (setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &accept_timeout,
		       sizeof(accept_timeout)) < 0) {
		log_msg(LOG_ERR, "cannot set a timeout on the listening socket: %m");
		return 1;
	}
	/* Every thread inherits this mask; only sigwait() below sees these signals. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	threads = calloc((size_t)conf->api_threads, sizeof(*threads));
	if (threads == NULL)
		return 1;
	checkpointing = pthread_create(&checkpointer, NULL, checkpoint_thread, &srv) == 0;
	for (int i = 0; i < conf->api_threads; i++) {
		if (pthread_create(&threads[nthreads], NULL, serve_thread, &srv) != 0) {
			log_msg(LOG_ERR, "cannot start thread %d: %m", i);
			break;
		}
		nthreads++;
	}
	if (nthreads > 0) {
		log_msg(LOG_INFO, "serving with %d threads", nthreads);
		sd_notify(0, "READY=1");
		sigwait(&stop, &sig);
		log_msg(LOG_INFO, "stopping on signal %d", sig);
		sd_notify(0, "STOPPING=1");
	}
	atomic_store(&srv.stopping, true);
	FCGX_ShutdownPending();
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (checkpointing)
		pthread_join(checkpointer, NULL);
	free(threads);
	return nthreads > 0 ? 0 : 1;
}

static int serve_cgi(const struct conf *conf, struct store *store)
{
	const struct request_io io = {
	    .param = cgi_param,
	    .read = cgi_read,
	    .write = cgi_write,
	    .cookie = NULL,
	    .body_has_eof = false,
	};

	return serve_one(conf, store, &io) < 0 ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: repoflow-api [--config FILE] [--socket PATH]\n"
		   "\n"
		   "The repoflow FastCGI responder. It serves on the socket systemd passes,\n"
		   "else on PATH (or api_socket from the configuration); with REQUEST_METHOD\n"
		   "set and no socket it serves one CGI request from its environment.\n"
		   "\n"
		   "  -c, --config FILE   configuration file (default: $REPOFLOW_CONFIG or\n"
		   "                      " CONF_DEFAULT_PATH ")\n"
		   "  -s, --socket PATH   unix socket to bind when not socket-activated\n"
		   "  -h, --help          show this help\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *socket_path = NULL;
	struct store *store = NULL;
	struct err e = {{0}, {0}};
	struct conf conf;
	int opt, n, listen_fd = -1, ret;
	bool cgi, bound = false;

	while ((opt = getopt_long(argc, argv, "c:s:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}

	log_init("repoflow-api");
	signal(SIGPIPE, SIG_IGN);
	conf_init(&conf);
	/* A file named on purpose (option or environment) must exist; the default may not. */
	ret = conf_load(&conf, conf_path(config),
			config == NULL && getenv("REPOFLOW_CONFIG") == NULL, &e);
	if (ret < 0) {
		log_msg(LOG_ERR, "%s", e.msg);
		conf_release(&conf);
		return 1;
	}
	if (socket_path == NULL && conf.api_socket != NULL && *conf.api_socket != '\0')
		socket_path = conf.api_socket;

	n = sd_listen_fds(1);
	if (n < 0) {
		log_msg(LOG_ERR, "bad LISTEN_FDS: %s", strerror(-n));
		conf_release(&conf);
		return 1;
	}
	if (n >= 1) {
		if (n > 1)
			log_msg(LOG_WARNING, "systemd passed %d sockets; using the first", n);
		listen_fd = SD_LISTEN_FDS_START;
	} else if (sd_is_socket(STDIN_FILENO, AF_UNSPEC, SOCK_STREAM, 1) > 0) {
		listen_fd = STDIN_FILENO;
	}
	cgi = listen_fd < 0 && getenv("REQUEST_METHOD") != NULL;
	if (listen_fd < 0 && !cgi) {
		if (socket_path == NULL) {
			log_msg(LOG_ERR,
				"no socket: not socket-activated, and neither --socket nor "
				"api_socket is set");
			conf_release(&conf);
			return 1;
		}
		ret = bind_unix(socket_path, &listen_fd);
		if (ret < 0) {
			log_msg(LOG_ERR, "cannot listen on %s: %s", socket_path, strerror(-ret));
			conf_release(&conf);
			return 1;
		}
		bound = true;
	}

	/* Migrations apply on start; the serving threads open their own connections. */
	ret = store_open(conf.database, conf.busy_timeout_ms, STORE_MIGRATE, &store, &e);
	if (ret < 0) {
		log_msg(LOG_ERR, "database: %s", e.msg);
		if (!cgi) {
			if (bound)
				unlink_ours(socket_path);
			conf_release(&conf);
			return 1;
		}
		/* A CGI request is still answered (a health check says 503). */
		store = NULL;
	}

	commit_set_wake_socket(conf.wake_socket);
	if (cgi) {
		ret = serve_cgi(&conf, store);
		store_close(store);
	} else {
		struct publisher *pub = NULL;

		store_close(store);
		/*
		 * Events go to the live stream after each group COMMIT: the
		 * store's commit hook only wakes the publisher's thread.
		 */
		if (publisher_start(&conf, &pub, &e) < 0)
			log_msg(LOG_WARNING, "no live stream: %s", e.msg);
		store_set_commit_hook(publisher_kick, pub);
		if (bound)
			log_msg(LOG_INFO, "listening on %s", socket_path);
		ret = serve_fastcgi(&conf, listen_fd);
		store_set_commit_hook(NULL, NULL);
		publisher_stop(pub);
		close(listen_fd);
		if (bound)
			unlink_ours(socket_path);
	}
	conf_release(&conf);
	return ret;
}
