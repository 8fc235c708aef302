/*
 * publish.h - hands committed events to nginx's nchan module, which serves
 * them to live subscribers as server-sent events
 * (GET /v1/repos/{repo}/events/stream).
 *
 * A process that commits events (the API, the worker) starts one
 * publisher. Its thread follows the events table in seq order and POSTs
 * each event, as the same JSON that GET .../events returns, to the
 * nchan publisher location of its repo's channel over a unix socket
 * (conf->events_publish_socket): /internal/publish/<repo id>. The store's
 * commit hook kicks it after every COMMIT (publisher_kick), and it also
 * looks once a second, for events another program committed.
 *
 * Order: every process that publishes shares one position in the feed,
 * kept in the file <database>-publish under an exclusive flock while a
 * round runs. A round reads the events after that position and posts
 * them, then moves it. So events reach nchan in seq order, which is
 * commit order, whoever committed them, and each one once. (A process
 * killed in the middle of a round may post a few events again; clients
 * drop an event whose seq they have applied.)
 *
 * Best effort: nothing waits for it. A request's path only signals the
 * thread, and when nginx cannot be reached (stopped, reloading) the
 * events of that round are skipped, not retried: polling events?after=
 * stays the complete path, and the stream's clients resume from SQLite
 * on every (re)connect. State changes of the connection (failing, back)
 * are logged once each.
 */
#ifndef REPOFLOW_PUBLISH_H
#define REPOFLOW_PUBLISH_H

#include "conf.h"
#include "util.h"

struct publisher;

/*
 * Start the publisher of this process: a thread with its own store
 * connection. *ret is NULL (and 0 returned) when
 * conf->events_publish_socket is empty. The conf must outlive it.
 */
int publisher_start(const struct conf *conf, struct publisher **ret, struct err *e);
/*
 * New events may have been committed: wake the thread. Cheap (a mutex and
 * a condition variable), never blocks on I/O; `p` may be NULL. Its
 * signature fits store_set_commit_hook().
 */
void publisher_kick(void *p);
/* Publish what is left (one round), stop the thread and free. NULL is fine. */
void publisher_stop(struct publisher *p);

#endif
