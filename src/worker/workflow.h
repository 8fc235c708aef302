/*
 * workflow.h - the contract between the runner and the workflows: the
 * table of job kinds and the "frame" a workflow runs in.
 *
 * A workflow is a function of a frame. It reads the job, works through the
 * frame's store connection (its thread's own) and reports an outcome by
 * its return value:
 *
 *   0             completed; `message` and `result` say what happened.
 *   -ECANCELED    a cancel was requested and honoured at a step boundary.
 *   -ESHUTDOWN    the worker is stopping; the job goes back to the queue.
 *   -ESTALE       this attempt lost its lease; nothing more is written.
 *   other < 0     failed; `err` holds the problem code and text. The runner
 *                 decides between a retry (transient codes) and `error`.
 *
 * The runner finishes the job in one transaction. A workflow that has its
 * own rows to write with the outcome (sync_repo's projection and repo sync
 * status) sets `apply`, which the runner calls inside that transaction
 * before it writes the job row, so the job and what it did commit together.
 */
#ifndef REPOFLOW_WORKER_WORKFLOW_H
#define REPOFLOW_WORKER_WORKFLOW_H

#include <stdatomic.h>

#include <json-c/json.h>

#include "conf.h"
#include "job.h"
#include "store.h"
#include "util.h"

struct frame {
	/* Given by the runner; borrowed. */
	struct job *job; /* this attempt, as claimed (the lease is in it) */
	struct store *store;
	const struct conf *conf;
	struct job_options options;
	const atomic_bool *lease_lost; /* set when a renewal said -ESTALE */
	const atomic_bool *stopping;   /* set when the worker got SIGTERM */

	/* Filled by the workflow; owned by the frame (frame_release). */
	char *message;		    /* final message; NULL for a default */
	struct json_object *result; /* result object or NULL */
	struct err err;		    /* why it failed */
	/*
	 * Called inside the finishing transaction with the outcome (one of
	 * the return values above, never -ESTALE). It may be called a second
	 * time with a failure outcome when the first transaction could not
	 * commit. NULL when the workflow writes nothing of its own.
	 */
	int (*apply)(struct frame *f, int outcome, struct err *e);
	void *state; /* the workflow's own, for apply */
	void (*state_free)(void *state);
};

void frame_release(struct frame *f);

/*
 * A step boundary: returns -ESTALE when the lease was lost, -ESHUTDOWN
 * when the worker is stopping, -ECANCELED when a cancel was requested, 0 to
 * go on. Workflows call it only where stopping changes nothing half-done.
 */
int frame_boundary(struct frame *f);
/* Record and log progress (step of total, detail). Not a boundary. */
int frame_progress(struct frame *f, int64_t step, int64_t total, const char *detail);
/* A boundary, then progress: the usual start of a step. */
int frame_step(struct frame *f, int64_t step, int64_t total, const char *detail);
/* Set the final message (printf-style); -ENOMEM. */
int frame_message(struct frame *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef int (*workflow_fn)(struct frame *f);

/* The workflow for a kind (never NULL for a valid kind). */
workflow_fn workflow_for(enum job_kind kind);

/* The workflows (the stack kinds are declared in stack.h). */
int sync_repo_run(struct frame *f);

#endif
