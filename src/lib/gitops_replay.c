/*
 * gitops_replay.c - the replay under a reparent: `git rebase --onto T base
 * B` when T is already an ancestor of B.
 *
 * restack_branch (restack.c) takes "T is an ancestor of B" to mean there is
 * nothing to replay, which is what WORKFLOWS.md asks when a branch is
 * restacked onto its own parent. It is not what git does when the branch
 * moves *down* the stack (reparent feat-3 onto main, the grandparent of its
 * old parent): the branch's own commits base..B must leave the old
 * parent's commits behind and sit directly on T. git fast-forwards only
 * when T is an ancestor of B and merge-base(base, B) is T (its
 * can_fast_forward); with base an ancestor of B that means base is T.
 *
 * So when T is an ancestor of B, base is in B and base is not in T, the
 * replay is done onto a stand-in for T: a commit with T's tree and T as
 * its parent (so not an ancestor of B). Every pick merges against the same
 * tree as it would onto T, so trees, drops and conflicts are git's. The
 * replayed chain is then rewritten onto T itself, commit by commit, keeping
 * each one's author, committer, message and tree. Every other case goes
 * to restack_branch unchanged.
 *
 * Library code: it never logs.
 */
#include <string.h>

#include "gitops_internal.h"
#include "restack.h"

/* Rewrite the chain stand..tip (linear, first parents) onto `onto`; *ret the new tip. */
static int rewrite_chain(git_repository *repo, const git_oid *stand, const git_oid *tip,
			 const git_oid *onto, git_oid *ret, struct err *e)
{
	_cleanup_free_ git_oid *chain = NULL;
	size_t n = 0, cap = 0;
	git_oid cur = *tip, parent = *onto;
	int r;

	while (!git_oid_equal(&cur, stand)) {
		_cleanup_(commitp) git_commit *c = NULL;

		if (n == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			git_oid *p = realloc(chain, ncap * sizeof(*p));

			if (p == NULL)
				return err_set(e, -ENOMEM, "internal", "out of memory");
			chain = p;
			cap = ncap;
		}
		chain[n++] = cur;
		r = git_commit_lookup(&c, repo, &cur);
		if (r < 0)
			return gitops_map_error(r, false, "read replayed commit", "mirror", e);
		if (git_commit_parentcount(c) != 1)
			return err_set(e, -EIO, "git_error", "the replayed chain is not linear");
		cur = *git_commit_parent_id(c, 0);
	}
	for (size_t i = n; i-- > 0;) {
		_cleanup_(commitp) git_commit *c = NULL;
		_cleanup_(commitp) git_commit *p = NULL;
		_cleanup_(treep) git_tree *tree = NULL;
		const git_commit *parents[1];
		git_oid id;

		r = git_commit_lookup(&c, repo, &chain[i]);
		if (r == 0)
			r = git_commit_lookup(&p, repo, &parent);
		if (r == 0)
			r = git_commit_tree(&tree, c);
		if (r < 0)
			return gitops_map_error(r, false, "read replayed commit", "mirror", e);
		parents[0] = p;
		r = git_commit_create(&id, repo, NULL, git_commit_author(c),
				      git_commit_committer(c), git_commit_message_encoding(c),
				      git_commit_message_raw(c), tree, 1, parents);
		if (r < 0)
			return gitops_map_error(r, false, "write commit", "mirror", e);
		parent = id;
	}
	*ret = parent;
	return 0;
}

int gitops_restack_onto(git_repository *repo, const git_oid *base, const git_oid *head,
			const git_oid *onto, const git_signature *committer,
			struct restack_result *ret, struct err *e)
{
	_cleanup_(commitp) git_commit *onto_commit = NULL;
	_cleanup_(treep) git_tree *tree = NULL;
	struct restack_result res = {0};
	const git_commit *parents[1];
	bool onto_in_head = false, base_in_head = false, base_in_onto = false;
	git_oid stand, tip;
	int r;

	r = gitops_is_ancestor(repo, onto, head, &onto_in_head, e);
	if (r == 0 && onto_in_head && gitops_has_commit(repo, base))
		r = gitops_is_ancestor(repo, base, head, &base_in_head, e);
	if (r == 0 && base_in_head)
		r = gitops_is_ancestor(repo, base, onto, &base_in_onto, e);
	if (r < 0)
		return r;
	if (!onto_in_head || !base_in_head || base_in_onto)
		return restack_branch(repo, base, head, onto, committer, ret, e);

	/* The stand-in: T's tree on top of T. */
	r = git_commit_lookup(&onto_commit, repo, onto);
	if (r == 0)
		r = git_commit_tree(&tree, onto_commit);
	if (r < 0)
		return gitops_map_error(r, false, "read the new base", "mirror", e);
	parents[0] = onto_commit;
	r = git_commit_create(&stand, repo, NULL, committer, committer, NULL,
			      "repoflow: replay base\n", tree, 1, parents);
	if (r < 0)
		return gitops_map_error(r, false, "write commit", "mirror", e);

	r = restack_branch(repo, base, head, &stand, committer, &res, e);
	if (r < 0)
		return r;
	res.new_base = *onto;
	if (res.conflicted) {
		if (git_oid_equal(&res.conflict.onto, &stand))
			res.conflict.onto = *onto;
		*ret = res;
		return 0;
	}
	r = rewrite_chain(repo, &stand, &res.new_tip, onto, &tip, e);
	if (r < 0) {
		restack_result_release(&res);
		return r;
	}
	res.new_tip = tip;
	res.changed = !git_oid_equal(&tip, head);
	*ret = res;
	return 0;
}
