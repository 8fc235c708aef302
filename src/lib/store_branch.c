/*
 * store_branch.c - the branch projection: one row per branch of the
 * remote, derived from git by the worker and read by the API. Stack
 * metadata (tracked, parent, base) lives only here.
 *
 * The stack functions (store_branch_track, _update, _mark_merged) are the
 * worker's record of what a job did; each compares the row before and
 * after and writes branch.updated only when a client-visible field
 * changed, and each refuses a parent that would make the stack a cycle
 * (one recursive query walks up from the new parent).
 *
 * A refresh that finds a row unchanged but for synced_at writes no event:
 * events report changes a client acts on, and a sync of an idle repo
 * would otherwise flood the feed with one event per branch.
 *
 * task_id is not stored here: it is read from the tasks table (the
 * branch's live task, through the partial index tasks_live) with every
 * row. A task change writes task.updated, which names the branch; it is
 * not also a branch change.
 */
#include "store_internal.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

/* The live task of branch row `t` (a table name or alias), as a column. */
#define BRANCH_TASK_ID(t)                                                                          \
	"(SELECT k.id FROM tasks k WHERE k.repo_id = " t ".repo_id AND k.branch = " t ".name"      \
	" AND k.state IN ('pending_branch_attach','ready'))"
#define BRANCH_COLUMNS                                                                             \
	"name, tracked, parent, base, head, remote_head, state, needs_restack, "                   \
	"synced_at, " BRANCH_TASK_ID("branches")

void branch_release(struct branch *b)
{
	free(b->name);
	free(b->parent);
	free(b->base);
	free(b->head);
	free(b->remote_head);
	free(b->state);
	memset(b, 0, sizeof(*b));
}

void branch_array_free(struct branch *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		branch_release(&b[i]);
	free(b);
}

static int branch_from_row(sqlite3_stmt *st, int col, struct branch *b)
{
	memset(b, 0, sizeof(*b));
	b->name = store_col_dup(st, col + 0);
	b->tracked = sqlite3_column_int(st, col + 1) != 0;
	b->parent = store_col_dup(st, col + 2);
	b->base = store_col_dup(st, col + 3);
	b->head = store_col_dup(st, col + 4);
	b->remote_head = store_col_dup(st, col + 5);
	b->state = store_col_dup(st, col + 6);
	b->needs_restack = sqlite3_column_int(st, col + 7) != 0;
	b->synced_at = sqlite3_column_int64(st, col + 8);
	b->task_id = sqlite3_column_int64(st, col + 9); /* NULL reads as 0: no task */
	if (b->name == NULL || b->state == NULL) {
		branch_release(b);
		return -ENOMEM;
	}
	return 0;
}

/* branch_from_row and branch_release for store_collect. */
static int branch_elem_from_row(sqlite3_stmt *st, void *elem)
{
	return branch_from_row(st, 0, elem);
}

static void branch_elem_release(void *elem)
{
	branch_release(elem);
}

struct json_object *branch_to_json(const struct branch *b)
{
	struct json_object *o = json_object_new_object();
	char at[RFC3339_LEN];
	int r = 0;

	if (o == NULL)
		return NULL;
	r |= json_add(o, "name", json_object_new_string(b->name));
	r |= json_add(o, "tracked", json_object_new_boolean(b->tracked));
	r |= json_add(o, "parent", json_string_or_null(b->parent));
	r |= json_add(o, "base", json_string_or_null(b->base));
	r |= json_add(o, "head", json_string_or_null(b->head));
	r |= json_add(o, "remote_head", json_string_or_null(b->remote_head));
	r |= json_add(o, "state", json_object_new_string(b->state));
	r |= json_add(o, "needs_restack", json_object_new_boolean(b->needs_restack));
	r |= json_add(o, "task_id", b->task_id > 0 ? json_object_new_int64(b->task_id) : NULL);
	r |= json_add(o, "synced_at",
		      b->synced_at > 0 ? json_object_new_string(ms_to_rfc3339(b->synced_at, at))
				       : NULL);
	if (r != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Write branch.updated (or branch.removed with `gone`) for one row. In a transaction. */
static int branch_event(struct store *s, int64_t repo_id, const char *name, const struct branch *b,
			struct err *e)
{
	struct json_object *id = json_object_new_string(name), *data;
	int r;

	data = b != NULL ? branch_to_json(b) : json_object_new_object();
	if (b == NULL && data != NULL)
		json_object_object_add(data, "name", json_object_new_string(name));
	if (id == NULL || data == NULL)
		r = err_set(e, -ENOMEM, "nomem", "out of memory");
	else
		r = store_event_append(s, repo_id, b != NULL ? "branch.updated" : "branch.removed",
				       id, data, e);
	json_object_put(id);
	json_object_put(data);
	return r;
}

static int branch_get(struct store *s, int64_t repo_id, const char *name, struct branch *ret,
		      struct err *e)
{
	static const char sql[] =
	    "SELECT " BRANCH_COLUMNS " FROM branches WHERE repo_id = ?1 AND name = ?2";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = branch_from_row(st, 0, ret);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

/* Upsert one listed branch; 1 when a client-visible field changed, else 0. */
static int refresh_one(struct store *s, int64_t repo_id, const struct branch_ref *ref,
		       int64_t synced_at, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO branches (repo_id, name, head, remote_head, state, synced_at)"
	    " VALUES (?1, ?2, ?3, ?4, 'active', ?5)"
	    " ON CONFLICT (repo_id, name) DO UPDATE SET head = excluded.head,"
	    " remote_head = excluded.remote_head, synced_at = excluded.synced_at,"
	    " state = CASE WHEN state = 'missing' THEN 'active' ELSE state END";
	struct branch before, after;
	bool existed, changed;
	sqlite3_stmt *st;
	int rc, r;

	r = branch_get(s, repo_id, ref->name, &before, e);
	if (r < 0 && r != -ENOENT)
		return r;
	existed = r == 0;
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, ref->name, -1, SQLITE_STATIC);
	store_bind_text(st, 3, ref->head);
	store_bind_text(st, 4, ref->remote_head);
	sqlite3_bind_int64(st, 5, synced_at);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
		goto out;
	}
	r = branch_get(s, repo_id, ref->name, &after, e);
	if (r < 0)
		goto out;
	changed =
	    !existed || strcmp(before.state, after.state) != 0 ||
	    (before.head == NULL) != (after.head == NULL) ||
	    (before.head != NULL && strcmp(before.head, after.head) != 0) ||
	    (before.remote_head == NULL) != (after.remote_head == NULL) ||
	    (before.remote_head != NULL && strcmp(before.remote_head, after.remote_head) != 0);
	r = changed ? branch_event(s, repo_id, ref->name, &after, e) : 0;
	branch_release(&after);
	if (r == 0)
		r = changed ? 1 : 0;
out:
	if (existed)
		branch_release(&before);
	return r;
}

/* Rows not seen by this refresh: tracked ones become missing, untracked ones go. */
static int sweep_unlisted(struct store *s, int64_t repo_id, int64_t synced_at, struct err *e)
{
	static const char sql_list[] =
	    "SELECT name, tracked, state FROM branches WHERE repo_id = ?1"
	    " AND (synced_at IS NULL OR synced_at <> ?2)";
	static const char sql_missing[] = "UPDATE branches SET state = 'missing'"
					  " WHERE repo_id = ?1 AND name = ?2";
	static const char sql_delete[] = "DELETE FROM branches WHERE repo_id = ?1 AND name = ?2";
	struct {
		char *name;
		bool tracked, missing;
	} *gone = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r, changed = 0;

	r = store_prepare(s, sql_list, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_int64(st, 2, synced_at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			void *p = realloc(gone, ncap * sizeof(*gone));

			if (p == NULL) {
				r = -ENOMEM;
				break;
			}
			gone = p;
			cap = ncap;
		}
		gone[n].name = store_col_dup(st, 0);
		gone[n].tracked = sqlite3_column_int(st, 1) != 0;
		gone[n].missing = strcmp((const char *)sqlite3_column_text(st, 2), "missing") == 0;
		if (gone[n].name == NULL) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	sqlite3_reset(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct branch b;

		if (gone[i].tracked && gone[i].missing)
			continue;
		r = store_prepare(s, gone[i].tracked ? sql_missing : sql_delete, false, &st, e);
		if (r < 0)
			break;
		sqlite3_bind_int64(st, 1, repo_id);
		sqlite3_bind_text(st, 2, gone[i].name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			r = store_fail(s, rc, e);
			break;
		}
		if (gone[i].tracked) {
			r = branch_get(s, repo_id, gone[i].name, &b, e);
			if (r < 0)
				break;
			r = branch_event(s, repo_id, gone[i].name, &b, e);
			branch_release(&b);
		} else {
			r = branch_event(s, repo_id, gone[i].name, NULL, e);
		}
		changed++;
	}
	for (size_t i = 0; i < n; i++)
		free(gone[i].name);
	free(gone);
	if (r == -ENOMEM)
		return err_set(e, r, "nomem", "out of memory");
	return r < 0 ? r : changed;
}

int store_branches_refresh(struct store *s, int64_t repo_id, const struct branch_ref *refs,
			   size_t n, int64_t synced_at, struct err *e)
{
	int r, changed = 0;

	for (size_t i = 0; i < n; i++) {
		r = refresh_one(s, repo_id, &refs[i], synced_at, e);
		if (r < 0)
			return r;
		changed += r;
	}
	r = sweep_unlisted(s, repo_id, synced_at, e);
	return r < 0 ? r : changed + r;
}

int store_branch_list(struct store *s, int64_t repo_id, const char *trunk, struct branch **ret,
		      size_t *n, struct err *e)
{
	/* Depth: roots (untracked or parentless) are 0; a child is its parent's depth + 1. */
	static const char sql[] =
	    "WITH RECURSIVE d(name, depth) AS ("
	    "  SELECT name, 0 FROM branches WHERE repo_id = ?1 AND (tracked = 0 OR parent IS NULL"
	    "    OR parent NOT IN (SELECT name FROM branches WHERE repo_id = ?1 AND tracked = 1))"
	    "  UNION ALL SELECT b.name, d.depth + 1 FROM branches b JOIN d ON b.parent = d.name"
	    "  WHERE b.repo_id = ?1 AND b.tracked = 1 AND d.depth < 1000)"
	    " SELECT b.name, b.tracked, b.parent, b.base, b.head, b.remote_head, b.state,"
	    " b.needs_restack, b.synced_at, " BRANCH_TASK_ID(
		"b") " FROM branches b"
		     " JOIN (SELECT name, max(depth) AS depth FROM d GROUP BY name) d ON d.name = "
		     "b.name"
		     " WHERE b.repo_id = ?1 ORDER BY b.name = ?2 DESC, d.depth, b.name";
	void *list = NULL;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, trunk, -1, SQLITE_STATIC);
	r = store_collect(s, st, sizeof(struct branch), branch_elem_from_row, branch_elem_release,
			  &list, n, e);
	if (r == 0)
		*ret = list;
	return r;
}

/* --- stack metadata ------------------------------------------------------ */

int store_branch_get(struct store *s, int64_t repo_id, const char *name, struct branch *ret,
		     struct err *e)
{
	int r = branch_get(s, repo_id, name, ret, e);

	if (r == -ENOENT)
		return err_set(e, r, "not_found", "no branch %s", name);
	if (r == -ENOMEM)
		return err_set(e, r, "nomem", "out of memory");
	return r;
}

int store_branch_list_tracked(struct store *s, int64_t repo_id, struct branch **ret, size_t *n,
			      struct err *e)
{
	static const char sql[] = "SELECT " BRANCH_COLUMNS " FROM branches"
				  " WHERE repo_id = ?1 AND tracked = 1 ORDER BY name";
	void *list = NULL;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	r = store_collect(s, st, sizeof(struct branch), branch_elem_from_row, branch_elem_release,
			  &list, n, e);
	if (r == 0)
		*ret = list;
	return r;
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* Whether a field a client sees differs (synced_at alone is not a change). */
static bool branch_differs(const struct branch *a, const struct branch *b)
{
	return a->tracked != b->tracked || a->needs_restack != b->needs_restack ||
	       str_differs(a->parent, b->parent) || str_differs(a->base, b->base) ||
	       str_differs(a->head, b->head) || str_differs(a->remote_head, b->remote_head) ||
	       str_differs(a->state, b->state);
}

/*
 * Refuse `parent` for `name` when it is `name` itself or stacked above it:
 * walking up from `parent` through tracked rows must not reach `name`.
 * UNION (not UNION ALL) makes the walk end even on a cycle already stored.
 */
static int check_cycle(struct store *s, int64_t repo_id, const char *name, const char *parent,
		       struct err *e)
{
	static const char sql[] =
	    "WITH RECURSIVE up(name) AS (SELECT ?2"
	    "  UNION SELECT b.parent FROM branches b JOIN up ON b.name = up.name"
	    "  WHERE b.repo_id = ?1 AND b.tracked = 1 AND b.parent IS NOT NULL)"
	    " SELECT 1 FROM up WHERE name = ?3 LIMIT 1";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, parent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return err_set(e, -ELOOP, "cycle",
			       strcmp(name, parent) == 0
				   ? "%s cannot be its own parent"
				   : "%s cannot be stacked on %s: %s is stacked above it",
			       name, parent, parent);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}

/*
 * Run a prepared change of one row, then write branch.updated when the row
 * differs from `before` (NULL when it did not exist). Takes `before`.
 */
static int change_step(struct store *s, int64_t repo_id, const char *name, sqlite3_stmt *st,
		       struct branch *before, struct err *e)
{
	struct branch after;
	int rc, r;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
		goto out;
	}
	r = branch_get(s, repo_id, name, &after, e);
	if (r < 0) {
		if (r == -ENOMEM)
			err_set(e, r, "nomem", "out of memory");
		goto out;
	}
	if (before == NULL || branch_differs(before, &after))
		r = branch_event(s, repo_id, name, &after, e);
	branch_release(&after);
out:
	if (before != NULL)
		branch_release(before);
	return r;
}

/* The row before a change into *ret; -ENOENT (with e filled) when absent. */
static int change_before(struct store *s, int64_t repo_id, const char *name, struct branch *ret,
			 struct err *e)
{
	return store_branch_get(s, repo_id, name, ret, e);
}

int store_branch_track(struct store *s, int64_t repo_id, const char *name, const char *parent,
		       const char *base, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO branches (repo_id, name, tracked, parent, base, state)"
	    " VALUES (?1, ?2, 1, ?3, ?4, 'active')"
	    " ON CONFLICT (repo_id, name) DO UPDATE SET tracked = 1, parent = excluded.parent,"
	    " base = excluded.base, state = 'active'";
	struct branch before;
	bool existed;
	sqlite3_stmt *st;
	int r;

	r = check_cycle(s, repo_id, name, parent, e);
	if (r < 0)
		return r;
	r = change_before(s, repo_id, name, &before, e);
	if (r < 0 && r != -ENOENT)
		return r;
	existed = r == 0;
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0) {
		if (existed)
			branch_release(&before);
		return r;
	}
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, parent, -1, SQLITE_STATIC);
	store_bind_text(st, 4, base);
	return change_step(s, repo_id, name, st, existed ? &before : NULL, e);
}

int store_branch_update(struct store *s, int64_t repo_id, const char *name,
			const struct branch_change *c, struct err *e)
{
	static const char sql[] =
	    "UPDATE branches SET parent = coalesce(?3, parent), base = coalesce(?4, base),"
	    " head = coalesce(?5, head), remote_head = coalesce(?6, remote_head),"
	    " needs_restack = CASE WHEN ?7 >= 0 THEN ?7 ELSE needs_restack END,"
	    " synced_at = CASE WHEN ?8 > 0 THEN ?8 ELSE synced_at END"
	    " WHERE repo_id = ?1 AND name = ?2";
	struct branch before;
	sqlite3_stmt *st;
	int r;

	if (c->parent != NULL) {
		r = check_cycle(s, repo_id, name, c->parent, e);
		if (r < 0)
			return r;
	}
	r = change_before(s, repo_id, name, &before, e);
	if (r < 0)
		return r;
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0) {
		branch_release(&before);
		return r;
	}
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	store_bind_text(st, 3, c->parent);
	store_bind_text(st, 4, c->base);
	store_bind_text(st, 5, c->head);
	store_bind_text(st, 6, c->remote_head);
	sqlite3_bind_int(st, 7, c->needs_restack < 0 ? -1 : c->needs_restack != 0);
	sqlite3_bind_int64(st, 8, c->synced_at);
	return change_step(s, repo_id, name, st, &before, e);
}

int store_branch_set_needs_restack(struct store *s, int64_t repo_id, const char *name, bool on,
				   struct err *e)
{
	struct branch_change c = BRANCH_CHANGE_INIT;

	c.needs_restack = on ? 1 : 0;

	return store_branch_update(s, repo_id, name, &c, e);
}

int store_branch_mark_merged(struct store *s, int64_t repo_id, const char *name, struct err *e)
{
	static const char sql[] = "UPDATE branches SET state = 'merged', tracked = 0,"
				  " parent = NULL, base = NULL, needs_restack = 0"
				  " WHERE repo_id = ?1 AND name = ?2";
	struct branch before;
	sqlite3_stmt *st;
	int r;

	r = change_before(s, repo_id, name, &before, e);
	if (r < 0)
		return r;
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0) {
		branch_release(&before);
		return r;
	}
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return change_step(s, repo_id, name, st, &before, e);
}
