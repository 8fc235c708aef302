/*
 * reparent_branch.c - `reparent_branch branch parent`: make `parent` (the
 * trunk or a tracked, active branch) the new parent of `branch`, replay
 * the branch's own commits (base..head, its base unchanged) onto the
 * parent's tip, and restack everything stacked above it onto the moved
 * branch: the whole upstack moves (git-spice: upstack onto).
 *
 * Refused, not retryable: a branch not on the remote (branch_not_found),
 * not tracked (not_tracked), a parent that is not the trunk or a tracked
 * active branch (not_tracked), the branch itself or a branch stacked above
 * it (cycle). The new parent is recorded only when the branch's own
 * restack is (a conflict skipped with on_conflict skip leaves it where it
 * was); the frame in stack.c does the rest.
 */
#include <string.h>

#include "stack.h"

static int plan(struct stack_job *sj)
{
	const struct job *j = sj->f->job;
	struct stack_branch *b;
	char *parent;
	int r;

	r = stack_need_tracked(sj, j->branch, &b);
	if (r < 0)
		return r;
	if (j->parent == NULL)
		return err_set(&sj->f->err, -EINVAL, "internal", "the job names no parent");
	r = stack_check_parent(sj, b->name, j->parent);
	if (r < 0)
		return r;
	parent = strdup(j->parent);
	if (parent == NULL)
		return err_set(&sj->f->err, -ENOMEM, "internal", "out of memory");
	free(b->parent);
	b->parent = parent;
	stack_mark_subtree(sj, b);
	return 0;
}

static const struct stack_ops reparent_ops = {.plan = plan};

int reparent_branch_run(struct frame *f)
{
	return stack_run(f, &reparent_ops);
}
