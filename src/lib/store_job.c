/*
 * store_job.c - the job queue: enqueue with deduplication and idempotency
 * keys, reads and listing, cancel, and the worker's side (claim, lease
 * renewal, progress, finish, retry, orphan recovery).
 *
 * Every change to a job row bumps its version (the ETag) and appends a
 * job.updated event carrying the job as GET returns it, in the same
 * transaction. Worker-side writes are guarded by the lease: they match
 * `status='running' AND lease_owner=? AND attempt=?`, so a worker that
 * lost its lease (it stalled and the job was recovered) can never finish
 * an attempt that is not its own.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"

#define JOB_COLUMNS                                                                                \
	"j.id, r.name, j.repo_id, j.kind, j.branch, j.parent, j.options, j.status, j.message,"     \
	" j.progress_step, j.progress_total, j.progress_detail, j.attempt, j.max_attempts,"        \
	" j.cancel_requested, j.result, j.error, j.version, j.created_at, j.updated_at,"           \
	" j.started_at, j.finished_at, j.run_at, j.lease_owner, j.lease_expires_at"
#define JOB_FROM " FROM jobs j JOIN repos r ON r.id = j.repo_id"

/* The only place the status words of the jobs table are parsed. */
static int job_from_row(sqlite3_stmt *st, struct job *j)
{
	int kind = job_kind_from_name((const char *)sqlite3_column_text(st, 3));
	int status = job_status_from_name((const char *)sqlite3_column_text(st, 7));

	memset(j, 0, sizeof(*j));
	if (kind < 0 || status < 0)
		return -EPROTO;
	j->id = sqlite3_column_int64(st, 0);
	j->repo = store_col_dup(st, 1);
	j->repo_id = sqlite3_column_int64(st, 2);
	j->kind = (enum job_kind)kind;
	j->branch = store_col_dup(st, 4);
	j->parent = store_col_dup(st, 5);
	j->options = store_col_dup(st, 6);
	j->status = (enum job_status)status;
	j->message = store_col_dup(st, 8);
	j->progress_step = sqlite3_column_int64(st, 9);
	j->progress_total = sqlite3_column_int64(st, 10);
	j->progress_detail = store_col_dup(st, 11);
	j->attempt = sqlite3_column_int(st, 12);
	j->max_attempts = sqlite3_column_int(st, 13);
	j->cancel_requested = sqlite3_column_int(st, 14) != 0;
	j->result = store_col_dup(st, 15);
	j->error = store_col_dup(st, 16);
	j->version = sqlite3_column_int64(st, 17);
	j->created_at = sqlite3_column_int64(st, 18);
	j->updated_at = sqlite3_column_int64(st, 19);
	j->started_at = sqlite3_column_int64(st, 20);
	j->finished_at = sqlite3_column_int64(st, 21);
	j->run_at = sqlite3_column_int64(st, 22);
	j->lease_owner = store_col_dup(st, 23);
	j->lease_expires_at = sqlite3_column_int64(st, 24);
	if (j->repo == NULL || j->options == NULL || j->message == NULL) {
		job_release(j);
		return -ENOMEM;
	}
	return 0;
}

void job_array_free(struct job *j, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_release(&j[i]);
	free(j);
}

int store_job_get(struct store *s, int64_t repo_id, int64_t id, struct job *ret, struct err *e)
{
	static const char sql[] = "SELECT " JOB_COLUMNS JOB_FROM
				  " WHERE j.id = ?1 AND (?2 = 0 OR j.repo_id = ?2)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, repo_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = err_set(e, -ENOENT, "not_found", "no job %lld", (long long)id);
	else if (rc != SQLITE_ROW)
		r = store_fail(s, rc, e);
	else
		r = job_from_row(st, ret);
	sqlite3_reset(st);
	return r;
}

/* The job.updated event of a job as it stands in `j`. In a transaction. */
static int job_event_of(struct store *s, const struct job *j, struct err *e)
{
	struct json_object *data = job_to_json(j), *id = json_object_new_int64(j->id);
	int r;

	if (data == NULL || id == NULL)
		r = err_set(e, -ENOMEM, "nomem", "out of memory");
	else
		r = store_event_append(s, j->repo_id, "job.updated", id, data, e);
	json_object_put(data);
	json_object_put(id);
	return r;
}

int store_job_event(struct store *s, int64_t job_id, struct err *e)
{
	struct job j;
	int r;

	r = store_job_get(s, 0, job_id, &j, e);
	if (r < 0)
		return r;
	r = job_event_of(s, &j, e);
	job_release(&j);
	return r;
}

/*
 * The request's identity: kind, branch, parent and canonical options. Two
 * requests with the same fingerprint on one repo ask for the same work.
 */
static int job_fingerprint(const struct job_request *rq, const char *options,
			   char out[static AUTH_HASH_HEX_LEN])
{
	struct buf b = BUF_INIT;
	int r;

	r = buf_printf(&b, "%s%c%s%c%s%c%s", job_kinds[rq->kind].name, 0,
		       rq->branch != NULL ? rq->branch : "", 0, rq->parent != NULL ? rq->parent : "",
		       0, options);
	if (r == 0)
		r = auth_sha256_hex(b.data, b.len, out);
	buf_release(&b);
	return r;
}

/* Look up an idempotency key: 1 with *job_id and *same when live, 0 when absent or expired. */
static int idem_lookup(struct store *s, const struct job_request *rq, const char *fp,
		       int64_t now, int64_t *job_id, bool *same, struct err *e)
{
	static const char sql_get[] = "SELECT fingerprint, job_id, created_at FROM idempotency"
				      " WHERE token_id = ?1 AND key = ?2";
	static const char sql_del[] = "DELETE FROM idempotency WHERE token_id = ?1 AND key = ?2";
	sqlite3_stmt *st;
	int rc, r, found = 0;
	bool expired = false;

	r = store_prepare(s, sql_get, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->token_id);
	sqlite3_bind_text(st, 2, rq->idem_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 2) < now - (int64_t)rq->idem_ttl_s * 1000) {
			expired = true;
		} else {
			found = 1;
			*same = strcmp((const char *)sqlite3_column_text(st, 0), fp) == 0;
			*job_id = sqlite3_column_int64(st, 1);
		}
	} else if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
	}
	sqlite3_reset(st);
	if (r < 0 || !expired)
		return r < 0 ? r : found;

	r = store_prepare(s, sql_del, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->token_id);
	sqlite3_bind_text(st, 2, rq->idem_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}

static int idem_remember(struct store *s, const struct job_request *rq, const char *fp,
			 int64_t job_id, int64_t now, struct err *e)
{
	static const char sql[] = "INSERT INTO idempotency (token_id, key, fingerprint, job_id,"
				  " created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->token_id);
	sqlite3_bind_text(st, 2, rq->idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, fp, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, job_id);
	sqlite3_bind_int64(st, 5, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}

/* The oldest queued job of the repo with this fingerprint: 1 with *id, or 0. */
static int dedupe_lookup(struct store *s, int64_t repo_id, const char *fp, int64_t *id,
			 struct err *e)
{
	static const char sql[] = "SELECT id FROM jobs WHERE repo_id = ?1 AND fingerprint = ?2"
				  " AND status IN ('queued','running') AND status = 'queued'"
				  " ORDER BY id LIMIT 1";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, fp, -1, SQLITE_STATIC);
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

static char *job_queued_message(const struct job_request *rq)
{
	struct buf b = BUF_INIT;

	if (buf_printf(&b, "Queued %s", job_kinds[rq->kind].name) < 0 ||
	    (rq->branch != NULL && buf_printf(&b, " %s", rq->branch) < 0) ||
	    (rq->parent != NULL && buf_printf(&b, " onto %s", rq->parent) < 0)) {
		buf_release(&b);
		return NULL;
	}
	return b.data;
}

/*
 * Insert the job row. The new job is also built in memory (*ret), exactly
 * as a read of the row would give it, so the accept path needs no second
 * query to write its event and answer.
 */
static int job_insert(struct store *s, const struct job_request *rq, const char *options,
		      const char *fp, int64_t now, struct job *ret, struct err *e)
{
	static const char sql[] =
		"INSERT INTO jobs (repo_id, kind, branch, parent, options, fingerprint, status,"
		" message, max_attempts, run_at, created_at, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?9, ?9)";
	_cleanup_free_ char *message = job_queued_message(rq);
	sqlite3_stmt *st;
	int rc, r;

	if (message == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, rq->repo_id);
	sqlite3_bind_text(st, 2, job_kinds[rq->kind].name, -1, SQLITE_STATIC);
	store_bind_text(st, 3, rq->branch);
	store_bind_text(st, 4, rq->parent);
	sqlite3_bind_text(st, 5, options, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, message, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, rq->max_attempts);
	sqlite3_bind_int64(st, 9, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	*ret = (struct job){
		.id = sqlite3_last_insert_rowid(s->db),
		.repo_id = rq->repo_id,
		.repo = strdup(rq->repo),
		.kind = rq->kind,
		.branch = rq->branch != NULL ? strdup(rq->branch) : NULL,
		.parent = rq->parent != NULL ? strdup(rq->parent) : NULL,
		.options = strdup(options),
		.status = JOB_QUEUED,
		.message = TAKE_PTR(message),
		.max_attempts = rq->max_attempts,
		.version = 1,
		.created_at = now,
		.updated_at = now,
		.run_at = now,
	};
	if (ret->repo == NULL || ret->options == NULL ||
	    (rq->branch != NULL && ret->branch == NULL) ||
	    (rq->parent != NULL && ret->parent == NULL)) {
		job_release(ret);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	return 0;
}

int store_job_enqueue(struct store *s, const struct job_request *rq, struct job *ret,
		      struct err *e)
{
	_cleanup_free_ char *options = job_options_to_string(rq->kind, &rq->options);
	char fp[AUTH_HASH_HEX_LEN], idem_fp[AUTH_HASH_HEX_LEN];
	int64_t now = now_ms(), id = 0;
	bool same = false;
	int r;

	if (options == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	r = job_fingerprint(rq, options, fp);
	if (r < 0)
		return err_set(e, r, "internal", "cannot hash the request");

	if (rq->idem_key != NULL) {
		/* The key's request also names the repo: the same key on another repo is another request. */
		char buf[AUTH_HASH_HEX_LEN + 32];
		int n = snprintf(buf, sizeof(buf), "%lld:%s", (long long)rq->repo_id, fp);

		r = auth_sha256_hex(buf, (size_t)n, idem_fp);
		if (r < 0)
			return err_set(e, r, "internal", "cannot hash the request");
		r = idem_lookup(s, rq, idem_fp, now, &id, &same, e);
		if (r < 0)
			return r;
		if (r == 1 && !same)
			return err_set(e, -EKEYREJECTED, "idempotency_key_reused",
				       "this Idempotency-Key was used with a different request");
		if (r == 1) {
			r = store_job_get(s, 0, id, ret, e);
			return r < 0 ? r : STORE_ENQUEUE_REPLAYED;
		}
	}

	r = dedupe_lookup(s, rq->repo_id, fp, &id, e);
	if (r < 0)
		return r;
	if (r == 1) {
		if (rq->idem_key != NULL) {
			r = idem_remember(s, rq, idem_fp, id, now, e);
			if (r < 0)
				return r;
		}
		r = store_job_get(s, 0, id, ret, e);
		if (r < 0)
			return r;
		ret->deduplicated = true;
		return STORE_ENQUEUE_DEDUPED;
	}

	if (rq->repo == NULL)
		return err_set(e, -EINVAL, "internal", "a job request must name its repo");
	r = job_insert(s, rq, options, fp, now, ret, e);
	if (r < 0)
		return r;
	if (rq->idem_key != NULL)
		r = idem_remember(s, rq, idem_fp, ret->id, now, e);
	if (r == 0)
		r = job_event_of(s, ret, e);
	if (r < 0) {
		job_release(ret);
		return r;
	}
	return STORE_ENQUEUE_CREATED;
}

int store_job_list(struct store *s, const struct job_filter *f, struct job **ret, size_t *n,
		   struct err *e)
{
	struct buf sql = BUF_INIT;
	struct job *jobs = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc, r = 0;
	bool first;

	/*
	 * The status and kind sets become literal IN lists so that each
	 * combination is one cached statement with its own plan.
	 */
	r |= buf_puts(&sql, "SELECT " JOB_COLUMNS JOB_FROM " WHERE 1");
	/* Only the bounds that apply, so the planner walks jobs_repo (repo_id, id). */
	if (f->repo_id != 0)
		r |= buf_puts(&sql, " AND j.repo_id = ?1");
	if (f->before != 0)
		r |= buf_puts(&sql, " AND j.id < ?2");
	if (f->status_mask != 0) {
		r |= buf_puts(&sql, " AND j.status IN (");
		first = true;
		for (int i = 0; i < JOB_STATUS_MAX; i++)
			if (f->status_mask & (1u << i)) {
				r |= buf_printf(&sql, "%s'%s'", first ? "" : ",", job_status_names[i]);
				first = false;
			}
		r |= buf_puts(&sql, ")");
		/* Only live statuses: say so literally, so the partial index jobs_active applies. */
		if ((f->status_mask & ~((1u << JOB_QUEUED) | (1u << JOB_RUNNING))) == 0)
			r |= buf_puts(&sql, " AND j.status IN ('queued','running')");
	}
	if (f->kind_mask != 0) {
		r |= buf_puts(&sql, " AND j.kind IN (");
		first = true;
		for (int i = 0; i < JOB_KIND_MAX; i++)
			if (f->kind_mask & (1u << i)) {
				r |= buf_printf(&sql, "%s'%s'", first ? "" : ",", job_kinds[i].name);
				first = false;
			}
		r |= buf_puts(&sql, ")");
	}
	r |= buf_puts(&sql, " ORDER BY j.id DESC LIMIT ?3");
	if (r != 0) {
		buf_release(&sql);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	r = store_prepare(s, sql.data, true, &st, e);
	buf_release(&sql);
	if (r < 0)
		return r;
	if (f->repo_id != 0)
		sqlite3_bind_int64(st, 1, f->repo_id);
	if (f->before != 0)
		sqlite3_bind_int64(st, 2, f->before);
	sqlite3_bind_int(st, 3, f->limit > 0 ? f->limit : 50);
	jobs = calloc(f->limit > 0 ? (size_t)f->limit : 50, sizeof(*jobs));
	if (jobs == NULL) {
		sqlite3_reset(st);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = job_from_row(st, &jobs[count]);
		if (r < 0)
			break;
		count++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	if (r < 0) {
		job_array_free(jobs, count);
		return r;
	}
	*ret = jobs;
	*n = count;
	return 0;
}

int store_job_cancel(struct store *s, int64_t repo_id, int64_t id, struct job *ret,
		     struct err *e)
{
	static const char sql_queued[] =
		"UPDATE jobs SET status = 'canceled', message = 'Canceled before it started',"
		" finished_at = ?2, updated_at = ?2, version = version + 1"
		" WHERE id = ?1 AND status = 'queued'";
	static const char sql_running[] =
		"UPDATE jobs SET cancel_requested = 1, message = 'Cancel requested; stopping at"
		" the next step', updated_at = ?2, version = version + 1"
		" WHERE id = ?1 AND status = 'running' AND cancel_requested = 0";
	struct job j;
	sqlite3_stmt *st;
	int rc, r, outcome;

	r = store_job_get(s, repo_id, id, &j, e);
	if (r < 0)
		return r;
	if (job_status_finished(j.status)) {
		r = err_set(e, -EALREADY, "conflict", "job %lld is already %s", (long long)id,
			    job_status_names[j.status]);
		job_release(&j);
		return r;
	}
	outcome = j.status == JOB_QUEUED ? STORE_CANCELED : STORE_CANCEL_REQUESTED;
	job_release(&j);

	r = store_prepare(s, outcome == STORE_CANCELED ? sql_queued : sql_running, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	/* A second cancel of a running job changes nothing and writes no event. */
	if (sqlite3_changes(s->db) > 0) {
		r = store_job_event(s, id, e);
		if (r < 0)
			return r;
	}
	r = store_job_get(s, repo_id, id, ret, e);
	/* A queued job canceled is final: the tasks it was attaching fail with it. */
	if (r == 0 && outcome == STORE_CANCELED) {
		r = store_task_job_finished(s, ret, JOB_CANCELED, NULL, e);
		if (r < 0)
			job_release(ret);
	}
	return r < 0 ? r : outcome;
}

int store_job_claim(struct store *s, const char *owner, int64_t lease_ms, struct job *ret,
		    struct err *e)
{
	/*
	 * The oldest queued job of each repo is its only candidate, so one
	 * repo's jobs run strictly in order even when an older one waits
	 * for its retry; repos with a running job are skipped. INDEXED BY
	 * pins the partial index of live jobs: without statistics the
	 * planner would rather walk every row in id order to skip the sort,
	 * which costs a scan of the whole history once it is large.
	 */
	static const char sql_pick[] =
		"SELECT j.id FROM jobs j INDEXED BY jobs_active"
		" WHERE j.status IN ('queued','running') AND j.status = 'queued' AND j.run_at <= ?1"
		" AND NOT EXISTS (SELECT 1 FROM jobs o INDEXED BY jobs_active"
		"   WHERE o.repo_id = j.repo_id"
		"   AND o.status IN ('queued','running')"
		"   AND (o.status = 'running' OR o.id < j.id))"
		" ORDER BY j.id LIMIT 1";
	static const char sql_take[] =
		"UPDATE jobs SET status = 'running', lease_owner = ?2, lease_expires_at = ?3,"
		" attempt = attempt + 1, started_at = ?4, updated_at = ?4, version = version + 1,"
		" message = 'Running', progress_step = 0, progress_total = 0, progress_detail = NULL"
		" WHERE id = ?1 AND status = 'queued'";
	sqlite3_stmt *st;
	int64_t now = now_ms(), id = 0;
	int rc, r;

	r = store_begin(s, e);
	if (r < 0)
		return r;
	r = store_prepare(s, sql_pick, false, &st, e);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		store_rollback(s);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		r = store_fail(s, rc, e);
		goto fail;
	}
	r = store_prepare(s, sql_take, false, &st, e);
	if (r < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now + lease_ms);
	sqlite3_bind_int64(st, 4, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
		goto fail;
	}
	r = store_job_event(s, id, e);
	if (r < 0)
		goto fail;
	r = store_job_get(s, 0, id, ret, e);
	if (r < 0)
		goto fail;
	r = store_commit(s, e);
	if (r < 0) {
		job_release(ret);
		goto fail;
	}
	return 1;
fail:
	store_rollback(s);
	return r;
}

int store_job_next_run_at(struct store *s, int64_t *ret, struct err *e)
{
	/* Only each repo's oldest queued job can run next; later ones wait behind it. */
	static const char sql[] =
		"SELECT min(j.run_at) FROM jobs j INDEXED BY jobs_active"
		" WHERE j.status IN ('queued','running') AND j.status = 'queued'"
		" AND NOT EXISTS (SELECT 1 FROM jobs o INDEXED BY jobs_active"
		"   WHERE o.repo_id = j.repo_id"
		"   AND o.status IN ('queued','running') AND o.status = 'queued' AND o.id < j.id)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0); /* NULL reads as 0: nothing queued */
	else
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

/* Bind the lease guard (?1 id, ?2 owner, ?3 attempt) of a worker-side update. */
static void bind_lease(sqlite3_stmt *st, const struct job *j)
{
	sqlite3_bind_int64(st, 1, j->id);
	sqlite3_bind_text(st, 2, j->lease_owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, j->attempt);
}

#define LEASE_GUARD " WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempt = ?3"

/* Step a lease-guarded update; -ESTALE when it matched no row. */
static int step_leased(struct store *s, sqlite3_stmt *st, const struct job *j, struct err *e)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ESTALE, "lease_lost",
			       "job %lld attempt %d is no longer owned by %s", (long long)j->id,
			       j->attempt, j->lease_owner);
	return 0;
}

int store_job_renew(struct store *s, const struct job *j, int64_t lease_ms, struct err *e)
{
	static const char sql[] = "UPDATE jobs SET lease_expires_at = ?4" LEASE_GUARD;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	bind_lease(st, j);
	sqlite3_bind_int64(st, 4, now_ms() + lease_ms);
	return step_leased(s, st, j, e);
}

int store_job_progress(struct store *s, struct job *j, int64_t step, int64_t total,
		       const char *detail, struct err *e)
{
	static const char sql[] =
		"UPDATE jobs SET progress_step = ?4, progress_total = ?5, progress_detail = ?6,"
		" updated_at = ?7, version = version + 1" LEASE_GUARD;
	sqlite3_stmt *st;
	int r;

	r = store_begin(s, e);
	if (r < 0)
		return r;
	r = store_prepare(s, sql, false, &st, e);
	if (r == 0) {
		bind_lease(st, j);
		sqlite3_bind_int64(st, 4, step);
		sqlite3_bind_int64(st, 5, total);
		store_bind_text(st, 6, detail);
		sqlite3_bind_int64(st, 7, now_ms());
		r = step_leased(s, st, j, e);
	}
	if (r == 0)
		r = store_job_event(s, j->id, e);
	if (r == 0)
		r = store_commit(s, e);
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	j->progress_step = step;
	j->progress_total = total;
	return 0;
}

int store_job_cancel_requested(struct store *s, const struct job *j, bool *ret, struct err *e)
{
	static const char sql[] = "SELECT cancel_requested FROM jobs WHERE id = ?1";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, j->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0) != 0;
	else
		r = rc == SQLITE_DONE ? err_set(e, -ENOENT, "not_found", "job is gone")
				      : store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

/* The detail of a stored problem object (JSON text) into out; false when it has none. */
static bool problem_detail(const char *error, char *out, size_t size)
{
	struct json_object *p = error != NULL ? json_tokener_parse(error) : NULL, *d;
	bool ok = false;

	if (p != NULL && json_object_object_get_ex(p, "detail", &d) &&
	    json_object_is_type(d, json_type_string)) {
		snprintf(out, size, "%s", json_object_get_string(d));
		ok = true;
	}
	json_object_put(p);
	return ok;
}

int store_job_finish(struct store *s, struct job *j, enum job_status status, const char *message,
		     const char *result, const char *error, struct err *e)
{
	char reason[512];

	static const char sql[] =
		"UPDATE jobs SET status = ?4, message = ?5, result = ?6, error = ?7,"
		" finished_at = ?8, updated_at = ?8, lease_owner = NULL, lease_expires_at = NULL,"
		" version = version + 1" LEASE_GUARD;
	sqlite3_stmt *st;
	int r;

	if (!job_status_finished(status))
		return err_set(e, -EINVAL, "internal", "finish needs a final status");
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	bind_lease(st, j);
	sqlite3_bind_text(st, 4, job_status_names[status], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, message, -1, SQLITE_STATIC);
	store_bind_text(st, 6, result);
	store_bind_text(st, 7, error);
	sqlite3_bind_int64(st, 8, now_ms());
	r = step_leased(s, st, j, e);
	if (r == 0)
		r = store_job_event(s, j->id, e);
	/* The tasks the job was attaching settle with it, in this transaction. */
	if (r == 0 && !problem_detail(error, reason, sizeof(reason)))
		snprintf(reason, sizeof(reason), "%s", message != NULL ? message : "");
	if (r == 0)
		r = store_task_job_finished(s, j, status, reason, e);
	return r < 0 ? r : 0;
}

int store_job_retry(struct store *s, struct job *j, int64_t run_at, const char *message,
		    const char *error, struct err *e)
{
	static const char sql[] =
		"UPDATE jobs SET status = 'queued', message = ?4, error = ?5, run_at = ?6,"
		" updated_at = ?7, lease_owner = NULL, lease_expires_at = NULL,"
		" version = version + 1" LEASE_GUARD;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	bind_lease(st, j);
	sqlite3_bind_text(st, 4, message, -1, SQLITE_STATIC);
	store_bind_text(st, 5, error);
	sqlite3_bind_int64(st, 6, run_at);
	sqlite3_bind_int64(st, 7, now_ms());
	r = step_leased(s, st, j, e);
	if (r == 0)
		r = store_job_event(s, j->id, e);
	return r;
}

int store_job_recover(struct store *s, const char *owner, struct err *e)
{
	static const char sql_list[] =
		"SELECT id FROM jobs WHERE status IN ('queued','running') AND status = 'running'"
		" AND (lease_owner IS NULL OR lease_owner <> ?1)";
	static const char sql_requeue[] =
		"UPDATE jobs SET status = 'queued', run_at = ?2, updated_at = ?2,"
		" lease_owner = NULL, lease_expires_at = NULL, version = version + 1,"
		" message = 'Requeued: the worker running it stopped'"
		" WHERE id = ?1 AND status = 'running'";
	int64_t ids[256];
	size_t n = 0;
	sqlite3_stmt *st;
	int rc, r, total = 0;

	/* Batches of 256 keep the id list on the stack; loop until none is left. */
	do {
		r = store_begin(s, e);
		if (r < 0)
			return r;
		r = store_prepare(s, sql_list, false, &st, e);
		if (r < 0)
			goto fail;
		sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
		n = 0;
		while (n < ARRAY_SIZE(ids) && (rc = sqlite3_step(st)) == SQLITE_ROW)
			ids[n++] = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		for (size_t i = 0; i < n; i++) {
			r = store_prepare(s, sql_requeue, false, &st, e);
			if (r < 0)
				goto fail;
			sqlite3_bind_int64(st, 1, ids[i]);
			sqlite3_bind_int64(st, 2, now_ms());
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			if (rc != SQLITE_DONE) {
				r = store_fail(s, rc, e);
				goto fail;
			}
			r = store_job_event(s, ids[i], e);
			if (r < 0)
				goto fail;
		}
		r = store_commit(s, e);
		if (r < 0)
			goto fail;
		total += (int)n;
	} while (n == ARRAY_SIZE(ids));
	return total;
fail:
	store_rollback(s);
	return r;
}

int store_queue_stats(struct store *s, struct queue_stats *ret, struct err *e)
{
	static const char sql[] =
		"SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued','running')"
		"          AND status = 'queued'),"
		"       (SELECT count(*) FROM jobs WHERE status IN ('queued','running')"
		"          AND status = 'running'),"
		"       (SELECT min(created_at) FROM jobs WHERE status IN ('queued','running')"
		"          AND status = 'queued'),"
		"       (SELECT last_seen_at FROM worker_state WHERE id = 1)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret->queued = sqlite3_column_int64(st, 0);
		ret->running = sqlite3_column_int64(st, 1);
		ret->oldest_queued_ms = sqlite3_column_int64(st, 2);
		ret->worker_seen_ms = sqlite3_column_int64(st, 3);
	} else {
		r = store_fail(s, rc, e);
	}
	sqlite3_reset(st);
	return r;
}

int store_worker_heartbeat(struct store *s, int64_t at, struct err *e)
{
	static const char sql[] = "INSERT INTO worker_state (id, last_seen_at) VALUES (1, ?1)"
				  " ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, at);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}
