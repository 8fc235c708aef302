/*
 * json.h - the few json-c helpers every JSON writer of repoflow uses (the
 * job, repo, branch, task and event writers and the API's responses), so
 * that ownership and null handling are decided in one place.
 */
#ifndef REPOFLOW_JSON_H
#define REPOFLOW_JSON_H

#include <json-c/json.h>
#include <stdint.h>

/*
 * Add v under key. json-c takes ownership of v only when the add succeeds;
 * on failure v is dropped here, so the caller never leaks it. Returns 0 or
 * -ENOMEM. A NULL v adds a JSON null.
 */
int json_add(struct json_object *o, const char *key, struct json_object *v);
/* A string, or JSON null (NULL) for a NULL s. */
struct json_object *json_string_or_null(const char *s);
/* An RFC 3339 time from milliseconds, or JSON null for 0 (unset). */
struct json_object *json_time_or_null(int64_t ms);
/* Stored JSON text parsed back, or JSON null for NULL (or text that does not parse). */
struct json_object *json_parsed_or_null(const char *s);

#endif
