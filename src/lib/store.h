/*
 * store.h - everything repoflow keeps in SQLite: repos, jobs, branches (the
 * projection), tasks, events, tokens, idempotency keys, the worker's
 * heartbeat.
 *
 * One `struct store` is one connection with its own prepared-statement
 * cache; it is not shared between threads (open one per thread). The
 * database runs in WAL mode with synchronous=FULL, so a committed row is on
 * disk, with foreign keys on and a busy timeout.
 *
 * Transactions: functions documented "in a transaction" expect the caller
 * to have called store_begin() (BEGIN IMMEDIATE) and to commit; each of
 * them writes its change and the matching event together, so a caller can
 * never commit one without the other. Functions documented "own
 * transaction" open and commit their own.
 *
 * Errors: 0 or a count on success; negative errno on failure:
 * -ENOENT (no such row), -EEXIST (unique name taken), -EBUSY (database busy
 * past the timeout), -ESTALE (not the lease owner any more), -EIO (anything
 * else SQLite said; the text is in `e`).
 */
#ifndef REPOFLOW_STORE_H
#define REPOFLOW_STORE_H

#include <json-c/json.h>
#include <sqlite3.h>

#include "conf.h"
#include "job.h"
#include "util.h"

struct store;

enum store_flags {
	STORE_MIGRATE = 1 << 0,  /* apply pending migrations on open */
	STORE_SMALL_CACHE = 1 << 1, /* small page cache (API processes, many connections) */
	STORE_NO_AUTOCHECKPOINT = 1 << 2, /* the owner runs store_checkpoint() itself */
};

int store_open(const char *path, int busy_timeout_ms, unsigned flags, struct store **ret,
	       struct err *e);
void store_close(struct store *s);
static inline void store_closep(struct store **s)
{
	if (*s != NULL)
		store_close(*s);
}
#define _cleanup_store_ _cleanup_(store_closep)

/* Apply pending numbered migrations (PRAGMA user_version). Returns how many ran. */
int store_migrate(struct store *s, struct err *e);
int store_schema_version(struct store *s);
#define STORE_SCHEMA_VERSION 2

/*
 * Copy the WAL back into the database file as far as readers allow
 * (SQLite's PASSIVE checkpoint: it never waits for or blocks a writer).
 * Connections opened with STORE_NO_AUTOCHECKPOINT leave this to a
 * background thread, so no COMMIT on a request's path pays for it.
 */
int store_checkpoint(struct store *s, struct err *e);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK, and savepoints (group commit). */
int store_begin(struct store *s, struct err *e);
int store_commit(struct store *s, struct err *e);
/*
 * A function every successful store_commit() of this process calls, after
 * the COMMIT returned (so what it wrote is visible to other connections):
 * how a program hands "new events may exist" to its publisher
 * (publish.h). Process-wide; set once before any commit, NULL for none.
 * It must be cheap and must not call back into the store.
 */
void store_set_commit_hook(void (*fn)(void *arg), void *arg);
void store_rollback(struct store *s);
int store_savepoint(struct store *s, struct err *e);
int store_savepoint_release(struct store *s, struct err *e);
void store_savepoint_rollback(struct store *s);

/* The raw handle, for tests and benchmarks only. */
sqlite3 *store_db(struct store *s);

/* --- repos ------------------------------------------------------------ */

struct repo {
	int64_t id;
	char *name;
	char *remote_url;
	char *trunk;
	char *sync_status;   /* never, queued, running, ok, error */
	char *last_error;    /* NULL when none */
	int64_t last_synced_at;
	int64_t created_at, updated_at;
};
void repo_release(struct repo *r);

/* In a transaction. Writes repo.updated. -EEXIST when the name is taken. */
int store_repo_create(struct store *s, const char *name, const char *remote_url,
		      const char *trunk, struct repo *ret, struct err *e);
int store_repo_get(struct store *s, const char *name, struct repo *ret, struct err *e);
int store_repo_get_by_id(struct store *s, int64_t id, struct repo *ret, struct err *e);
/* All repos by name; *ret is an array of *n repos (free with repo_array_free). */
int store_repo_list(struct store *s, struct repo **ret, size_t *n, struct err *e);
void repo_array_free(struct repo *r, size_t n);
/* In a transaction. -EINPROGRESS while a job of the repo runs. Cascades. */
int store_repo_delete(struct store *s, const char *name, struct err *e);
/* In a transaction. Sets sync status (and last_synced_at when synced_at > 0); writes repo.updated. */
int store_repo_set_sync(struct store *s, int64_t repo_id, const char *status,
			const char *last_error, int64_t synced_at, struct err *e);
/* The repo overview as GET /v1/repos/{repo} returns it (counts read from SQLite). */
int store_repo_overview(struct store *s, const struct repo *r, struct json_object **ret,
			struct err *e);

/* --- jobs ------------------------------------------------------------- */

struct job_request {
	int64_t repo_id;
	const char *repo;        /* the repo's name */
	enum job_kind kind;
	const char *branch;      /* NULL when not given */
	const char *parent;      /* NULL when not given */
	struct job_options options;
	int max_attempts;
	int64_t token_id;        /* who asked; scopes the idempotency key */
	const char *idem_key;    /* NULL when none */
	int idem_ttl_s;
};

enum store_enqueue_outcome {
	STORE_ENQUEUE_CREATED = 0,  /* a new job row */
	STORE_ENQUEUE_DEDUPED = 1,  /* an identical queued job was returned */
	STORE_ENQUEUE_REPLAYED = 2, /* the Idempotency-Key's first job was returned */
};

/*
 * In a transaction. Insert a queued job and its job.updated event, or
 * return an existing one (see the outcomes). -EKEYREJECTED when the
 * idempotency key was used with a different request.
 */
int store_job_enqueue(struct store *s, const struct job_request *rq, struct job *ret,
		      struct err *e);

/* repo_id 0 matches any repo. -ENOENT when absent. */
int store_job_get(struct store *s, int64_t repo_id, int64_t id, struct job *ret, struct err *e);

struct job_filter {
	int64_t repo_id;       /* 0: any */
	unsigned status_mask;  /* bit per enum job_status; 0: any */
	unsigned kind_mask;    /* bit per enum job_kind; 0: any */
	int64_t before;        /* ids below this; 0: no bound */
	int limit;
};
/* Newest first. *ret is an array of *n jobs (free with job_array_free). */
int store_job_list(struct store *s, const struct job_filter *f, struct job **ret, size_t *n,
		   struct err *e);
void job_array_free(struct job *j, size_t n);

enum store_cancel_outcome {
	STORE_CANCELED = 0,         /* was queued, now canceled */
	STORE_CANCEL_REQUESTED = 1, /* running; stops at its next step boundary */
};
/* In a transaction. -EALREADY when finished. *ret is the job afterwards. */
int store_job_cancel(struct store *s, int64_t repo_id, int64_t id, struct job *ret,
		     struct err *e);

/*
 * Own transaction. Claim the oldest runnable queued job (run_at <= now)
 * whose repo has no running job: mark it running under `owner` with a
 * lease of lease_ms, count the attempt. Returns 1 with *ret filled, 0 when
 * nothing is runnable.
 */
int store_job_claim(struct store *s, const char *owner, int64_t lease_ms, struct job *ret,
		    struct err *e);
/* The earliest run_at of any queued job into *ret; 0 when none is queued. */
int store_job_next_run_at(struct store *s, int64_t *ret, struct err *e);
/* Own transaction. Extend the lease; -ESTALE when `j` no longer owns the job. */
int store_job_renew(struct store *s, const struct job *j, int64_t lease_ms, struct err *e);
/* Own transaction. Record progress (and its event) as the lease owner. */
int store_job_progress(struct store *s, struct job *j, int64_t step, int64_t total,
		       const char *detail, struct err *e);
/* Whether a cancel was requested for the running job. */
int store_job_cancel_requested(struct store *s, const struct job *j, bool *ret, struct err *e);
/*
 * In a transaction. Finish the attempt `j` holds with `status` (completed,
 * error or canceled), a message, and optional result and error JSON text.
 * -ESTALE when `j` is not the lease owner of that attempt any more.
 */
int store_job_finish(struct store *s, struct job *j, enum job_status status, const char *message,
		     const char *result, const char *error, struct err *e);
/* In a transaction. Put the attempt back to queued to run at run_at. -ESTALE as above. */
int store_job_retry(struct store *s, struct job *j, int64_t run_at, const char *message,
		    const char *error, struct err *e);
/*
 * Own transaction. Every running job whose lease owner is not `owner` goes
 * back to queued (its attempt counts). Returns how many.
 */
int store_job_recover(struct store *s, const char *owner, struct err *e);

/* --- branches (the projection) ---------------------------------------- */

struct branch {
	char *name;
	bool tracked;
	char *parent, *base;    /* NULL when untracked */
	char *head;             /* the mirror's ref, hex */
	char *remote_head;      /* the remote's ref as last seen, hex */
	char *state;            /* active, merged, missing */
	bool needs_restack;
	int64_t synced_at;
	int64_t task_id;        /* the branch's live task (pending or ready); 0 when none */
};
void branch_release(struct branch *b);
struct json_object *branch_to_json(const struct branch *b);

/* One branch as seen on the remote. */
struct branch_ref {
	const char *name;
	const char *head;        /* the mirror's value after the fetch */
	const char *remote_head; /* the value the remote advertised */
};
/*
 * In a transaction. Make the projection agree with `refs`: insert or update
 * every listed branch; a tracked branch that is not listed becomes
 * `missing`, an untracked one is removed. Writes branch.updated or
 * branch.removed for each row that changed. Returns how many changed.
 */
int store_branches_refresh(struct store *s, int64_t repo_id, const struct branch_ref *refs,
			   size_t n, int64_t synced_at, struct err *e);
/* Trunk first, then by stack depth, then by name. */
int store_branch_list(struct store *s, int64_t repo_id, const char *trunk, struct branch **ret,
		      size_t *n, struct err *e);
void branch_array_free(struct branch *b, size_t n);

/*
 * Stack metadata. The worker is the only writer: it reads the tracked
 * branches to build the stack tree, and after a job it writes what the job
 * did (a branch tracked, restacked onto a new base, reparented, merged)
 * and what it found (heads, needs_restack). Every change writes its
 * branch.updated event in the same transaction, and only when a field a
 * client sees changed. A parent that would make a cycle (the branch
 * itself, or a branch stacked above it) is refused with -ELOOP and the
 * code "cycle".
 */

/* One row into *ret (caller releases); -ENOENT when absent. */
int store_branch_get(struct store *s, int64_t repo_id, const char *name, struct branch *ret,
		     struct err *e);
/* Every tracked row of a repo, whatever its state, by name. */
int store_branch_list_tracked(struct store *s, int64_t repo_id, struct branch **ret, size_t *n,
			      struct err *e);
/*
 * In a transaction. Track `name` on `parent` (the trunk or a tracked
 * branch) at `base` (hex): tracked, state active. The row is inserted when
 * the projection has none yet. An already tracked row takes the new parent
 * and base. -ELOOP as above.
 */
int store_branch_track(struct store *s, int64_t repo_id, const char *name, const char *parent,
		       const char *base, struct err *e);

/* What store_branch_update changes; NULL, -1 or 0 leave a field alone. */
struct branch_change {
	const char *parent;	 /* a new parent (checked for cycles) */
	const char *base;	 /* hex */
	const char *head;	 /* hex */
	const char *remote_head; /* hex */
	int needs_restack;	 /* 0 or 1; -1 leaves it */
	int64_t synced_at;	 /* ms; 0 leaves it */
};
#define BRANCH_CHANGE_INIT                                                                         \
	{                                                                                          \
		.needs_restack = -1                                                                \
	}
/* In a transaction. -ENOENT when the row is absent, -ELOOP as above. */
int store_branch_update(struct store *s, int64_t repo_id, const char *name,
			const struct branch_change *c, struct err *e);
/* In a transaction. Shorthand for the needs_restack flag alone. */
int store_branch_set_needs_restack(struct store *s, int64_t repo_id, const char *name, bool on,
				   struct err *e);
/*
 * In a transaction. A merged branch stops being tracked: state merged,
 * untracked (parent and base cleared), needs_restack off. The row stays
 * while the remote keeps the branch, as the record that it was merged.
 */
int store_branch_mark_merged(struct store *s, int64_t repo_id, const char *name, struct err *e);

/* --- tasks ------------------------------------------------------------ */

/*
 * A task: a unit of work bound to one branch. It is `ready` when the
 * branch is known (in the projection, fresh and active), else
 * `pending_branch_attach` while a register_existing_branch job attaches
 * it, and `attach_failed` when that job failed or was canceled. Pending
 * and ready tasks are "live": a branch has at most one.
 */
enum task_state {
	TASK_PENDING_BRANCH_ATTACH,
	TASK_READY,
	TASK_ATTACH_FAILED,
	TASK_STATE_MAX,
};
extern const char *const task_state_names[TASK_STATE_MAX];
/* Name to enum; -EINVAL when unknown. */
int task_state_from_name(const char *name);

#define TASK_TITLE_MAX 256

struct task {
	int64_t id;
	int64_t repo_id;
	char *repo;          /* the repo's name */
	char *branch;
	char *title;
	enum task_state state;
	char *head;          /* ready: the branch's head (hex) when it became ready */
	char *reason;        /* attach_failed: why; NULL otherwise */
	int64_t job_id;      /* the job that attaches it; 0 when none was needed */
	int64_t version;     /* grows on every change (the ETag) */
	int64_t created_at, updated_at;
};
void task_release(struct task *t);
void task_array_free(struct task *t, size_t n);
/* The task as GET returns it. A new object (caller puts it), NULL on ENOMEM. */
struct json_object *task_to_json(const struct task *t);

struct task_request {
	int64_t repo_id;
	const char *repo;   /* the repo's name */
	const char *branch;
	const char *title;
	int fresh_s;        /* a projection row synced within this is fresh (conf branch_fresh_s) */
	int max_attempts;   /* of the register_existing_branch job, when one is needed */
	int64_t token_id;   /* who asked */
};

enum store_task_outcome {
	STORE_TASK_READY = 0,          /* the branch is known: the task is ready */
	STORE_TASK_PENDING = 1,        /* pending, with a new register_existing_branch job */
	STORE_TASK_PENDING_SHARED = 2, /* pending, on a register job that was already queued */
};

/*
 * In a transaction. Create a task for rq->branch, with its task.updated
 * event: ready when the projection has the branch fresh and active, else
 * pending on a register_existing_branch job (a queued one for the branch
 * when there is one, else a new one, whose job.updated event is written
 * too). *ret is the task; *ret_job the job when pending (release it),
 * zeroed when ready. -EEXIST with the code "task_exists" when a live task
 * owns the branch (its id in *ret_owner).
 */
int store_task_create(struct store *s, const struct task_request *rq, struct task *ret,
		      struct job *ret_job, int64_t *ret_owner, struct err *e);
/* repo_id 0 matches any repo. -ENOENT when absent. */
int store_task_get(struct store *s, int64_t repo_id, int64_t id, struct task *ret, struct err *e);

struct task_filter {
	int64_t repo_id;      /* required */
	unsigned state_mask;  /* bit per enum task_state; 0: any */
	const char *branch;   /* NULL: any */
	int64_t before;       /* ids below this; 0: no bound */
	int limit;
};
/* Newest first. *ret is an array of *n tasks (free with task_array_free). */
int store_task_list(struct store *s, const struct task_filter *f, struct task **ret, size_t *n,
		    struct err *e);
/* In a transaction. A pending task becomes ready at `head`; writes task.updated. */
int store_task_mark_ready(struct store *s, int64_t id, const char *head, struct err *e);
/* In a transaction. A pending task becomes attach_failed; writes task.updated. */
int store_task_mark_attach_failed(struct store *s, int64_t id, const char *reason,
				  struct err *e);
/*
 * In a transaction, called by the store when a job reaches a final status
 * (store_job_finish, and store_job_cancel of a queued job). For a
 * register_existing_branch job that completed (not a dry run), every
 * pending task on its branch becomes ready with the branch's head; when
 * it ended in error or was canceled, the pending tasks it was attaching
 * become attach_failed with `reason`. Other jobs change nothing. Returns
 * how many tasks changed.
 */
int store_task_job_finished(struct store *s, const struct job *j, enum job_status status,
			    const char *reason, struct err *e);

/* --- events ----------------------------------------------------------- */

/*
 * In a transaction. Append an event; `id` is the object's id (a job id, a
 * branch or repo name) as JSON, `data` the object as GET returns it. Both
 * are borrowed.
 */
int store_event_append(struct store *s, int64_t repo_id, const char *type,
		       struct json_object *id, struct json_object *data, struct err *e);
/* Events of a repo with seq > after, oldest first, at most limit; `events` is a new array. */
int store_event_list(struct store *s, int64_t repo_id, int64_t after, int limit,
		     struct json_object **ret_events, int64_t *ret_last_seq, struct err *e);
int store_event_count(struct store *s, int64_t *ret, struct err *e);
/*
 * Events of every repo with seq > after, oldest first, at most limit:
 * fn(ctx, seq, repo_id, json) for each, where json is the event as
 * store_event_list gives it, as text (borrowed for the call). Stops at the
 * first negative return of fn and returns it. Returns how many were read.
 * For the publisher (publish.h), which follows the feed in seq order.
 */
int store_event_scan(struct store *s, int64_t after, int limit,
		     int (*fn)(void *ctx, int64_t seq, int64_t repo_id, const char *json, size_t len),
		     void *ctx, struct err *e);
/* The highest seq there is, 0 when none. */
int store_event_last_seq(struct store *s, int64_t *ret, struct err *e);

/* --- tokens ----------------------------------------------------------- */

struct token {
	int64_t id;
	char *name;
	bool admin;
	int64_t repo_id;   /* 0 for admin tokens */
	char *repo;        /* NULL for admin tokens */
	int64_t created_at, revoked_at;
};
void token_release(struct token *t);
/* In a transaction. Make a token; *ret_secret is the secret, shown once (caller frees). */
int store_token_create(struct store *s, const char *name, bool admin, const char *repo,
		       char **ret_secret, struct err *e);
/* The live token whose secret this is; -ENOENT when unknown or revoked. */
int store_token_lookup(struct store *s, const char *secret, struct token *ret, struct err *e);
int store_token_list(struct store *s, struct token **ret, size_t *n, struct err *e);
void token_array_free(struct token *t, size_t n);
/* In a transaction. -ENOENT when no live token has that name. */
int store_token_revoke(struct store *s, const char *name, struct err *e);

/* --- health ----------------------------------------------------------- */

struct queue_stats {
	int64_t queued, running;
	int64_t oldest_queued_ms; /* created_at of the oldest queued job; 0 when none */
	int64_t worker_seen_ms;   /* the worker's last heartbeat; 0 when never */
};
int store_queue_stats(struct store *s, struct queue_stats *ret, struct err *e);
/* Own transaction. The worker's heartbeat. */
int store_worker_heartbeat(struct store *s, int64_t at, struct err *e);

/* Row counts of jobs, tasks, events and the other tables — used by tests through repoflowctl. */
int store_count(struct store *s, const char *table, int64_t *ret, struct err *e);

#endif
