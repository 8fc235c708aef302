/*
 * gitops_internal.h - what the gitops*.c files share and nobody else sees:
 * the one mapping from libgit2's errors to repoflow's, the anonymous
 * remote every talk to the remote goes through, the credentials wiring,
 * and cleanup helpers for libgit2's objects.
 */
#ifndef REPOFLOW_GITOPS_INTERNAL_H
#define REPOFLOW_GITOPS_INTERNAL_H

#include <git2.h>

#include "gitops.h"

/*
 * Turn the libgit2 result `gr` of `what` into a negative errno with
 * git_error_last()'s text in e. `talking`: the call talked to the remote,
 * where a failure is taken as the remote being unreachable for now.
 */
int gitops_map_error(int gr, bool talking, const char *what, const char *url, struct err *e);
/*
 * The same for a call that talked to the remote with credentials offered
 * through `cs`: a refusal (or nothing to offer) is "auth_failed".
 */
int gitops_map_remote_error(int gr, const struct gitops_cred_state *cs, const char *what,
			    const char *url, struct err *e);
/* True when a URL names a path on this machine rather than a server. */
bool gitops_url_is_local(const char *url);
/*
 * Install the credentials callback (with `cs` as its payload) on cb unless
 * url is local, where no credentials are ever asked for.
 */
void gitops_cred_callbacks(git_remote_callbacks *cb, struct gitops_cred_state *cs, const char *url);
/* An in-memory remote for url without refspecs and without insteadOf rewriting. */
int gitops_remote_anonymous(git_repository *repo, const char *url, git_remote **ret, struct err *e);

#define GITOPS_CLEANUP(type, fn)                                                                   \
	static inline void fn##p(type **p)                                                         \
	{                                                                                          \
		if (*p != NULL)                                                                    \
			fn(*p);                                                                    \
	}
GITOPS_CLEANUP(git_repository, git_repository_free)
GITOPS_CLEANUP(git_remote, git_remote_free)
GITOPS_CLEANUP(git_config, git_config_free)
GITOPS_CLEANUP(git_commit, git_commit_free)
GITOPS_CLEANUP(git_tree, git_tree_free)
GITOPS_CLEANUP(git_diff, git_diff_free)
GITOPS_CLEANUP(git_revwalk, git_revwalk_free)
GITOPS_CLEANUP(git_transaction, git_transaction_free)
#define repositoryp  git_repository_freep
#define remotep	     git_remote_freep
#define configp	     git_config_freep
#define commitp	     git_commit_freep
#define treep	     git_tree_freep
#define diffp	     git_diff_freep
#define revwalkp     git_revwalk_freep
#define transactionp git_transaction_freep

#endif
