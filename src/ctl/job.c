/*
 * job.c - the `job` verbs of repoflowctl: list, show, cancel, retry.
 *
 * Jobs are addressed by id alone here (ids are unique across repos); the
 * API names the repo in every job URL for sharding, but an operator on the
 * node has the whole database. The JSON forms come from job_to_json, the
 * one writer of a job, so `--json` prints exactly what GET returns; the
 * words for statuses and kinds come from job.h.
 */
#include "ctl.h"

#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "wake.h"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX	   1000

/*
 * Turn "a,b,c" into a bit mask using from_name (job_status_from_name or
 * job_kind_from_name). Prints the usage error itself; CTL_OK or CTL_USAGE.
 */
static int parse_mask(const struct ctl *c, const char *list, const char *what,
		      int (*from_name)(const char *), unsigned *ret)
{
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL, *word;
	unsigned mask = 0;

	if (copy == NULL)
		return ctl_fail(NULL, -ENOMEM, "cannot parse --%s", what);
	for (word = strtok_r(copy, ",", &save); word != NULL; word = strtok_r(NULL, ",", &save)) {
		int v = from_name(word);

		if (v < 0)
			return ctl_usage_error(c, "unknown %s '%s'", what, word);
		mask |= 1u << v;
	}
	if (mask == 0)
		return ctl_usage_error(c, "--%s needs at least one value", what);
	*ret = mask;
	return CTL_OK;
}

/* Build the store's filter from the options. Prints its own errors. */
static int make_filter(struct ctl *c, const struct ctl_args *a, struct job_filter *f)
{
	_cleanup_(repo_release) struct repo repo = {0};
	struct err e = {0};
	int64_t limit = LIST_LIMIT_DEFAULT;
	int r, code;

	memset(f, 0, sizeof(*f));
	if (a->status != NULL) {
		code = parse_mask(c, a->status, "status", job_status_from_name, &f->status_mask);
		if (code != CTL_OK)
			return code;
	}
	if (a->kind != NULL) {
		code = parse_mask(c, a->kind, "kind", job_kind_from_name, &f->kind_mask);
		if (code != CTL_OK)
			return code;
	}
	if (a->limit != NULL && parse_int64(a->limit, 1, LIST_LIMIT_MAX, &limit) < 0)
		return ctl_usage_error(c, "--limit must be a number from 1 to %d", LIST_LIMIT_MAX);
	f->limit = (int)limit;
	if (a->repo != NULL) {
		r = store_repo_get(c->store, a->repo, &repo, &e);
		if (r == -ENOENT) {
			ctl_error("no repo named '%s'", a->repo);
			return CTL_FAILURE;
		}
		if (r < 0)
			return ctl_fail(&e, r, "cannot read repo '%s'", a->repo);
		f->repo_id = repo.id;
	}
	return CTL_OK;
}

static int print_jobs_json(const struct job *jobs, size_t n)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n && arr != NULL; i++) {
		struct json_object *o = job_to_json(&jobs[i]);

		if (o == NULL || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			arr = NULL;
		}
	}
	if (arr == NULL)
		return ctl_print_json(NULL);
	return ctl_print_json(ctl_json_add(json_object_new_object(), "jobs", arr));
}

static int print_jobs_table(const struct job *jobs, size_t n)
{
	struct table t;
	int code;

	table_init(&t, 8);
	table_add(&t, "ID", "REPO", "KIND", "STATUS", "ATTEMPT", "BRANCH", "CREATED", "MESSAGE");
	for (size_t i = 0; i < n; i++) {
		const struct job *j = &jobs[i];
		char id[24], attempt[32], created[RFC3339_LEN];

		snprintf(id, sizeof(id), "%lld", (long long)j->id);
		snprintf(attempt, sizeof(attempt), "%d/%d", j->attempt, j->max_attempts);
		table_add(&t, id, j->repo, job_kinds[j->kind].name, job_status_names[j->status],
			  attempt, j->branch, ctl_time(j->created_at, created),
			  ctl_str(j->message));
	}
	code = table_print(&t);
	table_release(&t);
	return code;
}

int ctl_job_list(struct ctl *c, const struct ctl_args *a)
{
	struct job_filter f;
	struct job *jobs = NULL;
	struct err e = {0};
	size_t n = 0;
	int r, code;

	code = make_filter(c, a, &f);
	if (code != CTL_OK)
		return code;
	r = store_job_list(c->store, &f, &jobs, &n, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot list jobs");
	code = c->json ? print_jobs_json(jobs, n) : print_jobs_table(jobs, n);
	job_array_free(jobs, n);
	return code;
}

static void print_job(const struct job *j)
{
	char t[RFC3339_LEN];

	ctl_field("id", "%lld", (long long)j->id);
	ctl_field("repo", "%s", j->repo);
	ctl_field("kind", "%s", job_kinds[j->kind].name);
	ctl_field("branch", "%s", ctl_str(j->branch));
	ctl_field("parent", "%s", ctl_str(j->parent));
	ctl_field("options", "%s", ctl_str(j->options));
	ctl_field("status", "%s%s", job_status_names[j->status],
		  j->cancel_requested && !job_status_finished(j->status) ? " (cancel requested)"
									 : "");
	ctl_field("message", "%s", ctl_str(j->message));
	ctl_field("progress", "%lld/%lld%s%s", (long long)j->progress_step,
		  (long long)j->progress_total, j->progress_detail != NULL ? " " : "",
		  j->progress_detail != NULL ? j->progress_detail : "");
	ctl_field("attempt", "%d of %d", j->attempt, j->max_attempts);
	ctl_field("created", "%s", ctl_time(j->created_at, t));
	ctl_field("updated", "%s", ctl_time(j->updated_at, t));
	ctl_field("run at", "%s", ctl_time(j->run_at, t));
	ctl_field("started", "%s", ctl_time(j->started_at, t));
	ctl_field("finished", "%s", ctl_time(j->finished_at, t));
	if (j->status == JOB_RUNNING)
		ctl_field("lease", "%s until %s", ctl_str(j->lease_owner),
			  ctl_time(j->lease_expires_at, t));
	ctl_field("result", "%s", ctl_str(j->result));
	ctl_field("error", "%s", ctl_str(j->error));
}

int ctl_job_show(struct ctl *c, const struct ctl_args *a)
{
	_cleanup_(job_release) struct job j = {0};
	struct err e = {0};
	int64_t id;
	int r, code;

	code = ctl_parse_id(c, a->pos[0], &id);
	if (code != CTL_OK)
		return code;
	r = store_job_get(c->store, 0, id, &j, &e);
	if (r == -ENOENT) {
		ctl_error("no job %lld", (long long)id);
		return CTL_FAILURE;
	}
	if (r < 0)
		return ctl_fail(&e, r, "cannot read job %lld", (long long)id);
	if (c->json)
		return ctl_print_json(job_to_json(&j));
	print_job(&j);
	return CTL_OK;
}

/* A cancel the store refused: say why in one sentence. */
static int cancel_refused(struct ctl *c, int64_t id, int r, const struct err *e)
{
	_cleanup_(job_release) struct job j = {0};

	if (r == -ENOENT) {
		ctl_error("no job %lld", (long long)id);
		return CTL_FAILURE;
	}
	if (r != -EALREADY)
		return ctl_fail(e, r, "cannot cancel job %lld", (long long)id);
	if (store_job_get(c->store, 0, id, &j, NULL) == 0)
		ctl_error("job %lld has already finished (%s); only a queued or running job "
			  "can be canceled",
			  (long long)id, job_status_names[j.status]);
	else
		ctl_error("job %lld has already finished", (long long)id);
	return CTL_FAILURE;
}

int ctl_job_cancel(struct ctl *c, const struct ctl_args *a)
{
	_cleanup_(job_release) struct job j = {0};
	struct err e = {0};
	int64_t id;
	int r, code;

	code = ctl_parse_id(c, a->pos[0], &id);
	if (code != CTL_OK)
		return code;
	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_job_cancel(c->store, 0, id, &j, &e);
	if (r < 0) {
		store_rollback(c->store);
		return cancel_refused(c, id, r, &e);
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;

	if (c->json)
		return ctl_print_json(job_to_json(&j));
	if (r == STORE_CANCEL_REQUESTED)
		printf("Job %lld is running; cancel requested: it stops at its next step "
		       "boundary.\n",
		       (long long)id);
	else
		printf("Canceled job %lld.\n", (long long)id);
	return CTL_OK;
}

/* Why a job cannot be retried: it has not finished. */
static int retry_refused(int64_t id, const struct job *j)
{
	ctl_error("job %lld is %s; only a finished job (completed, error or canceled) can be "
		  "retried%s",
		  (long long)id, job_status_names[j->status],
		  j->status == JOB_QUEUED ? ": it will run" : ": cancel it first");
	return CTL_FAILURE;
}

/*
 * A new job with the kind, branch, parent and options of a finished one,
 * queued as if the same action had been posted again (an identical job
 * still queued is returned instead, as the API deduplicates). The old job
 * is read and the new one written in one transaction, then the worker is
 * woken as the API would wake it.
 */
int ctl_job_retry(struct ctl *c, const struct ctl_args *a)
{
	_cleanup_(job_release) struct job old = {0};
	_cleanup_(job_release) struct job j = {0};
	struct job_request rq;
	struct err e = {0};
	int64_t id;
	int r, code;
	bool woken;

	code = ctl_parse_id(c, a->pos[0], &id);
	if (code != CTL_OK)
		return code;
	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_job_get(c->store, 0, id, &old, &e);
	if (r < 0) {
		store_rollback(c->store);
		if (r == -ENOENT) {
			ctl_error("no job %lld", (long long)id);
			return CTL_FAILURE;
		}
		return ctl_fail(&e, r, "cannot read job %lld", (long long)id);
	}
	if (!job_status_finished(old.status)) {
		store_rollback(c->store);
		return retry_refused(id, &old);
	}
	rq = (struct job_request){
	    .repo_id = old.repo_id,
	    .repo = old.repo,
	    .kind = old.kind,
	    .branch = old.branch,
	    .parent = old.parent,
	    .max_attempts = c->conf.max_attempts,
	    .idem_ttl_s = c->conf.idempotency_ttl_s,
	};
	job_options_default(&rq.options);
	r = old.options != NULL ? job_options_from_string(old.options, &rq.options) : 0;
	if (r < 0) {
		store_rollback(c->store);
		return ctl_fail(NULL, r, "job %lld has options that cannot be read back",
				(long long)id);
	}
	r = store_job_enqueue(c->store, &rq, &j, &e);
	if (r < 0) {
		store_rollback(c->store);
		return ctl_fail(&e, r, "cannot queue a new job");
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;
	/*
	 * As an action's, the new job's log starts with its "accepted" line,
	 * which names the job it retries. Under systemd it goes to the
	 * journal (asked for by name: a terminal is no journal stream);
	 * elsewhere there is no job log to start, and the terminal is left
	 * alone.
	 */
	if (r == STORE_ENQUEUE_CREATED && sd_booted() > 0) {
		setenv("REPOFLOW_LOG_JOURNAL", "1", 1);
		log_init(PROG);
		log_job(&j, LOG_INFO, LOG_MID_JOB_ACCEPTED,
			"Accepted %s job %lld: a retry of job %lld", job_kinds[j.kind].name,
			(long long)j.id, (long long)id);
	}
	/* Like the API's: a lost wake-up only delays the job until the worker's timer. */
	woken = wake_send(c->conf.wake_socket) >= 0;

	if (c->json)
		return ctl_print_json(job_to_json(&j));
	if (r == STORE_ENQUEUE_DEDUPED)
		printf("An identical job is already queued: job %lld.\n", (long long)j.id);
	else
		printf("Queued job %lld, a retry of job %lld (%s%s%s).\n", (long long)j.id,
		       (long long)id, job_kinds[j.kind].name, j.branch != NULL ? " " : "",
		       j.branch != NULL ? j.branch : "");
	if (!woken)
		printf("The worker was not woken (nothing listens on %s); it runs the job when "
		       "it next starts.\n",
		       c->conf.wake_socket);
	return CTL_OK;
}
