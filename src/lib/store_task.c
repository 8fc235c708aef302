/*
 * store_task.c - tasks: a unit of work bound to one branch, and the one
 * JSON writer of a task (GET, the list, the POST answer and every
 * task.updated event print it).
 *
 * Creating a task never waits for git. When the branch projection already
 * knows the branch (the row is fresh and active) the task is ready at
 * once; otherwise it waits in pending_branch_attach on a
 * register_existing_branch job, which the worker runs like any other.
 * When that job reaches a final status, store_job_finish (or the cancel
 * of a queued job) calls store_task_job_finished in the same transaction,
 * so a client never sees the job finished and its task still pending.
 *
 * Which job attaches which task: a completed (not dry-run) register of a
 * branch makes every pending task on that branch ready, whichever job it
 * was waiting for, because the branch is now known; a failed or canceled
 * job fails only the tasks that were waiting for it, because another
 * job on the same branch may still succeed.
 *
 * Every change bumps the task's version (its ETag) and writes one
 * task.updated event carrying the task as GET returns it.
 */
#include "store_internal.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

const char *const task_state_names[TASK_STATE_MAX] = {
    [TASK_PENDING_BRANCH_ATTACH] = "pending_branch_attach",
    [TASK_READY] = "ready",
    [TASK_ATTACH_FAILED] = "attach_failed",
};

int task_state_from_name(const char *name)
{
	for (int i = 0; i < TASK_STATE_MAX; i++)
		if (strcmp(task_state_names[i], name) == 0)
			return i;
	return -EINVAL;
}

#define TASK_COLUMNS                                                                               \
	"t.id, t.repo_id, r.name, t.branch, t.title, t.state, t.head, t.reason, t.job_id,"         \
	" t.version, t.created_at, t.updated_at"
#define TASK_FROM " FROM tasks t JOIN repos r ON r.id = t.repo_id"

void task_release(struct task *t)
{
	free(t->repo);
	free(t->branch);
	free(t->title);
	free(t->head);
	free(t->reason);
	memset(t, 0, sizeof(*t));
}

void task_array_free(struct task *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		task_release(&t[i]);
	free(t);
}

/* The only place the state words of the tasks table are parsed. */
static int task_from_row(sqlite3_stmt *st, struct task *t)
{
	int state = task_state_from_name((const char *)sqlite3_column_text(st, 5));

	memset(t, 0, sizeof(*t));
	if (state < 0)
		return -EPROTO;
	t->id = sqlite3_column_int64(st, 0);
	t->repo_id = sqlite3_column_int64(st, 1);
	t->repo = store_col_dup(st, 2);
	t->branch = store_col_dup(st, 3);
	t->title = store_col_dup(st, 4);
	t->state = (enum task_state)state;
	t->head = store_col_dup(st, 6);
	t->reason = store_col_dup(st, 7);
	t->job_id = sqlite3_column_int64(st, 8);
	t->version = sqlite3_column_int64(st, 9);
	t->created_at = sqlite3_column_int64(st, 10);
	t->updated_at = sqlite3_column_int64(st, 11);
	if (t->repo == NULL || t->branch == NULL || t->title == NULL) {
		task_release(t);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *task_to_json(const struct task *t)
{
	struct json_object *o = json_object_new_object(), *links = json_object_new_object();
	char path[512];
	int r = 0;

	if (o == NULL || links == NULL) {
		json_object_put(o);
		json_object_put(links);
		return NULL;
	}
	snprintf(path, sizeof(path), "/v1/repos/%s/tasks/%lld", t->repo, (long long)t->id);
	r |= json_add(links, "self", json_object_new_string(path));
	if (t->job_id > 0) {
		snprintf(path, sizeof(path), "/v1/repos/%s/jobs/%lld", t->repo,
			 (long long)t->job_id);
		r |= json_add(links, "job", json_object_new_string(path));
	} else {
		r |= json_add(links, "job", NULL);
	}

	r |= json_add(o, "id", json_object_new_int64(t->id));
	r |= json_add(o, "repo", json_object_new_string(t->repo));
	r |= json_add(o, "branch", json_object_new_string(t->branch));
	r |= json_add(o, "title", json_object_new_string(t->title));
	r |= json_add(o, "state", json_object_new_string(task_state_names[t->state]));
	r |= json_add(o, "head", json_string_or_null(t->head));
	r |= json_add(o, "reason", json_string_or_null(t->reason));
	r |= json_add(o, "job_id", t->job_id > 0 ? json_object_new_int64(t->job_id) : NULL);
	r |= json_add(o, "version", json_object_new_int64(t->version));
	r |= json_add(o, "created_at", json_time_or_null(t->created_at));
	r |= json_add(o, "updated_at", json_time_or_null(t->updated_at));
	r |= json_add(o, "links", links);
	if (r != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int store_task_get(struct store *s, int64_t repo_id, int64_t id, struct task *ret, struct err *e)
{
	static const char sql[] =
	    "SELECT " TASK_COLUMNS TASK_FROM " WHERE t.id = ?1 AND (?2 = 0 OR t.repo_id = ?2)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, repo_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = err_set(e, -ENOENT, "not_found", "no task %lld", (long long)id);
	else if (rc != SQLITE_ROW)
		r = store_fail(s, rc, e);
	else if ((r = task_from_row(st, ret)) < 0)
		r = err_set(e, r, r == -ENOMEM ? "nomem" : "database",
			    r == -ENOMEM ? "out of memory" : "task %lld has an unknown state",
			    (long long)id);
	sqlite3_reset(st);
	return r;
}

/* The task.updated event of task `id` as it is now, into the feed. In a transaction. */
static int task_event(struct store *s, int64_t id, struct task *ret, struct err *e)
{
	struct json_object *data = NULL, *oid = NULL;
	struct task t;
	int r;

	r = store_task_get(s, 0, id, &t, e);
	if (r < 0)
		return r;
	data = task_to_json(&t);
	oid = json_object_new_int64(t.id);
	if (data == NULL || oid == NULL)
		r = err_set(e, -ENOMEM, "nomem", "out of memory");
	else
		r = store_event_append(s, t.repo_id, "task.updated", oid, data, e);
	json_object_put(data);
	json_object_put(oid);
	if (r == 0 && ret != NULL)
		*ret = t;
	else
		task_release(&t);
	return r;
}

/* The live task of a branch: 1 with *id, 0 when none. */
static int live_task_of(struct store *s, int64_t repo_id, const char *branch, int64_t *id,
			struct err *e)
{
	static const char sql[] = "SELECT id FROM tasks WHERE repo_id = ?1 AND branch = ?2"
				  " AND state IN ('pending_branch_attach','ready')";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, branch, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		r = 1;
	} else if (rc == SQLITE_DONE) {
		r = 0;
	} else {
		r = store_fail(s, rc, e);
	}
	sqlite3_reset(st);
	return r;
}

/*
 * The branch's row when it is fresh and active: 1 with its head copied
 * into head (41 bytes), 0 otherwise (absent, stale, merged or missing).
 */
static int branch_known(struct store *s, const struct task_request *rq, int64_t now,
			char head[static 41], struct err *e)
{
	static const char sql[] = "SELECT head FROM branches WHERE repo_id = ?1 AND name = ?2"
				  " AND state = 'active' AND synced_at >= ?3 AND head IS NOT NULL";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->repo_id);
	sqlite3_bind_text(st, 2, rq->branch, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now - (int64_t)rq->fresh_s * 1000);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(head, 41, "%s", (const char *)sqlite3_column_text(st, 0));
		r = 1;
	} else if (rc == SQLITE_DONE) {
		r = 0;
	} else {
		r = store_fail(s, rc, e);
	}
	sqlite3_reset(st);
	return r;
}

/*
 * A queued register_existing_branch job for the branch that really
 * registers it (not a dry run), whatever parent it names: 1 with *id, or
 * 0. Such a job attaches the task as well as a new one would.
 */
static int queued_register(struct store *s, int64_t repo_id, const char *branch, int64_t *id,
			   struct err *e)
{
	static const char sql[] =
	    "SELECT id, options FROM jobs WHERE repo_id = ?1 AND status IN ('queued','running')"
	    " AND status = 'queued' AND kind = 'register_existing_branch' AND branch = ?2"
	    " ORDER BY id";
	sqlite3_stmt *st;
	int rc, r, found = 0;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, branch, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct job_options o;

		job_options_default(&o);
		if (job_options_from_string((const char *)sqlite3_column_text(st, 1), &o) < 0 ||
		    o.dry_run)
			continue;
		*id = sqlite3_column_int64(st, 0);
		found = 1;
		break;
	}
	if (!found && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r < 0 ? r : found;
}

static int task_insert(struct store *s, const struct task_request *rq, enum task_state state,
		       const char *head, int64_t job_id, int64_t now, int64_t *ret_id,
		       struct err *e)
{
	static const char sql[] =
	    "INSERT INTO tasks (repo_id, branch, title, state, head, job_id, created_at,"
	    " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->repo_id);
	sqlite3_bind_text(st, 2, rq->branch, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rq->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, task_state_names[state], -1, SQLITE_STATIC);
	store_bind_text(st, 5, head);
	if (job_id > 0)
		sqlite3_bind_int64(st, 6, job_id);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	*ret_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int store_task_create(struct store *s, const struct task_request *rq, struct task *ret,
		      struct job *ret_job, int64_t *ret_owner, struct err *e)
{
	int64_t now = now_ms(), owner = 0, job_id = 0, id = 0;
	char head[41];
	int r, outcome;

	memset(ret_job, 0, sizeof(*ret_job));
	r = live_task_of(s, rq->repo_id, rq->branch, &owner, e);
	if (r < 0)
		return r;
	if (r == 1) {
		*ret_owner = owner;
		return err_set(e, -EEXIST, "task_exists",
			       "branch %s already has a live task (%lld)", rq->branch,
			       (long long)owner);
	}

	r = branch_known(s, rq, now, head, e);
	if (r < 0)
		return r;
	if (r == 1) {
		outcome = STORE_TASK_READY;
		r = task_insert(s, rq, TASK_READY, head, 0, now, &id, e);
	} else {
		r = queued_register(s, rq->repo_id, rq->branch, &job_id, e);
		if (r < 0)
			return r;
		if (r == 1) {
			outcome = STORE_TASK_PENDING_SHARED;
			r = store_job_get(s, rq->repo_id, job_id, ret_job, e);
			ret_job->deduplicated = r == 0;
		} else {
			struct job_request jr = {
			    .repo_id = rq->repo_id,
			    .repo = rq->repo,
			    .kind = JOB_REGISTER_EXISTING_BRANCH,
			    .branch = rq->branch,
			    .max_attempts = rq->max_attempts,
			    .token_id = rq->token_id,
			};

			job_options_default(&jr.options);
			r = store_job_enqueue(s, &jr, ret_job, e);
			/* An identical queued job would have been found above. */
			outcome = r == STORE_ENQUEUE_CREATED ? STORE_TASK_PENDING
							     : STORE_TASK_PENDING_SHARED;
		}
		if (r >= 0)
			r = task_insert(s, rq, TASK_PENDING_BRANCH_ATTACH, NULL, ret_job->id, now,
					&id, e);
	}
	if (r >= 0)
		r = task_event(s, id, ret, e);
	if (r < 0) {
		job_release(ret_job);
		return r;
	}
	return outcome;
}

int store_task_list(struct store *s, const struct task_filter *f, struct task **ret, size_t *n,
		    struct err *e)
{
	struct buf sql = BUF_INIT;
	struct task *tasks = NULL;
	size_t count = 0, cap = f->limit > 0 ? (size_t)f->limit : 50;
	sqlite3_stmt *st;
	bool first = true;
	int rc, r = 0;

	/* As for jobs: the state set is a literal IN list, one cached statement per set. */
	r |= buf_puts(&sql, "SELECT " TASK_COLUMNS TASK_FROM " WHERE t.repo_id = ?1");
	if (f->before != 0)
		r |= buf_puts(&sql, " AND t.id < ?2");
	if (f->branch != NULL)
		r |= buf_puts(&sql, " AND t.branch = ?3");
	if (f->state_mask != 0) {
		r |= buf_puts(&sql, " AND t.state IN (");
		for (int i = 0; i < TASK_STATE_MAX; i++)
			if (f->state_mask & (1u << i)) {
				r |= buf_printf(&sql, "%s'%s'", first ? "" : ",",
						task_state_names[i]);
				first = false;
			}
		r |= buf_puts(&sql, ")");
	}
	r |= buf_puts(&sql, " ORDER BY t.id DESC LIMIT ?4");
	if (r != 0) {
		buf_release(&sql);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	r = store_prepare(s, sql.data, true, &st, e);
	buf_release(&sql);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, f->repo_id);
	if (f->before != 0)
		sqlite3_bind_int64(st, 2, f->before);
	if (f->branch != NULL)
		sqlite3_bind_text(st, 3, f->branch, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)cap);
	tasks = calloc(cap, sizeof(*tasks));
	if (tasks == NULL) {
		sqlite3_reset(st);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	while (count < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = task_from_row(st, &tasks[count]);
		if (r < 0)
			break;
		count++;
	}
	if (r == 0 && count < cap && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	if (r < 0) {
		task_array_free(tasks, count);
		return r == -ENOMEM || r == -EPROTO
			   ? err_set(e, r, "database", "a task row could not be read")
			   : r;
	}
	*ret = tasks;
	*n = count;
	return 0;
}

/* Move a pending task to `state`: 1 when it changed (its event written), 0 when not pending. */
static int task_settle(struct store *s, int64_t id, enum task_state state, const char *head,
		       const char *reason, struct err *e)
{
	static const char sql[] =
	    "UPDATE tasks SET state = ?2, head = ?3, reason = ?4, updated_at = ?5,"
	    " version = version + 1 WHERE id = ?1 AND state = 'pending_branch_attach'";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, task_state_names[state], -1, SQLITE_STATIC);
	store_bind_text(st, 3, head);
	store_bind_text(st, 4, reason);
	sqlite3_bind_int64(st, 5, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	if (sqlite3_changes(s->db) == 0)
		return 0;
	r = task_event(s, id, NULL, e);
	return r < 0 ? r : 1;
}

int store_task_mark_ready(struct store *s, int64_t id, const char *head, struct err *e)
{
	return task_settle(s, id, TASK_READY, head, NULL, e);
}

int store_task_mark_attach_failed(struct store *s, int64_t id, const char *reason, struct err *e)
{
	return task_settle(s, id, TASK_ATTACH_FAILED, NULL, reason, e);
}

/* The pending tasks a finished job settles, by branch (`by_branch`) or by job: their ids. */
static int pending_tasks(struct store *s, const struct job *j, bool by_branch, int64_t **ret,
			 size_t *n, struct err *e)
{
	static const char sql_branch[] =
	    "SELECT id FROM tasks WHERE repo_id = ?1 AND branch = ?2"
	    " AND state IN ('pending_branch_attach','ready') AND state = 'pending_branch_attach'";
	static const char sql_job[] = "SELECT id FROM tasks WHERE job_id = ?3"
				      " AND state = 'pending_branch_attach' ORDER BY id";
	int64_t *ids = NULL;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, by_branch ? sql_branch : sql_job, false, &st, e);
	if (r < 0)
		return r;
	if (by_branch) {
		sqlite3_bind_int64(st, 1, j->repo_id);
		sqlite3_bind_text(st, 2, j->branch, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(st, 3, j->id);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 4;
			int64_t *p = realloc(ids, ncap * sizeof(*p));

			if (p == NULL) {
				r = err_set(e, -ENOMEM, "nomem", "out of memory");
				break;
			}
			ids = p;
			cap = ncap;
		}
		ids[count++] = sqlite3_column_int64(st, 0);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	if (r < 0) {
		free(ids);
		return r;
	}
	*ret = ids;
	*n = count;
	return 0;
}

int store_task_job_finished(struct store *s, const struct job *j, enum job_status status,
			    const char *reason, struct err *e)
{
	_cleanup_free_ int64_t *ids = NULL;
	struct job_options o;
	struct branch b = {0};
	char why[600];
	size_t n = 0;
	int r, changed = 0;
	bool ready;

	if (j->kind != JOB_REGISTER_EXISTING_BRANCH || j->branch == NULL)
		return 0;
	job_options_default(&o);
	if (j->options != NULL && job_options_from_string(j->options, &o) < 0)
		return err_set(e, -EINVAL, "internal", "job %lld has invalid options",
			       (long long)j->id);
	if (status == JOB_COMPLETED && o.dry_run)
		return 0; /* a dry run attaches nothing */
	ready = status == JOB_COMPLETED;

	r = pending_tasks(s, j, ready, &ids, &n, e);
	if (r < 0 || n == 0)
		return r;
	if (ready) {
		r = store_branch_get(s, j->repo_id, j->branch, &b, e);
		if (r < 0 && r != -ENOENT)
			return r;
		/* The job tracked it; a row that is not there or not active cannot be attached to.
		 */
		if (r == -ENOENT || strcmp(b.state, "active") != 0 || b.head == NULL) {
			snprintf(why, sizeof(why),
				 "job %lld registered %s, but the branch is %s in the projection",
				 (long long)j->id, j->branch, r == -ENOENT ? "not" : b.state);
			ready = false;
			reason = why;
		}
		*e = (struct err){{0}, {0}};
	} else if (status == JOB_CANCELED || reason == NULL) {
		snprintf(why, sizeof(why), "the register_existing_branch job %lld was %s",
			 (long long)j->id, status == JOB_CANCELED ? "canceled" : "not completed");
		reason = why;
	}
	for (size_t i = 0; i < n; i++) {
		r = ready ? store_task_mark_ready(s, ids[i], b.head, e)
			  : store_task_mark_attach_failed(s, ids[i], reason, e);
		if (r < 0)
			break;
		changed += r;
	}
	branch_release(&b);
	return r < 0 ? r : changed;
}
