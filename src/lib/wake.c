/*
 * wake.c - the wake-up datagram between the API and the worker. See wake.h
 * for why losing one is harmless and why sending never blocks.
 */
#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int wake_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/*
 * One socket per thread, made on first use: a datagram socket needs no
 * connection, and keeping it avoids a socket(2) and close(2) per request.
 */
static __thread int wake_fd = -1;

int wake_send(const char *path)
{
	struct sockaddr_un sa;
	static const char byte = 'w';
	int r = wake_addr(path, &sa);

	if (r < 0)
		return r;
	if (wake_fd < 0) {
		wake_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (wake_fd < 0)
			return -errno;
	}
	if (sendto(wake_fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   sizeof(sa)) < 0)
		return -errno;
	return 0;
}

int wake_bind(const char *path)
{
	struct sockaddr_un sa;
	int fd, r = wake_addr(path, &sa);

	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	(void)chmod(path, 0660);
	return fd;
}

int wake_drain(int fd)
{
	char buf[64];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}
