/*
 * register_branch.c - `register_existing_branch branch [parent]`: start
 * tracking a branch that already exists on the remote (git-spice: branch
 * track). Nothing is rewritten or pushed; the frame in stack.c records the
 * tracking with the projection and reports it in result.tracked.
 *
 * The parent is the one given (checked as reparent checks it), or else
 * inferred: among the trunk and the tracked, active branches whose tips
 * are ancestors of the branch (or its very commit), the nearest one: no
 * other candidate's tip lies between it and the branch. Candidates with
 * the same tip are told apart by stack depth (a branch stacked on another
 * with no commits of its own is the nearer), then by name. The trunk when
 * none is. The base is merge-base(parent tip, branch).
 *
 * An already tracked branch is refreshed: it keeps its parent (unless one
 * is given or the old one is gone) and its base (unless the branch no
 * longer contains it, when it is healed to the merge-base), and the result
 * says it was already tracked.
 */
#include <string.h>

#include "stack.h"

struct candidate {
	const char *name;
	git_oid tip;
	int depth;
};

static int depth_of(struct stack_job *sj, const char *name)
{
	struct stack_branch *b = stack_find(sj, name);
	int d = 0;

	while (b != NULL && b->tracked && d <= (int)sj->n) {
		d++;
		b = stack_find(sj, b->parent);
	}
	return d;
}

/* The nearest candidate parent of b (see the top of the file) into *ret. */
static int infer_parent(struct stack_job *sj, struct stack_branch *b, const char **ret)
{
	struct frame *f = sj->f;
	_cleanup_free_ struct candidate *c = NULL;
	const struct candidate *best = NULL;
	size_t n = 0;
	int r;

	c = calloc(sj->n + 1, sizeof(*c));
	if (c == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	if (sj->has_trunk)
		c[n++] = (struct candidate){sj->repo.trunk, sj->trunk_tip, 0};
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *o = sj->b[i];

		if (o == b || !o->tracked || !o->active || !o->on_remote || !o->has_head ||
		    stack_is_above(sj, o->name, b->name))
			continue;
		c[n++] = (struct candidate){o->name, o->head, depth_of(sj, o->name)};
	}

	/* Keep the candidates whose tips the branch contains. */
	for (size_t i = 0; i < n;) {
		bool anc = false;

		r = gitops_is_ancestor(sj->git, &c[i].tip, &b->head, &anc, &f->err);
		if (r < 0)
			return r;
		if (anc)
			i++;
		else
			c[i] = c[--n];
	}
	/* The nearest: no other candidate's tip (a different commit) is above its tip. */
	for (size_t i = 0; i < n; i++) {
		bool nearest = true;

		for (size_t k = 0; k < n && nearest; k++) {
			bool anc = false;

			if (k == i || git_oid_equal(&c[i].tip, &c[k].tip))
				continue;
			r = gitops_is_ancestor(sj->git, &c[i].tip, &c[k].tip, &anc, &f->err);
			if (r < 0)
				return r;
			nearest = !anc;
		}
		if (!nearest)
			continue;
		if (best == NULL || c[i].depth > best->depth ||
		    (c[i].depth == best->depth && strcmp(c[i].name, best->name) < 0))
			best = &c[i];
	}
	if (best == NULL) {
		if (!sj->has_trunk)
			return err_set(&f->err, -ENOENT, "branch_not_found",
				       "the trunk %s is not on the remote", sj->repo.trunk);
		*ret = sj->repo.trunk;
		return 0;
	}
	*ret = best->name;
	return 0;
}

static int plan(struct stack_job *sj)
{
	struct frame *f = sj->f;
	const char *name = f->job->branch, *parent = NULL;
	struct stack_branch *b;
	git_oid tip;
	bool keep_base = false;
	char *p;
	int r;

	if (name == NULL)
		return err_set(&f->err, -EINVAL, "internal", "the job names no branch");
	r = stack_need_remote(sj, name);
	if (r < 0)
		return r;
	if (strcmp(name, sj->repo.trunk) == 0)
		return err_set(
		    &f->err, -EINVAL, "is_trunk",
		    "%s is the trunk: it is the root of every stack, not a tracked branch", name);
	b = stack_find(sj, name);
	if (b == NULL && (b = stack_add(sj, name)) == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	b->already_tracked = b->tracked;

	if (f->job->parent != NULL) {
		r = stack_check_parent(sj, name, f->job->parent);
		if (r < 0)
			return r;
		parent = f->job->parent;
	} else if (b->tracked && b->parent != NULL &&
		   stack_check_parent(sj, name, b->parent) == 0) {
		parent = b->parent;
		keep_base = b->has_base;
	} else {
		f->err = (struct err){{0}, {0}};
		r = infer_parent(sj, b, &parent);
		if (r < 0)
			return r;
	}

	r = stack_tip(sj, parent, &tip);
	if (r < 0)
		return err_set(&f->err, -ENOENT, "branch_not_found",
			       "the parent %s is not on the remote", parent);
	if (keep_base) {
		bool anc = false;

		r = gitops_is_ancestor(sj->git, &b->base, &b->head, &anc, &f->err);
		if (r < 0)
			return r;
		keep_base = anc;
	}
	if (keep_base) {
		b->track_base = b->base;
	} else {
		r = gitops_merge_base(sj->git, &tip, &b->head, &b->track_base, &f->err);
		if (r < 0)
			return err_set(&f->err, r, "no_merge_base",
				       "%s and its parent %s have no commit in common", name,
				       parent);
	}
	p = strdup(parent);
	if (p == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	free(b->parent);
	b->parent = p;
	b->track = true;
	return 0;
}

static int report(struct stack_job *sj, struct json_object *result)
{
	struct stack_branch *b = stack_find(sj, sj->f->job->branch);
	char base[GIT_OID_HEXSZ + 1];
	int r;

	(void)result;
	if (b == NULL || !b->track)
		return 0;
	git_oid_tostr(base, sizeof(base), &b->track_base);
	base[7] = '\0';
	if (b->already_tracked)
		r = frame_message(sj->f, "%s was already tracked: on %s at %s%s", b->name,
				  b->parent, base, sj->f->options.dry_run ? " (dry run)" : "");
	else
		r = frame_message(sj->f, "%s %s on %s at %s",
				  sj->f->options.dry_run ? "Would track" : "Tracking", b->name,
				  b->parent, base);
	return r;
}

static const struct stack_ops register_ops = {.plan = plan, .report = report};

int register_branch_run(struct frame *f)
{
	return stack_run(f, &register_ops);
}
