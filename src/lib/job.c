/*
 * job.c - job kinds and statuses with their words, job options in their
 * canonical form, and job_to_json: the one writer of a job's JSON, used by
 * the API responses, the events and repoflowctl alike.
 */
#include "job.h"
#include "json.h"

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
		r |= json_add(progress, "step", json_object_new_int64(j->progress_step));
		r |= json_add(progress, "total", json_object_new_int64(j->progress_total));
		r |= json_add(progress, "detail", json_string_or_null(j->progress_detail));
	}
	links = json_object_new_object();
	if (links != NULL) {
		char sub[600];

		r |= json_add(links, "self", json_object_new_string(path));
		snprintf(sub, sizeof(sub), "%s/log", path);
		r |= json_add(links, "log", json_object_new_string(sub));
		snprintf(sub, sizeof(sub), "%s/cancel", path);
		r |= json_add(links, "cancel", json_object_new_string(sub));
	}

	r |= json_add(o, "id", json_object_new_int64(j->id));
	r |= json_add(o, "repo", json_object_new_string(j->repo));
	r |= json_add(o, "kind", json_object_new_string(job_kinds[j->kind].name));
	r |= json_add(o, "branch", json_string_or_null(j->branch));
	r |= json_add(o, "parent", json_string_or_null(j->parent));
	r |= json_add(o, "options", json_parsed_or_null(j->options));
	r |= json_add(o, "status", json_object_new_string(job_status_names[j->status]));
	r |= json_add(o, "message", json_object_new_string(j->message != NULL ? j->message : ""));
	r |= json_add(o, "progress", progress);
	r |= json_add(o, "attempt", json_object_new_int(j->attempt));
	r |= json_add(o, "max_attempts", json_object_new_int(j->max_attempts));
	r |= json_add(o, "deduplicated", json_object_new_boolean(j->deduplicated));
	r |= json_add(o, "cancel_requested", json_object_new_boolean(j->cancel_requested));
	r |= json_add(o, "created_at", json_time_or_null(j->created_at));
	r |= json_add(o, "updated_at", json_time_or_null(j->updated_at));
	r |= json_add(o, "started_at", json_time_or_null(j->started_at));
	r |= json_add(o, "finished_at", json_time_or_null(j->finished_at));
	r |= json_add(o, "run_at", json_time_or_null(j->run_at));
	r |= json_add(o, "result", json_parsed_or_null(j->result));
	r |= json_add(o, "error", json_parsed_or_null(j->error));
	r |= json_add(o, "links", links);
	if (r != 0 || progress == NULL || links == NULL) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
