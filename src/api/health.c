/*
 * health.c - GET /v1/health, the one endpoint without a token: whether the
 * database can be read, how long the queue is, and when the worker was
 * last seen. It reads two counters and a heartbeat from SQLite and
 * nothing else, so a load balancer may call it as often as it likes.
 *
 * The shape is the same whether healthy (200) or not (503): fields that
 * could not be read are null, so a dashboard needs only one parser.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "log.h"
#include "json.h"
#include "route.h"

int health_get(struct request *r)
{
	struct json_object *body, *queue, *worker;
	struct queue_stats qs = {0};
	struct err e = {{0}, {0}};
	bool ok = false;
	int ret = 0;

	if (r->store != NULL) {
		ok = store_queue_stats(r->store, &qs, &e) >= 0;
		if (!ok)
			log_msg(LOG_WARNING, "health: the database cannot be read: %s", e.msg);
	}

	body = json_object_new_object();
	queue = json_object_new_object();
	worker = json_object_new_object();
	if (body == NULL || queue == NULL || worker == NULL) {
		json_object_put(body);
		json_object_put(queue);
		json_object_put(worker);
		return -ENOMEM;
	}
	if (ok) {
		/* An empty queue has waited for nothing: 0, not null. */
		double age =
		    qs.oldest_queued_ms > 0 ? (double)(now_ms() - qs.oldest_queued_ms) / 1000 : 0;

		char text[32];

		/* Milliseconds are all the precision there is; print no more. */
		if (age < 0)
			age = 0;
		snprintf(text, sizeof(text), "%.3f", age);
		ret |= json_add(queue, "queued", json_object_new_int64(qs.queued));
		ret |= json_add(queue, "running", json_object_new_int64(qs.running));
		ret |= json_add(queue, "oldest_queued_age_s", json_object_new_double_s(age, text));
		ret |= json_add(worker, "last_seen_at", json_time_or_null(qs.worker_seen_ms));
	} else {
		ret |= json_add(queue, "queued", NULL);
		ret |= json_add(queue, "running", NULL);
		ret |= json_add(queue, "oldest_queued_age_s", NULL);
		ret |= json_add(worker, "last_seen_at", NULL);
	}
	ret |= json_add(body, "status", json_object_new_string(ok ? "ok" : "error"));
	ret |= json_add(body, "db", json_object_new_string(ok ? "ok" : "error"));
	ret |= json_add(body, "queue", queue);
	ret |= json_add(body, "worker", worker);
	if (ret != 0) {
		json_object_put(body);
		return -ENOMEM;
	}
	respond_json(r, ok ? 200 : 503, body);
	json_object_put(body);
	response_header(r, "Cache-Control", "no-store");
	if (!ok)
		response_header(r, "Retry-After", "5");
	return 0;
}
