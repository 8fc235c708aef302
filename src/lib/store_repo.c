/*
 * store_repo.c - repo records and the repo overview. The overview is the
 * one JSON writer of a repo: GET /v1/repos/{repo} and every repo.updated
 * event print it. Its counts and the "queued" sync status are derived from
 * the jobs and branches tables when read, never stored twice.
 */
#include "store_internal.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

#define REPO_COLUMNS                                                                               \
	"id, name, remote_url, trunk, sync_status, last_error, last_synced_at, created_at,"        \
	" updated_at"

void repo_release(struct repo *r)
{
	free(r->name);
	free(r->remote_url);
	free(r->trunk);
	free(r->sync_status);
	free(r->last_error);
	memset(r, 0, sizeof(*r));
}

void repo_array_free(struct repo *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		repo_release(&r[i]);
	free(r);
}

static int repo_from_row(sqlite3_stmt *st, struct repo *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->name = store_col_dup(st, 1);
	r->remote_url = store_col_dup(st, 2);
	r->trunk = store_col_dup(st, 3);
	r->sync_status = store_col_dup(st, 4);
	r->last_error = store_col_dup(st, 5);
	r->last_synced_at = sqlite3_column_int64(st, 6);
	r->created_at = sqlite3_column_int64(st, 7);
	r->updated_at = sqlite3_column_int64(st, 8);
	if (r->name == NULL || r->remote_url == NULL || r->trunk == NULL ||
	    r->sync_status == NULL) {
		repo_release(r);
		return -ENOMEM;
	}
	return 0;
}

/* One row for a statement with its key bound; -ENOENT when none. */
static int repo_step_one(struct store *s, sqlite3_stmt *st, struct repo *ret, struct err *e)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW)
		r = repo_from_row(st, ret);
	else if (rc == SQLITE_DONE)
		r = err_set(e, -ENOENT, "not_found", "no such repo");
	else
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

int store_repo_get(struct store *s, const char *name, struct repo *ret, struct err *e)
{
	static const char sql[] = "SELECT " REPO_COLUMNS " FROM repos WHERE name = ?1";
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = repo_step_one(s, st, ret, e);
	if (r == -ENOENT)
		err_set(e, r, "not_found", "no repo named '%s'", name);
	return r;
}

int store_repo_get_by_id(struct store *s, int64_t id, struct repo *ret, struct err *e)
{
	static const char sql[] = "SELECT " REPO_COLUMNS " FROM repos WHERE id = ?1";
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return repo_step_one(s, st, ret, e);
}

static int repo_elem_from_row(sqlite3_stmt *st, void *elem)
{
	return repo_from_row(st, elem);
}

static void repo_elem_release(void *elem)
{
	repo_release(elem);
}

int store_repo_list(struct store *s, struct repo **ret, size_t *n, struct err *e)
{
	static const char sql[] = "SELECT " REPO_COLUMNS " FROM repos ORDER BY name";
	void *repos = NULL;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	r = store_collect(s, st, sizeof(struct repo), repo_elem_from_row, repo_elem_release, &repos,
			  n, e);
	if (r == 0)
		*ret = repos;
	return r;
}

int store_repo_event(struct store *s, int64_t repo_id, struct err *e)
{
	struct repo repo;
	struct json_object *data = NULL, *id;
	int r;

	r = store_repo_get_by_id(s, repo_id, &repo, e);
	if (r < 0)
		return r;
	r = store_repo_overview(s, &repo, &data, e);
	if (r == 0) {
		id = json_object_new_string(repo.name);
		r = id != NULL ? store_event_append(s, repo_id, "repo.updated", id, data, e)
			       : err_set(e, -ENOMEM, "nomem", "out of memory");
		json_object_put(id);
	}
	json_object_put(data);
	repo_release(&repo);
	return r;
}

int store_repo_create(struct store *s, const char *name, const char *remote_url, const char *trunk,
		      struct repo *ret, struct err *e)
{
	static const char sql[] = "INSERT INTO repos (name, remote_url, trunk, created_at,"
				  " updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, remote_url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, trunk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
		return r == -EEXIST ? err_set(e, r, "conflict", "a repo named '%s' exists", name)
				    : r;
	}
	r = store_repo_event(s, sqlite3_last_insert_rowid(s->db), e);
	if (r < 0)
		return r;
	return ret != NULL ? store_repo_get(s, name, ret, e) : 0;
}

int store_repo_delete(struct store *s, const char *name, struct err *e)
{
	static const char sql_busy[] =
	    "SELECT count(*) FROM jobs j JOIN repos r ON r.id = j.repo_id WHERE r.name = ?1"
	    " AND j.status IN ('queued','running') AND j.status = 'running'";
	static const char sql_del[] = "DELETE FROM repos WHERE name = ?1";
	sqlite3_stmt *st;
	int64_t running = 0;
	int rc, r;

	r = store_prepare(s, sql_busy, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		running = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, e);
	if (running > 0)
		return err_set(e, -EINPROGRESS, "conflict",
			       "repo '%s' has a running job; cancel it or wait", name);
	r = store_prepare(s, sql_del, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "not_found", "no repo named '%s'", name);
	return 0;
}

int store_repo_set_sync(struct store *s, int64_t repo_id, const char *status,
			const char *last_error, int64_t synced_at, struct err *e)
{
	static const char sql[] =
	    "UPDATE repos SET sync_status = ?2, last_error = ?3,"
	    " last_synced_at = CASE WHEN ?4 > 0 THEN ?4 ELSE last_synced_at END,"
	    " updated_at = ?5 WHERE id = ?1";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	store_bind_text(st, 3, last_error);
	sqlite3_bind_int64(st, 4, synced_at);
	sqlite3_bind_int64(st, 5, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "not_found", "no repo %lld", (long long)repo_id);
	return store_repo_event(s, repo_id, e);
}

int store_repo_overview(struct store *s, const struct repo *repo, struct json_object **ret,
			struct err *e)
{
	static const char sql_counts[] =
	    "SELECT count(*), coalesce(sum(needs_restack), 0),"
	    " (SELECT count(*) FROM jobs WHERE repo_id = ?1 AND kind = 'sync_repo'"
	    "    AND status IN ('queued','running') AND status = 'queued')"
	    " FROM branches WHERE repo_id = ?1";
	/*
	 * The live jobs, oldest first, at most 100 of them: a
	 * backlog of thousands belongs in GET …/jobs?status=, not in every
	 * overview and repo.updated event.
	 */
	static const char sql_active[] = "SELECT id FROM jobs INDEXED BY jobs_active"
					 " WHERE repo_id = ?1 AND status IN ('queued','running')"
					 " ORDER BY id LIMIT 100";
	struct json_object *o = NULL, *sync = NULL, *active = NULL;
	const char *status = repo->sync_status;
	int64_t nbranches = 0, nrestack = 0, sync_queued = 0;
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql_counts, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		nbranches = sqlite3_column_int64(st, 0);
		nrestack = sqlite3_column_int64(st, 1);
		sync_queued = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_fail(s, rc, e);
	/* A sync waiting in the queue shows as "queued" unless one is already running. */
	if (sync_queued > 0 && strcmp(status, "running") != 0)
		status = "queued";

	active = json_object_new_array();
	if (active == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	r = store_prepare(s, sql_active, false, &st, e);
	if (r < 0) {
		json_object_put(active);
		return r;
	}
	sqlite3_bind_int64(st, 1, repo->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_object_array_add(active,
					  json_object_new_int64(sqlite3_column_int64(st, 0))) < 0)
			r = -ENOMEM;
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || r < 0) {
		json_object_put(active);
		return r < 0 ? err_set(e, r, "nomem", "out of memory") : store_fail(s, rc, e);
	}

	o = json_object_new_object();
	sync = json_object_new_object();
	if (o == NULL || sync == NULL) {
		json_object_put(o);
		json_object_put(sync);
		json_object_put(active);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	r |= json_add(sync, "status", json_object_new_string(status));
	r |= json_add(sync, "last_synced_at", json_time_or_null(repo->last_synced_at));
	r |= json_add(sync, "last_error",
		      repo->last_error != NULL ? json_object_new_string(repo->last_error) : NULL);
	r |= json_add(o, "name", json_object_new_string(repo->name));
	r |= json_add(o, "remote_url", json_object_new_string(repo->remote_url));
	r |= json_add(o, "trunk", json_object_new_string(repo->trunk));
	r |= json_add(o, "sync", sync);
	r |= json_add(o, "branches", json_object_new_int64(nbranches));
	r |= json_add(o, "needs_restack", json_object_new_int64(nrestack));
	r |= json_add(o, "active_jobs", active);
	r |= json_add(o, "created_at", json_time_or_null(repo->created_at));
	r |= json_add(o, "updated_at", json_time_or_null(repo->updated_at));
	if (r != 0) {
		json_object_put(o);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	*ret = o;
	return 0;
}
