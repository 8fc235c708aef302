/*
 * restack.c - the three kinds that only restack: restack_repo (every
 * tracked, active branch), restack_subtree (a branch and everything
 * stacked above it) and rebase_branch (one branch alone; its children are
 * left needing restack). Each is a plan for the frame in stack.c, which
 * does the rest; they differ only in which branches they mark.
 */
#include <string.h>

#include "stack.h"

/*
 * Whether b can be restacked where it stands: every branch below it on the
 * remote and active, and the bottom one's parent (the trunk, usually)
 * known.
 */
static bool stands(struct stack_job *sj, struct stack_branch *b)
{
	struct stack_branch *p = b;
	git_oid tip;

	for (size_t hops = 0; hops <= sj->n; hops++) {
		struct stack_branch *up;

		if (!p->on_remote || !p->active || !p->has_head || p->parent == NULL)
			return false;
		up = stack_find(sj, p->parent);
		if (up == NULL || !up->tracked)
			return stack_tip(sj, p->parent, &tip) == 0;
		p = up;
	}
	return false; /* a cycle in the projection */
}

static int plan_repo(struct stack_job *sj)
{
	for (size_t i = 0; i < sj->n; i++)
		if (sj->b[i]->tracked && stands(sj, sj->b[i]))
			sj->b[i]->in_set = true;
	return 0;
}

static int plan_subtree(struct stack_job *sj)
{
	struct stack_branch *b;
	int r = stack_need_tracked(sj, sj->f->job->branch, &b);

	if (r < 0)
		return r;
	stack_mark_subtree(sj, b);
	return 0;
}

static int plan_rebase(struct stack_job *sj)
{
	struct stack_branch *b;
	int r = stack_need_tracked(sj, sj->f->job->branch, &b);

	if (r < 0)
		return r;
	b->in_set = true;
	return 0;
}

static const struct stack_ops restack_repo_ops = {.plan = plan_repo};
static const struct stack_ops restack_subtree_ops = {.plan = plan_subtree};
static const struct stack_ops rebase_branch_ops = {.plan = plan_rebase};

int restack_repo_run(struct frame *f)
{
	return stack_run(f, &restack_repo_ops);
}

int restack_subtree_run(struct frame *f)
{
	return stack_run(f, &restack_subtree_ops);
}

int rebase_branch_run(struct frame *f)
{
	return stack_run(f, &rebase_branch_ops);
}
