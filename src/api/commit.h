/*
 * commit.h - group commit: requests that write share SQLite transactions.
 *
 * One connection commits about 11,000 durable transactions a second, fewer
 * than the requests nginx can bring. So a writing request does not commit
 * on its own: it hands its write, as a closure, to commit_submit() and
 * waits. One waiting thread at a time is the leader: it takes every
 * closure queued so far, runs them in one BEGIN IMMEDIATE transaction on
 * its own connection, each inside its own savepoint, commits once, and
 * wakes the others with their results. A 2xx still means what it always
 * meant: the caller only answers after the COMMIT that holds its row has
 * returned, i.e. after the WAL is on disk.
 */
#ifndef REPOFLOW_API_COMMIT_H
#define REPOFLOW_API_COMMIT_H

#include "store.h"
#include "util.h"

/*
 * A write to run inside the shared transaction, on the leader's store `s`
 * (never the submitter's own). It returns a value >= 0 on success and a
 * negative errno on failure; on failure everything it wrote is rolled
 * back to its savepoint, so it changes nothing and spoils no other
 * request. It may store results in ctx (owned by the submitter, which
 * frees them whatever the outcome).
 */
typedef int (*commit_fn)(struct store *s, void *ctx);

/*
 * A commit_fn that enqueued work ORs this into its (non-negative) return
 * value. After the COMMIT, the leader sends one wake-up datagram for the
 * whole batch, however many of its members enqueued: the worker only
 * needs to know that the queue changed, and one datagram per batch rather
 * than per request keeps a syscall (and the worker's receive) off every
 * request. commit_submit() returns the value without the flag.
 */
#define COMMIT_WAKE 0x40000000

/* Where COMMIT_WAKE sends its datagram; set once before serving. */
void commit_set_wake_socket(const char *path);

/*
 * Run fn(ctx) in a group transaction and wait until it is committed. `own`
 * is the calling thread's connection, used if this thread leads the batch.
 * Returns what fn returned once its transaction is durable; fn's own
 * negative errno when fn failed; or the transaction's failure (-EBUSY when
 * the database stayed locked, -EIO and others with detail in e), in which
 * case nothing of fn's was kept.
 */
int commit_submit(struct store *own, commit_fn fn, void *ctx, struct err *e);

/*
 * The same, with `then(ctx, ret)` called once fn's write is durable and
 * before the batch's wake-up goes out (ret is fn's value without
 * COMMIT_WAKE). It runs on the leader's thread, so it must be short and
 * must not submit: it is for what has to happen between the COMMIT and the
 * worker hearing of it, such as logging that a job was accepted, which
 * would otherwise race the worker's first line about the job.
 */
typedef void (*commit_then_fn)(void *ctx, int ret);
int commit_submit_then(struct store *own, commit_fn fn, commit_then_fn then, void *ctx,
		       struct err *e);

#endif
