/*
 * test-store.c - the store on a real SQLite file: migrations, repos,
 * tokens, enqueue with dedupe and idempotency keys, claim order and
 * per-repo serialisation, leases, finish, retry, recovery, cancel, events
 * in step with every change, the branch projection refresh, tasks and the
 * publisher's scan of the feed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"

static struct store *s;
static struct err e;

static int64_t count(const char *table)
{
	int64_t n = -1;

	store_count(s, table, &n, &e);
	return n;
}

static int enqueue(int64_t repo_id, enum job_kind kind, const char *branch, const char *key,
		   int64_t token_id, struct job *ret)
{
	struct job_request rq = {.repo_id = repo_id, .repo = repo_id == 1 ? "web" : "api",
				 .kind = kind, .branch = branch,
				 .max_attempts = 3, .token_id = token_id, .idem_key = key,
				 .idem_ttl_s = 86400};
	int r;

	job_options_default(&rq.options);
	store_begin(s, &e);
	r = store_job_enqueue(s, &rq, ret, &e);
	if (r >= 0)
		store_commit(s, &e);
	else
		store_rollback(s);
	return r;
}

/* store_event_scan's callback: parse each event of one repo into an array. */
struct scan_ctx {
	int64_t repo_id;
	struct json_object *got;
};

static int scan_collect(void *ctx, int64_t seq, int64_t repo_id, const char *json, size_t len)
{
	struct scan_ctx *sc = ctx;
	struct json_object *o;

	(void)seq;
	(void)len;
	if (repo_id != sc->repo_id)
		return 0;
	o = json_tokener_parse(json);
	return o != NULL && json_object_array_add(sc->got, o) == 0 ? 0 : -ENOMEM;
}

static void finish(struct job *j, enum job_status st)
{
	store_begin(s, &e);
	store_job_finish(s, j, st, "done", "{}", NULL, &e);
	store_commit(s, &e);
}

int main(void)
{
	char dir[] = "/tmp/repoflow-store-XXXXXX", path[256];
	struct repo web, api;
	struct job a, b, c, d, x, claimed, other;
	struct token tok;
	char *secret = NULL;
	int64_t ev_before;
	struct json_object *events;
	int64_t last;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/db", dir);
	is_int(store_open(path, 1000, STORE_MIGRATE, &s, &e), 0, "open and migrate");
	is_int(store_schema_version(s), STORE_SCHEMA_VERSION, "schema version");
	is_int(store_migrate(s, &e), 0, "second migrate applies nothing");

	/* repos */
	store_begin(s, &e);
	is_int(store_repo_create(s, "web", "/tmp/web.git", "main", &web, &e), 0, "create repo");
	is_int(store_repo_create(s, "api", "/tmp/api.git", "main", &api, &e), 0, "create repo 2");
	store_commit(s, &e);
	store_begin(s, &e);
	is_int(store_repo_create(s, "web", "/x", "main", NULL, &e), -EEXIST, "duplicate repo");
	store_rollback(s);
	is_int(count("events"), 2, "one repo.updated event per repo");

	/* tokens */
	store_begin(s, &e);
	is_int(store_token_create(s, "ci", false, "web", &secret, &e), 0, "repo token");
	store_commit(s, &e);
	ok(secret != NULL && strncmp(secret, "rf_", 3) == 0 && strlen(secret) == 43,
	   "secret shape");
	is_int(store_token_lookup(s, secret, &tok, &e), 0, "lookup by secret");
	ok(!tok.admin && tok.repo != NULL && strcmp(tok.repo, "web") == 0, "token scope");
	token_release(&tok);
	is_int(store_token_lookup(s, "rf_wrong", &tok, &e), -ENOENT, "unknown secret");
	store_begin(s, &e);
	is_int(store_token_revoke(s, "ci", &e), 0, "revoke");
	store_commit(s, &e);
	is_int(store_token_lookup(s, secret, &tok, &e), -ENOENT, "revoked secret");
	free(secret);

	/* enqueue, dedupe, idempotency */
	ev_before = count("events");
	is_int(enqueue(web.id, JOB_SYNC_REPO, NULL, NULL, 1, &a), STORE_ENQUEUE_CREATED, "enqueue");
	is_int(a.status, JOB_QUEUED, "queued");
	is_int(count("events"), ev_before + 1, "job.updated written with the job");
	is_int(enqueue(web.id, JOB_SYNC_REPO, NULL, NULL, 1, &b), STORE_ENQUEUE_DEDUPED, "dedupe");
	is_int(b.id, a.id, "dedupe returns the queued job");
	ok(b.deduplicated, "marked deduplicated");
	is_int(count("events"), ev_before + 1, "dedupe writes no event");
	job_release(&b);
	is_int(enqueue(web.id, JOB_RESTACK_SUBTREE, "feat-a", "k1", 1, &b), STORE_ENQUEUE_CREATED,
	       "with key");
	is_int(enqueue(web.id, JOB_RESTACK_SUBTREE, "feat-a", "k1", 1, &c), STORE_ENQUEUE_REPLAYED,
	       "same key, same request");
	is_int(c.id, b.id, "replay returns the first job");
	job_release(&c);
	is_int(enqueue(web.id, JOB_RESTACK_SUBTREE, "feat-b", "k1", 1, &c), -EKEYREJECTED,
	       "same key, other request");
	is_int(enqueue(api.id, JOB_RESTACK_SUBTREE, "feat-a", "k1", 1, &c), -EKEYREJECTED,
	       "same key, other repo");
	is_int(enqueue(web.id, JOB_RESTACK_SUBTREE, "feat-b", "k1", 2, &c), STORE_ENQUEUE_CREATED,
	       "same key, other token");
	is_int(enqueue(api.id, JOB_SYNC_REPO, NULL, NULL, 1, &d), STORE_ENQUEUE_CREATED,
	       "job on repo 2");

	/* claim: oldest first, one running job per repo, repos in parallel */
	is_int(store_job_claim(s, "w1", 10000, &claimed, &e), 1, "claim");
	is_int(claimed.id, a.id, "oldest job first");
	is_int(claimed.attempt, 1, "attempt counted");
	is_int(store_job_claim(s, "w1", 10000, &other, &e), 1, "claim another");
	is_int(other.id, d.id, "other repo runs in parallel; web's next waits");
	is_int(store_job_claim(s, "w1", 10000, &x, &e), 0, "nothing else runnable");

	/* lease guard */
	{
		struct job stale = claimed;
		char owner[] = "w2";

		stale.lease_owner = owner;
		store_begin(s, &e);
		is_int(store_job_finish(s, &stale, JOB_COMPLETED, "x", NULL, NULL, &e), -ESTALE,
		       "only the lease owner finishes");
		store_rollback(s);
	}
	is_int(store_job_renew(s, &claimed, 10000, &e), 0, "renew");
	is_int(store_job_progress(s, &claimed, 1, 3, "fetch", &e), 0, "progress");

	/* retry puts it back; its repo's order holds */
	store_begin(s, &e);
	is_int(store_job_retry(s, &claimed, now_ms() + 60000, "retry later", NULL, &e), 0, "retry");
	store_commit(s, &e);
	is_int(store_job_claim(s, "w1", 10000, &x, &e), 0,
	       "a later job of the repo waits behind the one in backoff");
	job_release(&claimed);

	/* cancel: queued, running, finished */
	{
		struct job cj;

		store_begin(s, &e);
		is_int(store_job_cancel(s, web.id, b.id, &cj, &e), STORE_CANCELED, "cancel queued");
		store_commit(s, &e);
		is_int(cj.status, JOB_CANCELED, "now canceled");
		job_release(&cj);
		store_begin(s, &e);
		is_int(store_job_cancel(s, web.id, b.id, &cj, &e), -EALREADY, "cancel finished");
		store_rollback(s);
		store_begin(s, &e);
		is_int(store_job_cancel(s, api.id, other.id, &cj, &e), STORE_CANCEL_REQUESTED,
		       "cancel running");
		store_commit(s, &e);
		ok(cj.cancel_requested && cj.status == JOB_RUNNING, "running with cancel requested");
		job_release(&cj);
		is_int(store_job_cancel(s, web.id, other.id, &cj, &e), -ENOENT,
		       "cancel through another repo is not found");
	}
	{
		bool cr = false;

		store_job_cancel_requested(s, &other, &cr, &e);
		ok(cr, "worker sees the cancel request");
	}
	finish(&other, JOB_CANCELED);

	/* recovery */
	{
		struct job y, got;

		is_int(enqueue(api.id, JOB_RESTACK_REPO, NULL, NULL, 1, &y), 0, "enqueue on api");
		is_int(store_job_claim(s, "dead", 10000, &got, &e), 1, "claimed by a worker that dies");
		is_int(store_job_recover(s, "w9", &e), 1, "recovered one orphan");
		job_release(&got);
		is_int(store_job_claim(s, "w9", 10000, &got, &e), 1, "claim it again");
		is_int(got.id, y.id, "same job");
		is_int(got.attempt, 2, "its attempt counts");
		finish(&got, JOB_COMPLETED);
		job_release(&got);
		job_release(&y);
	}

	/* list and paging */
	{
		struct job *list;
		size_t n;
		struct job_filter f = {.repo_id = web.id, .limit = 2};

		is_int(store_job_list(s, &f, &list, &n, &e), 0, "list");
		is_int(n, 2, "limit");
		ok(n == 2 && list[0].id > list[1].id, "newest first");
		f.before = list[1].id;
		job_array_free(list, n);
		is_int(store_job_list(s, &f, &list, &n, &e), 0, "next page");
		is_int(n, 1, "last page");
		job_array_free(list, n);
		f.before = 0;
		f.status_mask = 1u << JOB_CANCELED;
		is_int(store_job_list(s, &f, &list, &n, &e), 0, "status filter");
		is_int(n, 1, "one canceled job on web");
		job_array_free(list, n);
	}

	/* events paging */
	is_int(store_event_list(s, web.id, 0, 1000, &events, &last, &e), 0, "events");
	ok(json_object_array_length(events) > 3, "web has events");
	{
		size_t n = json_object_array_length(events);
		int64_t prev = 0;
		bool increasing = true;

		for (size_t i = 0; i < n; i++) {
			int64_t seq = json_object_get_int64(
				json_object_object_get(json_object_array_get_idx(events, i), "seq"));
			increasing = increasing && seq > prev;
			prev = seq;
		}
		ok(increasing && prev == last, "seq increases; last_seq is the last");
	}
	json_object_put(events);

	/* branch projection */
	{
		struct branch_ref refs[] = {{"main", "aaa", "aaa"}, {"feat-1", "bbb", "bbb"}};
		struct branch *list;
		size_t n;

		store_begin(s, &e);
		is_int(store_branches_refresh(s, web.id, refs, 2, 1000, &e), 2, "two new rows");
		store_commit(s, &e);
		ev_before = count("events");
		store_begin(s, &e);
		is_int(store_branches_refresh(s, web.id, refs, 2, 2000, &e), 0,
		       "unchanged rows change nothing");
		store_commit(s, &e);
		is_int(count("events"), ev_before, "and write no events");
		refs[1].head = refs[1].remote_head = "ccc";
		store_begin(s, &e);
		is_int(store_branches_refresh(s, web.id, refs, 1, 3000, &e), 1,
		       "feat-1 is gone (untracked: removed)");
		store_commit(s, &e);
		is_int(store_branch_list(s, web.id, "main", &list, &n, &e), 0, "branch list");
		is_int(n, 1, "only main left");
		branch_array_free(list, n);
	}

	/* tasks (on api: its projection knows main and feat-1, fresh) */
	{
		struct branch_ref refs[] = {{"main", "aaa", "aaa"}, {"feat-1", "bbb", "bbb"}};
		struct task_request rq = {.repo_id = api.id, .repo = "api", .branch = "feat-1",
					  .title = "t", .fresh_s = 300, .max_attempts = 3};
		struct task t1, t2, t3;
		struct job j = {0}, j2 = {0};
		struct branch row;
		int64_t owner = 0, tasks_before = count("tasks");

		store_begin(s, &e);
		store_branches_refresh(s, api.id, refs, 2, now_ms(), &e);
		is_int(store_task_create(s, &rq, &t1, &j, &owner, &e), STORE_TASK_READY,
		       "a fresh, active branch: ready");
		is_str(t1.head, "bbb", "at the row's head");
		is_int(j.id, 0, "no job");
		is_int(store_task_create(s, &rq, &t2, &j, &owner, &e), -EEXIST, "a second live task");
		is_str(e.code, "task_exists", "its code");
		is_int(owner, t1.id, "the owner is named");
		rq.branch = "feat-9";
		is_int(store_task_create(s, &rq, &t2, &j, &owner, &e), STORE_TASK_PENDING,
		       "an unknown branch: pending, with a new job");
		is_int(j.kind, JOB_REGISTER_EXISTING_BRANCH, "a register job");
		is_int(t2.job_id, j.id, "the task waits for it");
		rq.branch = "feat-8";
		is_int(store_task_create(s, &rq, &t3, &j2, &owner, &e), STORE_TASK_PENDING,
		       "another branch: its own job");
		store_commit(s, &e);
		is_int(count("tasks"), tasks_before + 3, "three tasks");
		is_int(store_branch_get(s, api.id, "feat-1", &row, &e), 0, "feat-1 row");
		is_int(row.task_id, t1.id, "carries its task id");
		branch_release(&row);

		/* feat-9 appears; its job completes: ready. feat-8's job is canceled: failed. */
		store_begin(s, &e);
		refs[1].name = "feat-9";
		refs[1].head = refs[1].remote_head = "ddd";
		store_branches_refresh(s, api.id, refs, 2, now_ms(), &e);
		is_int(store_task_job_finished(s, &j, JOB_COMPLETED, NULL, &e), 1, "one task ready");
		{
			int64_t id2 = j2.id;

			job_release(&j2);
			is_int(store_job_cancel(s, api.id, id2, &j2, &e), STORE_CANCELED,
			       "cancel queued");
		}
		store_commit(s, &e);
		task_release(&t2);
		is_int(store_task_get(s, api.id, t3.id + 0, &t2, &e), 0, "get");
		is_int(t2.state, TASK_ATTACH_FAILED, "canceled job: attach_failed");
		ok(t2.reason != NULL && strstr(t2.reason, "canceled") != NULL, "reason says so");
		task_release(&t2);
		is_int(store_task_get(s, api.id, t3.id - 1, &t2, &e), 0, "get");
		is_int(t2.state, TASK_READY, "completed job: ready");
		is_str(t2.head, "ddd", "with the branch head");
		is_int(t2.version, 2, "version 2");
		task_release(&t1);
		task_release(&t2);
		task_release(&t3);
		job_release(&j);
		job_release(&j2);
	}

	/* the publisher's scan gives the events as the list does */
	{
		struct json_object *list = NULL;
		struct scan_ctx sc = {api.id, json_object_new_array()};
		int64_t lastseq = 0;
		bool same;

		is_int(store_event_list(s, api.id, 0, 1000, &list, &lastseq, &e), 0, "list api");
		ok(store_event_scan(s, 0, 100000, scan_collect, &sc, &e) > 0, "scan every event");
		same = json_object_array_length(sc.got) == json_object_array_length(list);
		for (size_t i = 0; same && i < json_object_array_length(list); i++)
			same = json_object_equal(json_object_array_get_idx(sc.got, i),
						 json_object_array_get_idx(list, i));
		ok(same, "the scanned text parses to the listed events");
		json_object_put(list);
		json_object_put(sc.got);
		is_int(store_event_last_seq(s, &lastseq, &e), 0, "last seq");
		is_int(lastseq, count("events"), "the highest seq (none was deleted)");
	}

	/* delete */
	store_begin(s, &e);
	is_int(store_repo_delete(s, "web", &e), 0, "delete repo");
	store_commit(s, &e);
	is_int(store_repo_get(s, "web", &web, &e), -ENOENT, "gone");

	job_release(&a);
	job_release(&b);
	job_release(&c);
	job_release(&d);
	job_release(&other);
	repo_release(&web);
	repo_release(&api);
	store_close(s);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		ok(system(cmd) == 0, "cleanup");
	}
	return tap_done();
}
