/* test-job.c - kind and status words, canonical options, the job JSON writer. */
#include <string.h>

#include "job.h"
#include "tap.h"

int main(void)
{
	struct job_options o, back;
	struct job j = {0};
	struct json_object *js, *v;
	char *s;

	is_int(job_kind_from_name("restack_subtree"), JOB_RESTACK_SUBTREE, "kind by name");
	is_int(job_kind_from_name("restack"), -EINVAL, "unknown kind");
	is_int(job_status_from_name("canceled"), JOB_CANCELED, "status by name");
	for (int i = 0; i < JOB_KIND_MAX; i++)
		ok(job_kinds[i].name != NULL, "every kind has a name");
	for (int i = 0; i < JOB_STATUS_MAX; i++)
		ok(job_status_names[i] != NULL, "every status has a name");

	job_options_default(&o);
	s = job_options_to_string(JOB_SYNC_REPO, &o);
	is_str(s, "{\"dry_run\":false,\"push\":true,\"on_conflict\":\"abort\",\"restack\":true}",
	       "sync_repo canonical options carry restack");
	free(s);
	o.on_conflict = ON_CONFLICT_SKIP;
	o.dry_run = true;
	s = job_options_to_string(JOB_RESTACK_REPO, &o);
	is_str(s, "{\"dry_run\":true,\"push\":true,\"on_conflict\":\"skip\"}",
	       "other kinds do not");
	ok(job_options_from_string(s, &back) == 0 && back.dry_run && back.push &&
		   back.on_conflict == ON_CONFLICT_SKIP,
	   "options round trip");
	free(s);

	j.id = 42;
	j.repo = strdup("web");
	j.kind = JOB_RESTACK_SUBTREE;
	j.branch = strdup("feat-a");
	j.options = strdup("{\"dry_run\":false}");
	j.status = JOB_QUEUED;
	j.message = strdup("Queued");
	j.max_attempts = 5;
	j.created_at = 1795774530123LL;
	js = job_to_json(&j);
	ok(js != NULL, "job_to_json");
	ok(json_object_object_get_ex(js, "links", &v) &&
		   strcmp(json_object_get_string(json_object_object_get(v, "self")),
			  "/v1/repos/web/jobs/42") == 0,
	   "self link names the repo");
	ok(json_object_object_get_ex(js, "parent", &v) && v == NULL, "parent is null");
	ok(json_object_object_get_ex(js, "started_at", &v) && v == NULL, "started_at is null");
	is_str(json_object_get_string(json_object_object_get(js, "created_at")),
	       "2026-11-27T10:15:30.123Z", "created_at in RFC 3339");
	is_str(json_object_get_string(json_object_object_get(js, "status")), "queued", "status word");
	ok(json_object_is_type(json_object_object_get(js, "options"), json_type_object),
	   "options is an object");
	json_object_put(js);
	job_release(&j);
	return tap_done();
}
