/*
 * store_internal.h - what the store_*.c files share and nobody else sees:
 * the connection struct with its statement cache, error mapping, and small
 * helpers for binding and reading columns.
 */
#ifndef REPOFLOW_STORE_INTERNAL_H
#define REPOFLOW_STORE_INTERNAL_H

#include "store.h"

#define STORE_STMT_CACHE 64

struct store_stmt_slot {
	uint64_t hash;
	const char
	    *sql; /* borrowed: every cached SQL text is a string literal or kept alive below */
	char *owned_sql; /* for dynamically built SQL */
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	struct store_stmt_slot cache[STORE_STMT_CACHE];
	size_t ncache;
};

/*
 * A ready statement for sql into *ret: prepared once per connection and
 * cached, reset and with bindings cleared on every call; borrowed (the
 * cache finalizes it). `sql` must stay valid for the life of the store
 * unless `copy` is true. 0 or a negative errno (e filled).
 */
int store_prepare(struct store *s, const char *sql, bool copy, sqlite3_stmt **ret, struct err *e);
/* Map an SQLite result code to a negative errno, filling e with SQLite's message. */
int store_fail(struct store *s, int rc, struct err *e);
/* Run one statement with no result rows (for DDL and simple writes). */
int store_exec(struct store *s, const char *sql, struct err *e);

/*
 * Step st to its end, turning each row into one element of `size` bytes
 * with from_row (which fills a zeroed element: 0 or a negative errno). *ret
 * is a new array of *n elements (NULL and 0 when there is no row). On
 * failure the elements made so far are released with `release` and freed.
 * Resets st. The one loop behind every list the store returns.
 */
int store_collect(struct store *s, sqlite3_stmt *st, size_t size,
		  int (*from_row)(sqlite3_stmt *st, void *elem), void (*release)(void *elem),
		  void **ret, size_t *n, struct err *e);

/* Bind a string, or NULL when s is NULL. */
int store_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A column as a new string, NULL when SQL NULL (or out of memory). */
char *store_col_dup(sqlite3_stmt *st, int i);

/* Write a job.updated event with the job as it is now. In a transaction. */
int store_job_event(struct store *s, int64_t job_id, struct err *e);
/* Write a repo.updated event with the repo overview. In a transaction. */
int store_repo_event(struct store *s, int64_t repo_id, struct err *e);

/* The migrations, in order; migration i brings user_version to i + 1. */
extern const char *const store_migrations[];
extern const size_t store_migrations_count;

#endif
