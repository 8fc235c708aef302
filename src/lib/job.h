/*
 * job.h - the one place that knows job kinds, job statuses and their words,
 * the job record as it is stored, and the one JSON writer for a job (the
 * API, the events and repoflowctl all print a job through job_to_json).
 */
#ifndef REPOFLOW_JOB_H
#define REPOFLOW_JOB_H

#include <json-c/json.h>

#include "util.h"

enum job_kind {
	JOB_SYNC_REPO,
	JOB_RESTACK_REPO,
	JOB_RESTACK_SUBTREE,
	JOB_REBASE_BRANCH,
	JOB_REPARENT_BRANCH,
	JOB_REGISTER_EXISTING_BRANCH,
	JOB_KIND_MAX,
};

enum job_status {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_COMPLETED,
	JOB_ERROR,
	JOB_CANCELED,
	JOB_STATUS_MAX,
};

/* Which request fields a kind takes. */
enum field_rule { FIELD_FORBIDDEN, FIELD_OPTIONAL, FIELD_REQUIRED };

struct job_kind_info {
	const char *name;
	enum field_rule branch;
	enum field_rule parent;
	bool takes_restack;  /* options.restack (sync_repo only) */
};

extern const struct job_kind_info job_kinds[JOB_KIND_MAX];
extern const char *const job_status_names[JOB_STATUS_MAX];

/* Name to enum; -EINVAL when unknown. */
int job_kind_from_name(const char *name);
int job_status_from_name(const char *name);
static inline bool job_status_finished(enum job_status s)
{
	return s == JOB_COMPLETED || s == JOB_ERROR || s == JOB_CANCELED;
}

/* The options every kind understands, with their defaults applied. */
enum on_conflict { ON_CONFLICT_ABORT, ON_CONFLICT_SKIP };
struct job_options {
	bool dry_run;  /* default false */
	bool push;     /* default true */
	enum on_conflict on_conflict;
	bool restack;  /* sync_repo; default true */
};
void job_options_default(struct job_options *o);
/* Canonical JSON text of options, defaults filled in (kind decides `restack`). */
char *job_options_to_string(enum job_kind kind, const struct job_options *o);
/* Parse the stored canonical text back. */
int job_options_from_string(const char *s, struct job_options *o);

/*
 * A job row. Strings are owned by the struct (job_release frees them).
 * Times are milliseconds since the epoch, 0 when unset.
 */
struct job {
	int64_t id;
	int64_t repo_id;
	char *repo;        /* repo name */
	enum job_kind kind;
	char *branch;      /* NULL when not given */
	char *parent;      /* NULL when not given */
	char *options;     /* canonical JSON text */
	enum job_status status;
	char *message;
	int64_t progress_step, progress_total;
	char *progress_detail; /* NULL when none */
	int attempt, max_attempts;
	bool cancel_requested;
	bool deduplicated;     /* set by the enqueue that found it, not stored */
	char *result;          /* JSON text or NULL */
	char *error;           /* JSON problem text or NULL */
	int64_t version;
	int64_t created_at, updated_at, started_at, finished_at, run_at;
	char *lease_owner;     /* NULL when not running */
	int64_t lease_expires_at;
};
void job_release(struct job *j);

/* The job as API.md shows it. Returns a new object (caller puts it), NULL on ENOMEM. */
struct json_object *job_to_json(const struct job *j);

#endif
