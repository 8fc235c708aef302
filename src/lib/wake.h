/*
 * wake.h - the worker's wake-up socket: a unix datagram socket. The API
 * sends one byte after every commit that enqueues; the worker (or systemd,
 * holding the socket while the worker is not running) receives it. A
 * datagram carries no data that matters: it only says "look at the queue".
 */
#ifndef REPOFLOW_WAKE_H
#define REPOFLOW_WAKE_H

/*
 * Send a wake-up to path without blocking. Failures (no listener, a full
 * buffer) are returned but are not errors for the caller: the worker also
 * looks at the queue when it starts and on its timer.
 */
int wake_send(const char *path);
/* Bind a datagram socket at path (replacing a stale one), non-blocking, close-on-exec. Returns the fd. */
int wake_bind(const char *path);
/* Read and discard every pending datagram on fd. Returns how many. */
int wake_drain(int fd);

#endif
