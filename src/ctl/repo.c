/*
 * repo.c - the `repo` verbs of repoflowctl: add, list, show, remove.
 *
 * A repo is only a record here: adding one clones nothing (the first job
 * does), and removing one leaves its mirror on disk, because the operator
 * may want it and the worker recreates it when the name comes back. The
 * JSON forms are the repo overview the API's GET /v1/repos/{repo} returns
 * (store_repo_overview is its one writer), so a script sees the same shape
 * from either side.
 */
#include "ctl.h"

#include <string.h>

#include "validate.h"

#define DEFAULT_TRUNK "main"

/* Borrowed field of a JSON object, or NULL. */
static struct json_object *field(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Check the name, URL and trunk before anything is written. 0 or CTL_USAGE. */
static int check_new_repo(const struct ctl *c, const char *name, const char *url, const char *trunk)
{
	const char *why;

	why = validate_repo_name(name, strlen(name));
	if (why != NULL)
		return ctl_usage_error(c, "invalid repo name '%s': it %s", name, why);
	why = validate_remote_url(url, strlen(url));
	if (why != NULL)
		return ctl_usage_error(c, "invalid remote URL: it %s", why);
	why = validate_branch_name(trunk, strlen(trunk));
	if (why != NULL)
		return ctl_usage_error(c, "invalid trunk '%s': it %s", trunk, why);
	return CTL_OK;
}

int ctl_repo_add(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0], *url = a->pos[1];
	const char *trunk = a->trunk != NULL ? a->trunk : DEFAULT_TRUNK;
	_cleanup_(repo_release) struct repo repo = {0};
	struct json_object *overview = NULL;
	struct err e = {0};
	int r, code;

	code = check_new_repo(c, name, url, trunk);
	if (code != CTL_OK)
		return code;
	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_repo_create(c->store, name, url, trunk, &repo, &e);
	if (r < 0) {
		store_rollback(c->store);
		if (r == -EEXIST) {
			ctl_error("a repo named '%s' already exists", name);
			return CTL_FAILURE;
		}
		return ctl_fail(&e, r, "cannot add repo '%s'", name);
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;

	if (c->json) {
		r = store_repo_overview(c->store, &repo, &overview, &e);
		if (r < 0)
			return ctl_fail(&e, r, "repo '%s' was added, but cannot be read back",
					name);
		return ctl_print_json(overview);
	}
	printf("Added repo %s (trunk %s, remote %s).\n", repo.name, repo.trunk, repo.remote_url);
	return CTL_OK;
}

/* {"repos": [overview, ...]} into *ret; CTL_FAILURE after reporting an error. */
static int repos_to_json(struct ctl *c, const struct repo *repos, size_t n,
			 struct json_object **ret)
{
	struct json_object *arr = json_object_new_array();
	struct err e = {0};
	int r;

	for (size_t i = 0; i < n && arr != NULL; i++) {
		struct json_object *ov = NULL;

		r = store_repo_overview(c->store, &repos[i], &ov, &e);
		if (r < 0) {
			json_object_put(arr);
			return ctl_fail(&e, r, "cannot read repo '%s'", repos[i].name);
		}
		if (json_object_array_add(arr, ov) < 0) {
			json_object_put(ov);
			json_object_put(arr);
			arr = NULL;
		}
	}
	if (arr == NULL)
		return ctl_fail(NULL, -ENOMEM, "cannot build the JSON output");
	*ret = ctl_json_add(json_object_new_object(), "repos", arr);
	return CTL_OK;
}

static int print_repo_table(const struct repo *repos, size_t n)
{
	struct table t;
	int code;

	table_init(&t, 5);
	table_add(&t, "NAME", "TRUNK", "SYNC", "LAST SYNCED", "REMOTE");
	for (size_t i = 0; i < n; i++) {
		char when[RFC3339_LEN];

		table_add(&t, repos[i].name, repos[i].trunk, repos[i].sync_status,
			  ctl_time(repos[i].last_synced_at, when), repos[i].remote_url);
	}
	code = table_print(&t);
	table_release(&t);
	return code;
}

int ctl_repo_list(struct ctl *c, const struct ctl_args *a)
{
	struct repo *repos = NULL;
	struct json_object *o = NULL;
	struct err e = {0};
	size_t n = 0;
	int r, code;

	r = store_repo_list(c->store, &repos, &n, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot list repos");
	if (c->json) {
		code = repos_to_json(c, repos, n, &o);
		if (code == CTL_OK)
			code = ctl_print_json(o);
	} else {
		code = print_repo_table(repos, n);
	}
	repo_array_free(repos, n);
	return code;
}

/* The active job ids of an overview as "1, 2, 3", or "-". */
static void print_active_jobs(struct json_object *ids)
{
	size_t n = ids != NULL ? json_object_array_length(ids) : 0;

	printf("%-14s", "active jobs");
	if (n == 0)
		fputs("-", stdout);
	for (size_t i = 0; i < n; i++)
		printf("%s%lld", i > 0 ? ", " : "",
		       (long long)json_object_get_int64(json_object_array_get_idx(ids, i)));
	putchar('\n');
}

static void print_repo(const struct repo *repo, struct json_object *overview)
{
	char when[RFC3339_LEN];

	ctl_field("name", "%s", repo->name);
	ctl_field("remote", "%s", repo->remote_url);
	ctl_field("trunk", "%s", repo->trunk);
	/* The overview's status, which also knows about a queued sync job. */
	ctl_field("sync", "%s",
		  ctl_str(json_object_get_string(field(field(overview, "sync"), "status"))));
	ctl_field("last synced", "%s", ctl_time(repo->last_synced_at, when));
	ctl_field("last error", "%s", ctl_str(repo->last_error));
	ctl_field("branches", "%lld",
		  (long long)json_object_get_int64(field(overview, "branches")));
	ctl_field("needs restack", "%lld",
		  (long long)json_object_get_int64(field(overview, "needs_restack")));
	print_active_jobs(field(overview, "active_jobs"));
	ctl_field("created", "%s", ctl_time(repo->created_at, when));
}

int ctl_repo_show(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	_cleanup_(repo_release) struct repo repo = {0};
	struct json_object *overview = NULL;
	struct err e = {0};
	int r;

	r = store_repo_get(c->store, name, &repo, &e);
	if (r == -ENOENT) {
		ctl_error("no repo named '%s'", name);
		return CTL_FAILURE;
	}
	if (r < 0)
		return ctl_fail(&e, r, "cannot read repo '%s'", name);
	r = store_repo_overview(c->store, &repo, &overview, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot read repo '%s'", name);
	if (c->json)
		return ctl_print_json(overview);
	print_repo(&repo, overview);
	json_object_put(overview);
	return CTL_OK;
}

int ctl_repo_remove(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	struct json_object *o;
	struct err e = {0};
	int r, code;

	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_repo_delete(c->store, name, &e);
	if (r < 0) {
		store_rollback(c->store);
		if (r == -ENOENT)
			ctl_error("no repo named '%s'", name);
		else if (r == -EINPROGRESS)
			ctl_error("repo '%s' has a running job; cancel it or wait for it to "
				  "finish",
				  name);
		else
			return ctl_fail(&e, r, "cannot remove repo '%s'", name);
		return CTL_FAILURE;
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;

	if (c->json) {
		o = ctl_json_add(json_object_new_object(), "removed", json_object_new_string(name));
		return ctl_print_json(o);
	}
	printf("Removed repo %s; its mirror %s/%s.git, if any, is left on disk.\n", name,
	       c->conf.mirror_dir, name);
	return CTL_OK;
}
