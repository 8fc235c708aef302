/*
 * jobs.c - the job resource: one job (with its ETag), the list (filtered,
 * newest first, paged by id), and cancel.
 *
 * A client watching a job polls GET; the ETag "<id>-<version>" changes on
 * every change to the row, so If-None-Match turns an unchanged poll into
 * a 304 without a body, and Retry-After tells it how often to ask while
 * the job is not finished. Paging is by id (`before=`), not by offset, so
 * a page stays correct while new jobs arrive, and each page is one range
 * read on the primary key however many rows the table holds.
 */
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "route.h"

#define JOBS_LIMIT_DEFAULT 50
#define JOBS_LIMIT_MAX	   200

/* --- GET /v1/repos/{repo}/jobs/{id} -------------------------------------- */

int jobs_get(struct request *r)
{
	struct json_object *body;
	struct err e = {{0}, {0}};
	struct job job = {0};
	char etag[64];
	bool finished;
	int ret;

	ret = store_job_get(r->store, r->repo.id, r->id, &job, &e);
	if (ret == -ENOENT)
		return respond_problem(r, 404, "not_found", NULL, "Repo '%s' has no job %lld.",
				       r->repo.name, (long long)r->id);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	snprintf(etag, sizeof(etag), "\"%lld-%lld\"", (long long)job.id, (long long)job.version);
	finished = job_status_finished(job.status);

	if (r->if_none_match != NULL && request_etag_matches(r->if_none_match, etag)) {
		respond_empty(r, 304);
	} else {
		body = job_to_json(&job);
		if (body == NULL) {
			job_release(&job);
			return -ENOMEM;
		}
		respond_json(r, 200, body);
		json_object_put(body);
	}
	job_release(&job);
	response_header(r, "ETag", "%s", etag);
	response_header(r, "Cache-Control", "no-cache");
	if (!finished)
		response_header(r, "Retry-After", "1");
	return 0;
}

/* --- GET /v1/repos/{repo}/jobs ------------------------------------------- */

static const char *status_name(int i)
{
	return job_status_names[i];
}

static const char *kind_name(int i)
{
	return job_kinds[i].name;
}

/* The list's next page: the same filters, before the last id shown. */
static struct json_object *jobs_next_url(const struct request *r, const struct job_filter *f,
					 int64_t limit, int64_t before)
{
	struct json_object *url = NULL;
	struct buf b = BUF_INIT;
	int ret;

	ret = buf_printf(&b, "/v1/repos/%s/jobs?", r->repo.name);
	if (ret == 0 && f->status_mask != 0) {
		ret |= buf_puts(&b, "status=");
		ret |= query_mask_words(&b, f->status_mask, status_name, JOB_STATUS_MAX);
		ret |= buf_puts(&b, "&");
	}
	if (ret == 0 && f->kind_mask != 0) {
		ret |= buf_puts(&b, "kind=");
		ret |= query_mask_words(&b, f->kind_mask, kind_name, JOB_KIND_MAX);
		ret |= buf_puts(&b, "&");
	}
	if (ret == 0)
		ret = buf_printf(&b, "limit=%lld&before=%lld", (long long)limit, (long long)before);
	if (ret == 0)
		url = json_object_new_string(b.data);
	buf_release(&b);
	return url;
}

/* Element i of a job array as JSON, for page_write(). */
static struct json_object *job_item(const void *arr, size_t i)
{
	return job_to_json(&((const struct job *)arr)[i]);
}

int jobs_list(struct request *r)
{
	struct json_object *errors;
	struct job_filter f = {.repo_id = r->repo.id};
	struct err e = {{0}, {0}};
	struct job *jobs = NULL;
	int64_t limit, before;
	const char *v;
	size_t n = 0;
	int ret;

	errors = problem_errors_new();
	if (errors == NULL)
		return -ENOMEM;
	v = request_query(r, "status");
	if (v != NULL && query_words_mask(v, job_status_from_name, &f.status_mask) < 0)
		problem_error_add(errors, "status",
				  "must be a comma-separated list of queued, running, completed, "
				  "error, canceled");
	v = request_query(r, "kind");
	if (v != NULL && query_words_mask(v, job_kind_from_name, &f.kind_mask) < 0)
		problem_error_add(errors, "kind", "must be a comma-separated list of job kinds");
	request_query_int64(r, "limit", 1, JOBS_LIMIT_MAX, JOBS_LIMIT_DEFAULT, errors, &limit);
	request_query_int64(r, "before", 1, INT64_MAX, 0, errors, &before);
	if (json_object_array_length(errors) > 0)
		return respond_problem(r, 422, "validation_failed", errors,
				       "The query is not valid.");
	json_object_put(errors);

	/* One more than asked for says whether there is a next page. */
	f.before = before;
	f.limit = (int)limit + 1;
	ret = store_job_list(r->store, &f, &jobs, &n, &e);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	{
		struct json_object *next =
		    n > (size_t)limit ? jobs_next_url(r, &f, limit, jobs[limit - 1].id) : NULL;

		ret = n > (size_t)limit && next == NULL
			  ? -ENOMEM
			  : page_write(r, "jobs", jobs, n, limit, job_item, next);
		json_object_put(next);
	}
	job_array_free(jobs, n);
	if (ret < 0)
		return ret;
	return respond_json_out(r, 200);
}

/* --- POST /v1/repos/{repo}/jobs/{id}/cancel ------------------------------- */

struct cancel_op {
	int64_t repo_id, id;
	struct job job;
	struct err e;
};

static int cancel_fn(struct store *s, void *ctx)
{
	struct cancel_op *op = ctx;

	return store_job_cancel(s, op->repo_id, op->id, &op->job, &op->e);
}

/*
 * Cancel takes no body. An empty one is fine, and so is `{}` for clients
 * that always send JSON; anything else is refused like any other body.
 */
static int cancel_check_body(struct request *r)
{
	struct json_object *body = NULL, *errors;
	int ret;

	ret = request_read_body(r);
	if (ret < 0 || r->body.len == 0)
		return ret;
	ret = request_json_body(r, &body);
	if (ret < 0)
		return ret;
	if (json_object_object_length(body) > 0) {
		errors = problem_errors_new();
		if (errors != NULL)
			fields_check(NULL, 0, "", body, NULL, errors);
		json_object_put(body);
		respond_problem(r, 422, "validation_failed", errors, "Cancel takes no parameters.");
		return -EINVAL;
	}
	json_object_put(body);
	return 0;
}

int jobs_cancel(struct request *r)
{
	struct cancel_op op = {.repo_id = r->repo.id, .id = r->id};
	struct json_object *body;
	struct err e = {{0}, {0}};
	int ret;

	if (cancel_check_body(r) < 0)
		return 0;
	ret = commit_submit(r->store, cancel_fn, &op, &e);
	if (ret == -ENOENT) {
		respond_problem(r, 404, "not_found", NULL, "Repo '%s' has no job %lld.",
				r->repo.name, (long long)r->id);
	} else if (ret == -EALREADY) {
		respond_problem(r, 409, "job_finished", NULL,
				"Job %lld has already finished; there is nothing to cancel.",
				(long long)r->id);
	} else if (ret < 0) {
		respond_errno(r, ret, op.e.msg[0] != '\0' ? &op.e : &e);
	} else if ((body = job_to_json(&op.job)) == NULL) {
		ret = -ENOMEM;
	} else {
		/* Queued: canceled now (200). Running: stops at its next step boundary (202). */
		bool requested = ret == STORE_CANCEL_REQUESTED;

		respond_json(r, requested ? 202 : 200, body);
		json_object_put(body);
		if (requested)
			response_header(r, "Retry-After", "1");
		ret = 0;
	}
	job_release(&op.job);
	return ret < 0 && !r->responded ? ret : 0;
}
