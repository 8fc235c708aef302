/*
 * events.c - GET /v1/repos/{repo}/events?after=<seq>&limit=N: the repo's
 * change feed, oldest first, each event carrying the whole object as GET
 * returns it. A client keeps the last `seq` it saw and asks for what came
 * after; `last_seq` is where to resume, and stays at `after` when nothing
 * new has happened, so an idle poll never loses its place.
 *
 * GET /v1/repos/{repo}/events/stream: the same events, live, as
 * server-sent events. The API only authorises the subscriber (the router
 * did: a bearer token, or access_token in the query since EventSource
 * cannot send headers) and hands the connection to nginx's nchan module
 * with X-Accel-Redirect, so no FastCGI thread is held for the life of the
 * connection. The events reach nchan from publish.c, in seq order.
 */
#include <stdio.h>
#include <string.h>

#include "route.h"

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX     1000
/* Events read (and held as json-c objects) at a time. */
#define EVENTS_CHUNK 100

int events_list(struct request *r)
{
	struct json_object *errors;
	struct err e = {{0}, {0}};
	int64_t after, limit, cursor;
	size_t count = 0;
	int ret;

	errors = problem_errors_new();
	if (errors == NULL)
		return -ENOMEM;
	request_query_int64(r, "after", 0, INT64_MAX, 0, errors, &after);
	request_query_int64(r, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, errors, &limit);
	if (json_object_array_length(errors) > 0)
		return respond_problem(r, 422, "validation_failed", errors,
				       "The query is not valid.");
	json_object_put(errors);

	/*
	 * Read and write the page in chunks, so that no more than one chunk
	 * of events is ever held as json-c objects. This reads the same
	 * events as one query would: seq only grows and writers commit one at
	 * a time, so an event with a lower seq is never visible after one
	 * with a higher seq.
	 */
	buf_reset(&r->out);
	ret = buf_puts(&r->out, "{\"events\":[");
	cursor = after;
	while (ret == 0 && (int64_t)count < limit) {
		int want = (int)(limit - (int64_t)count < EVENTS_CHUNK ? limit - (int64_t)count
								       : EVENTS_CHUNK);
		struct json_object *events = NULL;
		int64_t last = cursor;
		size_t n;

		ret = store_event_list(r->store, r->repo.id, cursor, want, &events, &last, &e);
		if (ret < 0)
			return respond_errno(r, ret, &e);
		n = json_object_array_length(events);
		for (size_t i = 0; i < n && ret == 0; i++) {
			ret = count + i > 0 ? buf_puts(&r->out, ",") : 0;
			if (ret == 0)
				ret = json_append(&r->out, json_object_array_get_idx(events, i));
		}
		json_object_put(events);
		count += n;
		if (n > 0)
			cursor = last;
		if ((int)n < want)
			break;
	}
	/* With nothing new, last_seq stays at `after`: the place to resume from. */
	if (ret == 0)
		ret = buf_printf(&r->out, "],\"last_seq\":%lld}", (long long)cursor);
	if (ret < 0)
		return ret;
	return respond_json_out(r, 200);
}

/*
 * The nchan message id a client resumes from (Last-Event-ID, or
 * last_event_id in the query for clients that cannot send the header):
 * "<time>:<tag>", digits, colons and commas only. Anything else (our own
 * seq, say) is left to the client's catch-up from events?after=.
 */
static bool nchan_id_valid(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len < 128 && strspn(s, "0123456789:,") == len && strchr(s, ':') != NULL;
}

int events_stream(struct request *r)
{
	const char *resume = request_query(r, "last_event_id");
	char target[256];

	if (r->conf->events_publish_socket == NULL || r->conf->events_publish_socket[0] == '\0')
		return respond_problem(r, 503, "stream_unavailable", NULL,
				       "This server does not publish a live stream "
				       "(events_publish_socket is not set); poll "
				       "GET /v1/repos/%s/events?after=<seq> instead.",
				       r->repo.name);
	/*
	 * The channel is the repo's id, not its name: a repo deleted and made
	 * again under the same name does not inherit the old channel's buffer.
	 * nchan reads a Last-Event-ID header itself; the query form is passed on.
	 */
	if (resume != NULL && nchan_id_valid(resume))
		snprintf(target, sizeof(target), "/internal/events/%lld?last_event_id=%s",
			 (long long)r->repo.id, resume);
	else
		snprintf(target, sizeof(target), "/internal/events/%lld", (long long)r->repo.id);
	respond_empty(r, 200);
	response_header(r, "X-Accel-Redirect", "%s", target);
	response_header(r, "X-Accel-Buffering", "no");
	return 0;
}
