/*
 * gitops.h - what the worker does with git, through libgit2, on the bare
 * mirror of a repo: no worktree and no git subprocess.
 *
 * The mirror lives at <mirror_dir>/<repo>.git and its branch refs follow
 * the remote's branches (each refs/heads/<name> fetched onto the same name,
 * forced, with prune). Only the worker calls these; the API never opens a repository.
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
	char name[256];                    /* without refs/heads/ */
	char head[GIT_OID_HEXSZ + 1];        /* the mirror's ref after the fetch */
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

#endif
