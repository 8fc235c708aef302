/*
 * socket-activate.c - a tiny socket activator for development and tests,
 * doing for the worker's wake socket what repoflow-worker.socket does
 * under systemd:
 *
 *   socket-activate [--interval SECONDS] --datagram PATH -- PROGRAM ARGS...
 *
 * It binds a unix datagram socket at PATH (mode 0660) and holds it for its
 * whole life. Whenever the socket is readable and no child runs, it starts
 * PROGRAM with the socket as fd 3 and LISTEN_FDS=1, LISTEN_PID=<the
 * child's pid>, LISTEN_FDNAMES=wake, then waits for the child to exit
 * without reading the socket itself: a datagram that arrives while the
 * child runs (or after it drained the socket and decided to exit) stays
 * queued and starts the next child. Never two children at once.
 *
 * systemd-socket-activate is not enough: it execs the program once and
 * does not listen again after it exits.
 *
 * --interval SECONDS also starts the program that often when nothing
 * arrived, like repoflow-worker.timer does in production (a backstop for
 * retries whose time came while no worker ran).
 *
 * SIGTERM or SIGINT: forwarded to the running child, which is waited for;
 * then PATH is removed and the activator exits. One line per activation
 * goes to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_FD 3

static volatile sig_atomic_t got_signal;
static volatile pid_t running_child; /* 0 when none */

/* kill(2) is async-signal-safe: forward at once, whatever the main flow is doing. */
static void on_signal(int sig)
{
	got_signal = sig;
	if (running_child > 0)
		kill(running_child, sig);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: socket-activate [--interval SECONDS] --datagram PATH -- PROGRAM "
		   "[ARGS...]\n");
}

static int bind_datagram(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "socket-activate: %s: path too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket-activate: socket");
		return -1;
	}
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0) {
		fprintf(stderr, "socket-activate: %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* In the child: put the socket on fd 3, name ourselves in LISTEN_PID, exec. */
static void child_exec(int fd, char **argv)
{
	char pid[32];
	sigset_t none;

	if (fd != LISTEN_FD) {
		if (dup2(fd, LISTEN_FD) < 0)
			_exit(127);
	} else if (fcntl(fd, F_SETFD, 0) < 0) {
		_exit(127);
	}
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDNAMES", "wake", 1);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(argv[0], argv);
	fprintf(stderr, "socket-activate: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Wait for the child; the signal handler forwards SIGTERM/SIGINT to it.
 * Returns its status.
 */
static int child_wait(pid_t child)
{
	int status = 0;

	running_child = child;
	/* A signal that came between fork() and the line above was not forwarded. */
	if (got_signal != 0)
		kill(child, got_signal);
	for (;;) {
		pid_t p = waitpid(child, &status, 0);

		if (p == child || (p < 0 && errno != EINTR)) {
			running_child = 0;
			return p == child ? status : -1;
		}
	}
}

static long mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	long interval = 0, last_start;
	unsigned long activations = 0;
	char **prog;
	int fd, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--datagram") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			interval = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || i >= argc || interval < 0) {
		usage(stderr);
		return 2;
	}
	prog = &argv[i];

	/* No SA_RESTART: a signal must interrupt poll() and waitpid(). */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	fd = bind_datagram(path);
	if (fd < 0)
		return 1;
	fprintf(stderr, "socket-activate: listening on %s for %s\n", path, prog[0]);

	last_start = mono_s();
	while (got_signal == 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int timeout = -1, n, status;
		const char *why;
		pid_t child;

		if (interval > 0) {
			long left = last_start + interval - mono_s();

			timeout = left > 0 ? (int)(left * 1000) : 0;
		}
		n = poll(&pfd, 1, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("socket-activate: poll");
			break;
		}
		why = n > 0 ? "datagram" : "interval";

		child = fork();
		if (child < 0) {
			perror("socket-activate: fork");
			sleep(1);
			continue;
		}
		if (child == 0)
			child_exec(fd, prog);
		activations++;
		last_start = mono_s();
		fprintf(stderr, "socket-activate: activation %lu (%s): started %s as pid %ld\n",
			activations, why, prog[0], (long)child);

		status = child_wait(child);
		if (status >= 0 && WIFSIGNALED(status))
			fprintf(stderr, "socket-activate: pid %ld killed by signal %d\n",
				(long)child, WTERMSIG(status));
		else if (status >= 0 && WEXITSTATUS(status) != 0)
			fprintf(stderr, "socket-activate: pid %ld exited with status %d\n",
				(long)child, WEXITSTATUS(status));
		/* A program that fails at once would otherwise spin on a queued datagram. */
		if (status != 0 && mono_s() - last_start < 1 && got_signal == 0)
			sleep(1);
	}
	close(fd);
	unlink(path);
	fprintf(stderr, "socket-activate: stopped after %lu activation(s)\n", activations);
	return 0;
}
