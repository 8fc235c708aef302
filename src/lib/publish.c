/*
 * publish.c - the publisher of publish.h: a thread that follows the events
 * table and POSTs each event to nchan over a kept-alive HTTP/1.1
 * connection on a unix socket.
 *
 * Why a thread, woken by the commit hook: the API's group-commit leader
 * must not do network I/O between its COMMIT and the answers of the
 * requests it carries, and the worker's job threads should not either.
 * The hook costs the committer one signal; the thread does the rest, and
 * commits that come while it works are taken by its next round, so a busy
 * service posts in long rounds rather than one round per commit.
 *
 * Why a shared position rather than "post what I wrote": the API and the
 * worker both write events of one repo (a job queued, then running), and
 * nchan delivers a channel's messages in the order they were posted; two
 * processes posting their own events would sometimes post a later seq
 * first, and a client that drops what is at or below its last seq would
 * lose the earlier one. One position, moved under one lock, keeps the
 * stream in commit order.
 *
 * The wire: "POST /internal/publish/<repo id> HTTP/1.1" with the event as
 * the body; nchan answers 201 (delivered to subscribers) or 202 (kept in
 * the channel's buffer). Any other answer skips that one event; a broken
 * connection is reopened once, and when that fails the rest of the round
 * is skipped.
 */
#include "publish.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

/* Events read from SQLite (and held as text) at a time. */
#define PUBLISH_BATCH 256
/* The look for events committed elsewhere, when no kick came. */
#define PUBLISH_BACKSTOP_MS 1000
/* A send or a receive on the socket: nginx answers a publish in microseconds. */
#define PUBLISH_IO_TIMEOUT_MS 500

struct publisher {
	const struct conf *conf;
	struct store *store; /* the thread's, then publisher_stop's */
	char *cursor_path;
	int cursor_fd;
	int conn;     /* the kept-alive connection to nchan; -1 when none */
	bool failing; /* nchan could not be reached in the last round (logged once) */
	int64_t pos;  /* the shared position, while a round holds the lock */
	struct buf req;
	char rbuf[4096];

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked, stopping; /* under lock */
};

/* --- the connection ------------------------------------------------------ */

static void conn_close(struct publisher *p)
{
	if (p->conn >= 0)
		close(p->conn);
	p->conn = -1;
}

static int conn_open(struct publisher *p)
{
	const struct timeval tv = {PUBLISH_IO_TIMEOUT_MS / 1000,
				   PUBLISH_IO_TIMEOUT_MS % 1000 * 1000};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = p->conf->events_publish_socket;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	p->conn = fd;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}

/* The value of header `name` in [head, end) as a number; -1 when absent. */
static long long header_number(const char *head, const char *end, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *l = head; l < end;) {
		const char *eol = memchr(l, '\n', (size_t)(end - l));

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - l) > nlen && strncasecmp(l, name, nlen) == 0 && l[nlen] == ':')
			return strtoll(l + nlen + 1, NULL, 10);
		l = eol + 1;
	}
	return -1;
}

/*
 * Read one response: the status code, or a negative errno when the
 * connection broke. The body (nchan's channel summary) is read and
 * dropped. A response this code cannot frame closes the connection after.
 */
static int read_response(struct publisher *p)
{
	size_t have = 0;
	const char *end = NULL;
	long long clen;
	int status;

	while (end == NULL) {
		ssize_t k;

		if (have == sizeof(p->rbuf) - 1)
			return -EPROTO;
		k = recv(p->conn, p->rbuf + have, sizeof(p->rbuf) - 1 - have, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (k == 0)
			return -ECONNRESET;
		have += (size_t)k;
		p->rbuf[have] = '\0';
		end = strstr(p->rbuf, "\r\n\r\n");
	}
	end += 4;
	if (sscanf(p->rbuf, "HTTP/1.%*d %d", &status) != 1)
		return -EPROTO;
	clen = header_number(p->rbuf, end, "Content-Length");
	if (clen < 0) {
		/* Not framed: take what came and start a new connection next time. */
		conn_close(p);
		return status;
	}
	clen -= (long long)(have - (size_t)(end - p->rbuf));
	while (clen > 0) {
		ssize_t k =
		    recv(p->conn, p->rbuf,
			 clen < (long long)sizeof(p->rbuf) ? (size_t)clen : sizeof(p->rbuf), 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? -ECONNRESET : errno == EAGAIN ? -ETIMEDOUT : -errno;
		clen -= k;
	}
	return status;
}

/* One request/response on the kept-alive connection, reopened once if it broke. */
static int post(struct publisher *p)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int r;

		if (p->conn < 0) {
			r = conn_open(p);
			if (r < 0)
				return r;
		}
		r = send_all(p->conn, p->req.data, p->req.len);
		if (r == 0)
			r = read_response(p);
		if (r >= 0)
			return r;
		conn_close(p);
		/* A kept-alive connection nginx closed meanwhile: once more on a new one. */
		if (r != -EPIPE && r != -ECONNRESET)
			return r;
	}
	return -ECONNRESET;
}

/* store_event_scan's callback: post one event; a negative errno ends the round. */
static int post_event(void *ctx, int64_t seq, int64_t repo_id, const char *json, size_t len)
{
	struct publisher *p = ctx;
	int r;

	buf_reset(&p->req);
	r = buf_printf(&p->req,
		       "POST /internal/publish/%lld HTTP/1.1\r\nHost: repoflow\r\n"
		       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		       (long long)repo_id, len);
	if (r == 0)
		r = buf_append(&p->req, json, len);
	if (r < 0)
		return r;
	r = post(p);
	if (r < 0)
		return r;
	/* Refused (too large, say): that event is skipped, the others go on. */
	p->pos = seq;
	return 0;
}

/* --- a round --------------------------------------------------------------- */

static int pos_read(struct publisher *p, int64_t *ret)
{
	char text[32];
	ssize_t n = pread(p->cursor_fd, text, sizeof(text) - 1, 0);

	if (n < 0)
		return -errno;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	return parse_int64(text, 0, INT64_MAX, ret);
}

static int pos_write(struct publisher *p, int64_t pos)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "%lld\n", (long long)pos);

	if (pwrite(p->cursor_fd, text, (size_t)n, 0) != n || ftruncate(p->cursor_fd, n) < 0)
		return -errno;
	return 0;
}

static void report(struct publisher *p, int r, const struct err *e)
{
	if (r < 0 && !p->failing)
		log_msg(LOG_WARNING,
			"Cannot publish events to %s (%s); the live stream misses them until it is "
			"back (polling events?after= sees every event)",
			p->conf->events_publish_socket,
			e != NULL && e->msg[0] != '\0' ? e->msg : strerror(-r));
	else if (r >= 0 && p->failing)
		log_msg(LOG_INFO, "Publishing events to %s again", p->conf->events_publish_socket);
	p->failing = r < 0;
}

/*
 * Post everything after the shared position, under its lock. Events that
 * cannot be posted (nginx unreachable) are skipped: the position moves
 * past them all the same. Returns how many were read, or a negative errno.
 */
static int round_run(struct publisher *p)
{
	struct err e = {{0}, {0}};
	int64_t start, last = 0;
	int r, n, total = 0;

	if (flock(p->cursor_fd, LOCK_EX) < 0)
		return -errno;
	r = pos_read(p, &p->pos);
	if (r < 0) {
		/* No position yet (a new database): the stream starts now. */
		r = store_event_last_seq(p->store, &p->pos, &e);
		if (r < 0)
			goto out;
	}
	start = p->pos;
	do {
		n = store_event_scan(p->store, p->pos, PUBLISH_BATCH, post_event, p, &e);
		if (n < 0 && e.msg[0] == '\0') {
			/* The connection, not the database: skip to the end of the feed. */
			report(p, n, NULL);
			r = store_event_last_seq(p->store, &last, &e);
			if (r == 0 && last > p->pos)
				p->pos = last;
			conn_close(p);
			break;
		}
		if (n < 0) {
			r = n;
			goto out;
		}
		total += n;
		if (n > 0)
			report(p, 0, NULL);
	} while (n == PUBLISH_BATCH);
	if (total == 0 && p->pos == start) {
		/* A position past the end belongs to a database that was replaced. */
		r = store_event_last_seq(p->store, &last, &e);
		if (r == 0 && last < p->pos)
			p->pos = last;
	}
	r = p->pos != start || pos_read(p, &last) < 0 ? pos_write(p, p->pos) : 0;
out:
	(void)flock(p->cursor_fd, LOCK_UN);
	if (r < 0 && e.msg[0] != '\0')
		log_msg(LOG_WARNING, "Publishing events: %s", e.msg);
	return r < 0 ? r : total;
}

/* --- the thread ------------------------------------------------------------ */

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		if (!p->kicked) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += PUBLISH_BACKSTOP_MS / 1000;
			ts.tv_nsec += (long)(PUBLISH_BACKSTOP_MS % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			(void)pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			if (p->stopping)
				break;
		}
		p->kicked = false;
		pthread_mutex_unlock(&p->lock);
		(void)round_run(p);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void publisher_kick(void *arg)
{
	struct publisher *p = arg;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (!p->kicked) {
		p->kicked = true;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

static void publisher_free(struct publisher *p)
{
	conn_close(p);
	if (p->store != NULL)
		store_close(p->store);
	if (p->cursor_fd >= 0)
		close(p->cursor_fd);
	free(p->cursor_path);
	buf_release(&p->req);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int publisher_start(const struct conf *conf, struct publisher **ret, struct err *e)
{
	struct publisher *p;
	pthread_condattr_t ca;
	sigset_t all, old;
	int r;

	*ret = NULL;
	if (conf->events_publish_socket == NULL || conf->events_publish_socket[0] == '\0')
		return 0;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	p->conf = conf;
	p->conn = -1;
	p->cursor_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);

	if (asprintf(&p->cursor_path, "%s-publish", conf->database) < 0) {
		p->cursor_path = NULL;
		publisher_free(p);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	p->cursor_fd = open(p->cursor_path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
	if (p->cursor_fd < 0) {
		r = err_set(e, -errno, "publish", "cannot open %s: %m", p->cursor_path);
		publisher_free(p);
		return r;
	}
	r = store_open(conf->database, conf->busy_timeout_ms, STORE_SMALL_CACHE, &p->store, e);
	if (r < 0) {
		publisher_free(p);
		return r;
	}
	/*
	 * The thread takes no signal: a program that waits for SIGTERM with
	 * sigwait() or a signalfd needs it blocked in every thread, and may
	 * block it only after this start.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&p->thread, NULL, publisher_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		publisher_free(p);
		return err_set(e, -r, "internal", "cannot start the publisher thread: %s",
			       strerror(r));
	}
	p->started = true;
	*ret = p;
	return 0;
}

void publisher_stop(struct publisher *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->started)
		pthread_join(p->thread, NULL);
	/* What came since the thread's last round (the thread is gone: the store is ours). */
	(void)round_run(p);
	publisher_free(p);
}
