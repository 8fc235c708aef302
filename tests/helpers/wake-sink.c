/*
 * wake-sink.c - a stand-in for the worker's wake socket, for tests.
 *
 *   wake-sink PATH OUTFILE
 *
 * Binds a unix datagram socket at PATH (replacing a stale socket file) and
 * appends one line to OUTFILE for every datagram received, flushing each
 * line at once, until SIGTERM or SIGINT. The end-to-end tests of rejected
 * requests run it where the worker would listen, so that "no wake-up was
 * sent" is a line count that did not change.
 *
 * Each line is "<n> <bytes>" (the datagram's sequence number and length),
 * which is enough to count and to debug; the content of a wake-up does not
 * matter. When the socket is ready, "ready" is written to stdout and
 * stdout is closed, so a test can wait for it without polling.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Remove path only when it is a socket, so a typo cannot delete a file. */
static int remove_stale_socket(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	struct sigaction act;
	unsigned long n = 0;
	FILE *out;
	int fd, r;

	if (argc != 3) {
		fprintf(stderr, "usage: wake-sink PATH OUTFILE\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "wake-sink: socket path too long: %s\n", argv[1]);
		return 2;
	}

	/* No SA_RESTART: a signal must interrupt the blocking recv. */
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_stop;
	sigemptyset(&act.sa_mask);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	out = fopen(argv[2], "a");
	if (out == NULL) {
		fprintf(stderr, "wake-sink: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}

	r = remove_stale_socket(argv[1]);
	if (r < 0) {
		fprintf(stderr, "wake-sink: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "wake-sink: socket: %s\n", strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "wake-sink: bind %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	fclose(stdout);

	while (!stop_requested) {
		char buf[65536];
		ssize_t len = recv(fd, buf, sizeof(buf), 0);

		if (len < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "wake-sink: recv: %s\n", strerror(errno));
			break;
		}
		n++;
		fprintf(out, "%lu %zd\n", n, len);
		fflush(out);
	}

	close(fd);
	unlink(argv[1]);
	fclose(out);
	return 0;
}
