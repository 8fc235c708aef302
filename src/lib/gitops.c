/*
 * gitops.c - the worker's git, through libgit2, on a bare mirror per repo.
 *
 * This file owns the mirror: it creates it on first use, keeps its `origin`
 * remote pointed at the repo's URL, and fetches with prune so that the
 * mirror's branch refs are exactly the remote's branches. It is the only
 * place that turns libgit2's errors into repoflow's: everything a caller
 * may want to retry (the network, a transport, a remote that cannot be read
 * right now) becomes -ENETUNREACH with the code "remote_unreachable", a
 * refused credential -EACCES "auth_failed", a held lock on the mirror
 * -EBUSY "mirror_locked", and the rest -EIO. libgit2 keeps its last error
 * per thread and overwrites it on the next call, so the text is copied into
 * the caller's struct err right after the call that failed.
 *
 * The fetch offers the repo's credentials when the remote asks for them
 * (gitops_cred.c); the error mapping and the cleanup helpers are shared
 * with the other gitops_*.c files through gitops_internal.h.
 *
 * Library code: it never logs.
 */
#include <string.h>

#include <git2.h>

#include "gitops.h"
#include "gitops_internal.h"

#define GITOPS_REMOTE  "origin"
#define GITOPS_REFSPEC "+refs/heads/*:refs/heads/*"
#define HEADS_PREFIX   "refs/heads/"

int gitops_init(void)
{
	int r = git_libgit2_init();

	if (r < 0)
		return -EIO;
	/*
	 * The projection in SQLite names commits the mirror's refs point at;
	 * a ref update that a crash could undo would make the two disagree.
	 */
	if (git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1) < 0)
		return -EIO;
	return 0;
}

void gitops_shutdown(void)
{
	git_libgit2_shutdown();
}

/* True when a URL names a path on this machine rather than a server. */
bool gitops_url_is_local(const char *url)
{
	return url[0] == '/' || strncmp(url, "file://", 7) == 0;
}

/*
 * Turn the libgit2 result `gr` of `what` into a negative errno and fill e
 * with git_error_last()'s text. `talking` says the call was talking to the
 * remote (connect, download), where any failure that is not a refused
 * credential is taken as the remote being unreachable for now: a transport,
 * a network, a local path that cannot be read.
 */
int gitops_map_error(int gr, bool talking, const char *what, const char *url, struct err *e)
{
	const git_error *ge = git_error_last();
	const char *msg = ge != NULL && ge->message != NULL ? ge->message : "unknown libgit2 error";
	int klass = ge != NULL ? ge->klass : GIT_ERROR_NONE;

	if (gr == GIT_EAUTH)
		return err_set(e, -EACCES, "auth_failed", "%s: authentication to %s failed: %s",
			       what, url, msg);
	if (gr == GIT_ELOCKED)
		return err_set(e, -EBUSY, "mirror_locked", "%s: the mirror is locked: %s", what,
			       msg);
	if (klass == GIT_ERROR_NET || klass == GIT_ERROR_OS || klass == GIT_ERROR_SSH ||
	    klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSL || gr == GIT_ECERTIFICATE ||
	    gr == GIT_EEOF || strstr(msg, "could not find repository") != NULL ||
	    (talking && klass != GIT_ERROR_NOMEMORY)) {
		/*
		 * libgit2 picks the local transport only for a path that is
		 * a directory; otherwise it says "unsupported URL protocol",
		 * which would puzzle whoever reads the job's error.
		 */
		if (gitops_url_is_local(url) && strstr(msg, "unsupported URL protocol") != NULL)
			return err_set(e, -ENETUNREACH, "remote_unreachable",
				       "%s: the remote %s is not a readable directory", what, url);
		return err_set(e, -ENETUNREACH, "remote_unreachable", "%s: %s: %s", what, url, msg);
	}
	return err_set(e, -EIO, "git_error", "%s: %s", what, msg);
}

int gitops_mirror_open(const char *path, git_repository **ret, struct err *e)
{
	git_repository *repo = NULL;
	int r;

	r = git_repository_open_bare(&repo, path);
	if (r == GIT_ENOTFOUND)
		r = git_repository_init(&repo, path, 1);
	if (r < 0)
		return gitops_map_error(r, false, "open mirror", path, e);
	*ret = repo;
	return 0;
}

/*
 * Make the mirror's configured `origin` name url (creating it on first
 * use), and return an in-memory remote for url with the mirror's refspec to
 * fetch through.
 *
 * Why not git_remote_lookup("origin"): in libgit2 1.5.1 looking a remote up
 * applies url.*.insteadOf by matching every config entry against a pattern,
 * and its PCRE2 backend leaks the match data of every entry that does not
 * match (about 20 KiB each, libgit2 PR #6382, fixed after 1.5). A worker
 * that syncs all day would grow by a few hundred KiB per job. Reading the
 * URL with a plain config lookup and fetching through a remote made with
 * GIT_REMOTE_CREATE_SKIP_INSTEADOF avoids that code entirely; insteadOf
 * rewriting has no use here, the repo's URL is the truth. The `origin` in
 * the config stays, so a person can run `git fetch` in the mirror by hand.
 */
static int mirror_remote(git_repository *repo, const char *url, git_remote **ret, struct err *e)
{
	_cleanup_(configp) git_config *cfg = NULL;
	git_remote_create_options opts;
	git_remote *remote = NULL;
	git_buf cur = {NULL, 0, 0};
	int r;

	r = git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	if (r < 0)
		return gitops_map_error(r, false, "remote options", url, e);
	opts.repository = repo;
	opts.fetchspec = GITOPS_REFSPEC;
	opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;

	r = git_repository_config_snapshot(&cfg, repo);
	if (r < 0)
		return gitops_map_error(r, false, "read mirror config", url, e);
	r = git_config_get_string_buf(&cur, cfg, "remote." GITOPS_REMOTE ".url");
	if (r == GIT_ENOTFOUND) {
		opts.name = GITOPS_REMOTE;
		r = git_remote_create_with_opts(&remote, url, &opts);
		if (r < 0)
			return gitops_map_error(r, false, "create remote", url, e);
		git_remote_free(remote);
		remote = NULL;
	} else if (r < 0) {
		return gitops_map_error(r, false, "read remote url", url, e);
	} else {
		/* The repo's URL changed since the mirror was made. */
		bool changed = strcmp(cur.ptr, url) != 0;

		git_buf_dispose(&cur);
		if (changed) {
			r = git_remote_set_url(repo, GITOPS_REMOTE, url);
			if (r < 0)
				return gitops_map_error(r, false, "set remote url", url, e);
		}
	}

	opts.name = NULL;
	r = git_remote_create_with_opts(&remote, url, &opts);
	if (r < 0)
		return gitops_map_error(r, false, "create remote", url, e);
	*ret = remote;
	return 0;
}

static int head_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gitops_head *)a)->name, ((const struct gitops_head *)b)->name);
}

/*
 * Copy the remote's advertised branches and the mirror's value of each
 * after the fetch. A branch whose name does not fit struct gitops_head (git
 * allows longer names than repoflow accepts) is left out.
 */
static int collect_heads(git_repository *repo, git_remote *remote, const char *url,
			 struct gitops_head **ret, size_t *ret_n, struct err *e)
{
	_cleanup_free_ struct gitops_head *heads = NULL;
	const git_remote_head **ls = NULL;
	size_t n_ls = 0, n = 0;
	int r;

	r = git_remote_ls(&ls, &n_ls, remote);
	if (r < 0)
		return gitops_map_error(r, false, "list remote heads", url, e);

	heads = calloc(n_ls > 0 ? n_ls : 1, sizeof(*heads));
	if (heads == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");

	for (size_t i = 0; i < n_ls; i++) {
		const char *full = ls[i]->name;
		const char *name;
		struct gitops_head *h;
		git_oid local;

		if (strncmp(full, HEADS_PREFIX, strlen(HEADS_PREFIX)) != 0)
			continue;
		name = full + strlen(HEADS_PREFIX);
		if (name[0] == '\0' || strlen(name) >= sizeof(h->name))
			continue;

		h = &heads[n];
		strcpy(h->name, name);
		git_oid_tostr(h->remote_head, sizeof(h->remote_head), &ls[i]->oid);

		r = git_reference_name_to_id(&local, repo, full);
		if (r < 0)
			return gitops_map_error(r, false, "read mirror ref", full, e);
		git_oid_tostr(h->head, sizeof(h->head), &local);
		n++;
	}

	qsort(heads, n, sizeof(*heads), head_cmp);
	*ret = TAKE_PTR(heads);
	*ret_n = n;
	return 0;
}

int gitops_mirror_fetch(const char *path, const char *url, const struct gitops_cred *cred,
			struct gitops_head **ret, size_t *n, struct err *e)
{
	_cleanup_(repositoryp) git_repository *repo = NULL;
	_cleanup_(remotep) git_remote *remote = NULL;
	struct gitops_cred_state cs = {.cred = cred};
	git_remote_callbacks callbacks;
	git_fetch_options fetch;
	int r;

	/* The _INIT macros leave fields out, which -Wextra refuses. */
	if (git_remote_init_callbacks(&callbacks, GIT_REMOTE_CALLBACKS_VERSION) < 0 ||
	    git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION) < 0)
		return err_set(e, -EIO, "internal", "libgit2 option structures did not initialise");
	gitops_cred_callbacks(&callbacks, &cs, url);

	r = gitops_mirror_open(path, &repo, e);
	if (r < 0)
		return r;
	r = mirror_remote(repo, url, &remote, e);
	if (r < 0)
		return r;

	/*
	 * Connect, download, update the tips, prune, one step at a time
	 * (what git_remote_fetch does) so that a failure is attributed to the
	 * step that had it: only connecting and downloading talk to the
	 * remote. Tags are not fetched; the mirror follows branches only.
	 * The download gets the callbacks again: smart HTTP asks for the
	 * credentials on each request.
	 */
	r = git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, NULL, NULL);
	if (r < 0)
		return gitops_map_remote_error(r, &cs, "connect", url, e);

	fetch.callbacks = callbacks;
	fetch.prune = GIT_FETCH_PRUNE;
	fetch.update_fetchhead = 0;
	fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	r = git_remote_download(remote, NULL, &fetch);
	if (r < 0)
		return gitops_map_remote_error(r, &cs, "fetch", url, e);

	r = git_remote_update_tips(remote, &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
				   "repoflow: fetch");
	if (r < 0)
		return gitops_map_error(r, false, "update mirror refs", url, e);

	r = git_remote_prune(remote, &callbacks);
	if (r < 0)
		return gitops_map_error(r, false, "prune mirror refs", url, e);

	/* The advertised list stays readable after the fetch is done. */
	r = collect_heads(repo, remote, url, ret, n, e);
	git_remote_disconnect(remote);
	return r;
}

int gitops_mirror_sync(const char *path, const char *url, struct gitops_head **ret, size_t *n,
		       struct err *e)
{
	return gitops_mirror_fetch(path, url, NULL, ret, n, e);
}

int gitops_remote_anonymous(git_repository *repo, const char *url, git_remote **ret, struct err *e)
{
	git_remote_create_options opts;
	git_remote *remote = NULL;
	int r;

	r = git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	if (r < 0)
		return gitops_map_error(r, false, "remote options", url, e);
	/* No fetch refspec: a push must not move the mirror's refs behind our back. */
	opts.repository = repo;
	opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	r = git_remote_create_with_opts(&remote, url, &opts);
	if (r < 0)
		return gitops_map_error(r, false, "create remote", url, e);
	*ret = remote;
	return 0;
}
