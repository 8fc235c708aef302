/*
 * commit.c - the group commit of commit.h: a queue of waiting writes, a
 * leader elected among the waiters, one transaction per batch.
 *
 * Why a leader among the waiters rather than a committer thread: the
 * waiting thread has nothing else to do, so leading costs no hand-off
 * (no extra context switch on the path of every write), and when the
 * service is idle a lone request leads its own batch of one at once, with
 * no added latency. The batch is whatever queued up while the previous
 * COMMIT was running its fsync, so batches grow exactly as fast as load
 * does and no timer is involved.
 *
 * Waking: each waiter sleeps on a semaphore of its own, and is woken
 * exactly once, either with its result or to lead the next batch. A
 * shared condition variable with a broadcast would wake every waiter for
 * every batch (most of them only to sleep again), and under load those
 * futile context switches cost more than the commit.
 *
 * Why savepoints: every request's write runs inside `SAVEPOINT`, and a
 * failing one is rolled back to it, so one rejected request (a reused
 * Idempotency-Key, a finished job) leaves no trace and does not spoil the
 * batch. A failure of the transaction itself (BEGIN or COMMIT) fails every
 * member, and none of them answers 2xx.
 */
#include "commit.h"

#include "wake.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

struct commit_entry {
	commit_fn fn;
	commit_then_fn then;
	void *ctx;
	int ret;
	bool done;     /* set before `wake` is posted: the result is in ret */
	sem_t wake;    /* posted once: done, or "lead the next batch" */
	struct err *e; /* the submitter's, for transaction failures */
	struct commit_entry *next;
};

/*
 * The queue of writes not yet taken by a leader, and whether a leader is
 * at work (or has been chosen and is waking up): while it is set, a new
 * write only queues up.
 */
static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct commit_entry *commit_head;
static struct commit_entry **commit_tail = &commit_head;
static bool commit_leading;
static const char *commit_wake_socket;

void commit_set_wake_socket(const char *path)
{
	commit_wake_socket = path;
}

/*
 * Whether s is inside a transaction. SQLite rolls a whole transaction back
 * by itself after some errors (a full disk, an I/O error, out of memory);
 * the statements after that would run in autocommit mode, each durable on
 * its own, and the final COMMIT would fail. The leader checks after every
 * member so that cannot happen. (store.h offers no such query, so this
 * reads the raw handle.)
 */
static bool in_transaction(struct store *s)
{
	return !sqlite3_get_autocommit(store_db(s));
}

/* Fail every member of the batch that has not failed on its own yet. */
static void batch_fail(struct commit_entry *batch, int ret, const struct err *e)
{
	for (struct commit_entry *m = batch; m != NULL; m = m->next)
		if (m->ret >= 0) {
			m->ret = ret;
			if (m->e != NULL && e != NULL)
				*m->e = *e;
		}
}

/* Run one batch in one transaction on s; every member's ret is set on return. */
static void batch_run(struct store *s, struct commit_entry *batch)
{
	struct err e = {{0}, {0}};
	int r;

	r = store_begin(s, &e);
	if (r < 0) {
		store_rollback(s);
		batch_fail(batch, r, &e);
		return;
	}
	for (struct commit_entry *m = batch; m != NULL; m = m->next) {
		r = store_savepoint(s, &e);
		if (r >= 0) {
			r = m->fn(s, m->ctx);
			if (r >= 0) {
				int rr = store_savepoint_release(s, &e);

				if (rr < 0)
					r = rr;
			}
			if (r < 0)
				store_savepoint_rollback(s);
		}
		m->ret = r;
		if (!in_transaction(s)) {
			/* Everything before this member was lost with the transaction. */
			err_set(&e, r < 0 ? r : -EIO, "database",
				"the transaction was rolled back by the database");
			batch_fail(batch, r < 0 ? r : -EIO, &e);
			return;
		}
	}
	r = store_commit(s, &e);
	if (r < 0) {
		store_rollback(s);
		batch_fail(batch, r, &e);
		return;
	}
	/* The rows are on disk: the members' after-commit steps, then tell the worker. */
	bool wake = false;

	for (struct commit_entry *m = batch; m != NULL; m = m->next) {
		if (m->ret < 0)
			continue;
		wake = wake || (m->ret & COMMIT_WAKE);
		m->ret &= ~COMMIT_WAKE;
		if (m->then != NULL)
			m->then(m->ctx, m->ret);
	}
	if (wake && commit_wake_socket != NULL)
		(void)wake_send(commit_wake_socket);
}

int commit_submit(struct store *own, commit_fn fn, void *ctx, struct err *e)
{
	return commit_submit_then(own, fn, NULL, ctx, e);
}

int commit_submit_then(struct store *own, commit_fn fn, commit_then_fn then, void *ctx,
		       struct err *e)
{
	struct commit_entry me = {
	    .fn = fn, .then = then, .ctx = ctx, .ret = 0, .done = false, .e = e};
	struct commit_entry *batch, *m, *next, *heir;
	bool lead;

	if (own == NULL)
		return err_set(e, -EIO, "database", "no database connection");
	if (sem_init(&me.wake, 0, 0) < 0)
		return err_set(e, -errno, "internal", "cannot make a semaphore");

	pthread_mutex_lock(&commit_lock);
	*commit_tail = &me;
	commit_tail = &me.next;
	lead = !commit_leading;
	commit_leading = true;
	pthread_mutex_unlock(&commit_lock);

	if (!lead) {
		/* Woken once: with the result, or chosen to lead what queued up meanwhile. */
		while (sem_wait(&me.wake) < 0 && errno == EINTR)
			;
		if (me.done) {
			sem_destroy(&me.wake);
			return me.ret;
		}
	}

	/* Lead: take everything queued so far, our own entry among it. */
	pthread_mutex_lock(&commit_lock);
	batch = commit_head;
	commit_head = NULL;
	commit_tail = &commit_head;
	pthread_mutex_unlock(&commit_lock);

	batch_run(own, batch);

	/*
	 * Hand the lead to the oldest write that queued up while we ran, if
	 * any, first: the disk is idle until it starts. commit_leading stays
	 * set through the hand-off so nobody else starts a batch meanwhile.
	 */
	pthread_mutex_lock(&commit_lock);
	heir = commit_head;
	if (heir == NULL)
		commit_leading = false;
	pthread_mutex_unlock(&commit_lock);
	if (heir != NULL)
		sem_post(&heir->wake);

	for (m = batch; m != NULL; m = next) {
		/* Once woken, a member returns and its entry is gone: read next first. */
		next = m->next;
		m->done = true;
		if (m != &me)
			sem_post(&m->wake);
	}
	sem_destroy(&me.wake);
	return me.ret;
}
