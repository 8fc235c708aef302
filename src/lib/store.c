/*
 * store.c - the SQLite connection: opening with the pragmas that make a
 * commit durable, numbered migrations, transactions and savepoints, the
 * per-connection statement cache and the one place SQLite result codes
 * become errno values.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int store_fail(struct store *s, int rc, struct err *e)
{
	const char *msg = s != NULL && s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return err_set(e, -EBUSY, "busy", "database is busy: %s", msg);
	case SQLITE_CONSTRAINT:
		return err_set(e, -EEXIST, "constraint", "%s", msg);
	case SQLITE_NOMEM:
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	default:
		return err_set(e, -EIO, "database", "%s", msg);
	}
}

int store_prepare(struct store *s, const char *sql, bool copy, sqlite3_stmt **ret, struct err *e)
{
	struct store_stmt_slot *slot = NULL;
	sqlite3_stmt *st;
	uint64_t h;
	int rc;

	/* Almost every statement is a string literal: its address finds it without hashing. */
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].sql == sql) {
			st = s->cache[i].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			*ret = st;
			return 0;
		}
	h = fnv1a(sql);
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].hash == h && strcmp(s->cache[i].sql, sql) == 0) {
			st = s->cache[i].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			*ret = st;
			return 0;
		}
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, rc, e);
	if (s->ncache == STORE_STMT_CACHE) {
		/* Full: evict the oldest dynamic statement, else the last slot. */
		size_t victim = STORE_STMT_CACHE - 1;

		for (size_t i = 0; i < s->ncache; i++)
			if (s->cache[i].owned_sql != NULL) {
				victim = i;
				break;
			}
		sqlite3_finalize(s->cache[victim].stmt);
		free(s->cache[victim].owned_sql);
		memmove(&s->cache[victim], &s->cache[victim + 1],
			(s->ncache - victim - 1) * sizeof(s->cache[0]));
		s->ncache--;
	}
	slot = &s->cache[s->ncache];
	slot->hash = h;
	slot->owned_sql = copy ? strdup(sql) : NULL;
	if (copy && slot->owned_sql == NULL) {
		sqlite3_finalize(st);
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	}
	slot->sql = copy ? slot->owned_sql : sql;
	slot->stmt = st;
	s->ncache++;
	*ret = st;
	return 0;
}

int store_exec(struct store *s, const char *sql, struct err *e)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		int r = store_fail(s, rc, e);

		if (msg != NULL && e != NULL)
			snprintf(e->msg, sizeof(e->msg), "%s", msg);
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

int store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT)
			 : sqlite3_bind_null(st, i);
}

int store_collect(struct store *s, sqlite3_stmt *st, size_t size,
		  int (*from_row)(sqlite3_stmt *st, void *elem), void (*release)(void *elem),
		  void **ret, size_t *n, struct err *e)
{
	char *arr = NULL;
	size_t count = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			char *p = realloc(arr, ncap * size);

			if (p == NULL) {
				r = err_set(e, -ENOMEM, "nomem", "out of memory");
				break;
			}
			arr = p;
			cap = ncap;
		}
		memset(arr + count * size, 0, size);
		r = from_row(st, arr + count * size);
		if (r < 0) {
			if (r == -ENOMEM)
				err_set(e, r, "nomem", "out of memory");
			break;
		}
		count++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	if (r < 0) {
		for (size_t i = 0; i < count; i++)
			release(arr + i * size);
		free(arr);
		return r;
	}
	*ret = arr;
	*n = count;
	return 0;
}

char *store_col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? strdup((const char *)t) : NULL;
}

int store_open(const char *path, int busy_timeout_ms, unsigned flags, struct store **ret,
	       struct err *e)
{
	struct store *s = calloc(1, sizeof(*s));
	char pragmas[512];
	int rc, r;

	if (s == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	rc = sqlite3_open_v2(
	    path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = err_set(e, -EIO, "database", "cannot open %s: %s", path,
			    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		store_close(s);
		return r;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, busy_timeout_ms);
	/*
	 * WAL lets readers run beside the one writer; synchronous=FULL makes
	 * COMMIT return only after the WAL is fsynced, which is what a 202
	 * promises. A small cache keeps many API connections cheap.
	 */
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
		 "PRAGMA temp_store=MEMORY; PRAGMA cache_size=%d;",
		 (flags & STORE_SMALL_CACHE) ? -512 : -8192);
	r = store_exec(s, pragmas, e);
	if (r == 0 && (flags & STORE_NO_AUTOCHECKPOINT))
		r = store_exec(s, "PRAGMA wal_autocheckpoint=0", e);
	if (r == 0 && (flags & STORE_MIGRATE))
		r = store_migrate(s, e);
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ncache; i++) {
		sqlite3_finalize(s->cache[i].stmt);
		free(s->cache[i].owned_sql);
	}
	sqlite3_close(s->db);
	free(s);
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

int store_schema_version(struct store *s)
{
	sqlite3_stmt *st;
	int v = -1;

	if (store_prepare(s, "PRAGMA user_version", false, &st, NULL) < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return v;
}

/*
 * Each migration runs in its own IMMEDIATE transaction together with the
 * user_version bump, so a crash leaves the schema at a numbered version,
 * and two programs starting at once do not both apply one.
 */
int store_migrate(struct store *s, struct err *e)
{
	int applied = 0;

	/* The common case, an up-to-date schema, takes no write lock. */
	if (store_schema_version(s) == (int)store_migrations_count)
		return 0;

	for (;;) {
		int v, r;
		char bump[64];

		r = store_begin(s, e);
		if (r < 0)
			return r;
		v = store_schema_version(s);
		if (v < 0 || (size_t)v > store_migrations_count) {
			store_rollback(s);
			return err_set(
			    e, -EPROTO, "schema",
			    "database schema version %d is newer than this program (%zu)", v,
			    store_migrations_count);
		}
		if ((size_t)v == store_migrations_count) {
			store_rollback(s);
			return applied;
		}
		snprintf(bump, sizeof(bump), "PRAGMA user_version=%d", v + 1);
		r = store_exec(s, store_migrations[v], e);
		if (r == 0)
			r = store_exec(s, bump, e);
		if (r == 0)
			r = store_commit(s, e);
		if (r < 0) {
			store_rollback(s);
			return r;
		}
		applied++;
	}
}

static int store_step_done(struct store *s, const char *sql, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	return 0;
}

int store_checkpoint(struct store *s, struct err *e)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_fail(s, rc, e);
}

int store_begin(struct store *s, struct err *e)
{
	return store_step_done(s, "BEGIN IMMEDIATE", e);
}

/* The commit hook (store.h); set before threads start, read-only after. */
static void (*commit_hook)(void *arg);
static void *commit_hook_arg;

void store_set_commit_hook(void (*fn)(void *arg), void *arg)
{
	commit_hook = fn;
	commit_hook_arg = arg;
}

int store_commit(struct store *s, struct err *e)
{
	int r = store_step_done(s, "COMMIT", e);

	if (r == 0 && commit_hook != NULL)
		commit_hook(commit_hook_arg);
	return r;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)store_exec(s, "ROLLBACK", NULL);
}

int store_savepoint(struct store *s, struct err *e)
{
	return store_step_done(s, "SAVEPOINT rf_request", e);
}

int store_savepoint_release(struct store *s, struct err *e)
{
	return store_step_done(s, "RELEASE rf_request", e);
}

void store_savepoint_rollback(struct store *s)
{
	(void)store_exec(s, "ROLLBACK TO rf_request; RELEASE rf_request", NULL);
}

int store_count(struct store *s, const char *table, int64_t *ret, struct err *e)
{
	static const char *const tables[] = {"jobs",   "events", "repos",      "branches",
					     "tokens", "tasks",	 "idempotency"};
	char sql[80];
	sqlite3_stmt *st;
	int rc, r;

	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		if (strcmp(tables[i], table) != 0)
			continue;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		r = store_prepare(s, sql, true, &st, e);
		if (r < 0)
			return r;
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			return store_fail(s, rc, e);
		*ret = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	return err_set(e, -EINVAL, "invalid", "no table named '%s'", table);
}
