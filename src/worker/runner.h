/*
 * runner.h - the worker's job machinery, driven by the main loop: claiming,
 * a pool of job threads, lease renewal, finishing (complete, cancel, retry
 * with backoff, error) and recovery of orphans at start.
 *
 * Threads: the main thread claims, renews leases and waits; each job runs
 * on one of conf->worker_threads pool threads, each with its own store
 * connection. When a job thread is done it makes runner_fd() readable, and
 * the main thread calls runner_reap().
 */
#ifndef REPOFLOW_WORKER_RUNNER_H
#define REPOFLOW_WORKER_RUNNER_H

#include <stddef.h>

#include "conf.h"
#include "store.h"
#include "util.h"

struct runner;

/* Start the pool (threads and their store connections). */
int runner_new(const struct conf *conf, const char *owner, struct runner **ret, struct err *e);
/* Join the threads and free; call once nothing runs (runner_running() == 0). */
void runner_free(struct runner *r);

/* Readable when a job thread finished a job; then call runner_reap. */
int runner_fd(const struct runner *r);
/* Take back the slots of finished jobs. Returns how many finished. */
int runner_reap(struct runner *r);
/* Jobs claimed and not reaped yet. */
int runner_running(const struct runner *r);

/*
 * Claim runnable jobs with the main thread's store while a pool thread is
 * free, and start each. Returns how many were started, or a negative errno
 * when a claim failed (the ones before it still run).
 */
int runner_claim(struct runner *r, struct store *s, struct err *e);

/*
 * Renew the leases that are due. Returns the monotonic time (ms) of the
 * next renewal, or 0 when nothing runs. A renewal that finds the lease
 * gone tells that job's thread to stop without finishing.
 */
int64_t runner_renew(struct runner *r, struct store *s);

/* SIGTERM: running jobs stop at their next step boundary and are requeued. */
void runner_stop(struct runner *r);

/* The STATUS= text: "idle", "running job 42 sync_repo on demo", ... */
void runner_status(const struct runner *r, char *buf, size_t size);

/*
 * At start, as the only worker of the database: every running job is an
 * orphan of a worker that died. Requeue them, logging each. Returns how
 * many.
 */
int runner_recover(struct store *s, const char *owner, struct err *e);

#endif
