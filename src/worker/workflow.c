/*
 * workflow.c - the table from job kind to workflow, and the frame helpers
 * every workflow uses at its step boundaries: cancel, lease and shutdown
 * checks, progress that is both stored (for clients) and logged (for
 * operators).
 *
 * Every kind is a stack workflow (stack.h): sync_repo.c, restack.c (three
 * kinds), reparent_branch.c and register_branch.c, all in the one frame of
 * stack.c. A kind missing from the table would end in `error` with the
 * problem type not_implemented, so no retry is wasted on it.
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "stack.h"
#include "workflow.h"

void frame_release(struct frame *f)
{
	free(f->message);
	f->message = NULL;
	if (f->result != NULL)
		json_object_put(f->result);
	f->result = NULL;
	if (f->state != NULL && f->state_free != NULL)
		f->state_free(f->state);
	f->state = NULL;
}

int frame_boundary(struct frame *f)
{
	bool requested = false;
	int r;

	if (atomic_load(f->lease_lost))
		return err_set(&f->err, -ESTALE, "lease_lost", "the job's lease was lost");
	if (atomic_load(f->stopping))
		return err_set(&f->err, -ESHUTDOWN, "shutdown", "the worker is stopping");
	r = store_job_cancel_requested(f->store, f->job, &requested, &f->err);
	if (r < 0)
		return r;
	if (requested)
		return err_set(&f->err, -ECANCELED, "canceled", "canceled on request");
	return 0;
}

int frame_progress(struct frame *f, int64_t step, int64_t total, const char *detail)
{
	int r = store_job_progress(f->store, f->job, step, total, detail, &f->err);

	if (r < 0)
		return r;
	log_job(f->job, LOG_INFO, LOG_MID_JOB_PROGRESS, "Step %lld of %lld: %s", (long long)step,
		(long long)total, detail != NULL ? detail : "");
	return 0;
}

int frame_step(struct frame *f, int64_t step, int64_t total, const char *detail)
{
	int r = frame_boundary(f);

	return r < 0 ? r : frame_progress(f, step, total, detail);
}

int frame_message(struct frame *f, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	free(f->message);
	f->message = s;
	return 0;
}

/* A kind without a workflow (none today): an error, never a retry. */
static int not_implemented_run(struct frame *f)
{
	int r = frame_boundary(f);

	if (r < 0)
		return r;
	return err_set(&f->err, -EOPNOTSUPP, "not_implemented", "%s is not implemented",
		       job_kinds[f->job->kind].name);
}

static const workflow_fn workflows[JOB_KIND_MAX] = {
    [JOB_SYNC_REPO] = sync_repo_run,
    [JOB_RESTACK_REPO] = restack_repo_run,
    [JOB_RESTACK_SUBTREE] = restack_subtree_run,
    [JOB_REBASE_BRANCH] = rebase_branch_run,
    [JOB_REPARENT_BRANCH] = reparent_branch_run,
    [JOB_REGISTER_EXISTING_BRANCH] = register_branch_run,
};

workflow_fn workflow_for(enum job_kind kind)
{
	if ((unsigned)kind >= JOB_KIND_MAX || workflows[kind] == NULL)
		return not_implemented_run;
	return workflows[kind];
}
