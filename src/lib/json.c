/*
 * json.c - see json.h.
 */
#include "json.h"

#include <errno.h>

#include "util.h"

int json_add(struct json_object *o, const char *key, struct json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *json_string_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

struct json_object *json_time_or_null(int64_t ms)
{
	char buf[RFC3339_LEN];

	return ms > 0 ? json_object_new_string(ms_to_rfc3339(ms, buf)) : NULL;
}

struct json_object *json_parsed_or_null(const char *s)
{
	return s != NULL ? json_tokener_parse(s) : NULL;
}
