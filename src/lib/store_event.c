/*
 * store_event.c - the append-only change feed. An event is written in the
 * same transaction as the change it reports, so a client that reads
 * `events?after=<seq>` sees every change exactly once and in commit order
 * (seq is AUTOINCREMENT: never reused, even after a delete).
 */
#include "store_internal.h"

#include <stdio.h>
#include <string.h>

int store_event_append(struct store *s, int64_t repo_id, const char *type,
		       struct json_object *id, struct json_object *data, struct err *e)
{
	static const char sql[] = "INSERT INTO events (repo_id, at, type, object_id, data)"
				  " VALUES (?1, ?2, ?3, ?4, ?5)";
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_int64(st, 2, now_ms());
	sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	/* The strings are owned by the json objects, which outlive the step. */
	sqlite3_bind_text(st, 4, json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *event_from_row(sqlite3_stmt *st)
{
	struct json_object *ev = json_object_new_object();
	char at[RFC3339_LEN];
	int r = 0;

	if (ev == NULL)
		return NULL;
	r |= add(ev, "seq", json_object_new_int64(sqlite3_column_int64(st, 0)));
	r |= add(ev, "at", json_object_new_string(ms_to_rfc3339(sqlite3_column_int64(st, 1), at)));
	r |= add(ev, "type", json_object_new_string((const char *)sqlite3_column_text(st, 2)));
	r |= add(ev, "id", json_tokener_parse((const char *)sqlite3_column_text(st, 3)));
	r |= add(ev, "data", json_tokener_parse((const char *)sqlite3_column_text(st, 4)));
	if (r != 0) {
		json_object_put(ev);
		return NULL;
	}
	return ev;
}

int store_event_list(struct store *s, int64_t repo_id, int64_t after, int limit,
		     struct json_object **ret_events, int64_t *ret_last_seq, struct err *e)
{
	static const char sql[] = "SELECT seq, at, type, object_id, data FROM events"
				  " WHERE repo_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
	struct json_object *events = json_object_new_array(), *ev;
	int64_t last = after;
	sqlite3_stmt *st;
	int rc, r;

	if (events == NULL)
		return err_set(e, -ENOMEM, "nomem", "out of memory");
	r = store_prepare(s, sql, false, &st, e);
	if (r < 0) {
		json_object_put(events);
		return r;
	}
	sqlite3_bind_int64(st, 1, repo_id);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ev = event_from_row(st);
		if (ev == NULL || json_object_array_add(events, ev) < 0) {
			json_object_put(ev);
			r = err_set(e, -ENOMEM, "nomem", "out of memory");
			break;
		}
		last = sqlite3_column_int64(st, 0);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	if (r < 0) {
		json_object_put(events);
		return r;
	}
	*ret_events = events;
	*ret_last_seq = last;
	return 0;
}

int store_event_count(struct store *s, int64_t *ret, struct err *e)
{
	return store_count(s, "events", ret, e);
}
