/*
 * gitops.h - what the worker does with git, through libgit2, on the bare
 * mirror of a repo: no worktree and no git subprocess.
 *
 * The mirror lives at <mirror_dir>/<repo>.git and its branch refs follow
 * the remote's branches (each refs/heads/<name> fetched onto the same name,
 * forced, with prune). Only the worker calls these; the API never opens a repository.
 *
 * Beside the mirror (gitops.c) live the remote's credentials
 * (gitops_cred.c), the leased push and the locked move of the mirror's
 * refs (gitops_push.c), and the history questions the stack workflows ask
 * (gitops_graph.c). All are library code: they never log.
 */
#ifndef REPOFLOW_GITOPS_H
#define REPOFLOW_GITOPS_H

#include <git2.h>

#include "util.h"

/* Call once per process before any other gitops function. */
int gitops_init(void);
void gitops_shutdown(void);

/* One branch after a fetch. */
struct gitops_head {
	char name[256];			     /* without refs/heads/ */
	char head[GIT_OID_HEXSZ + 1];	     /* the mirror's ref after the fetch */
	char remote_head[GIT_OID_HEXSZ + 1]; /* what the remote advertised */
};

/*
 * Open the mirror at path (creating a bare repository with an `origin`
 * remote for url on first use, or pointing origin at url if it changed),
 * fetch with prune, and list the remote's branches into *ret (caller frees)
 * and *n. Errors: -ENETUNREACH with code "remote_unreachable" (retryable),
 * -EACCES with "auth_failed", -EBUSY with "mirror_locked" (a ref lock held
 * on the mirror; retryable), -EIO otherwise; the text in e.
 */
int gitops_mirror_sync(const char *path, const char *url, struct gitops_head **ret, size_t *n,
		       struct err *e);

/* --- credentials (gitops_cred.c) ---------------------------------------- */

/*
 * The credential files for one repo's remote: paths only; a secret is read
 * when the remote asks for it and dropped right after. A NULL field means
 * none is configured.
 */
struct gitops_cred {
	char *token_file;   /* https: the token (the password) */
	char *ssh_key_file; /* ssh: a private key without passphrase (its .pub beside it, if any) */
};
/*
 * Look for <dir>/<repo>.token and <dir>/<repo>.ssh, each falling back to
 * <dir>/default.token and <dir>/default.ssh. Files that are not there
 * leave their field NULL; a dir that is not there gives none. -ENOMEM.
 */
int gitops_cred_find(const char *dir, const char *repo, struct gitops_cred *ret);
void gitops_cred_release(struct gitops_cred *c);

/*
 * What one connection handed out. It is the payload of libgit2's
 * credentials callback (gitops_cred_acquire); the push code embeds it as
 * the first member of its own payload.
 */
struct gitops_cred_state {
	const struct gitops_cred *cred; /* NULL: none configured */
	unsigned asked;			/* times the remote asked */
	unsigned tried;			/* GIT_CREDENTIAL_* types already offered */
	bool refused; /* gave up: the remote refused what we had, or we had nothing */
};
/*
 * libgit2's credentials callback: offers the ssh key, then the token, each
 * once; after that (or with nothing to offer) it fails with GIT_EAUTH and
 * marks the state refused. The secret never appears in an error message.
 */
int gitops_cred_acquire(git_credential **out, const char *url, const char *username_from_url,
			unsigned int allowed_types, void *payload);

/* Like gitops_mirror_sync, offering `cred` (may be NULL) when the remote asks. */
int gitops_mirror_fetch(const char *path, const char *url, const struct gitops_cred *cred,
			struct gitops_head **ret, size_t *n, struct err *e);

/* Open the bare mirror at path, creating it when it is not there yet. */
int gitops_mirror_open(const char *path, git_repository **ret, struct err *e);

/* --- the leased push and the locked ref move (gitops_push.c) ------------- */

/* One branch to push: where the remote was at the fetch, where it goes. */
struct gitops_push_ref {
	const char *branch; /* without refs/heads/ */
	git_oid lease;	    /* the remote's value seen at the fetch (zero: absent) */
	git_oid target;	    /* the new value; never zero (no deletes) */
	bool pushed;	    /* out: the server accepted the update */
	char status[200];   /* out: the server's reason when it rejected it */
};

/*
 * Push every ref in one push to url, each with a lease, forcing (the new
 * values rewrite history). libgit2 has no --force-with-lease, so the whole
 * push is refused in the push_negotiation callback, before any object is
 * sent, when the remote's current value of any ref differs from its lease:
 * -EAGAIN, code "remote_moved" (retryable), nothing pushed. Afterwards
 * every ref's own status is checked: a ref the server rejected makes the
 * push fail with -EREMOTEIO, code "push_rejected", or, when every
 * rejection says the ref moved or was locked meanwhile (a race the
 * negotiation could not see), -EAGAIN "remote_moved". libgit2 cannot ask
 * for an atomic push, so the refs the server did accept are then pushed
 * back to their leases (leased on the new value), and `pushed` tells which
 * refs are still changed on the remote (none, unless putting one back
 * failed; e says so). libgit2 1.5 wants a ref as the source of a
 * push refspec, so each target is written to <tmp_prefix>/<i> first and
 * those refs are deleted afterwards, whatever happened. The mirror's own
 * refs are not touched. Other errors as gitops_mirror_sync.
 */
int gitops_push_leased(git_repository *repo, const char *url, const struct gitops_cred *cred,
		       const char *tmp_prefix, struct gitops_push_ref *refs, size_t n,
		       struct err *e);

/* One ref of the mirror to move: from `old` (zero: absent) to `target` (zero: delete). */
struct gitops_ref_move {
	const char *name; /* full ref name */
	git_oid old;
	git_oid target;
};

/*
 * Move refs all or none: lock every ref, check each still holds its `old`
 * value, then set (or delete) them all and commit. git_transaction_commit
 * alone does not compare, so the comparison is done here with every lock
 * held. -EAGAIN "mirror_moved" when a ref was not at its old value (no ref
 * moved), -EBUSY "mirror_locked" when a lock is held by someone else, -EIO
 * otherwise. `message` goes to the reflog when the mirror keeps one.
 */
int gitops_refs_move(git_repository *repo, const struct gitops_ref_move *moves, size_t n,
		     const char *message, struct err *e);

/* --- history questions (gitops_graph.c) ---------------------------------- */

/* *ret = whether `ancestor` is `commit` or one of its ancestors. */
int gitops_is_ancestor(git_repository *repo, const git_oid *ancestor, const git_oid *commit,
		       bool *ret, struct err *e);
/* The best common ancestor of a and b; -ENOENT (code "no_merge_base") when none. */
int gitops_merge_base(git_repository *repo, const git_oid *a, const git_oid *b, git_oid *ret,
		      struct err *e);
/* Whether the object database has a commit with this id. */
bool gitops_has_commit(git_repository *repo, const git_oid *id);

struct restack_result;
/*
 * restack_branch (restack.h), except where git would replay and
 * restack_branch would not: `onto` already an ancestor of head while
 * `base` is in head but not in onto (a branch moved down its stack, as a
 * reparent does). Then base..head is replayed onto onto, as `git rebase
 * --onto onto base head` does. Same result and errors as restack_branch.
 * (gitops_replay.c)
 */
int gitops_restack_onto(git_repository *repo, const git_oid *base, const git_oid *head,
			const git_oid *onto, const git_signature *committer,
			struct restack_result *ret, struct err *e);

/* One branch asked about by gitops_find_squash_merges. */
struct gitops_squash_query {
	git_oid base, head; /* in: the branch's own change is base..head */
	bool found;	    /* out */
	git_oid commit;	    /* out: the trunk commit carrying the same change */
};
/*
 * Squash merges: for each query, whether a commit on the first-parent
 * history of `trunk` since the query's base (at most max_scan commits)
 * has the same patch-id (git_diff_patchid) as the whole change base..head
 * taken as one diff. A branch with an empty change is never found. The
 * trunk's patch-ids are computed once for all queries.
 */
int gitops_find_squash_merges(git_repository *repo, const git_oid *trunk,
			      struct gitops_squash_query *q, size_t n, size_t max_scan,
			      struct err *e);

#endif
