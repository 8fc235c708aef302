/*
 * store_token.c - API tokens. Only the SHA-256 of a secret is stored, so a
 * copy of the database does not hand out access; a lookup hashes the
 * presented secret and finds the live row by its unique hash.
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"

#define TOKEN_COLUMNS                                                                              \
	"t.id, t.name, t.admin, t.repo_id, r.name, t.created_at, t.revoked_at"                     \
	" FROM tokens t LEFT JOIN repos r ON r.id = t.repo_id"

void token_release(struct token *t)
{
	free(t->name);
	free(t->repo);
	memset(t, 0, sizeof(*t));
}

void token_array_free(struct token *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		token_release(&t[i]);
	free(t);
}

static int token_from_row(sqlite3_stmt *st, struct token *t)
{
	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(st, 0);
	t->name = store_col_dup(st, 1);
	t->admin = sqlite3_column_int(st, 2) != 0;
	t->repo_id = sqlite3_column_int64(st, 3);
	t->repo = store_col_dup(st, 4);
	t->created_at = sqlite3_column_int64(st, 5);
	t->revoked_at = sqlite3_column_int64(st, 6);
	if (t->name == NULL || (!t->admin && t->repo == NULL)) {
		token_release(t);
		return -ENOMEM;
	}
	return 0;
}

int store_token_create(struct store *s, const char *name, bool admin, const char *repo,
		       char **ret_secret, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO tokens (name, hash, admin, repo_id, created_at)"
	    " VALUES (?1, ?2, ?3, (SELECT id FROM repos WHERE name = ?4), ?5)";
	char secret[AUTH_SECRET_LEN], hash[AUTH_HASH_HEX_LEN];
	struct repo rp;
	sqlite3_stmt *st;
	int rc, r;

	if (!admin) {
		r = store_repo_get(s, repo, &rp, e);
		if (r < 0)
			return r;
		repo_release(&rp);
	}
	r = auth_secret_new(secret);
	if (r == 0)
		r = auth_sha256_hex(secret, strlen(secret), hash);
	if (r < 0)
		return err_set(e, r, "internal", "cannot make a token secret");
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, admin);
	store_bind_text(st, 4, admin ? NULL : repo);
	sqlite3_bind_int64(st, 5, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		r = store_fail(s, rc, e);
		return r == -EEXIST
			   ? err_set(e, r, "conflict", "a live token named '%s' exists", name)
			   : r;
	}
	*ret_secret = strdup(secret);
	if (*ret_secret == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	return 0;
}

int store_token_lookup(struct store *s, const char *secret, struct token *ret, struct err *e)
{
	static const char sql[] =
	    "SELECT " TOKEN_COLUMNS " WHERE t.hash = ?1 AND t.revoked_at IS NULL";
	char hash[AUTH_HASH_HEX_LEN];
	sqlite3_stmt *st;
	int rc, r;

	r = auth_sha256_hex(secret, strlen(secret), hash);
	if (r < 0)
		return err_set(e, r, "internal", "cannot hash the token");
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = token_from_row(st, ret);
	else if (rc == SQLITE_DONE)
		r = err_set(e, -ENOENT, "unauthorized", "unknown or revoked token");
	else
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

static int token_elem_from_row(sqlite3_stmt *st, void *elem)
{
	return token_from_row(st, elem);
}

static void token_elem_release(void *elem)
{
	token_release(elem);
}

int store_token_list(struct store *s, struct token **ret, size_t *n, struct err *e)
{
	static const char sql[] = "SELECT " TOKEN_COLUMNS " ORDER BY t.id";
	void *tokens = NULL;
	sqlite3_stmt *st;
	int r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	r = store_collect(s, st, sizeof(struct token), token_elem_from_row, token_elem_release,
			  &tokens, n, e);
	if (r == 0)
		*ret = tokens;
	return r;
}

int store_token_revoke(struct store *s, const char *name, struct err *e)
{
	static const char sql[] = "UPDATE tokens SET revoked_at = ?2"
				  " WHERE name = ?1 AND revoked_at IS NULL";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, rc, e);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "not_found", "no live token named '%s'", name);
	return 0;
}
