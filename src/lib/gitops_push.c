/*
 * gitops_push.c - the two steps of the job frame that change something:
 * the one leased push of every changed branch to the remote, and the one
 * locked move of the mirror's refs afterwards.
 *
 * The push. libgit2 has no --force-with-lease, but it shows every update
 * it is about to send, with the remote's current value of each ref, to
 * the push_negotiation callback before it packs a single object. That is
 * where the leases are checked: one ref whose remote value is not its
 * lease refuses the whole push, and nothing has been sent. (Over the smart
 * protocol the old value also travels with each command, so the server
 * itself refuses a ref that moved in the instant between; the local
 * transport has no such check, which is why the lease is checked here for
 * every transport.) After the push, git_remote_upload may return 0 although
 * the server rejected some refs, so push_update_reference records each
 * ref's status and every ref must have reported success. A rejection that
 * says the ref moved in the meantime (the server's own compare-and-swap
 * lost a race the negotiation could not see) is "remote_moved" like a
 * lease that did not hold; any other is "push_rejected".
 *
 * The refs: git_transaction_commit writes each locked ref in turn and
 * compares nothing, so gitops_refs_move locks every ref first, compares
 * each one's value with what the caller expects while all the locks are
 * held, and only then sets them and commits. Either all refs move or (on
 * a failed comparison or lock) none does.
 *
 * Library code: it never logs.
 */
#include <stdio.h>
#include <string.h>

#include "gitops_internal.h"

#define HEADS_PREFIX "refs/heads/"

/* The payload of every push callback; `cred` must stay first (gitops_cred_acquire reads it). */
struct push_state {
	struct gitops_cred_state cred;
	struct gitops_push_ref *refs;
	char **dst; /* refs/heads/<branch> of each ref */
	size_t n;
	bool moved;
	char moved_msg[400];
	bool unexpected;
};

static ssize_t find_dst(const struct push_state *ps, const char *refname)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->dst[i], refname) == 0)
			return (ssize_t)i;
	return -1;
}

static int on_negotiation(const git_push_update **updates, size_t len, void *payload)
{
	struct push_state *ps = payload;

	if (len != ps->n) {
		ps->unexpected = true;
		git_error_set_str(GIT_ERROR_NET, "libgit2 planned a different set of updates");
		return GIT_EUSER;
	}
	for (size_t k = 0; k < len; k++) {
		ssize_t i = find_dst(ps, updates[k]->dst_refname);
		char want[GIT_OID_HEXSZ + 1], got[GIT_OID_HEXSZ + 1];

		if (i < 0) {
			ps->unexpected = true;
			git_error_set_str(GIT_ERROR_NET,
					  "libgit2 planned an update we did not ask for");
			return GIT_EUSER;
		}
		if (git_oid_equal(&updates[k]->src, &ps->refs[i].lease))
			continue;
		git_oid_tostr(want, sizeof(want), &ps->refs[i].lease);
		git_oid_tostr(got, sizeof(got), &updates[k]->src);
		ps->moved = true;
		snprintf(ps->moved_msg, sizeof(ps->moved_msg),
			 "%s is at %s on the remote, not at %s as fetched; nothing was pushed",
			 ps->refs[i].branch, git_oid_is_zero(&updates[k]->src) ? "(absent)" : got,
			 git_oid_is_zero(&ps->refs[i].lease) ? "(absent)" : want);
		git_error_set_str(GIT_ERROR_NET, ps->moved_msg);
		return GIT_EUSER;
	}
	return 0;
}

static int on_update_reference(const char *refname, const char *status, void *payload)
{
	struct push_state *ps = payload;
	ssize_t i = find_dst(ps, refname);

	if (i < 0)
		return 0;
	if (status == NULL) {
		ps->refs[i].pushed = true;
	} else {
		ps->refs[i].pushed = false;
		snprintf(ps->refs[i].status, sizeof(ps->refs[i].status), "%s", status);
	}
	return 0;
}

/*
 * Whether a ref's rejection says another update got there first: its old
 * value changed, or its lock was held, between the negotiation (where the
 * lease held) and the server's update. libgit2 cannot ask for git's
 * `atomic` push, so the other refs of the push may have gone through; the
 * job is retried from its fetch, which sees both.
 */
static bool lost_race(const char *status)
{
	static const char *const words[] = {"failed to update", "failed to lock",
					    "cannot lock",	"stale info",
					    "fetch first",	"non-fast-forward"};

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strstr(status, words[i]) != NULL)
			return true;
	return false;
}

static void free_strings(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Delete the temporary source refs; a failure only leaves a ref under tmp_prefix. */
static void drop_tmp_refs(git_repository *repo, char **tmp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tmp[i] != NULL)
			(void)git_reference_remove(repo, tmp[i]);
}

/* The push itself, once the temporary refs exist. */
static int push_refs(git_repository *repo, const char *url, struct push_state *ps, char **specs,
		     struct err *e)
{
	_cleanup_(remotep) git_remote *remote = NULL;
	git_strarray arr = {specs, ps->n};
	git_push_options opts;
	struct buf rejected = BUF_INIT;
	size_t n_rejected = 0, n_raced = 0;
	int r;

	if (git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION) < 0)
		return err_set(e, -EIO, "internal", "libgit2 option structures did not initialise");
	opts.callbacks.push_negotiation = on_negotiation;
	opts.callbacks.push_update_reference = on_update_reference;
	opts.callbacks.payload = ps;
	gitops_cred_callbacks(&opts.callbacks, &ps->cred, url);
	opts.callbacks.payload = ps; /* the credentials state is its first member */

	r = gitops_remote_anonymous(repo, url, &remote, e);
	if (r < 0)
		return r;
	r = git_remote_upload(remote, &arr, &opts);
	git_remote_disconnect(remote);
	if (r < 0) {
		if (ps->moved)
			return err_set(e, -EAGAIN, "remote_moved", "push: %s", ps->moved_msg);
		if (ps->unexpected)
			return gitops_map_error(r, false, "push", url, e);
		return gitops_map_remote_error(r, &ps->cred, "push", url, e);
	}

	for (size_t i = 0; i < ps->n; i++) {
		if (ps->refs[i].pushed)
			continue;
		if (ps->refs[i].status[0] == '\0')
			snprintf(ps->refs[i].status, sizeof(ps->refs[i].status),
				 "the server reported no status");
		(void)buf_printf(&rejected, "%s%s (%s)", n_rejected > 0 ? ", " : "",
				 ps->refs[i].branch, ps->refs[i].status);
		n_rejected++;
		n_raced += lost_race(ps->refs[i].status);
	}
	if (n_rejected > 0 && n_raced == n_rejected)
		r = err_set(e, -EAGAIN, "remote_moved",
			    "push to %s: the remote moved while the push was received: %s; %zu of "
			    "%zu refs were pushed",
			    url, rejected.data != NULL ? rejected.data : "refs", ps->n - n_rejected,
			    ps->n);
	else if (n_rejected > 0)
		r = err_set(e, -EREMOTEIO, "push_rejected", "push to %s: the server rejected %s",
			    url, rejected.data != NULL ? rejected.data : "refs");
	buf_release(&rejected);
	return n_rejected > 0 ? r : 0;
}

/*
 * After a push the server took only in part: push every ref it accepted
 * back to its lease, leased on the value just pushed (so an update someone
 * made since is never overwritten). libgit2 cannot ask for git's atomic
 * push; this is how a failed push still changes nothing on the remote.
 * A ref that was absent before cannot be put back (pushes never delete)
 * and is left, as is any ref whose put-back fails: e says which.
 */
static void restore_accepted(git_repository *repo, const char *url,
			     const struct gitops_cred *cred, const char *tmp_prefix,
			     struct gitops_push_ref *refs, size_t n, struct err *e)
{
	struct gitops_push_ref *undo = calloc(n, sizeof(*undo));
	size_t *from = calloc(n, sizeof(*from));
	char prefix[300];
	struct err ue = {{0}, {0}};
	size_t m = 0, left = 0;
	int r;

	if (undo == NULL || from == NULL) {
		free(undo);
		free(from);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!refs[i].pushed)
			continue;
		if (git_oid_is_zero(&refs[i].lease)) {
			left++;
			continue;
		}
		undo[m] = (struct gitops_push_ref){.branch = refs[i].branch,
						   .lease = refs[i].target,
						   .target = refs[i].lease};
		from[m++] = i;
	}
	snprintf(prefix, sizeof(prefix), "%s/undo", tmp_prefix);
	r = m > 0 ? gitops_push_leased(repo, url, cred, prefix, undo, m, &ue) : 0;
	for (size_t k = 0; k < m; k++)
		if (undo[k].pushed)
			refs[from[k]].pushed = false;
		else
			left++;
	if (m > 0 && r == 0 && left == 0)
		snprintf(e->msg + strlen(e->msg), sizeof(e->msg) - strlen(e->msg),
			 "; the refs it had accepted were put back, the remote is as it was");
	else if (m > 0 || left > 0)
		snprintf(e->msg + strlen(e->msg), sizeof(e->msg) - strlen(e->msg),
			 "; %zu accepted ref(s) could not be put back%s%s", left,
			 r < 0 ? ": " : "", r < 0 ? ue.msg : "");
	free(undo);
	free(from);
}

int gitops_push_leased(git_repository *repo, const char *url, const struct gitops_cred *cred,
		       const char *tmp_prefix, struct gitops_push_ref *refs, size_t n,
		       struct err *e)
{
	struct push_state ps = {.cred = {.cred = cred}, .refs = refs, .n = n};
	char **tmp = NULL, **specs = NULL;
	int r = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		refs[i].pushed = false;
		refs[i].status[0] = '\0';
		if (git_oid_is_zero(&refs[i].target))
			return err_set(e, -EINVAL, "internal", "push of %s: no target",
				       refs[i].branch);
	}
	tmp = calloc(n, sizeof(*tmp));
	specs = calloc(n, sizeof(*specs));
	ps.dst = calloc(n, sizeof(*ps.dst));
	if (tmp == NULL || specs == NULL || ps.dst == NULL) {
		r = err_set(e, -ENOMEM, "internal", "out of memory");
		goto out;
	}

	/*
	 * One temporary ref per target, named by index: branch names can
	 * nest (a and a/b), index names cannot collide.
	 */
	for (size_t i = 0; i < n; i++) {
		git_reference *ref = NULL;

		if (asprintf(&tmp[i], "%s/%zu", tmp_prefix, i) < 0) {
			tmp[i] = NULL;
			r = err_set(e, -ENOMEM, "internal", "out of memory");
			goto out;
		}
		if (asprintf(&ps.dst[i], HEADS_PREFIX "%s", refs[i].branch) < 0 ||
		    asprintf(&specs[i], "+%s:%s", tmp[i], ps.dst[i]) < 0) {
			r = err_set(e, -ENOMEM, "internal", "out of memory");
			goto out;
		}
		r = git_reference_create(&ref, repo, tmp[i], &refs[i].target, 1, NULL);
		if (r < 0) {
			r = gitops_map_error(r, false, "write push source ref", tmp[i], e);
			goto out;
		}
		git_reference_free(ref);
	}

	r = push_refs(repo, url, &ps, specs, e);
	if (r < 0 && e != NULL) {
		bool some = false;

		for (size_t i = 0; i < n; i++)
			some = some || refs[i].pushed;
		if (some)
			restore_accepted(repo, url, cred, tmp_prefix, refs, n, e);
	}
out:
	if (tmp != NULL)
		drop_tmp_refs(repo, tmp, n);
	free_strings(tmp, n);
	free_strings(specs, n);
	free_strings(ps.dst, n);
	return r;
}

int gitops_refs_move(git_repository *repo, const struct gitops_ref_move *moves, size_t n,
		     const char *message, struct err *e)
{
	_cleanup_(transactionp) git_transaction *tx = NULL;
	int r;

	if (n == 0)
		return 0;
	r = git_transaction_new(&tx, repo);
	if (r < 0)
		return gitops_map_error(r, false, "ref transaction", "mirror", e);

	/* Lock them all before looking at any. */
	for (size_t i = 0; i < n; i++) {
		r = git_transaction_lock_ref(tx, moves[i].name);
		if (r < 0)
			return gitops_map_error(r, false, "lock ref", moves[i].name, e);
	}

	/* With every lock held, nobody else can move them: compare. */
	for (size_t i = 0; i < n; i++) {
		char want[GIT_OID_HEXSZ + 1], got[GIT_OID_HEXSZ + 1];
		git_oid cur;

		r = git_reference_name_to_id(&cur, repo, moves[i].name);
		if (r == GIT_ENOTFOUND) {
			memset(&cur, 0, sizeof(cur));
		} else if (r < 0) {
			return gitops_map_error(r, false, "read ref", moves[i].name, e);
		}
		if (git_oid_equal(&cur, &moves[i].old))
			continue;
		git_oid_tostr(want, sizeof(want), &moves[i].old);
		git_oid_tostr(got, sizeof(got), &cur);
		return err_set(e, -EAGAIN, "mirror_moved",
			       "the mirror's %s is at %s, not at %s; no ref was moved",
			       moves[i].name, git_oid_is_zero(&cur) ? "(absent)" : got,
			       git_oid_is_zero(&moves[i].old) ? "(absent)" : want);
	}

	for (size_t i = 0; i < n; i++) {
		if (git_oid_is_zero(&moves[i].target) && git_oid_is_zero(&moves[i].old))
			continue; /* absent and staying absent */
		if (git_oid_is_zero(&moves[i].target))
			r = git_transaction_remove(tx, moves[i].name);
		else
			r = git_transaction_set_target(tx, moves[i].name, &moves[i].target, NULL,
						       message);
		if (r < 0)
			return gitops_map_error(r, false, "stage ref", moves[i].name, e);
	}
	r = git_transaction_commit(tx);
	if (r < 0)
		return gitops_map_error(r, false, "commit ref transaction", "mirror", e);
	return 0;
}
