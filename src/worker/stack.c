/*
 * stack.c - the frame every stack workflow runs in, one piece of code for
 * the six kinds (stack.h says how a kind plugs in).
 *
 *  1. Pre-sync: fetch into the mirror (cloning it on first use); the
 *     remote heads seen there are the leases. Load every tracked branch.
 *  2. The kind's plan: checks, and which branches to restack onto what.
 *     A cancel that arrived during the fetch is honoured first.
 *  3. Compute: each branch of the set, parents first and siblings by
 *     name, replayed in memory onto its parent's *new* tip by
 *     restack_branch (new objects in the odb, no ref moves). A cancel is
 *     honoured before each branch.
 *  4. dry_run stops here and reports. A conflict with on_conflict abort
 *     stops here too: nothing is pushed, no ref moves, the job is an
 *     error "conflict" with result.conflicts.
 *  5. One leased push of every changed branch (gitops_push_leased); a
 *     cancel is honoured right before it, never after it has started.
 *     push: false skips it.
 *  6. The mirror's refs move in one locked transaction (gitops_refs_move):
 *     restacked branches to their new heads, merged branches dropped.
 *  7. The projection: in the runner's finishing transaction (stack_apply)
 *     the branch rows are refreshed from the fetch and the job's changes
 *     (new bases, parents, tracked and merged branches) are written,
 *     together with the post-sync facts (head, remote head,
 *     needs_restack, synced_at) and the job row and its events, so a
 *     client never sees one without the others. needs_restack is worked
 *     out from git before that transaction starts (stack_post), so the
 *     write lock is never held across git work.
 *
 * What is recorded follows what reached the remote: `reached` is set once
 * the push went through (or was not wanted), and a branch's new head and
 * base are recorded only when the remote took it (`applies`). A job that
 * fails before that records the fetch alone, which is always the truth.
 * Re-running a job is safe: a branch already on its parent's tip is a
 * no-op, so a retry (or a second identical job) pushes only what is left.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "restack.h"
#include "stack.h"

/* --- small helpers -------------------------------------------------------- */

int stack_json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int stack_json_push(struct json_object *a, struct json_object *v)
{
	if (v == NULL || json_object_array_add(a, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *stack_json_oid(const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];

	return json_object_new_string(git_oid_tostr(hex, sizeof(hex), id));
}

static bool str_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int oid_parse(git_oid *id, const char *hex)
{
	return hex != NULL && strlen(hex) == GIT_OID_HEXSZ && git_oid_fromstr(id, hex) == 0
		   ? 0
		   : -EINVAL;
}

static void branch_free(struct stack_branch *b)
{
	if (b == NULL)
		return;
	free(b->name);
	free(b->parent);
	free(b->old_parent);
	for (size_t i = 0; i < b->npaths; i++)
		free(b->paths[i]);
	free(b->paths);
	free(b);
}

static void stack_job_free(void *p)
{
	struct stack_job *sj = p;

	if (sj->kstate != NULL && sj->kstate_free != NULL)
		sj->kstate_free(sj->kstate);
	for (size_t i = 0; i < sj->n; i++)
		branch_free(sj->b[i]);
	free(sj->b);
	free(sj->order);
	free(sj->heads);
	git_signature_free(sj->committer);
	git_repository_free(sj->git);
	gitops_cred_release(&sj->cred);
	free(sj->path);
	repo_release(&sj->repo);
	free(sj);
}

struct stack_branch *stack_find(struct stack_job *sj, const char *name)
{
	for (size_t i = 0; name != NULL && i < sj->n; i++)
		if (strcmp(sj->b[i]->name, name) == 0)
			return sj->b[i];
	return NULL;
}

const struct gitops_head *stack_remote(const struct stack_job *sj, const char *name)
{
	for (size_t i = 0; name != NULL && i < sj->nheads; i++)
		if (strcmp(sj->heads[i].name, name) == 0)
			return &sj->heads[i];
	return NULL;
}

static bool is_trunk(const struct stack_job *sj, const char *name)
{
	return str_eq(name, sj->repo.trunk);
}

/* A new node for `name` with what the fetch says about it. */
struct stack_branch *stack_add(struct stack_job *sj, const char *name)
{
	const struct gitops_head *h = stack_remote(sj, name);
	struct stack_branch *b;

	if (sj->n == sj->cap) {
		size_t ncap = sj->cap != 0 ? sj->cap * 2 : 16;
		struct stack_branch **p = realloc(sj->b, ncap * sizeof(*p));

		if (p == NULL)
			return NULL;
		sj->b = p;
		sj->cap = ncap;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL || (b->name = strdup(name)) == NULL) {
		free(b);
		return NULL;
	}
	b->needs_restack = -1;
	if (h != NULL) {
		b->on_remote = true;
		b->has_head = oid_parse(&b->head, h->head) == 0;
		(void)oid_parse(&b->lease, h->remote_head);
	}
	sj->b[sj->n++] = b;
	return b;
}

/* Every tracked row of the projection, whatever its state. */
static int load_branches(struct stack_job *sj)
{
	struct frame *f = sj->f;
	struct branch *rows = NULL;
	size_t n = 0;
	int r;

	r = store_branch_list_tracked(f->store, sj->repo.id, &rows, &n, &f->err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct stack_branch *b = stack_add(sj, rows[i].name);

		if (b == NULL) {
			r = err_set(&f->err, -ENOMEM, "internal", "out of memory");
			break;
		}
		b->tracked = true;
		b->active = str_eq(rows[i].state, "active");
		if (rows[i].parent != NULL && ((b->parent = strdup(rows[i].parent)) == NULL ||
					       (b->old_parent = strdup(rows[i].parent)) == NULL)) {
			r = err_set(&f->err, -ENOMEM, "internal", "out of memory");
			break;
		}
		b->has_base = oid_parse(&b->base, rows[i].base) == 0;
		/* Gone from the remote: its last head, if the mirror still has the commit. */
		if (!b->on_remote && oid_parse(&b->head, rows[i].head) == 0)
			b->has_head = gitops_has_commit(sj->git, &b->head);
	}
	branch_array_free(rows, n);
	return r;
}

bool stack_is_above(struct stack_job *sj, const char *name, const char *ancestor)
{
	struct stack_branch *b = stack_find(sj, name);

	/* The walk is bounded: a stored cycle must not hang the worker. */
	for (size_t hops = 0; b != NULL && hops <= sj->n; hops++) {
		if (str_eq(b->parent, ancestor))
			return true;
		b = stack_find(sj, b->parent);
	}
	return false;
}

void stack_mark_subtree(struct stack_job *sj, struct stack_branch *root)
{
	if (!root->on_remote || !root->has_head)
		return;
	root->in_set = true;
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i], *p;
		bool ok = true;

		if (b == root || !b->tracked || !b->active || b->merged || !b->on_remote)
			continue;
		if (!stack_is_above(sj, b->name, root->name))
			continue;
		/* Everything between b and root must be on the remote too. */
		for (p = stack_find(sj, b->parent); ok && p != NULL && p != root;
		     p = stack_find(sj, p->parent))
			ok = p->on_remote && p->active && !p->merged;
		if (ok)
			b->in_set = true;
	}
}

int stack_tip(struct stack_job *sj, const char *name, git_oid *ret)
{
	const struct gitops_head *h;
	struct stack_branch *b;

	if (is_trunk(sj, name)) {
		if (!sj->has_trunk)
			return -ENOENT;
		*ret = sj->trunk_tip;
		return 0;
	}
	b = stack_find(sj, name);
	if (b != NULL && b->outcome == STACK_UPDATED) {
		*ret = b->new_head;
		return 0;
	}
	if (b != NULL && b->on_remote && b->has_head) {
		*ret = b->head;
		return 0;
	}
	h = stack_remote(sj, name);
	if (h != NULL && oid_parse(ret, h->head) == 0)
		return 0;
	return -ENOENT;
}

int stack_need_remote(struct stack_job *sj, const char *name)
{
	if (stack_remote(sj, name) != NULL)
		return 0;
	return err_set(&sj->f->err, -ENOENT, "branch_not_found",
		       "the branch %s is not on the remote", name);
}

/* The branch a request names: on the remote (branch_not_found) and tracked (not_tracked). */
int stack_need_tracked(struct stack_job *sj, const char *name, struct stack_branch **ret)
{
	struct stack_branch *b;
	int r;

	if (name == NULL)
		return err_set(&sj->f->err, -EINVAL, "internal", "the job names no branch");
	r = stack_need_remote(sj, name);
	if (r < 0)
		return r;
	b = stack_find(sj, name);
	if (strcmp(name, sj->repo.trunk) == 0)
		return err_set(&sj->f->err, -ENOENT, "not_tracked",
			       "%s is the trunk: it is the root of every stack and never restacked",
			       name);
	if (b == NULL || !b->tracked || !b->active)
		return err_set(&sj->f->err, -ENOENT, "not_tracked",
			       "the branch %s is not tracked (register_existing_branch tracks it)",
			       name);
	*ret = b;
	return 0;
}

int stack_check_parent(struct stack_job *sj, const char *branch, const char *parent)
{
	struct stack_branch *p;

	if (str_eq(branch, parent))
		return err_set(&sj->f->err, -ELOOP, "cycle", "%s cannot be its own parent", branch);
	if (is_trunk(sj, parent)) {
		if (!sj->has_trunk)
			return err_set(&sj->f->err, -ENOENT, "branch_not_found",
				       "the trunk %s is not on the remote", parent);
		return 0;
	}
	p = stack_find(sj, parent);
	if (p == NULL || !p->tracked)
		return err_set(&sj->f->err, -ENOENT, "not_tracked",
			       "the parent %s is neither the trunk nor a tracked branch", parent);
	if (!p->active || !p->on_remote)
		return err_set(&sj->f->err, -ENOENT, "not_tracked",
			       "the parent %s is not active (it is %s)", parent,
			       p->active ? "gone from the remote" : "merged or missing");
	if (stack_is_above(sj, parent, branch))
		return err_set(&sj->f->err, -ELOOP, "cycle",
			       "%s cannot be stacked on %s: %s is stacked above it", branch, parent,
			       parent);
	return 0;
}

/* --- order and compute ----------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct stack_branch *const *)a)->name,
		      (*(struct stack_branch *const *)b)->name);
}

static void visit(struct stack_job *sj, size_t i, bool *seen)
{
	seen[i] = true;
	sj->order[sj->norder++] = i;
	for (size_t k = 0; k < sj->n; k++)
		if (!seen[k] && sj->b[k]->in_set && str_eq(sj->b[k]->parent, sj->b[i]->name))
			visit(sj, k, seen);
}

/* The set, parents first: each stack depth first, siblings (and stacks) in name order. */
static int make_order(struct stack_job *sj)
{
	_cleanup_free_ bool *seen = NULL;

	if (sj->n > 1)
		qsort(sj->b, sj->n, sizeof(*sj->b), by_name);
	sj->order = calloc(sj->n > 0 ? sj->n : 1, sizeof(*sj->order));
	seen = calloc(sj->n > 0 ? sj->n : 1, sizeof(*seen));
	if (sj->order == NULL || seen == NULL)
		return err_set(&sj->f->err, -ENOMEM, "internal", "out of memory");
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *p;

		if (!sj->b[i]->in_set || seen[i])
			continue;
		p = stack_find(sj, sj->b[i]->parent);
		if (p == NULL || !p->in_set)
			visit(sj, i, seen);
	}
	return 0;
}

/* on_conflict skip: everything of the set stacked above b is left alone. */
static void skip_above(struct stack_job *sj, const struct stack_branch *b)
{
	for (size_t i = 0; i < sj->n; i++)
		if (sj->b[i]->in_set && sj->b[i]->outcome == STACK_NONE &&
		    stack_is_above(sj, sj->b[i]->name, b->name))
			sj->b[i]->outcome = STACK_SKIPPED;
}

static int record_conflict(struct stack_job *sj, struct stack_branch *b,
			   const struct restack_result *res)
{
	b->outcome = STACK_CONFLICT;
	b->conflict_commit = res->conflict.commit;
	b->conflict_onto = res->conflict.onto;
	if (res->conflict.npaths > 0) {
		b->paths = calloc(res->conflict.npaths, sizeof(*b->paths));
		if (b->paths == NULL)
			return err_set(&sj->f->err, -ENOMEM, "internal", "out of memory");
		for (size_t i = 0; i < res->conflict.npaths; i++) {
			b->paths[i] = strdup(res->conflict.paths[i]);
			if (b->paths[i] == NULL)
				return err_set(&sj->f->err, -ENOMEM, "internal", "out of memory");
			b->npaths++;
		}
	}
	return 0;
}

static int restack_one(struct stack_job *sj, struct stack_branch *b)
{
	struct frame *f = sj->f;
	struct restack_result res = {0};
	char detail[600];
	git_oid onto, base;
	int r;

	snprintf(detail, sizeof(detail), "restacking %s onto %s", b->name, b->parent);
	r = frame_step(f, ++sj->step, sj->total, detail);
	if (r < 0)
		return r;
	if (stack_tip(sj, b->parent, &onto) < 0)
		return err_set(&f->err, -ENOENT, "branch_not_found",
			       "the parent %s of %s is not on the remote", b->parent, b->name);
	if (b->has_base) {
		base = b->base;
	} else {
		/* A row without a base (made by hand): where it leaves its parent. */
		r = gitops_merge_base(sj->git, &b->head, &onto, &base, &f->err);
		if (r < 0)
			return r;
	}
	r = gitops_restack_onto(sj->git, &base, &b->head, &onto, sj->committer, &res, &f->err);
	if (r < 0)
		return r;
	if (res.conflicted) {
		r = record_conflict(sj, b, &res);
		restack_result_release(&res);
		if (r < 0)
			return r;
		if (f->options.on_conflict == ON_CONFLICT_ABORT)
			sj->conflict_abort = true;
		else
			skip_above(sj, b);
		return 0;
	}
	b->new_head = res.new_tip;
	b->new_base = res.new_base;
	b->base_healed = res.base_healed;
	b->healed_base = res.healed_base;
	b->outcome = res.changed ? STACK_UPDATED : STACK_UNCHANGED;
	restack_result_release(&res);
	return 0;
}

static int compute(struct stack_job *sj)
{
	for (size_t k = 0; k < sj->norder && !sj->conflict_abort; k++) {
		struct stack_branch *b = sj->b[sj->order[k]];
		int r;

		if (b->outcome == STACK_SKIPPED)
			continue;
		r = restack_one(sj, b);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- push and the mirror -------------------------------------------------- */

static size_t count_outcome(const struct stack_job *sj, enum stack_outcome o)
{
	size_t n = 0;

	for (size_t i = 0; i < sj->n; i++)
		n += sj->b[i]->outcome == o;
	return n;
}

/*
 * The one leased push. Every ref's outcome is recorded in its branch
 * (`pushed`) whatever the result: a push the server took in part must
 * still be recorded for the refs it took.
 */
static int push(struct stack_job *sj)
{
	struct frame *f = sj->f;
	_cleanup_free_ struct gitops_push_ref *refs = NULL;
	char prefix[64];
	size_t n = 0;
	int r;

	refs = calloc(sj->n > 0 ? sj->n : 1, sizeof(*refs));
	if (refs == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];

		if (b->outcome != STACK_UPDATED)
			continue;
		refs[n].branch = b->name;
		refs[n].lease = b->lease;
		refs[n].target = b->new_head;
		n++;
	}
	snprintf(prefix, sizeof(prefix), "refs/repoflow/push/%lld", (long long)f->job->id);
	r = gitops_push_leased(sj->git, sj->repo.remote_url, &sj->cred, prefix, refs, n, &f->err);
	for (size_t k = 0; k < n; k++) {
		struct stack_branch *b = stack_find(sj, refs[k].branch);

		b->pushed = refs[k].pushed;
		if (!refs[k].pushed && refs[k].status[0] != '\0')
			log_job(f->job, LOG_WARNING, NULL, "The remote rejected %s: %s", b->name,
				refs[k].status);
	}
	return r;
}

/* Move the mirror's refs: restacked branches that apply, merged branches dropped. */
static int move_mirror(struct stack_job *sj)
{
	struct frame *f = sj->f;
	_cleanup_free_ struct gitops_ref_move *moves = NULL;
	char **names = NULL, msg[80];
	size_t n = 0;
	int r = 0;

	moves = calloc(sj->n > 0 ? sj->n : 1, sizeof(*moves));
	names = calloc(sj->n > 0 ? sj->n : 1, sizeof(*names));
	if (moves == NULL || names == NULL) {
		free(names);
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	}
	for (size_t i = 0; i < sj->n && r == 0; i++) {
		struct stack_branch *b = sj->b[i];
		bool move = b->outcome == STACK_UPDATED && b->applies;
		bool drop = b->merged && b->on_remote && b->has_head;

		if (!move && !drop)
			continue;
		if (asprintf(&names[n], "refs/heads/%s", b->name) < 0) {
			names[n] = NULL;
			r = err_set(&f->err, -ENOMEM, "internal", "out of memory");
			break;
		}
		moves[n].name = names[n];
		moves[n].old = b->head;
		if (move)
			moves[n].target = b->new_head;
		n++;
	}
	snprintf(msg, sizeof(msg), "repoflow: job %lld", (long long)f->job->id);
	if (r == 0)
		r = gitops_refs_move(sj->git, moves, n, msg, &f->err);
	if (r == 0)
		sj->mirror_moved = n > 0;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

/* --- what the job leaves ---------------------------------------------------- */

/* Whether b's new parent is recorded. */
static bool parent_applies(const struct stack_job *sj, const struct stack_branch *b)
{
	if (str_eq(b->parent, b->old_parent) || b->track)
		return false;
	if (!sj->reached)
		return false;
	return b->reparent_always || !b->in_set || b->applies;
}

static const char *final_parent(const struct stack_job *sj, const struct stack_branch *b)
{
	if (b->track && sj->reached)
		return b->parent;
	return parent_applies(sj, b) ? b->parent : b->old_parent;
}

static bool final_head(const struct stack_branch *b, git_oid *ret)
{
	if (b->outcome == STACK_UPDATED && b->applies) {
		*ret = b->new_head;
		return true;
	}
	*ret = b->head;
	return b->has_head && b->on_remote;
}

static bool final_tip(struct stack_job *sj, const char *name, git_oid *ret)
{
	const struct gitops_head *h;
	struct stack_branch *b;

	if (is_trunk(sj, name)) {
		*ret = sj->trunk_tip;
		return sj->has_trunk;
	}
	b = stack_find(sj, name);
	if (b != NULL)
		return final_head(b, ret);
	h = stack_remote(sj, name);
	return h != NULL && oid_parse(ret, h->head) == 0;
}

/*
 * Post-sync, in memory: needs_restack of every branch that stays tracked,
 * from the state the job leaves (parent tip not an ancestor of the head).
 * Unknown (-1) when a tip is not known; the row keeps its old value then.
 */
static void stack_post(struct stack_job *sj)
{
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];
		const char *parent = final_parent(sj, b);
		git_oid head, tip;
		bool anc = false;
		struct err e;

		b->needs_restack = -1;
		if ((b->merged && sj->reached) || (!b->tracked && !(b->track && sj->reached)))
			continue;
		if (parent == NULL || !final_head(b, &head) || !final_tip(sj, parent, &tip))
			continue;
		if (gitops_is_ancestor(sj->git, &tip, &head, &anc, &e) == 0)
			b->needs_restack = anc ? 0 : 1;
	}
}

static const char *hex(const git_oid *id, char out[GIT_OID_HEXSZ + 1])
{
	return git_oid_tostr(out, GIT_OID_HEXSZ + 1, id);
}

/* Inside the runner's finishing transaction. */
static int stack_apply(struct frame *f, int outcome, struct err *e)
{
	struct stack_job *sj = f->state;
	_cleanup_free_ struct branch_ref *refs = NULL;
	_cleanup_free_ char(*heads)[GIT_OID_HEXSZ + 1] = NULL;
	int64_t now = now_ms();
	int r;

	if (f->options.dry_run || !sj->fetched)
		return sj->ops->apply != NULL ? sj->ops->apply(sj, outcome, e) : 0;

	/* 1. Every row from the fetch, with the heads this job moved. */
	refs = calloc(sj->nheads > 0 ? sj->nheads : 1, sizeof(*refs));
	heads = calloc(sj->nheads > 0 ? sj->nheads : 1, sizeof(*heads));
	if (refs == NULL || heads == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	for (size_t i = 0; i < sj->nheads; i++) {
		struct stack_branch *b = stack_find(sj, sj->heads[i].name);

		refs[i].name = sj->heads[i].name;
		refs[i].head = sj->heads[i].head;
		refs[i].remote_head = sj->heads[i].remote_head;
		if (b != NULL && b->outcome == STACK_UPDATED && b->applies) {
			refs[i].head = hex(&b->new_head, heads[i]);
			if (b->pushed)
				refs[i].remote_head = heads[i];
		}
	}
	r = store_branches_refresh(f->store, sj->repo.id, refs, sj->nheads, now, e);
	if (r < 0)
		return r;

	/* 2. The stack metadata the job changed, and needs_restack. */
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];
		struct branch_change c = BRANCH_CHANGE_INIT;
		char base[GIT_OID_HEXSZ + 1];

		if (b->merged && sj->reached) {
			r = store_branch_mark_merged(f->store, sj->repo.id, b->name, e);
			if (r < 0)
				return r;
			continue;
		}
		if (b->track && sj->reached) {
			r = store_branch_track(f->store, sj->repo.id, b->name, b->parent,
					       hex(&b->track_base, base), e);
			if (r < 0)
				return r;
		} else if (!b->tracked) {
			continue;
		}
		if (parent_applies(sj, b))
			c.parent = b->parent;
		if (sj->reached && b->applies &&
		    (b->outcome == STACK_UPDATED || b->outcome == STACK_UNCHANGED))
			c.base = hex(&b->new_base, base);
		c.needs_restack = b->needs_restack;
		if (c.parent == NULL && c.base == NULL && c.needs_restack < 0)
			continue;
		r = store_branch_update(f->store, sj->repo.id, b->name, &c, e);
		if (r < 0)
			return r;
	}
	return sj->ops->apply != NULL ? sj->ops->apply(sj, outcome, e) : 0;
}

/* --- the result ------------------------------------------------------------ */

static struct json_object *tracked_json(const struct stack_branch *b)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (stack_json_add(o, "branch", json_object_new_string(b->name)) < 0 ||
	    stack_json_add(o, "parent", json_object_new_string(b->parent)) < 0 ||
	    stack_json_add(o, "base", stack_json_oid(&b->track_base)) < 0 ||
	    stack_json_add(o, "already_tracked", json_object_new_boolean(b->already_tracked)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *updated_json(struct stack_job *sj, const struct stack_branch *b)
{
	struct json_object *o = json_object_new_object();
	git_commit *c = NULL;
	int r = 0;

	if (o == NULL)
		return NULL;
	r |= stack_json_add(o, "branch", json_object_new_string(b->name));
	r |= stack_json_add(o, "old", stack_json_oid(&b->head));
	r |= stack_json_add(o, "new", stack_json_oid(&b->new_head));
	r |= stack_json_add(o, "pushed", json_object_new_boolean(b->pushed));
	r |= stack_json_add(o, "onto", stack_json_oid(&b->new_base));
	/* The new tree, so that a dry run can be compared with the real run. */
	if (sj->git != NULL && git_commit_lookup(&c, sj->git, &b->new_head) == 0) {
		r |= stack_json_add(o, "tree", stack_json_oid(git_commit_tree_id(c)));
		git_commit_free(c);
	}
	if (r != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *conflict_json(const struct stack_branch *b)
{
	struct json_object *o = json_object_new_object();
	struct json_object *paths = json_object_new_array();
	int r = 0;

	if (o == NULL || paths == NULL) {
		json_object_put(o);
		json_object_put(paths);
		return NULL;
	}
	for (size_t i = 0; r == 0 && i < b->npaths; i++)
		r = stack_json_push(paths, json_object_new_string(b->paths[i]));
	r |= stack_json_add(o, "branch", json_object_new_string(b->name));
	r |= stack_json_add(o, "commit", stack_json_oid(&b->conflict_commit));
	r |= stack_json_add(o, "onto", stack_json_oid(&b->conflict_onto));
	r |= stack_json_add(o, "paths", paths);
	if (r != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *move_json(const char *branch, const char *from, const char *to)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (stack_json_add(o, "branch", json_object_new_string(branch)) < 0 ||
	    stack_json_add(o, "from", from != NULL ? json_object_new_string(from) : NULL) < 0 ||
	    stack_json_add(o, "to", json_object_new_string(to)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *healed_json(const struct stack_branch *b)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (stack_json_add(o, "branch", json_object_new_string(b->name)) < 0 ||
	    stack_json_add(o, "old_base", b->has_base ? stack_json_oid(&b->base) : NULL) < 0 ||
	    stack_json_add(o, "new_base", stack_json_oid(&b->healed_base)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

enum {
	R_UPDATED,
	R_UNCHANGED,
	R_CONFLICTS,
	R_SKIPPED,
	R_MERGED,
	R_REPARENTED,
	R_TRACKED,
	R_HEALED,
	R_MISSING,
	R_MAX
};

static int build_result(struct stack_job *sj)
{
	static const char *const keys[R_MAX] = {"updated", "unchanged", "conflicts",
						"skipped", "merged",	"reparented",
						"tracked", "healed",	"missing"};
	struct frame *f = sj->f;
	struct json_object *a[R_MAX] = {NULL};
	struct json_object *res = json_object_new_object();
	bool show = f->options.dry_run || (sj->reached && !sj->conflict_abort);
	int r = res == NULL ? -ENOMEM : 0;

	for (size_t k = 0; k < R_MAX; k++)
		if ((a[k] = json_object_new_array()) == NULL)
			r = -ENOMEM;
	for (size_t k = 0; r == 0 && k < sj->norder; k++) {
		struct stack_branch *b = sj->b[sj->order[k]];

		switch (b->outcome) {
		case STACK_UPDATED:
			if (show || b->pushed)
				r = stack_json_push(a[R_UPDATED], updated_json(sj, b));
			break;
		case STACK_UNCHANGED:
			if (show)
				r = stack_json_push(a[R_UNCHANGED],
						    json_object_new_string(b->name));
			break;
		case STACK_CONFLICT:
			r = stack_json_push(a[R_CONFLICTS], conflict_json(b));
			if (r == 0 && !sj->conflict_abort)
				r = stack_json_push(a[R_SKIPPED], json_object_new_string(b->name));
			break;
		case STACK_SKIPPED:
			r = stack_json_push(a[R_SKIPPED], json_object_new_string(b->name));
			break;
		case STACK_NONE:
			break;
		}
		if (r == 0 && b->base_healed && (show || b->pushed))
			r = stack_json_push(a[R_HEALED], healed_json(b));
	}
	for (size_t i = 0; r == 0 && i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];

		if (b->merged && show)
			r = stack_json_push(a[R_MERGED], json_object_new_string(b->name));
		else if (b->tracked && !b->merged && !b->on_remote)
			r = stack_json_push(a[R_MISSING], json_object_new_string(b->name));
		if (r == 0 && b->track && show)
			r = stack_json_push(a[R_TRACKED], tracked_json(b));
		if (r == 0 && b->tracked && !str_eq(b->parent, b->old_parent) &&
		    b->parent != NULL && (f->options.dry_run || parent_applies(sj, b)))
			r = stack_json_push(a[R_REPARENTED],
					    move_json(b->name, b->old_parent, b->parent));
	}
	for (size_t k = 0; k < R_MAX; k++) {
		if (r == 0)
			r = stack_json_add(res, keys[k], a[k]);
		else
			json_object_put(a[k]);
		a[k] = NULL;
	}
	if (r == 0)
		r = stack_json_add(res, "dry_run", json_object_new_boolean(f->options.dry_run));
	if (r == 0 && sj->ops->report != NULL)
		r = sj->ops->report(sj, res);
	if (r < 0) {
		json_object_put(res);
		return err_set(&f->err, -ENOMEM, "internal", "could not build the result");
	}
	if (f->result != NULL)
		json_object_put(f->result);
	f->result = res;
	return 0;
}

static void short_id(const git_oid *id, char out[12])
{
	git_oid_tostr(out, 12, id);
	out[7] = '\0';
}

/* The job's message for a conflict that aborted it; the error detail. */
static int conflict_error(struct stack_job *sj)
{
	for (size_t k = 0; k < sj->norder; k++) {
		struct stack_branch *b = sj->b[sj->order[k]];
		char c[12], o[12];

		if (b->outcome != STACK_CONFLICT)
			continue;
		short_id(&b->conflict_commit, c);
		short_id(&b->conflict_onto, o);
		return err_set(&sj->f->err, -EDEADLK, "conflict",
			       "restacking %s onto %s stopped on a conflict picking %s onto %s "
			       "(%s%s); nothing was pushed or moved",
			       b->name, b->parent, c, o, b->npaths > 0 ? b->paths[0] : "no path",
			       b->npaths > 1 ? " and more" : "");
	}
	return err_set(&sj->f->err, -EDEADLK, "conflict", "a conflict stopped the job");
}

static const char *branches(size_t n)
{
	return n == 1 ? "branch" : "branches";
}

/*
 * "Restacked 2 branches (1 unchanged); 2 skipped after a conflict in
 * feat-2; pushed 2", or what a dry run would do.
 */
static int set_message(struct stack_job *sj)
{
	struct frame *f = sj->f;
	size_t upd = count_outcome(sj, STACK_UPDATED), same = count_outcome(sj, STACK_UNCHANGED);
	size_t skip = count_outcome(sj, STACK_CONFLICT) + count_outcome(sj, STACK_SKIPPED);
	const char *first = NULL;
	struct buf m = BUF_INIT;
	size_t pushed = 0;
	int r;

	if (f->message != NULL)
		return 0; /* the kind said it better */
	for (size_t i = 0; i < sj->n; i++)
		pushed += sj->b[i]->pushed;
	for (size_t k = 0; k < sj->norder && first == NULL; k++)
		if (sj->b[sj->order[k]]->outcome == STACK_CONFLICT)
			first = sj->b[sj->order[k]]->name;
	r = buf_printf(&m, "%s %zu %s (%zu unchanged)",
		       f->options.dry_run ? "Dry run: would restack" : "Restacked", upd,
		       branches(upd), same);
	if (r >= 0 && skip > 0)
		r = buf_printf(&m, "; %zu skipped after a conflict in %s", skip,
			       first != NULL ? first : "a branch");
	if (r >= 0 && !f->options.dry_run)
		r = f->options.push ? buf_printf(&m, "; pushed %zu", pushed)
				    : buf_printf(&m, "; not pushed (push: false)");
	if (r >= 0)
		r = frame_message(f, "%s", m.data);
	buf_release(&m);
	return r < 0 ? err_set(&f->err, -ENOMEM, "internal", "out of memory") : 0;
}

/* --- the frame ------------------------------------------------------------- */

static int stack_body(struct stack_job *sj)
{
	struct frame *f = sj->f;
	const struct gitops_head *t;
	size_t nupd;
	int r, push_r = 0;

	/* 1. Pre-sync. The one boundary before anything happens. */
	r = frame_step(f, ++sj->step, 3, "fetching from the remote");
	if (r < 0)
		return r;
	r = store_repo_get_by_id(f->store, f->job->repo_id, &sj->repo, &f->err);
	if (r < 0)
		return r;
	if (asprintf(&sj->path, "%s/%s.git", f->conf->mirror_dir, sj->repo.name) < 0) {
		sj->path = NULL;
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	}
	if (gitops_cred_find(f->conf->credentials_dir, sj->repo.name, &sj->cred) < 0)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	if (git_signature_now(&sj->committer, f->conf->committer_name, f->conf->committer_email) <
	    0)
		return err_set(&f->err, -EINVAL, "config",
			       "the committer identity '%s <%s>' is not valid",
			       f->conf->committer_name, f->conf->committer_email);
	if (sj->ops->start != NULL) {
		r = sj->ops->start(sj);
		if (r < 0)
			return r;
	}
	r = gitops_mirror_fetch(sj->path, sj->repo.remote_url, &sj->cred, &sj->heads, &sj->nheads,
				&f->err);
	if (r < 0)
		return r;
	sj->fetched = true;
	t = stack_remote(sj, sj->repo.trunk);
	sj->has_trunk = t != NULL && oid_parse(&sj->trunk_tip, t->head) == 0;
	r = gitops_mirror_open(sj->path, &sj->git, &f->err);
	if (r < 0)
		return r;
	r = load_branches(sj);
	if (r < 0)
		return r;

	/* 2. The kind's plan. A cancel that came during the fetch stops here: nothing moved. */
	r = frame_step(f, ++sj->step, 3, "planning");
	if (r < 0)
		return r;
	r = sj->ops->plan(sj);
	if (r < 0)
		return r;
	r = make_order(sj);
	if (r < 0)
		return r;
	sj->total = sj->step + (int64_t)sj->norder + 1;

	/* 3. Compute, in memory. */
	r = compute(sj);
	if (r < 0)
		return r;
	if (f->options.dry_run) {
		r = build_result(sj);
		return r < 0 ? r : set_message(sj);
	}
	if (sj->conflict_abort) {
		r = build_result(sj);
		return r < 0 ? r : conflict_error(sj);
	}

	/* 4. One leased push; the last boundary is right before it. */
	nupd = count_outcome(sj, STACK_UPDATED);
	if (nupd > 0) {
		char detail[64];

		snprintf(detail, sizeof(detail), "%s %zu %s",
			 f->options.push ? "pushing" : "moving (no push)", nupd, branches(nupd));
		r = frame_step(f, ++sj->step, sj->total, detail);
		if (r < 0)
			return r;
	}
	if (nupd > 0 && f->options.push) {
		bool some = false;

		push_r = push(sj);
		for (size_t i = 0; i < sj->n; i++)
			some = some || sj->b[i]->pushed;
		/* Nothing reached the remote: nothing to record but the fetch. */
		if (push_r < 0 && !some)
			return push_r;
	}
	sj->reached = true;
	for (size_t i = 0; i < sj->n; i++) {
		struct stack_branch *b = sj->b[i];

		b->applies = b->outcome == STACK_UNCHANGED ||
			     (b->outcome == STACK_UPDATED && (b->pushed || !f->options.push));
	}

	/* 5. The mirror, all refs or none. */
	r = move_mirror(sj);
	if (r < 0) {
		log_job(f->job, LOG_WARNING, NULL,
			"The remote has the new heads but the mirror's refs did not move (%s); "
			"the next fetch brings them",
			f->err.msg);
		return r;
	}
	r = build_result(sj);
	if (r < 0)
		return r;
	if (push_r < 0) {
		/*
		 * Part of the push went through and is recorded; f->err still
		 * says which refs did not (remote_moved is retried, and the
		 * retry replays only what is left, on top of what was taken).
		 */
		return push_r;
	}
	return set_message(sj);
}

int stack_run(struct frame *f, const struct stack_ops *ops)
{
	struct stack_job *sj = calloc(1, sizeof(*sj));
	int r;

	if (sj == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	sj->f = f;
	sj->ops = ops;
	f->state = sj;
	f->state_free = stack_job_free;
	f->apply = stack_apply;

	r = stack_body(sj);
	if (sj->fetched && sj->git != NULL)
		stack_post(sj);
	/* The apply needs no git: let the repository and its caches go now. */
	git_repository_free(sj->git);
	sj->git = NULL;
	return r;
}
