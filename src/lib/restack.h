/*
 * restack.h - replay one branch's own commits onto a new base, in memory,
 * with the result `git rebase --onto` would give: the engine under every
 * stack workflow (WORKFLOWS.md, "Restacking one branch").
 *
 * Pure library code: no worktree, no index file, no git subprocess, no ref
 * moves and no logging. New commits and trees go into the repository's
 * object database and nowhere else; the caller decides what to do with
 * them (push, move refs, or nothing for a dry run).
 */
#ifndef REPOFLOW_RESTACK_H
#define REPOFLOW_RESTACK_H

#include <stdbool.h>
#include <stddef.h>

#include <git2.h>

#include "util.h"

/* Where a replay stopped: the pick of `commit` onto `onto` did not merge. */
struct restack_conflict {
	git_oid commit; /* the original commit being picked */
	git_oid onto;	/* the commit it was being picked onto (the onto tip or an earlier pick) */
	char **paths;	/* conflicting paths, sorted (strcmp) and unique; owned by the result */
	size_t npaths;
};

struct restack_result {
	git_oid new_tip;     /* the branch's new head; the old head when nothing moved */
	git_oid new_base;    /* the base the branch now sits on: always `onto` */
	bool changed;	     /* new_tip differs from the old head */
	bool base_healed;    /* base was not an ancestor of head; healed_base was used */
	git_oid healed_base; /* merge-base(head, onto), when base_healed */
	size_t picked;	     /* commits replayed and written anew */
	/* Of those picked, commits that were empty before the replay (git keeps them). */
	size_t kept_empty;
	/* Commits dropped because they became empty on the new base: their change is already
	 * there (git: "patch contents already upstream"). */
	size_t dropped_empty;
	size_t skipped_merges; /* merge commits in the range, not replayed (their sides are) */
	bool conflicted;       /* the replay stopped: new_tip is meaningless, `conflict` says why */
	struct restack_conflict conflict;
};

/* Free what a result owns (the conflict paths) and zero it. NULL and zeroed results are fine. */
void restack_result_release(struct restack_result *r);

/*
 * Replay the commits of base..head onto `onto` in `repo` (a bare repository
 * is fine), as `git rebase --onto onto base head` (git 2.39, merge backend,
 * default options) would, without touching any ref.
 *
 *  - When `onto` is head or an ancestor of head there is nothing to do:
 *    new_tip = head, changed = false.
 *  - When `base` is not an ancestor of head (the branch was rewritten
 *    elsewhere), base is healed to merge-base(head, onto), and the result
 *    says so. The caller passes the parent branch's tip as `onto`.
 *  - The commits are those of base..head in the order git uses (reverse
 *    topological, first-parent side of a merge before its other sides);
 *    merge commits are skipped and counted, their non-merge commits are
 *    replayed, linearised.
 *  - Each commit is a three-way merge of trees (ancestor: its parent's
 *    tree). A commit that becomes empty is dropped; one that was empty to
 *    begin with is kept, as git does. Like git, `--onto` does not compare
 *    patch-ids with the new base: a commit already applied upstream is
 *    dropped because it becomes empty.
 *  - New commits keep author (name, email, date, zone) and message (with
 *    leading blank lines removed and a non-UTF-8 message re-encoded to
 *    UTF-8, as git does); the committer is `committer`.
 *  - No rename detection (git does it): where renames could change git's
 *    answer, the pick is reported as a conflict rather than risk a result
 *    git would not give. See restack.c for the cases.
 *
 * Returns 0 with *ret filled (the caller releases it with
 * restack_result_release), including when the replay stopped on a
 * conflict (ret->conflicted). On failure returns a negative errno (-ENOENT
 * for a missing object, -ENOMEM, -EIO for other libgit2 errors) with the
 * detail in e, and leaves *ret untouched. Objects written before a failure
 * or a conflict stay in the object database, unreferenced.
 */
int restack_branch(git_repository *repo, const git_oid *base, const git_oid *head,
		   const git_oid *onto, const git_signature *committer, struct restack_result *ret,
		   struct err *e);

/*
 * Keeping new objects in memory. restack_branch writes its trees and
 * commits through the repository's object database; by default each is a
 * loose file (and an fsync when GIT_OPT_ENABLE_FSYNC_GITDIR is on), which
 * is most of the time of a restack. After restack_odb_attach(repo), every
 * object written through `repo` stays in memory, readable through `repo`
 * (by restack_branch, a push's pack builder, a lookup), until
 * restack_odb_flush() writes them all as one pack, or restack_odb_discard()
 * or freeing the repository forgets them (a dry run, a conflict).
 *
 * The store cannot be detached (libgit2 has no call for it): attach it to
 * a git_repository opened for one job. Refs must not be moved to objects
 * that are only in memory: flush before moving refs or before another
 * handle (or process) needs the objects.
 *
 * restack_odb_attach: 0 (also when already attached), or a negative errno.
 * restack_odb_flush: 0 with *ret_count (may be NULL) the number of objects
 * written (0 and no pack when there were none or no store), or a negative
 * errno; the objects stay in memory on failure.
 * restack_odb_discard: 0, or a negative errno.
 */
int restack_odb_attach(git_repository *repo, struct err *e);
int restack_odb_flush(git_repository *repo, size_t *ret_count, struct err *e);
int restack_odb_discard(git_repository *repo, struct err *e);

#endif
