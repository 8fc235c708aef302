/*
 * gitops_graph.c - the questions about history the stack workflows ask:
 * is this commit an ancestor of that one, where do two lines meet, and
 * was a branch squash-merged into the trunk.
 *
 * Squash merges are found by patch-id, as WORKFLOWS.md says: the branch's
 * whole change (base..head as one diff) against each commit on the
 * trunk's first-parent history since the branch's base, each of those
 * taken as the diff from its first parent. The first-parent history is
 * walked once, and each trunk commit's patch-id is computed at most once
 * for all the branches asked about in one call: a sync with many tracked
 * branches costs one scan of the trunk, not one per branch.
 *
 * Library code: it never logs.
 */
#include <string.h>

#include "gitops_internal.h"

int gitops_is_ancestor(git_repository *repo, const git_oid *ancestor, const git_oid *commit,
		       bool *ret, struct err *e)
{
	int r;

	if (git_oid_equal(ancestor, commit)) {
		*ret = true;
		return 0;
	}
	r = git_graph_descendant_of(repo, commit, ancestor);
	if (r < 0)
		return gitops_map_error(r, false, "ancestry", "mirror", e);
	*ret = r == 1;
	return 0;
}

int gitops_merge_base(git_repository *repo, const git_oid *a, const git_oid *b, git_oid *ret,
		      struct err *e)
{
	git_oid out;
	int r = git_merge_base(&out, repo, a, b);

	if (r == GIT_ENOTFOUND)
		return err_set(e, -ENOENT, "no_merge_base", "the commits have no common ancestor");
	if (r < 0)
		return gitops_map_error(r, false, "merge base", "mirror", e);
	*ret = out;
	return 0;
}

bool gitops_has_commit(git_repository *repo, const git_oid *id)
{
	git_commit *c = NULL;
	bool ok = git_commit_lookup(&c, repo, id) == 0;

	git_commit_free(c);
	return ok;
}

/* The tree of a commit (NULL id: none, the empty tree). */
static int tree_of(git_repository *repo, const git_oid *id, git_tree **ret, struct err *e)
{
	_cleanup_(commitp) git_commit *c = NULL;
	int r;

	if (id == NULL) {
		*ret = NULL;
		return 0;
	}
	r = git_commit_lookup(&c, repo, id);
	if (r == 0)
		r = git_commit_tree(ret, c);
	if (r < 0)
		return gitops_map_error(r, false, "read commit", "mirror", e);
	return 0;
}

/*
 * The patch-id of the diff from `from` (NULL: the empty tree) to `to`.
 * *ret_empty says the diff is empty (no patch-id then).
 */
static int patchid(git_repository *repo, const git_oid *from, const git_oid *to, git_oid *ret,
		   bool *ret_empty, struct err *e)
{
	_cleanup_(treep) git_tree *a = NULL;
	_cleanup_(treep) git_tree *b = NULL;
	_cleanup_(diffp) git_diff *diff = NULL;
	git_diff_patchid_options opts;
	int r;

	r = tree_of(repo, from, &a, e);
	if (r == 0)
		r = tree_of(repo, to, &b, e);
	if (r < 0)
		return r;
	r = git_diff_tree_to_tree(&diff, repo, a, b, NULL);
	if (r < 0)
		return gitops_map_error(r, false, "diff", "mirror", e);
	*ret_empty = git_diff_num_deltas(diff) == 0;
	if (*ret_empty)
		return 0;
	r = git_diff_patchid_options_init(&opts, GIT_DIFF_PATCHID_OPTIONS_VERSION);
	if (r == 0)
		r = git_diff_patchid(ret, diff, &opts);
	if (r < 0)
		return gitops_map_error(r, false, "patch-id", "mirror", e);
	return 0;
}

/* The trunk's first-parent commits, newest first, with their patch-ids once computed. */
struct chain {
	git_oid *ids;
	git_oid *pid;
	unsigned char *state; /* 0: not computed, 1: computed, 2: empty diff */
	size_t n;
};

static void chain_release(struct chain *c)
{
	free(c->ids);
	free(c->pid);
	free(c->state);
}

static int chain_load(git_repository *repo, const git_oid *trunk, size_t max, struct chain *c,
		      struct err *e)
{
	_cleanup_(revwalkp) git_revwalk *walk = NULL;
	git_oid id;
	int r;

	c->ids = calloc(max > 0 ? max : 1, sizeof(*c->ids));
	c->pid = calloc(max > 0 ? max : 1, sizeof(*c->pid));
	c->state = calloc(max > 0 ? max : 1, 1);
	if (c->ids == NULL || c->pid == NULL || c->state == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	r = git_revwalk_new(&walk, repo);
	if (r == 0)
		r = git_revwalk_simplify_first_parent(walk);
	if (r == 0)
		r = git_revwalk_push(walk, trunk);
	if (r < 0)
		return gitops_map_error(r, false, "walk the trunk", "mirror", e);
	while (c->n < max && (r = git_revwalk_next(&id, walk)) == 0)
		c->ids[c->n++] = id;
	if (r < 0 && r != GIT_ITEROVER)
		return gitops_map_error(r, false, "walk the trunk", "mirror", e);
	return 0;
}

/* The patch-id of chain commit i against its first parent; *ret_empty for an empty diff. */
static int chain_patchid(git_repository *repo, struct chain *c, size_t i, const git_oid **ret,
			 struct err *e)
{
	_cleanup_(commitp) git_commit *commit = NULL;
	bool empty = false;
	int r;

	if (c->state[i] == 0) {
		r = git_commit_lookup(&commit, repo, &c->ids[i]);
		if (r < 0)
			return gitops_map_error(r, false, "read commit", "mirror", e);
		r = patchid(repo,
			    git_commit_parentcount(commit) > 0 ? git_commit_parent_id(commit, 0)
							       : NULL,
			    &c->ids[i], &c->pid[i], &empty, e);
		if (r < 0)
			return r;
		c->state[i] = empty ? 2 : 1;
	}
	*ret = c->state[i] == 1 ? &c->pid[i] : NULL;
	return 0;
}

/*
 * How many chain commits, from the newest, are not ancestors of base: the
 * trunk's history "since the base". On a first-parent line the ancestors
 * of base form a tail (a commit's first parent is an ancestor of whatever
 * the commit is), so a binary search finds where the tail starts.
 */
static int since_base(git_repository *repo, const git_oid *base, const struct chain *c, size_t *ret,
		      struct err *e)
{
	size_t lo = 0, hi = c->n; /* the tail starts in [lo, hi] */
	int r;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		bool anc = false;

		r = gitops_is_ancestor(repo, &c->ids[mid], base, &anc, e);
		if (r < 0)
			return r;
		if (anc)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret = lo;
	return 0;
}

int gitops_find_squash_merges(git_repository *repo, const git_oid *trunk,
			      struct gitops_squash_query *q, size_t n, size_t max_scan,
			      struct err *e)
{
	struct chain c = {NULL, NULL, NULL, 0};
	int r = 0;

	for (size_t i = 0; i < n; i++)
		q[i].found = false;
	if (n == 0)
		return 0;
	r = chain_load(repo, trunk, max_scan, &c, e);
	for (size_t i = 0; r == 0 && i < n; i++) {
		git_oid want;
		bool empty = false;
		size_t k = 0;

		if (!gitops_has_commit(repo, &q[i].base) || !gitops_has_commit(repo, &q[i].head))
			continue;
		r = patchid(repo, &q[i].base, &q[i].head, &want, &empty, e);
		if (r < 0 || empty)
			continue;
		r = since_base(repo, &q[i].base, &c, &k, e);
		for (size_t j = 0; r == 0 && j < k; j++) {
			const git_oid *got = NULL;

			r = chain_patchid(repo, &c, j, &got, e);
			if (r == 0 && got != NULL && git_oid_equal(got, &want)) {
				q[i].found = true;
				q[i].commit = c.ids[j];
				break;
			}
		}
	}
	chain_release(&c);
	return r;
}
