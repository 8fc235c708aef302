/*
 * job.c - job kinds and statuses with their words, job options in their
 * canonical form, and job_to_json: the one writer of a job's JSON, used by
 * the API responses, the events and repoflowctl alike.
 */
#include "job.h"

#include <stdio.h>
#include <string.h>

const struct job_kind_info job_kinds[JOB_KIND_MAX] = {
	[JOB_SYNC_REPO] = {"sync_repo", FIELD_FORBIDDEN, FIELD_FORBIDDEN, true},
	[JOB_RESTACK_REPO] = {"restack_repo", FIELD_FORBIDDEN, FIELD_FORBIDDEN, false},
	[JOB_RESTACK_SUBTREE] = {"restack_subtree", FIELD_REQUIRED, FIELD_FORBIDDEN, false},
	[JOB_REBASE_BRANCH] = {"rebase_branch", FIELD_REQUIRED, FIELD_FORBIDDEN, false},
	[JOB_REPARENT_BRANCH] = {"reparent_branch", FIELD_REQUIRED, FIELD_REQUIRED, false},
	[JOB_REGISTER_EXISTING_BRANCH] = {"register_existing_branch", FIELD_REQUIRED,
					  FIELD_OPTIONAL, false},
};

const char *const job_status_names[JOB_STATUS_MAX] = {
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_COMPLETED] = "completed",
	[JOB_ERROR] = "error",
	[JOB_CANCELED] = "canceled",
};

int job_kind_from_name(const char *name)
{
	for (int i = 0; i < JOB_KIND_MAX; i++)
		if (strcmp(job_kinds[i].name, name) == 0)
			return i;
	return -EINVAL;
}

int job_status_from_name(const char *name)
{
	for (int i = 0; i < JOB_STATUS_MAX; i++)
		if (strcmp(job_status_names[i], name) == 0)
			return i;
	return -EINVAL;
}

void job_options_default(struct job_options *o)
{
	o->dry_run = false;
	o->push = true;
	o->on_conflict = ON_CONFLICT_ABORT;
	o->restack = true;
}

/*
 * The canonical text has a fixed key order and every default filled in, so
 * two requests that mean the same thing store the same text; deduplication
 * and idempotency compare it byte for byte.
 */
char *job_options_to_string(enum job_kind kind, const struct job_options *o)
{
	struct buf b = BUF_INIT;
	int r;

	r = buf_printf(&b, "{\"dry_run\":%s,\"push\":%s,\"on_conflict\":\"%s\"",
		       o->dry_run ? "true" : "false", o->push ? "true" : "false",
		       o->on_conflict == ON_CONFLICT_SKIP ? "skip" : "abort");
	if (r == 0 && job_kinds[kind].takes_restack)
		r = buf_printf(&b, ",\"restack\":%s", o->restack ? "true" : "false");
	if (r == 0)
		r = buf_puts(&b, "}");
	if (r < 0) {
		buf_release(&b);
		return NULL;
	}
	return b.data;
}

int job_options_from_string(const char *s, struct job_options *o)
{
	struct json_object *obj = json_tokener_parse(s), *v;
	int r = 0;

	job_options_default(o);
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return -EINVAL;
	}
	if (json_object_object_get_ex(obj, "dry_run", &v))
		o->dry_run = json_object_get_boolean(v);
	if (json_object_object_get_ex(obj, "push", &v))
		o->push = json_object_get_boolean(v);
	if (json_object_object_get_ex(obj, "restack", &v))
		o->restack = json_object_get_boolean(v);
	if (json_object_object_get_ex(obj, "on_conflict", &v))
		o->on_conflict = strcmp(json_object_get_string(v), "skip") == 0
					 ? ON_CONFLICT_SKIP
					 : ON_CONFLICT_ABORT;
	json_object_put(obj);
	return r;
}

void job_release(struct job *j)
{
	free(j->repo);
	free(j->branch);
	free(j->parent);
	free(j->options);
	free(j->message);
	free(j->progress_detail);
	free(j->result);
	free(j->error);
	free(j->lease_owner);
	memset(j, 0, sizeof(*j));
}

/* json-c's add takes ownership only on success; on failure we drop the value. */
static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *string_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static struct json_object *time_or_null(int64_t ms)
{
	char buf[RFC3339_LEN];

	return ms > 0 ? json_object_new_string(ms_to_rfc3339(ms, buf)) : NULL;
}

/* Stored JSON text back into an object; NULL when absent (or unparsable). */
static struct json_object *parsed_or_null(const char *s)
{
	return s != NULL ? json_tokener_parse(s) : NULL;
}

struct json_object *job_to_json(const struct job *j)
{
	struct json_object *o = json_object_new_object(), *progress, *links;
	char path[512];
	int r = 0;

	if (o == NULL)
		return NULL;
	snprintf(path, sizeof(path), "/v1/repos/%s/jobs/%lld", j->repo, (long long)j->id);

	progress = json_object_new_object();
	if (progress != NULL) {
		r |= add(progress, "step", json_object_new_int64(j->progress_step));
		r |= add(progress, "total", json_object_new_int64(j->progress_total));
		r |= add(progress, "detail", string_or_null(j->progress_detail));
	}
	links = json_object_new_object();
	if (links != NULL) {
		char sub[600];

		r |= add(links, "self", json_object_new_string(path));
		snprintf(sub, sizeof(sub), "%s/log", path);
		r |= add(links, "log", json_object_new_string(sub));
		snprintf(sub, sizeof(sub), "%s/cancel", path);
		r |= add(links, "cancel", json_object_new_string(sub));
	}

	r |= add(o, "id", json_object_new_int64(j->id));
	r |= add(o, "repo", json_object_new_string(j->repo));
	r |= add(o, "kind", json_object_new_string(job_kinds[j->kind].name));
	r |= add(o, "branch", string_or_null(j->branch));
	r |= add(o, "parent", string_or_null(j->parent));
	r |= add(o, "options", parsed_or_null(j->options));
	r |= add(o, "status", json_object_new_string(job_status_names[j->status]));
	r |= add(o, "message", json_object_new_string(j->message != NULL ? j->message : ""));
	r |= add(o, "progress", progress);
	r |= add(o, "attempt", json_object_new_int(j->attempt));
	r |= add(o, "max_attempts", json_object_new_int(j->max_attempts));
	r |= add(o, "deduplicated", json_object_new_boolean(j->deduplicated));
	r |= add(o, "cancel_requested", json_object_new_boolean(j->cancel_requested));
	r |= add(o, "created_at", time_or_null(j->created_at));
	r |= add(o, "updated_at", time_or_null(j->updated_at));
	r |= add(o, "started_at", time_or_null(j->started_at));
	r |= add(o, "finished_at", time_or_null(j->finished_at));
	r |= add(o, "run_at", time_or_null(j->run_at));
	r |= add(o, "result", parsed_or_null(j->result));
	r |= add(o, "error", parsed_or_null(j->error));
	r |= add(o, "links", links);
	if (r != 0 || progress == NULL || links == NULL) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
