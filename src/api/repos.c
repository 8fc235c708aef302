/*
 * repos.c - the repo resource: create (admin), list (what the token may
 * see), the overview, and delete (admin).
 *
 * Creating a repo only writes its row (and a repo.updated event): the
 * mirror is cloned by the first job, in the worker, never in a request.
 * Create and delete go through the group commit like every other write.
 */
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "route.h"
#include "validate.h"

/* --- POST /v1/repos ------------------------------------------------------ */

struct repo_form {
	const char *name;
	const char *remote_url;
	const char *trunk;
};

static void check_name(void *form, const char *field, struct json_object *v,
		       struct json_object *errors)
{
	struct repo_form *f = form;
	const char *s, *msg;
	size_t len;

	if (v == NULL) {
		problem_error_add(errors, field, "is required");
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	msg = validate_repo_name(s, len);
	if (msg != NULL)
		problem_error_add(errors, field, "%s", msg);
	else
		f->name = s;
}

static void check_remote_url(void *form, const char *field, struct json_object *v,
			     struct json_object *errors)
{
	struct repo_form *f = form;
	const char *s, *msg;
	size_t len;

	if (v == NULL) {
		problem_error_add(errors, field, "is required");
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	msg = validate_remote_url(s, len);
	if (msg != NULL)
		problem_error_add(errors, field, "%s", msg);
	else
		f->remote_url = s;
}

/* The trunk is a branch like any other; absent or null means "main". */
static void check_trunk(void *form, const char *field, struct json_object *v,
			struct json_object *errors)
{
	struct repo_form *f = form;
	const char *s, *msg;
	size_t len;

	if (v == NULL || json_object_is_type(v, json_type_null))
		return;
	if (!field_string(v, field, errors, &s, &len))
		return;
	msg = validate_branch_name(s, len);
	if (msg != NULL)
		problem_error_add(errors, field, "%s", msg);
	else
		f->trunk = s;
}

static const struct field repo_fields[] = {
    {"name", check_name},
    {"remote_url", check_remote_url},
    {"trunk", check_trunk},
};

struct repo_create_op {
	const struct repo_form *form;
	struct json_object *overview; /* the new repo as GET returns it */
	struct err e;
};

static int repo_create_fn(struct store *s, void *ctx)
{
	struct repo_create_op *op = ctx;
	struct repo repo = {0};
	int ret;

	ret = store_repo_create(s, op->form->name, op->form->remote_url, op->form->trunk, &repo,
				&op->e);
	if (ret < 0)
		return ret;
	ret = store_repo_overview(s, &repo, &op->overview, &op->e);
	repo_release(&repo);
	return ret;
}

int repos_create(struct request *r)
{
	struct repo_form form = {.trunk = "main"};
	struct repo_create_op op = {.form = &form};
	struct json_object *body = NULL, *errors;
	struct err e = {{0}, {0}};
	int ret;

	if (request_json_body(r, &body) < 0)
		return 0;
	errors = problem_errors_new();
	if (errors == NULL ||
	    fields_check(repo_fields, ARRAY_SIZE(repo_fields), "", body, &form, errors) < 0) {
		json_object_put(errors);
		json_object_put(body);
		return -ENOMEM;
	}
	if (json_object_array_length(errors) > 0) {
		json_object_put(body);
		return respond_problem(r, 422, "validation_failed", errors,
				       "The repo cannot be created as described.");
	}
	json_object_put(errors);

	ret = commit_submit(r->store, repo_create_fn, &op, &e);
	if (ret == -EEXIST)
		respond_problem(r, 409, "repo_exists", NULL, "A repo named '%s' exists already.",
				form.name);
	else if (ret < 0)
		respond_errno(r, ret, op.e.msg[0] != '\0' ? &op.e : &e);
	else {
		respond_json(r, 201, op.overview);
		response_header(r, "Location", "/v1/repos/%s", form.name);
	}
	json_object_put(op.overview);
	json_object_put(body); /* the form borrowed its strings */
	return 0;
}

/* --- GET /v1/repos ------------------------------------------------------- */

int repos_list(struct request *r)
{
	struct json_object *body, *list, *o;
	struct repo *repos = NULL;
	struct err e = {{0}, {0}};
	size_t n = 0;
	int ret;

	ret = store_repo_list(r->store, &repos, &n, &e);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	body = json_object_new_object();
	list = json_object_new_array();
	ret = body != NULL && list != NULL ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (!route_token_may_see(r, repos[i].name))
			continue;
		ret = store_repo_overview(r->store, &repos[i], &o, &e);
		if (ret == 0 && json_object_array_add(list, o) < 0) {
			json_object_put(o);
			ret = -ENOMEM;
		}
	}
	repo_array_free(repos, n);
	if (ret == 0) {
		ret = json_add(body, "repos", list);
		list = NULL;
	}
	if (ret == 0)
		respond_json(r, 200, body);
	else
		respond_errno(r, ret, &e);
	json_object_put(list);
	json_object_put(body);
	return 0;
}

/* --- GET /v1/repos/{repo} ------------------------------------------------ */

int repos_get(struct request *r)
{
	struct json_object *overview = NULL;
	struct err e = {{0}, {0}};
	int ret;

	ret = store_repo_overview(r->store, &r->repo, &overview, &e);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	respond_json(r, 200, overview);
	json_object_put(overview);
	return 0;
}

/* --- DELETE /v1/repos/{repo} --------------------------------------------- */

struct repo_delete_op {
	const char *name;
	struct err e;
};

static int repo_delete_fn(struct store *s, void *ctx)
{
	struct repo_delete_op *op = ctx;

	return store_repo_delete(s, op->name, &op->e);
}

int repos_delete(struct request *r)
{
	struct repo_delete_op op = {.name = r->repo.name};
	struct err e = {{0}, {0}};
	int ret;

	ret = commit_submit(r->store, repo_delete_fn, &op, &e);
	if (ret == -EINPROGRESS)
		return respond_problem(r, 409, "repo_busy", NULL,
				       "Repo '%s' has a running job; cancel it or wait, then "
				       "delete again.",
				       r->repo.name);
	if (ret == -ENOENT)
		return respond_problem(r, 404, "not_found", NULL, "There is no repo named '%s'.",
				       r->repo.name);
	if (ret < 0)
		return respond_errno(r, ret, op.e.msg[0] != '\0' ? &op.e : &e);
	return respond_empty(r, 204);
}
