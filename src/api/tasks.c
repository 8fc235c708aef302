/*
 * tasks.c - the task resource: create (POST .../tasks), one task (with its
 * ETag, like a job), and the list (filtered, newest first, paged by id).
 *
 * Creating a task is a cheap mutation and, when the branch is not known
 * yet, an enqueue: the request never looks at git. The store decides in
 * the group commit's transaction (store_task_create): a branch the
 * projection has fresh and active makes a ready task (201); otherwise the
 * task waits in pending_branch_attach on a register_existing_branch job
 * (202), a queued one for the branch when there is one, else a new one,
 * and the worker is woken only for a new job. The task row, the job row
 * and their events commit together or not at all.
 *
 * The answer to POST is the task with one more member, `job`: the whole
 * job that attaches it (as GET .../jobs/{id} shows it, `deduplicated`
 * telling whether it was already queued), or null for a ready task. GET
 * and the events carry `job_id` and links.job instead.
 *
 * A rejected request changes nothing: the body is validated against the
 * field table before the commit, and a branch owned by another live task
 * (409) is found inside it and rolled back to its savepoint.
 */
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "route.h"
#include "validate.h"

#define TASKS_LIMIT_DEFAULT 50
#define TASKS_LIMIT_MAX	    200

/* --- POST /v1/repos/{repo}/tasks ------------------------------------------ */

struct task_form {
	const char *trunk; /* the repo's, which cannot have a task */
	const char *branch;
	const char *title;
};

static void check_branch(void *form, const char *field, struct json_object *v,
			 struct json_object *errors)
{
	struct task_form *f = form;
	const char *s, *msg;
	size_t len;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		problem_error_add(errors, field, "is required");
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	msg = validate_branch_name(s, len);
	if (msg != NULL)
		problem_error_add(errors, field, "%s", msg);
	else if (strcmp(s, f->trunk) == 0)
		problem_error_add(errors, field, "is the trunk; a task needs a branch of its own");
	else
		f->branch = s;
}

static void check_title(void *form, const char *field, struct json_object *v,
			struct json_object *errors)
{
	struct task_form *f = form;
	const char *s;
	size_t len;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		problem_error_add(errors, field, "is required");
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	if (len == 0) {
		problem_error_add(errors, field, "must not be empty");
		return;
	}
	if (len > TASK_TITLE_MAX) {
		problem_error_add(errors, field, "must be at most %d bytes", TASK_TITLE_MAX);
		return;
	}
	/* json-c checked the UTF-8; no control character (\u0000 among them) belongs in a title. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			problem_error_add(errors, field, "must not contain control characters");
			return;
		}
	f->title = s;
}

static const struct field task_fields[] = {
    {"branch", check_branch},
    {"title", check_title},
};

struct task_op {
	const struct task_request *rq;
	struct task task;
	struct job job;
	int64_t owner;
	struct err e;
};

static int task_fn(struct store *s, void *ctx)
{
	struct task_op *op = ctx;
	int r = store_task_create(s, op->rq, &op->task, &op->job, &op->owner, &op->e);

	/* Only a new job is news to the worker. */
	return r == STORE_TASK_PENDING ? r | COMMIT_WAKE : r;
}

/* The task, with `job` (the job or null), as POST answers it. */
static int respond_task_created(struct request *r, const struct task_op *op, int outcome)
{
	struct json_object *body = task_to_json(&op->task), *job = NULL;
	bool pending = outcome != STORE_TASK_READY;

	if (body == NULL)
		return -ENOMEM;
	if (pending && (job = job_to_json(&op->job)) == NULL) {
		json_object_put(body);
		return -ENOMEM;
	}
	if (json_add(body, "job", job) < 0) {
		json_object_put(body);
		return -ENOMEM;
	}
	respond_json(r, pending ? 202 : 201, body);
	json_object_put(body);
	response_header(r, "Location", "/v1/repos/%s/tasks/%lld", r->repo.name,
			(long long)op->task.id);
	if (pending)
		response_header(r, "Retry-After", "1");
	return 0;
}

/* After the COMMIT, before the wake-up: the attaching job's first line is "Accepted". */
static void task_then(void *ctx, int ret)
{
	struct task_op *op = ctx;

	if (ret == STORE_TASK_PENDING && op->job.id != 0)
		log_job(&op->job, LOG_INFO, LOG_MID_JOB_ACCEPTED,
			"Accepted %s job %lld to attach task %lld", job_kinds[op->job.kind].name,
			(long long)op->job.id, (long long)op->task.id);
}

int tasks_create(struct request *r)
{
	struct task_form form = {.trunk = r->repo.trunk};
	struct json_object *body = NULL, *errors;
	struct task_request rq;
	struct task_op op;
	struct err e = {{0}, {0}};
	int ret;

	if (request_json_body(r, &body) < 0)
		return 0;
	errors = problem_errors_new();
	if (errors == NULL ||
	    fields_check(task_fields, ARRAY_SIZE(task_fields), "", body, &form, errors) < 0) {
		json_object_put(errors);
		json_object_put(body);
		return -ENOMEM;
	}
	if (json_object_array_length(errors) > 0) {
		json_object_put(body);
		return respond_problem(r, 422, "validation_failed", errors,
				       "The task is not valid.");
	}
	json_object_put(errors);

	rq = (struct task_request){
	    .repo_id = r->repo.id,
	    .repo = r->repo.name,
	    .branch = form.branch,
	    .title = form.title,
	    .fresh_s = r->conf->branch_fresh_s,
	    .max_attempts = r->conf->max_attempts,
	    .token_id = r->token.id,
	};
	op = (struct task_op){.rq = &rq};
	ret = commit_submit_then(r->store, task_fn, task_then, &op, &e);
	if (ret == -EEXIST && strcmp(op.e.code, "task_exists") == 0) {
		respond_problem(r, 409, "task_exists", NULL,
				"Branch %s already has a live task: /v1/repos/%s/tasks/%lld.",
				form.branch, r->repo.name, (long long)op.owner);
	} else if (ret == -EEXIST) {
		/* The other constraint a valid task can break: its repo was deleted meanwhile. */
		respond_problem(r, 404, "not_found", NULL, "There is no repo named '%s'.",
				r->repo.name);
	} else if (ret < 0) {
		respond_errno(r, ret, op.e.msg[0] != '\0' ? &op.e : &e);
	} else {
		ret = respond_task_created(r, &op, ret);
	}
	task_release(&op.task);
	job_release(&op.job);
	json_object_put(body); /* the form borrowed its strings */
	return ret < 0 && !r->responded ? ret : 0;
}

/* --- GET /v1/repos/{repo}/tasks/{id} -------------------------------------- */

int tasks_get(struct request *r)
{
	struct json_object *body;
	struct err e = {{0}, {0}};
	struct task task = {0};
	char etag[64];
	bool pending;
	int ret;

	ret = store_task_get(r->store, r->repo.id, r->id, &task, &e);
	if (ret == -ENOENT)
		return respond_problem(r, 404, "not_found", NULL, "Repo '%s' has no task %lld.",
				       r->repo.name, (long long)r->id);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	snprintf(etag, sizeof(etag), "\"%lld-%lld\"", (long long)task.id, (long long)task.version);
	pending = task.state == TASK_PENDING_BRANCH_ATTACH;

	if (r->if_none_match != NULL && request_etag_matches(r->if_none_match, etag)) {
		respond_empty(r, 304);
	} else {
		body = task_to_json(&task);
		if (body == NULL) {
			task_release(&task);
			return -ENOMEM;
		}
		respond_json(r, 200, body);
		json_object_put(body);
	}
	task_release(&task);
	response_header(r, "ETag", "%s", etag);
	response_header(r, "Cache-Control", "no-cache");
	if (pending)
		response_header(r, "Retry-After", "1");
	return 0;
}

/* --- GET /v1/repos/{repo}/tasks ------------------------------------------- */

static const char *state_name(int i)
{
	return task_state_names[i];
}

/* The list's next page: the same filters, before the last id shown. */
static struct json_object *tasks_next_url(const struct request *r, const struct task_filter *f,
					  int64_t limit, int64_t before)
{
	struct json_object *url = NULL;
	_cleanup_free_ char *branch = NULL;
	struct buf b = BUF_INIT;
	int ret;

	ret = buf_printf(&b, "/v1/repos/%s/tasks?", r->repo.name);
	if (ret == 0 && f->state_mask != 0) {
		ret |= buf_puts(&b, "state=");
		ret |= query_mask_words(&b, f->state_mask, state_name, TASK_STATE_MAX);
		ret |= buf_puts(&b, "&");
	}
	if (ret == 0 && f->branch != NULL) {
		/* A branch name may hold '&', '#', '%' or '+'; it goes back percent-encoded. */
		ret |= buf_puts(&b, "branch=");
		for (const char *p = f->branch; ret == 0 && *p != '\0'; p++)
			ret = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				      (*p >= '0' && *p <= '9') || strchr("-._~/", *p) != NULL
				  ? buf_append(&b, p, 1)
				  : buf_printf(&b, "%%%02X", (unsigned char)*p);
		ret |= buf_puts(&b, "&");
	}
	if (ret == 0)
		ret = buf_printf(&b, "limit=%lld&before=%lld", (long long)limit, (long long)before);
	if (ret == 0)
		url = json_object_new_string(b.data);
	buf_release(&b);
	return url;
}

/* Element i of a task array as JSON, for page_write(). */
static struct json_object *task_item(const void *arr, size_t i)
{
	return task_to_json(&((const struct task *)arr)[i]);
}

int tasks_list(struct request *r)
{
	struct json_object *errors;
	struct task_filter f = {.repo_id = r->repo.id};
	struct err e = {{0}, {0}};
	struct task *tasks = NULL;
	int64_t limit, before;
	const char *v;
	size_t n = 0;
	int ret;

	errors = problem_errors_new();
	if (errors == NULL)
		return -ENOMEM;
	v = request_query(r, "state");
	if (v != NULL && query_words_mask(v, task_state_from_name, &f.state_mask) < 0)
		problem_error_add(errors, "state",
				  "must be a comma-separated list of pending_branch_attach, ready, "
				  "attach_failed");
	v = request_query(r, "branch");
	if (v != NULL && validate_branch_name(v, strlen(v)) != NULL)
		problem_error_add(errors, "branch", "%s", validate_branch_name(v, strlen(v)));
	else
		f.branch = v;
	request_query_int64(r, "limit", 1, TASKS_LIMIT_MAX, TASKS_LIMIT_DEFAULT, errors, &limit);
	request_query_int64(r, "before", 1, INT64_MAX, 0, errors, &before);
	if (json_object_array_length(errors) > 0)
		return respond_problem(r, 422, "validation_failed", errors,
				       "The query is not valid.");
	json_object_put(errors);

	/* One more than asked for says whether there is a next page. */
	f.before = before;
	f.limit = (int)limit + 1;
	ret = store_task_list(r->store, &f, &tasks, &n, &e);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	{
		struct json_object *next =
		    n > (size_t)limit ? tasks_next_url(r, &f, limit, tasks[limit - 1].id) : NULL;

		ret = n > (size_t)limit && next == NULL
			  ? -ENOMEM
			  : page_write(r, "tasks", tasks, n, limit, task_item, next);
		json_object_put(next);
	}
	task_array_free(tasks, n);
	if (ret < 0)
		return ret;
	return respond_json_out(r, 200);
}
