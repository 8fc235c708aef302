/*
 * actions.c - POST /v1/repos/{repo}/actions: the accept path. It checks
 * the request cheaply (no git, no network: a branch's existence is the
 * worker's business), writes the job row and its event through the group
 * commit, wakes the worker, and answers 202 with the job.
 *
 * The body is validated against a field table, one validator per member,
 * and every problem found is reported in errors[], not just the first.
 * Which of `branch` and `parent` a kind takes comes from job_kinds[], the
 * one place that knows the kinds.
 *
 * Idempotency-Key: the key is remembered in the same transaction as the
 * job it created, and concurrent requests serialize on the write lock, so
 * a second request with the key always finds the first one finished:
 * API.md's 409 for "a request with this key is still being processed"
 * cannot happen here, and there is no code path for it.
 *
 * A rejected request changes nothing: validation happens before the
 * commit, and a rejection inside it (a reused Idempotency-Key) is rolled
 * back to its savepoint; the worker is woken only for a job that is new.
 */
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "log.h"
#include "route.h"
#include "validate.h"

struct action_form {
	int kind; /* enum job_kind, or -1 while unknown */
	const char *branch;
	const char *parent;
	struct job_options options;
};

static void kinds_list(char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < JOB_KIND_MAX && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i > 0 ? ", " : "",
					job_kinds[i].name);
}

static void check_kind(void *form, const char *field, struct json_object *v,
		       struct json_object *errors)
{
	struct action_form *f = form;
	char names[256];
	const char *s;
	size_t len;
	int kind;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		problem_error_add(errors, field, "is required");
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	kind = strlen(s) == len ? job_kind_from_name(s) : -EINVAL;
	if (kind < 0) {
		kinds_list(names, sizeof(names));
		problem_error_add(errors, field, "must be one of %s", names);
		return;
	}
	f->kind = kind;
}

/*
 * A branch-naming member under the kind's rule. With an unknown kind the
 * rule is unknown too, so only the name itself is checked.
 */
static void check_branch_field(const struct action_form *f, enum field_rule rule, const char *field,
			       struct json_object *v, struct json_object *errors, const char **ret)
{
	const char *s, *msg;
	size_t len;

	if (v == NULL || json_object_is_type(v, json_type_null)) {
		if (rule == FIELD_REQUIRED)
			problem_error_add(errors, field, "is required for %s",
					  job_kinds[f->kind].name);
		return;
	}
	if (rule == FIELD_FORBIDDEN) {
		problem_error_add(errors, field, "is not taken by %s", job_kinds[f->kind].name);
		return;
	}
	if (!field_string(v, field, errors, &s, &len))
		return;
	msg = validate_branch_name(s, len);
	if (msg != NULL)
		problem_error_add(errors, field, "%s", msg);
	else
		*ret = s;
}

static void check_branch(void *form, const char *field, struct json_object *v,
			 struct json_object *errors)
{
	struct action_form *f = form;

	check_branch_field(f, f->kind >= 0 ? job_kinds[f->kind].branch : FIELD_OPTIONAL, field, v,
			   errors, &f->branch);
}

static void check_parent(void *form, const char *field, struct json_object *v,
			 struct json_object *errors)
{
	struct action_form *f = form;

	check_branch_field(f, f->kind >= 0 ? job_kinds[f->kind].parent : FIELD_OPTIONAL, field, v,
			   errors, &f->parent);
}

static void check_bool(const char *field, struct json_object *v, struct json_object *errors,
		       bool *ret)
{
	if (v == NULL)
		return;
	if (!json_object_is_type(v, json_type_boolean)) {
		problem_error_add(errors, field, "must be true or false");
		return;
	}
	*ret = json_object_get_boolean(v);
}

static void check_dry_run(void *form, const char *field, struct json_object *v,
			  struct json_object *errors)
{
	check_bool(field, v, errors, &((struct action_form *)form)->options.dry_run);
}

static void check_push(void *form, const char *field, struct json_object *v,
		       struct json_object *errors)
{
	check_bool(field, v, errors, &((struct action_form *)form)->options.push);
}

static void check_restack(void *form, const char *field, struct json_object *v,
			  struct json_object *errors)
{
	struct action_form *f = form;

	if (v != NULL && f->kind >= 0 && !job_kinds[f->kind].takes_restack) {
		problem_error_add(errors, field, "is not taken by %s", job_kinds[f->kind].name);
		return;
	}
	check_bool(field, v, errors, &f->options.restack);
}

static void check_on_conflict(void *form, const char *field, struct json_object *v,
			      struct json_object *errors)
{
	struct action_form *f = form;
	const char *s;
	size_t len;

	if (v == NULL)
		return;
	if (!field_string(v, field, errors, &s, &len))
		return;
	if (strlen(s) == len && strcmp(s, "abort") == 0)
		f->options.on_conflict = ON_CONFLICT_ABORT;
	else if (strlen(s) == len && strcmp(s, "skip") == 0)
		f->options.on_conflict = ON_CONFLICT_SKIP;
	else
		problem_error_add(errors, field, "must be \"abort\" or \"skip\"");
}

static const struct field option_fields[] = {
    {"dry_run", check_dry_run},
    {"push", check_push},
    {"on_conflict", check_on_conflict},
    {"restack", check_restack},
};

static void check_options(void *form, const char *field, struct json_object *v,
			  struct json_object *errors)
{
	if (v == NULL || json_object_is_type(v, json_type_null))
		return;
	if (!json_object_is_type(v, json_type_object)) {
		problem_error_add(errors, field, "must be an object");
		return;
	}
	fields_check(option_fields, ARRAY_SIZE(option_fields), "options.", v, form, errors);
}

/* Table order matters: `kind` decides the rules of the members after it. */
static const struct field action_fields[] = {
    {"kind", check_kind},
    {"branch", check_branch},
    {"parent", check_parent},
    {"options", check_options},
};

/*
 * The Idempotency-Key header, without the optional surrounding quotes,
 * into out (IDEMPOTENCY_KEY_MAX + 1 bytes). NULL when valid, else what is
 * wrong with it.
 */
static const char *idempotency_key_parse(const char *raw, char *out)
{
	size_t len = strlen(raw);

	if (len >= 2 && raw[0] == '"' && raw[len - 1] == '"') {
		raw++;
		len -= 2;
	}
	if (len == 0)
		return "must not be empty";
	if (len > IDEMPOTENCY_KEY_MAX)
		return "must be at most 255 bytes";
	for (size_t i = 0; i < len; i++)
		if (raw[i] < 0x20 || raw[i] > 0x7e)
			return "must be printable ASCII";
	memcpy(out, raw, len);
	out[len] = '\0';
	return NULL;
}

struct enqueue_op {
	const struct job_request *rq;
	struct job job;
	struct err e;
};

static int enqueue_fn(struct store *s, void *ctx)
{
	struct enqueue_op *op = ctx;

	int r = store_job_enqueue(s, op->rq, &op->job, &op->e);

	/* Only a new job is news to the worker; a dedupe or a replay changed nothing. */
	return r == STORE_ENQUEUE_CREATED ? r | COMMIT_WAKE : r;
}

/* After the COMMIT, before the wake-up: the job's first line is "Accepted". */
static void enqueue_then(void *ctx, int ret)
{
	struct enqueue_op *op = ctx;

	if (ret == STORE_ENQUEUE_CREATED)
		log_job(&op->job, LOG_INFO, LOG_MID_JOB_ACCEPTED, "Accepted %s job %lld",
			job_kinds[op->job.kind].name, (long long)op->job.id);
}

static int respond_job_accepted(struct request *r, const struct job *job)
{
	struct json_object *body = job_to_json(job);

	if (body == NULL)
		return -ENOMEM;
	respond_json(r, 202, body);
	json_object_put(body);
	response_header(r, "Location", "/v1/repos/%s/jobs/%lld", r->repo.name, (long long)job->id);
	response_header(r, "Retry-After", "1");
	return 0;
}

int actions_create(struct request *r)
{
	struct action_form form = {.kind = -1};
	struct json_object *body = NULL, *errors;
	char key[IDEMPOTENCY_KEY_MAX + 1];
	bool have_key = false;
	struct job_request rq;
	struct enqueue_op op;
	struct err e = {{0}, {0}};
	int ret;

	if (request_json_body(r, &body) < 0)
		return 0;
	job_options_default(&form.options);
	errors = problem_errors_new();
	if (errors == NULL ||
	    fields_check(action_fields, ARRAY_SIZE(action_fields), "", body, &form, errors) < 0) {
		json_object_put(errors);
		json_object_put(body);
		return -ENOMEM;
	}
	if (form.branch != NULL && form.parent != NULL && strcmp(form.branch, form.parent) == 0)
		problem_error_add(errors, "parent", "must differ from branch");
	if (r->idempotency_key != NULL) {
		const char *msg = idempotency_key_parse(r->idempotency_key, key);

		if (msg != NULL)
			problem_error_add(errors, "Idempotency-Key", "%s", msg);
		else
			have_key = true;
	}
	if (json_object_array_length(errors) > 0) {
		json_object_put(body);
		return respond_problem(r, 422, "validation_failed", errors,
				       "The action is not valid.");
	}
	json_object_put(errors);

	rq = (struct job_request){
	    .repo_id = r->repo.id,
	    .repo = r->repo.name,
	    .kind = (enum job_kind)form.kind,
	    .branch = form.branch,
	    .parent = form.parent,
	    .options = form.options,
	    .max_attempts = r->conf->max_attempts,
	    .token_id = r->token.id,
	    .idem_key = have_key ? key : NULL,
	    .idem_ttl_s = r->conf->idempotency_ttl_s,
	};
	op = (struct enqueue_op){.rq = &rq};
	ret = commit_submit_then(r->store, enqueue_fn, enqueue_then, &op, &e);
	if (ret == -EKEYREJECTED) {
		errors = problem_errors_new();
		if (errors != NULL)
			problem_error_add(errors, "Idempotency-Key",
					  "was used with a different request");
		respond_problem(r, 422, "idempotency_key_reused", errors,
				"This Idempotency-Key was already used with a different request; "
				"use a new key for a new request.");
	} else if (ret == -EEXIST) {
		/* The only constraint a valid job can break: its repo was deleted meanwhile. */
		respond_problem(r, 404, "not_found", NULL, "There is no repo named '%s'.",
				r->repo.name);
	} else if (ret < 0) {
		respond_errno(r, ret, op.e.msg[0] != '\0' ? &op.e : &e);
	} else {
		/* On disk, logged (enqueue_then) and the worker woken (COMMIT_WAKE). */
		ret = respond_job_accepted(r, &op.job);
	}
	job_release(&op.job);
	json_object_put(body); /* the form borrowed its strings */
	return ret < 0 && !r->responded ? ret : 0;
}
