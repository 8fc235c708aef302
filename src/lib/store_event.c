/*
 * store_event.c - the append-only change feed. An event is written in the
 * same transaction as the change it reports, so a client that reads
 * `events?after=<seq>` sees every change exactly once and in commit order
 * (seq is AUTOINCREMENT: never reused, even after a delete).
 *
 * The object id and data are stored as JSON text written the way the API
 * writes JSON (no escaped slashes), so the text of an event can be handed
 * on as it is (store_event_scan, for the live stream) and still read the
 * same as the API's own answers.
 */
#include "store_internal.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

#define EVENT_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

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
	sqlite3_bind_text(st, 4, json_object_to_json_string_ext(id, EVENT_JSON_FLAGS), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, json_object_to_json_string_ext(data, EVENT_JSON_FLAGS), -1,
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_fail(s, rc, e);
}

static struct json_object *event_from_row(sqlite3_stmt *st)
{
	struct json_object *ev = json_object_new_object();
	char at[RFC3339_LEN];
	int r = 0;

	if (ev == NULL)
		return NULL;
	r |= json_add(ev, "seq", json_object_new_int64(sqlite3_column_int64(st, 0)));
	r |= json_add(ev, "at", json_object_new_string(ms_to_rfc3339(sqlite3_column_int64(st, 1), at)));
	r |= json_add(ev, "type", json_object_new_string((const char *)sqlite3_column_text(st, 2)));
	r |= json_add(ev, "id", json_tokener_parse((const char *)sqlite3_column_text(st, 3)));
	r |= json_add(ev, "data", json_tokener_parse((const char *)sqlite3_column_text(st, 4)));
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

int store_event_last_seq(struct store *s, int64_t *ret, struct err *e)
{
	sqlite3_stmt *st;
	int rc, r;

	r = store_prepare(s, "SELECT coalesce(max(seq), 0) FROM events", false, &st, e);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	return r;
}

/*
 * The event's text is put together from the stored pieces rather than
 * parsed and printed again: id and data are already JSON text, and the
 * publisher reads every event the service writes.
 */
int store_event_scan(struct store *s, int64_t after, int limit,
		     int (*fn)(void *ctx, int64_t seq, int64_t repo_id, const char *json, size_t len),
		     void *ctx, struct err *e)
{
	static const char sql[] = "SELECT seq, repo_id, at, type, object_id, data FROM events"
				  " WHERE seq > ?1 ORDER BY seq LIMIT ?2";
	struct buf b = BUF_INIT;
	char at[RFC3339_LEN];
	sqlite3_stmt *st;
	int rc, r, n = 0;

	r = store_prepare(s, sql, false, &st, e);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct json_object *type;
		int64_t seq = sqlite3_column_int64(st, 0);

		/* The type goes through json-c for its quoting; the rest is JSON already. */
		type = json_object_new_string((const char *)sqlite3_column_text(st, 3));
		buf_reset(&b);
		r = type == NULL ? -ENOMEM : 0;
		if (r == 0)
			r = buf_printf(&b, "{\"seq\":%lld,\"at\":\"%s\",\"type\":%s,\"id\":%s,\"data\":%s}",
				       (long long)seq,
				       ms_to_rfc3339(sqlite3_column_int64(st, 2), at),
				       json_object_to_json_string_ext(type, EVENT_JSON_FLAGS),
				       (const char *)sqlite3_column_text(st, 4),
				       (const char *)sqlite3_column_text(st, 5));
		json_object_put(type);
		if (r < 0) {
			r = err_set(e, -ENOMEM, "nomem", "out of memory");
			break;
		}
		r = fn(ctx, seq, sqlite3_column_int64(st, 1), b.data, b.len);
		if (r < 0)
			break;
		n++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = store_fail(s, rc, e);
	sqlite3_reset(st);
	buf_release(&b);
	return r < 0 ? r : n;
}
