/*
 * sync_repo.c - the first workflow, in its basic form: bring the mirror up
 * to date with the remote (cloning it on first use, fetching with prune)
 * and make the branch projection in SQLite agree with it.
 *
 * Order of writes: the repo's sync status becomes `running` in a small
 * transaction of its own before the fetch, so a client sees it while the
 * network is slow; the projection, the repo's `ok` status and the finished
 * job then commit together in the runner's finishing transaction (through
 * `apply`), and so do `error` and the failed or retried job. Merged-branch
 * detection and restacking come with the workflows issue.
 *
 * dry_run: the fetch still runs, because the mirror is only a cache of the
 * remote and the job cannot report anything without it; but the
 * projection and the repo's sync status are left alone, and the result
 * lists the changes a real run would make to the projection.
 */
#include <stdio.h>
#include <string.h>

#include "gitops.h"
#include "workflow.h"

struct sync_state {
	int64_t repo_id;
	bool marked_running;	   /* the repo's sync status was set to running */
	struct gitops_head *heads; /* after the fetch */
	size_t n;
};

static void sync_state_free(void *p)
{
	struct sync_state *st = p;

	free(st->heads);
	free(st);
}

static void repop(struct repo *r)
{
	repo_release(r);
}

/* Add v to array a; on failure v is put and -ENOMEM returned. */
static int array_add(struct json_object *a, struct json_object *v)
{
	if (v == NULL || json_object_array_add(a, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int object_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static bool is_missing(const struct branch *b)
{
	return b->state != NULL && strcmp(b->state, "missing") == 0;
}

static struct json_object *string_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* {"branch", "old", "new"}: how a branch's head moves in the projection. */
static int add_move(struct json_object *moved, const char *name, const char *old_head,
		    const char *new_head)
{
	struct json_object *m = json_object_new_object();

	if (m == NULL)
		return -ENOMEM;
	if (object_add(m, "branch", json_object_new_string(name)) < 0 ||
	    object_add(m, "old", string_or_null(old_head)) < 0 ||
	    object_add(m, "new", string_or_null(new_head)) < 0) {
		json_object_put(m);
		return -ENOMEM;
	}
	return array_add(moved, m);
}

/*
 * The result: the common keys every kind reports (empty here: sync_repo
 * rewrites nothing yet), "branches" (how many the remote has), "fetched"
 * (branches whose head moves in the projection, with null for a branch
 * that is new or gone) and "unchanged" (the names of the others).
 */
static int make_result(struct frame *f, const struct sync_state *st, const struct branch *old,
		       size_t n_old, struct json_object **ret, size_t *ret_moved)
{
	static const char *const empty[] = {"updated", "conflicts",  "skipped",
					    "merged",  "reparented", "tracked"};
	struct json_object *res = json_object_new_object();
	struct json_object *moved = json_object_new_array();
	struct json_object *same = json_object_new_array();
	size_t n_moved = 0;
	int r = 0;

	if (res == NULL || moved == NULL || same == NULL) {
		json_object_put(res);
		json_object_put(moved);
		json_object_put(same);
		return -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(empty); i++)
		r = object_add(res, empty[i], json_object_new_array());

	for (size_t i = 0; r == 0 && i < st->n; i++) {
		const struct branch *b = NULL;

		for (size_t k = 0; k < n_old && b == NULL; k++)
			if (strcmp(old[k].name, st->heads[i].name) == 0)
				b = &old[k];
		if (b != NULL && b->head != NULL && strcmp(b->head, st->heads[i].head) == 0 &&
		    !is_missing(b)) {
			r = array_add(same, json_object_new_string(st->heads[i].name));
		} else {
			r = add_move(moved, st->heads[i].name, b != NULL ? b->head : NULL,
				     st->heads[i].head);
			n_moved++;
		}
	}
	/* Rows the remote no longer has: removed, or `missing` when tracked. */
	for (size_t k = 0; r == 0 && k < n_old; k++) {
		bool listed = false;

		for (size_t i = 0; i < st->n && !listed; i++)
			listed = strcmp(old[k].name, st->heads[i].name) == 0;
		if (!listed && !is_missing(&old[k])) {
			r = add_move(moved, old[k].name, old[k].head, NULL);
			n_moved++;
		}
	}

	if (r == 0)
		r = object_add(res, "fetched", json_object_get(moved));
	if (r == 0)
		r = object_add(res, "unchanged", json_object_get(same));
	if (r == 0)
		r = object_add(res, "branches", json_object_new_int64((int64_t)st->n));
	if (r == 0)
		r = object_add(res, "dry_run", json_object_new_boolean(f->options.dry_run));
	json_object_put(moved);
	json_object_put(same);
	if (r < 0) {
		json_object_put(res);
		return r;
	}
	*ret = res;
	*ret_moved = n_moved;
	return 0;
}

/* Inside the runner's finishing transaction. */
static int sync_apply(struct frame *f, int outcome, struct err *e)
{
	struct sync_state *st = f->state;
	_cleanup_free_ struct branch_ref *refs = NULL;
	int64_t now = now_ms();
	int r;

	if (f->options.dry_run)
		return 0;
	if (outcome < 0) {
		const char *why = f->err.msg[0] != '\0' ? f->err.msg : "sync failed";

		if (!st->marked_running) {
			/*
			 * This attempt ended before it marked the repo. A
			 * `running` left by an earlier attempt of a worker that
			 * died is stale (a repo's jobs run one at a time):
			 * replace it, or the repo would show running forever.
			 */
			_cleanup_(repop) struct repo repo = {0};

			r = store_repo_get_by_id(f->store, st->repo_id, &repo, e);
			if (r < 0 || repo.sync_status == NULL ||
			    strcmp(repo.sync_status, "running") != 0)
				return r;
		}
		return store_repo_set_sync(f->store, st->repo_id, "error", why, 0, e);
	}

	refs = calloc(st->n > 0 ? st->n : 1, sizeof(*refs));
	if (refs == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	for (size_t i = 0; i < st->n; i++) {
		refs[i].name = st->heads[i].name;
		refs[i].head = st->heads[i].head;
		refs[i].remote_head = st->heads[i].remote_head;
	}
	r = store_branches_refresh(f->store, st->repo_id, refs, st->n, now, e);
	if (r < 0)
		return r;
	return store_repo_set_sync(f->store, st->repo_id, "ok", NULL, now, e);
}

/* Mark the repo's sync as running, in a transaction of its own. */
static int mark_running(struct frame *f, struct sync_state *st)
{
	int r = store_begin(f->store, &f->err);

	if (r < 0)
		return r;
	r = store_repo_set_sync(f->store, st->repo_id, "running", NULL, 0, &f->err);
	if (r == 0)
		r = store_commit(f->store, &f->err);
	if (r < 0) {
		store_rollback(f->store);
		return r;
	}
	st->marked_running = true;
	return 0;
}

int sync_repo_run(struct frame *f)
{
	_cleanup_(repop) struct repo repo = {0};
	_cleanup_free_ char *path = NULL;
	struct branch *old = NULL;
	struct sync_state *st;
	size_t n_old = 0, n_moved = 0;
	int r;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");
	st->repo_id = f->job->repo_id;
	f->state = st;
	f->state_free = sync_state_free;
	f->apply = sync_apply;

	/* The one boundary: nothing has changed yet. */
	r = frame_step(f, 1, 3, "fetching from the remote");
	if (r < 0)
		return r;

	r = store_repo_get_by_id(f->store, f->job->repo_id, &repo, &f->err);
	if (r < 0)
		return r;
	if (asprintf(&path, "%s/%s.git", f->conf->mirror_dir, repo.name) < 0)
		return err_set(&f->err, -ENOMEM, "internal", "out of memory");

	if (!f->options.dry_run) {
		r = mark_running(f, st);
		if (r < 0)
			return r;
	}

	r = gitops_mirror_sync(path, repo.remote_url, &st->heads, &st->n, &f->err);
	if (r < 0)
		return r;

	r = frame_progress(f, 2, 3, "comparing with the projection");
	if (r < 0)
		return r;
	r = store_branch_list(f->store, repo.id, repo.trunk, &old, &n_old, &f->err);
	if (r < 0)
		return r;
	r = make_result(f, st, old, n_old, &f->result, &n_moved);
	branch_array_free(old, n_old);
	if (r < 0)
		return err_set(&f->err, r, "internal", "could not build the result");

	r = frame_progress(f, 3, 3,
			   f->options.dry_run ? "reporting (dry run)" : "updating the projection");
	if (r < 0)
		return r;
	if (f->options.dry_run)
		r = frame_message(f, "Dry run: %zu branches on the remote, %zu would change", st->n,
				  n_moved);
	else
		r = frame_message(f, "Synced %zu branches, %zu changed", st->n, n_moved);
	return r < 0 ? err_set(&f->err, r, "internal", "out of memory") : 0;
}
