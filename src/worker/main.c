/*
 * main.c - repoflow-worker: activation, the wait loop, idle exit, and the
 * conversation with systemd (READY=1, STATUS=, WATCHDOG=1, STOPPING=1).
 *
 * The worker is started by its socket (a datagram arrived on the wake
 * socket) or by a person with --foreground. It is the only worker of its
 * database: it holds an exclusive flock on `<database>.worker.lock` for its
 * life, which is what makes "every running job it does not own is an
 * orphan" true at start.
 *
 * The loop is single-threaded and sleeps in poll() on three descriptors:
 * the wake socket (the API's "look at the queue"), a signalfd (SIGTERM,
 * SIGINT) and the runner's eventfd (a job finished). It wakes up early for
 * the next lease renewal, the next queued job's run_at, the watchdog, the
 * heartbeat and the idle deadline. Claiming, running and finishing jobs
 * live in runner.c.
 *
 * Idle exit: with nothing running and nothing runnable for idle_exit_s,
 * the socket is drained *first* and the queue checked *after*. A job
 * enqueued before the check is found by it; one enqueued after it sends a
 * datagram that stays queued in the socket, which systemd (or
 * tools/socket-activate) holds after we exit and turns into a new worker.
 * No wake-up is lost in between.
 */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "conf.h"
#include "gitops.h"
#include "log.h"
#include "publish.h"
#include "runner.h"
#include "store.h"
#include "wake.h"

#define HEARTBEAT_MS	10000
#define CLAIM_RETRY_MS	1000
#define BLOCKED_POLL_MS 1000

struct options {
	const char *config;
	bool foreground;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: repoflow-worker [--config FILE] [--foreground]\n"
		   "\n"
		   "Runs repoflow's queued jobs. Started by repoflow-worker.socket, it exits\n"
		   "after idle_exit_s with nothing to do; --foreground keeps it running.\n"
		   "\n"
		   "  -c, --config FILE   configuration file (default $REPOFLOW_CONFIG, else\n"
		   "                      " CONF_DEFAULT_PATH ")\n"
		   "  -f, --foreground    never exit when idle\n"
		   "  -h, --help          this text\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/*
 * Hold `<database>.worker.lock` exclusively for the life of the process.
 * Returns the fd, -EWOULDBLOCK when another worker holds it.
 */
static int take_worker_lock(const char *database)
{
	_cleanup_free_ char *path = NULL;
	int fd;

	if (asprintf(&path, "%s.worker.lock", database) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * The wake socket: fd 3 from systemd (or tools/socket-activate), else bound
 * at conf->wake_socket. *ret_activated says which.
 */
static int open_wake_socket(const struct conf *c, bool *ret_activated)
{
	int n = sd_listen_fds(1), fd;

	if (n < 0)
		return n;
	if (n >= 1) {
		if (n > 1)
			log_msg(LOG_WARNING,
				"%d sockets passed; using the first as the wake socket", n);
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket(fd, AF_UNIX, SOCK_DGRAM, -1) <= 0)
			return -ENOTSOCK;
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		*ret_activated = true;
		return fd;
	}
	fd = wake_bind(c->wake_socket);
	if (fd >= 0)
		*ret_activated = false;
	return fd;
}

/* "<hostname>:<pid>:<random>": unique per process, readable in a job row. */
static void make_owner(char *buf, size_t size)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	unsigned char rnd[4] = {0};
	char hex[sizeof(rnd) * 2 + 1];

	(void)gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memcpy(rnd, &(uint32_t){(uint32_t)mono_ms()}, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), hex);
	snprintf(buf, size, "%s:%d:%s", host, (int)getpid(), hex);
}

static int64_t min_deadline(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

struct worker {
	struct options opt;
	struct conf conf;
	struct store *store;
	struct runner *runner;
	struct publisher *publisher; /* NULL without a live stream */
	int wake_fd, sig_fd, lock_fd;
	bool git_ready;
	char owner[HOST_NAME_MAX + 64];
	bool stopping;
	int64_t idle_ms;
	int64_t last_active; /* monotonic ms of the last job start or finish */
	int64_t next_heartbeat;
	int64_t watchdog_ms; /* 0: no watchdog */
	int64_t next_watchdog;
	int64_t claim_retry_at; /* a claim failed: try again then */
	char status[512];
};

static void heartbeat(struct worker *w)
{
	struct err e = {{0}, {0}};

	if (store_worker_heartbeat(w->store, now_ms(), &e) < 0)
		log_msg(LOG_WARNING, "Heartbeat failed: %s", e.msg);
	w->next_heartbeat = mono_ms() + HEARTBEAT_MS;
}

static void update_status(struct worker *w)
{
	char status[sizeof(w->status)];

	runner_status(w->runner, status, sizeof(status));
	if (strcmp(status, w->status) != 0) {
		memcpy(w->status, status, sizeof(status));
		sd_notifyf(0, "STATUS=%s", status);
	}
}

static void claim(struct worker *w)
{
	struct err e = {{0}, {0}};
	int n;

	if (w->stopping)
		return;
	n = runner_claim(w->runner, w->store, &e);
	if (n < 0) {
		log_msg(LOG_ERR, "Claiming a job failed: %s", e.msg);
		w->claim_retry_at = mono_ms() + CLAIM_RETRY_MS;
	} else {
		w->claim_retry_at = 0;
	}
	if (n > 0)
		w->last_active = mono_ms();
}

/*
 * When to wake up next, as a monotonic deadline: the earliest of the next
 * lease renewal, the watchdog, the heartbeat, a failed claim's retry, the
 * next queued job's run_at (while a pool thread is free) and, when idle
 * exit applies, the idle deadline.
 */
static int64_t next_deadline(struct worker *w, int64_t next_renew)
{
	int64_t now = mono_ms();
	int64_t d = min_deadline(next_renew, w->next_heartbeat);
	int64_t run_at = 0;
	struct err e = {{0}, {0}};

	d = min_deadline(d, w->next_watchdog);
	d = min_deadline(d, w->claim_retry_at);
	if (!w->stopping && runner_running(w->runner) < w->conf.worker_threads) {
		if (store_job_next_run_at(w->store, &run_at, &e) < 0) {
			log_msg(LOG_WARNING, "Reading the queue failed: %s", e.msg);
			d = min_deadline(d, now + CLAIM_RETRY_MS);
		} else if (run_at > 0) {
			int64_t wait = run_at - now_ms();

			/*
			 * A due job the claim did not take waits for its repo's
			 * running job or for an older job of its repo that is
			 * not due yet; look again a little later.
			 */
			d = min_deadline(d, now + (wait > 0 ? wait : BLOCKED_POLL_MS));
		}
	}
	if (!w->opt.foreground && !w->stopping && runner_running(w->runner) == 0)
		d = min_deadline(d, w->last_active + w->idle_ms);
	return d;
}

/*
 * Idle for idle_exit_s: drain the socket, then look at the queue once more.
 * Returns true when the worker should exit.
 */
static bool idle_exit_now(struct worker *w)
{
	struct err e = {{0}, {0}};
	int64_t run_at = 0;

	(void)wake_drain(w->wake_fd);
	claim(w);
	if (runner_running(w->runner) > 0 || w->claim_retry_at != 0)
		return false;
	if (store_job_next_run_at(w->store, &run_at, &e) < 0) {
		log_msg(LOG_WARNING, "Reading the queue failed: %s", e.msg);
		w->last_active = mono_ms();
		return false;
	}
	if (run_at > 0 && run_at - now_ms() <= w->idle_ms) {
		/* A retry is due soon: sleep until it rather than exit. */
		w->last_active = mono_ms();
		return false;
	}
	return true;
}

static void on_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (w->stopping) {
			log_msg(LOG_NOTICE, "Still stopping: waiting for %d job(s)",
				runner_running(w->runner));
			continue;
		}
		log_msg(LOG_NOTICE,
			"Got %s; stopping after %d running job(s) reach a step boundary",
			strsignal((int)si.ssi_signo), runner_running(w->runner));
		w->stopping = true;
		runner_stop(w->runner);
		sd_notify(0, "STOPPING=1");
	}
}

/* The loop. Returns when stopped or idle. */
static void run(struct worker *w)
{
	w->last_active = mono_ms();
	for (;;) {
		struct pollfd fds[3] = {
		    /*
		     * While stopping, wake-ups are not ours to take: left in the
		     * socket, they make systemd start the next worker.
		     */
		    {.fd = w->stopping ? -1 : w->wake_fd, .events = POLLIN},
		    {.fd = w->sig_fd, .events = POLLIN},
		    {.fd = runner_fd(w->runner), .events = POLLIN},
		};
		int64_t next_renew, deadline, now;
		int timeout, n;

		if (w->claim_retry_at == 0 || mono_ms() >= w->claim_retry_at)
			claim(w);
		if (w->stopping && runner_running(w->runner) == 0)
			return;

		next_renew = runner_renew(w->runner, w->store);
		now = mono_ms();
		if (w->watchdog_ms > 0 && now >= w->next_watchdog) {
			sd_notify(0, "WATCHDOG=1");
			w->next_watchdog = now + w->watchdog_ms;
		}
		if (now >= w->next_heartbeat)
			heartbeat(w);
		update_status(w);

		deadline = next_deadline(w, next_renew);
		now = mono_ms();
		timeout = deadline <= now	     ? 0
			  : deadline - now > INT_MAX ? INT_MAX
						     : (int)(deadline - now);

		n = poll(fds, ARRAY_SIZE(fds), timeout);
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %m");
			sleep_ms(100);
		}
		if (n > 0 && (fds[1].revents & POLLIN))
			on_signal(w);
		if (n > 0 && (fds[2].revents & POLLIN) && runner_reap(w->runner) > 0)
			w->last_active = mono_ms();
		if (n > 0 && (fds[0].revents & POLLIN))
			(void)wake_drain(w->wake_fd);

		if (!w->opt.foreground && !w->stopping && runner_running(w->runner) == 0 &&
		    mono_ms() >= w->last_active + w->idle_ms && idle_exit_now(w)) {
			log_msg_id(LOG_INFO, LOG_MID_IDLE_EXIT,
				   "Idle for %d s with nothing queued; exiting",
				   w->conf.idle_exit_s);
			return;
		}
	}
}

/*
 * Everything before the loop, in order: configuration, the worker lock,
 * signals, the wake socket, libgit2, the store, recovery, the pool.
 * Returns 0 to run, 1 when another worker holds the lock (exit quietly),
 * or a negative errno (logged here). worker_release undoes what was done.
 */
static int worker_setup(struct worker *w)
{
	struct err e = {{0}, {0}};
	const char *conf_file;
	bool activated = false;
	uint64_t wd_usec = 0;
	sigset_t mask;
	int r;

	conf_init(&w->conf);
	conf_file = conf_path(w->opt.config);
	r = conf_load(&w->conf, conf_file,
		      w->opt.config == NULL && getenv("REPOFLOW_CONFIG") == NULL, &e);
	if (r < 0) {
		log_msg(LOG_ERR, "%s: %s", conf_file, e.msg);
		return r;
	}
	w->idle_ms = (int64_t)w->conf.idle_exit_s * 1000;

	w->lock_fd = take_worker_lock(w->conf.database);
	if (w->lock_fd == -EWOULDBLOCK) {
		log_msg(LOG_NOTICE, "Another worker holds %s.worker.lock; exiting",
			w->conf.database);
		return 1;
	}
	if (w->lock_fd < 0) {
		log_msg(LOG_ERR, "%s.worker.lock: %s", w->conf.database, strerror(-w->lock_fd));
		return w->lock_fd;
	}

	/* Signals arrive through a signalfd; the job threads inherit the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	w->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w->sig_fd < 0) {
		r = -errno;
		log_msg(LOG_ERR, "signalfd: %s", strerror(-r));
		return r;
	}

	w->wake_fd = open_wake_socket(&w->conf, &activated);
	if (w->wake_fd < 0) {
		log_msg(LOG_ERR, "Wake socket %s: %s", w->conf.wake_socket, strerror(-w->wake_fd));
		return w->wake_fd;
	}
	if (!activated && !w->opt.foreground)
		log_msg(LOG_NOTICE,
			"Bound %s without socket activation; after idle exit nothing restarts "
			"this worker (use --foreground, systemd or tools/socket-activate)",
			w->conf.wake_socket);

	r = gitops_init();
	if (r < 0) {
		log_msg(LOG_ERR, "libgit2 did not initialise");
		return r;
	}
	w->git_ready = true;
	r = store_open(w->conf.database, w->conf.busy_timeout_ms, STORE_MIGRATE, &w->store, &e);
	if (r < 0) {
		log_msg(LOG_ERR, "%s: %s", w->conf.database, e.msg);
		return r;
	}

	/* Every COMMIT of this process wakes the publisher of the live stream. */
	if (publisher_start(&w->conf, &w->publisher, &e) < 0)
		log_msg(LOG_WARNING, "No live stream: %s", e.msg);
	store_set_commit_hook(publisher_kick, w->publisher);

	make_owner(w->owner, sizeof(w->owner));
	r = runner_recover(w->store, w->owner, &e);
	if (r < 0) {
		log_msg(LOG_ERR, "Recovering orphaned jobs failed: %s", e.msg);
		return r;
	}
	heartbeat(w);
	r = runner_new(&w->conf, w->owner, &w->runner, &e);
	if (r < 0) {
		log_msg(LOG_ERR, "Starting the job threads failed: %s", e.msg);
		return r;
	}

	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000) {
		w->watchdog_ms = (int64_t)(wd_usec / 2000);
		w->next_watchdog = mono_ms();
	}
	log_msg(LOG_INFO, "Started as %s: %d thread(s), %s, idle exit %s", w->owner,
		w->conf.worker_threads, activated ? "socket-activated" : "bound its own socket",
		w->opt.foreground ? "off" : "on");
	return 0;
}

static void worker_release(struct worker *w)
{
	runner_free(w->runner);
	store_set_commit_hook(NULL, NULL);
	publisher_stop(w->publisher);
	if (w->store != NULL)
		store_close(w->store);
	if (w->git_ready)
		gitops_shutdown();
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	/* Closing the lock file releases the flock: the next worker may start. */
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	conf_release(&w->conf);
}

int main(int argc, char **argv)
{
	struct worker w = {.wake_fd = -1, .sig_fd = -1, .lock_fd = -1};
	int r;

	if (parse_args(argc, argv, &w.opt) < 0)
		return EXIT_FAILURE;
	log_init("repoflow-worker");

	r = worker_setup(&w);
	if (r == 0) {
		snprintf(w.status, sizeof(w.status), "idle");
		sd_notify(0, "READY=1\nSTATUS=idle");
		run(&w);
		/* After SIGTERM, STOPPING=1 was sent when the signal came. */
		if (!w.stopping)
			sd_notify(0, "STOPPING=1\nSTATUS=idle exit");
	}
	worker_release(&w);
	return r >= 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
