/*
 * sync_repo.c - `sync_repo [options.restack]` (git-spice: repo sync
 * --restack), as a plan for the frame in stack.c:
 *
 *  1. the frame's fetch: the trunk and every branch follow the remote;
 *  2. the projection is refreshed from it (in the frame's apply); a
 *     tracked branch gone from the remote and not merged becomes
 *     `missing`, kept and reported;
 *  3. merged tracked branches are found: the head is an ancestor of the
 *     trunk, or the branch was squash-merged (the patch-id of its whole
 *     change base..head equals that of a commit on the trunk's
 *     first-parent history since its base, at most SQUASH_SCAN commits
 *     back; gitops_find_squash_merges). A branch with no commits of its
 *     own (head = base) is never called merged: there was nothing to
 *     merge, and a branch just made on the trunk would otherwise be
 *     dropped by the next sync;
 *  4. merged branches stop being tracked (state merged, the mirror's ref
 *     dropped in the frame's locked move, the remote branch left alone;
 *     while the remote keeps it, the next fetch brings the ref back as an
 *     untracked branch's); their children are
 *     reparented to the nearest ancestor that is not merged and keep their
 *     base, so a later restack replays only their own commits;
 *  5. with options.restack (the default) the reparented branches and
 *     everything above them are restacked and pushed in the frame;
 *     otherwise they are left needing restack.
 *
 * The repo's sync status: `running` in a small transaction of its own
 * before the fetch (a client sees it while the network is slow), then
 * `ok` or `error` with the job in the finishing transaction. dry_run
 * fetches (the mirror is only a cache of the remote) but writes nothing
 * else and reports what a real run would do.
 *
 * The result has the frame's keys plus "fetched" (branches whose head
 * moves in the projection, null for one new or gone), "branches" (how
 * many the remote has) and "squashed" ({branch, commit}: the trunk commit
 * a squash merge was recognised by).
 */
#include <stdio.h>
#include <string.h>

#include "stack.h"

/* How far back along the trunk's first-parent history squash merges are looked for. */
#define SQUASH_SCAN 1000

struct sync_state {
	bool marked_running;
	struct branch *old; /* the projection before the job */
	size_t n_old;
	struct json_object *squashed;
};

static void sync_state_free(void *p)
{
	struct sync_state *st = p;

	branch_array_free(st->old, st->n_old);
	json_object_put(st->squashed);
	free(st);
}

static void repop(struct repo *r)
{
	repo_release(r);
}

/* Mark the repo's sync as running, in a transaction of its own. */
static int start(struct stack_job *sj)
{
	struct frame *f = sj->f;
	struct sync_state *st = calloc(1, sizeof(*st));
	int r;

	if (st == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	sj->kstate = st;
	sj->kstate_free = sync_state_free;
	st->squashed = json_object_new_array();
	if (st->squashed == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	if (f->options.dry_run)
		return 0;
	r = store_begin(f->store, &f->err);
	if (r < 0)
		return r;
	r = store_repo_set_sync(f->store, sj->repo.id, "running", NULL, 0, &f->err);
	if (r == 0)
		r = store_commit(f->store, &f->err);
	if (r < 0) {
		store_rollback(f->store);
		return r;
	}
	st->marked_running = true;
	return 0;
}

/* The branch's own change starts here: its base, or where it left the trunk when rewritten. */
static int own_base(struct stack_job *sj, const struct stack_branch *b, git_oid *ret)
{
	bool anc = false;

	if (b->has_base && gitops_has_commit(sj->git, &b->base) &&
	    gitops_is_ancestor(sj->git, &b->base, &b->head, &anc, &sj->f->err) == 0 && anc) {
		*ret = b->base;
		return 0;
	}
	return gitops_merge_base(sj->git, &b->head, &sj->trunk_tip, ret, &sj->f->err);
}

/* Steps 3 and 4: which tracked branches are merged, and who their children stack on now. */
static int find_merged(struct stack_job *sj)
{
	struct frame *f = sj->f;
	struct sync_state *st = sj->kstate;
	_cleanup_free_ struct gitops_squash_query *q = NULL;
	_cleanup_free_ struct stack_branch **qb = NULL;
	size_t nq = 0;
	int r;

	q = calloc(sj->n > 0 ? sj->n : 1, sizeof(*q));
	qb = calloc(sj->n > 0 ? sj->n : 1, sizeof(*qb));
	if (q == NULL || qb == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];
		git_oid base;
		bool anc = false;

		if (!b->tracked || !b->has_head)
			continue;
		if (own_base(sj, b, &base) < 0) {
			f->err = (struct err){{0}, {0}}; /* no common history: not merged */
			continue;
		}
		if (git_oid_equal(&base, &b->head))
			continue; /* no commits of its own */
		r = gitops_is_ancestor(sj->git, &b->head, &sj->trunk_tip, &anc, &f->err);
		if (r < 0)
			return r;
		if (anc) {
			b->merged = true;
			continue;
		}
		q[nq].base = base;
		q[nq].head = b->head;
		qb[nq++] = b;
	}
	r = gitops_find_squash_merges(sj->git, &sj->trunk_tip, q, nq, SQUASH_SCAN, &f->err);
	if (r < 0)
		return r;
	for (size_t k = 0; k < nq; k++) {
		struct json_object *o;

		if (!q[k].found)
			continue;
		qb[k]->merged = true;
		o = json_object_new_object();
		if (o == NULL ||
		    stack_json_add(o, "branch", json_object_new_string(qb[k]->name)) < 0 ||
		    stack_json_add(o, "commit", stack_json_oid(&q[k].commit)) < 0 ||
		    stack_json_push(st->squashed, o) < 0)
			return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	}

	/*
	 * Children of merged branches: onto the nearest ancestor that is not
	 * merged. Merged branches keep their parent in memory, so the walk
	 * reads stable strings while the loop rewrites other parents.
	 */
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i], *p;
		const char *to = b->parent;
		char *dup;

		if (!b->tracked || b->merged || (p = stack_find(sj, to)) == NULL || !p->merged)
			continue;
		for (size_t hops = 0; p != NULL && p->merged; hops++) {
			to = p->parent != NULL && hops < sj->n ? p->parent : sj->repo.trunk;
			p = stack_find(sj, to);
		}
		dup = strdup(to);
		if (dup == NULL)
			return err_set(&f->err, -ENOMEM, "internal", "out of memory");
		free(b->parent);
		b->parent = dup;
		b->reparent_always = true;
	}
	return 0;
}

static int plan(struct stack_job *sj)
{
	struct frame *f = sj->f;
	struct sync_state *st = sj->kstate;
	int r;

	r = store_branch_list(f->store, sj->repo.id, sj->repo.trunk, &st->old, &st->n_old, &f->err);
	if (r < 0)
		return r;
	if (!sj->has_trunk)
		return 0; /* an empty remote, or no trunk yet: nothing can be merged */
	r = find_merged(sj);
	if (r < 0)
		return r;
	if (!f->options.restack)
		return 0;
	for (size_t i = 0; i < sj->n; i++)
		if (sj->b[i]->reparent_always)
			stack_mark_subtree(sj, sj->b[i]);
	return 0;
}

static bool is_missing(const struct branch *b)
{
	return b->state != NULL && strcmp(b->state, "missing") == 0;
}

/* {"branch", "old", "new"}: how a branch's head moves in the projection. */
static int add_move(struct json_object *moved, const char *name, const char *old_head,
		    const char *new_head)
{
	struct json_object *m = json_object_new_object();

	if (m == NULL)
		return -ENOMEM;
	if (stack_json_add(m, "branch", json_object_new_string(name)) < 0 ||
	    stack_json_add(m, "old", old_head != NULL ? json_object_new_string(old_head) : NULL) <
		0 ||
	    stack_json_add(m, "new", new_head != NULL ? json_object_new_string(new_head) : NULL) <
		0) {
		json_object_put(m);
		return -ENOMEM;
	}
	return stack_json_push(moved, m);
}

static int report(struct stack_job *sj, struct json_object *res)
{
	struct sync_state *st = sj->kstate;
	struct json_object *moved = json_object_new_array();
	size_t n_moved = 0, n_merged = 0, n_reparented = 0, n_missing = 0;
	int r = moved == NULL ? -ENOMEM : 0;

	for (size_t i = 0; r == 0 && i < sj->nheads; i++) {
		const struct gitops_head *h = &sj->heads[i];
		const struct branch *b = NULL;

		for (size_t k = 0; k < st->n_old && b == NULL; k++)
			if (strcmp(st->old[k].name, h->name) == 0)
				b = &st->old[k];
		if (b != NULL && b->head != NULL && strcmp(b->head, h->head) == 0 && !is_missing(b))
			continue;
		r = add_move(moved, h->name, b != NULL ? b->head : NULL, h->head);
		n_moved++;
	}
	for (size_t k = 0; r == 0 && k < st->n_old; k++)
		if (stack_remote(sj, st->old[k].name) == NULL && !is_missing(&st->old[k])) {
			r = add_move(moved, st->old[k].name, st->old[k].head, NULL);
			n_moved++;
		}
	if (r == 0)
		r = stack_json_add(res, "fetched", json_object_get(moved));
	if (r == 0)
		r = stack_json_add(res, "branches", json_object_new_int64((int64_t)sj->nheads));
	if (r == 0)
		r = stack_json_add(res, "squashed", json_object_get(st->squashed));
	json_object_put(moved);
	if (r < 0)
		return r;

	for (size_t i = 0; i < sj->n; i++) {
		const struct stack_branch *b = sj->b[i];

		n_merged += b->merged;
		n_reparented += b->tracked && !b->merged && b->reparent_always;
		n_missing += b->tracked && !b->merged && !b->on_remote;
	}
	if (n_merged == 0 && n_reparented == 0 && n_missing == 0 && sj->norder == 0)
		return frame_message(sj->f, "%s %zu branches, %zu changed",
				     sj->f->options.dry_run ? "Dry run: fetched" : "Synced",
				     sj->nheads, n_moved);
	return frame_message(sj->f,
			     "%s %zu branches, %zu changed; %zu merged, %zu reparented, %zu "
			     "missing; %zu restacked",
			     sj->f->options.dry_run ? "Dry run: fetched" : "Synced", sj->nheads,
			     n_moved, n_merged, n_reparented, n_missing, sj->norder);
}

/* Inside the runner's finishing transaction, after the frame's branch rows. */
static int apply(struct stack_job *sj, int outcome, struct err *e)
{
	struct frame *f = sj->f;
	struct sync_state *st = sj->kstate;
	int64_t repo_id = f->job->repo_id;

	if (f->options.dry_run)
		return 0;
	if (outcome < 0) {
		const char *why = f->err.msg[0] != '\0' ? f->err.msg : "sync failed";

		if (st == NULL || !st->marked_running) {
			/*
			 * This attempt ended before it marked the repo. A
			 * `running` left by an earlier attempt of a worker that
			 * died is stale (a repo's jobs run one at a time):
			 * replace it, or the repo would show running forever.
			 */
			_cleanup_(repop) struct repo repo = {0};
			int r = store_repo_get_by_id(f->store, repo_id, &repo, e);

			if (r < 0 || repo.sync_status == NULL ||
			    strcmp(repo.sync_status, "running") != 0)
				return r;
		}
		return store_repo_set_sync(f->store, repo_id, "error", why, 0, e);
	}
	return store_repo_set_sync(f->store, repo_id, "ok", NULL, now_ms(), e);
}

static const struct stack_ops sync_ops = {
    .start = start,
    .plan = plan,
    .report = report,
    .apply = apply,
};

int sync_repo_run(struct frame *f)
{
	return stack_run(f, &sync_ops);
}
