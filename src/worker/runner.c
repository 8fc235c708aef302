/*
 * runner.c - claiming, the pool of job threads, leases, and how a job ends.
 *
 * Shape: the main thread owns every decision about *which* job runs
 * (claiming with its own store connection, one BEGIN IMMEDIATE per claim,
 * so per-repo order and cross-repo parallelism come from store_job_claim)
 * and keeps every running job's lease alive. Each pool thread has its own
 * store connection (SQLite handles are per thread) and runs one job at a
 * time from claim to finish. The two sides share a slot per thread under
 * one mutex; the main thread keeps its own copy of each running job's
 * lease fields, so it never reads a job a thread is writing.
 *
 * How a job ends is decided here, in one place: completed, canceled,
 * requeued because the worker is stopping, retried with exponential
 * backoff (transient failures, while attempts remain), or error with a
 * problem object. The job row, its event and the workflow's own rows (its
 * `apply`) are written in one transaction, and only as the lease owner of
 * the attempt: a lost lease means the attempt ends without writing.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"
#include "workflow.h"

enum slot_state {
	SLOT_IDLE,
	SLOT_ASSIGNED,
};

struct slot {
	struct runner *runner;
	pthread_t thread;
	bool started;
	struct store *store; /* used only by this slot's thread once it runs */
	pthread_cond_t cond;
	atomic_bool lease_lost;

	/* Under runner->lock. */
	enum slot_state state;
	struct job job; /* the thread's while SLOT_ASSIGNED */

	/* The main thread's only: its copy of the lease; id 0 when the slot is free. */
	struct job lease;
	int64_t next_renew; /* monotonic ms */
};

struct runner {
	const struct conf *conf;
	char *owner;
	int64_t lease_ms;
	int efd;
	atomic_bool stopping;
	pthread_mutex_t lock;
	bool quit; /* under lock */
	int n;
	struct slot *slots;
};

/*
 * Bookkeeping strings on the main thread: without memory the worker cannot
 * keep a lease or write an outcome, and aborting is the honest answer (a
 * restarted worker recovers the jobs).
 */
static char *xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL) {
		log_msg(LOG_CRIT, "out of memory");
		abort();
	}
	return d;
}

/* The fields a lease renewal, a log line and STATUS= need. */
static void lease_copy(struct job *dst, const struct job *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->id = src->id;
	dst->repo_id = src->repo_id;
	dst->kind = src->kind;
	dst->attempt = src->attempt;
	dst->max_attempts = src->max_attempts;
	dst->repo = xstrdup(src->repo);
	dst->branch = xstrdup(src->branch);
	dst->lease_owner = xstrdup(src->lease_owner);
}

/* --- how a job ends ------------------------------------------------------ */

enum verdict_action { VERDICT_FINISH, VERDICT_RETRY };

struct verdict {
	enum verdict_action action;
	enum job_status status; /* VERDICT_FINISH */
	int64_t run_at;		/* VERDICT_RETRY, wall clock ms */
	char *message;
	char *result; /* JSON text or NULL */
	char *error;  /* JSON text or NULL */
};

static void verdict_release(struct verdict *v)
{
	free(v->message);
	free(v->result);
	free(v->error);
	memset(v, 0, sizeof(*v));
}

/* Failures worth another attempt: the remote, a lock, a busy database, a moved lease. */
static bool transient(int rc, const struct err *e)
{
	static const char *const codes[] = {"remote_unreachable", "remote_moved", "mirror_locked",
					    "mirror_moved", "busy"};

	if (rc == -EBUSY || rc == -ENETUNREACH)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (strcmp(e->code, codes[i]) == 0)
			return true;
	return false;
}

static const char *problem_title(const char *code)
{
	static const struct {
		const char *code, *title;
	} titles[] = {
	    {"remote_unreachable", "The remote cannot be reached"},
	    {"auth_failed", "The remote refused the credentials"},
	    {"mirror_locked", "The mirror is locked"},
	    {"remote_moved", "The remote changed during the job"},
	    {"busy", "The database is busy"},
	    {"not_implemented", "Not implemented yet"},
	    {"attempts_exhausted", "The job was interrupted too many times"},
	    {"git_error", "A git operation failed"},
	    {"not_found", "Something the job needs does not exist"},
	    {"conflict", "Restacking stopped on a conflict"},
	    {"branch_not_found", "The branch is not on the remote"},
	    {"not_tracked", "The branch is not tracked"},
	    {"cycle", "The change would make the stack a cycle"},
	    {"is_trunk", "The trunk cannot be tracked"},
	    {"no_merge_base", "The branches have no history in common"},
	    {"push_rejected", "The remote rejected the push"},
	    {"mirror_moved", "The mirror changed during the job"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(titles); i++)
		if (strcmp(code, titles[i].code) == 0)
			return titles[i].title;
	return "The job failed";
}

/* {"type", "title", "detail", "retryable"} as text (caller frees); NULL on ENOMEM. */
static char *problem_json(const char *code, const char *detail, bool retryable)
{
	struct json_object *p = json_object_new_object();
	char type[128];
	char *s = NULL;

	if (p == NULL)
		return NULL;
	snprintf(type, sizeof(type), "urn:repoflow:problem:%s", code);
	if (json_object_object_add(p, "type", json_object_new_string(type)) == 0 &&
	    json_object_object_add(p, "title", json_object_new_string(problem_title(code))) == 0 &&
	    json_object_object_add(p, "detail", json_object_new_string(detail)) == 0 &&
	    json_object_object_add(p, "retryable", json_object_new_boolean(retryable)) == 0)
		s = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
	json_object_put(p);
	return s;
}

/* The delay before attempt+1: base * 2^(attempt-1), capped. */
static int64_t retry_delay(const struct conf *c, int attempt)
{
	int64_t d = c->retry_base_ms;

	for (int i = 1; i < attempt && d < c->retry_max_ms; i++)
		d *= 2;
	return d < c->retry_max_ms ? d : c->retry_max_ms;
}

static int verdict_make(const struct runner *r, const struct frame *f, int rc, struct verdict *v)
{
	const struct job *j = f->job;
	const char *code, *detail;
	char when[RFC3339_LEN];
	bool retryable;

	memset(v, 0, sizeof(*v));
	if (f->result != NULL) {
		v->result =
		    strdup(json_object_to_json_string_ext(f->result, JSON_C_TO_STRING_PLAIN));
		if (v->result == NULL)
			return -ENOMEM;
	}

	if (rc >= 0) {
		v->action = VERDICT_FINISH;
		v->status = JOB_COMPLETED;
		v->message = strdup(f->message != NULL ? f->message : "Completed");
		return v->message == NULL ? -ENOMEM : 0;
	}
	if (rc == -ECANCELED) {
		v->action = VERDICT_FINISH;
		v->status = JOB_CANCELED;
		v->message = strdup("Canceled at a step boundary");
		return v->message == NULL ? -ENOMEM : 0;
	}
	if (rc == -ESHUTDOWN) {
		/* Not the job's fault: no error, and it may run again at once. */
		v->action = VERDICT_RETRY;
		v->run_at = now_ms();
		v->message = strdup("Requeued: the worker stopped before the job finished");
		return v->message == NULL ? -ENOMEM : 0;
	}

	code = f->err.code[0] != '\0' ? f->err.code : rc == -EBUSY ? "busy" : "internal";
	detail = f->err.msg[0] != '\0' ? f->err.msg : strerror(-rc);
	retryable = transient(rc, &f->err);
	v->error = problem_json(code, detail, retryable);
	if (v->error == NULL)
		return -ENOMEM;
	if (retryable && j->attempt < j->max_attempts) {
		v->action = VERDICT_RETRY;
		v->run_at = now_ms() + retry_delay(r->conf, j->attempt);
		if (asprintf(&v->message, "Attempt %d of %d failed: %s; retrying at %s", j->attempt,
			     j->max_attempts, detail, ms_to_rfc3339(v->run_at, when)) < 0)
			v->message = NULL;
	} else {
		v->action = VERDICT_FINISH;
		v->status = JOB_ERROR;
		if (retryable &&
		    asprintf(&v->message, "Failed after %d attempts: %s", j->attempt, detail) < 0)
			v->message = NULL;
		else if (!retryable && asprintf(&v->message, "Failed: %s", detail) < 0)
			v->message = NULL;
	}
	return v->message == NULL ? -ENOMEM : 0;
}

/* One transaction: the workflow's rows, then the job row and its event. */
static int verdict_commit(struct frame *f, int rc, const struct verdict *v, struct err *e)
{
	struct store *s = f->store;
	int r = store_begin(s, e);

	if (r < 0)
		return r;
	if (f->apply != NULL)
		r = f->apply(f, rc, e);
	if (r == 0 && v->action == VERDICT_FINISH)
		r = store_job_finish(s, f->job, v->status, v->message, v->result, v->error, e);
	else if (r == 0)
		r = store_job_retry(s, f->job, v->run_at, v->message, v->error, e);
	if (r == 0)
		r = store_commit(s, e);
	if (r < 0)
		store_rollback(s);
	return r;
}

static void verdict_log(const struct frame *f, const struct verdict *v, int rc)
{
	const struct job *j = f->job;

	if (v->action == VERDICT_RETRY)
		log_job(j, rc == -ESHUTDOWN ? LOG_NOTICE : LOG_WARNING, LOG_MID_JOB_RETRIED, "%s",
			v->message);
	else if (v->status == JOB_ERROR)
		log_job(j, LOG_ERR, LOG_MID_JOB_FAILED, "%s", v->message);
	else
		log_job(j, LOG_INFO, LOG_MID_JOB_DONE, "%s: %s", job_status_names[v->status],
			v->message);
}

/*
 * Record how the job ended. A busy database is waited out a few times; a
 * completion whose own writes fail is recorded as that failure instead.
 * If nothing can be written the job stays running, and the next worker to
 * start requeues it.
 */
static void job_finish(struct runner *r, struct slot *sl, struct frame *f, int rc)
{
	for (int tries = 0;; tries++) {
		struct verdict v;
		struct err e = {{0}, {0}};
		int w;

		if (rc == -ESTALE || atomic_load(&sl->lease_lost)) {
			log_job(
			    f->job, LOG_WARNING, NULL,
			    "The lease was lost; this attempt ends without writing its outcome");
			return;
		}
		w = verdict_make(r, f, rc, &v);
		if (w == 0)
			w = verdict_commit(f, rc, &v, &e);
		if (w == 0) {
			verdict_log(f, &v, rc);
			verdict_release(&v);
			return;
		}
		verdict_release(&v);
		if (w == -ESTALE) {
			log_job(f->job, LOG_WARNING, NULL,
				"The lease was lost before the outcome was written: %s", e.msg);
			return;
		}
		if (tries >= 4) {
			log_job(f->job, LOG_ERR, NULL,
				"Could not record the outcome (%s); the job stays running until a "
				"worker restarts",
				e.msg[0] != '\0' ? e.msg : strerror(-w));
			return;
		}
		if (w == -EBUSY || w == -ENOMEM) {
			sleep_ms(100LL << tries);
		} else if (rc >= 0 || rc == -ECANCELED || rc == -ESHUTDOWN) {
			log_job(f->job, LOG_ERR, NULL, "Writing the outcome failed: %s", e.msg);
			rc = w;
			f->err = e;
		}
	}
}

static void job_run(struct runner *r, struct slot *sl)
{
	struct job *j = &sl->job;
	struct frame f = {
	    .job = j,
	    .store = sl->store,
	    .conf = r->conf,
	    .lease_lost = &sl->lease_lost,
	    .stopping = &r->stopping,
	};
	int rc;

	log_job(j, LOG_INFO, LOG_MID_JOB_STARTED, "Started %s (attempt %d of %d)",
		job_kinds[j->kind].name, j->attempt, j->max_attempts);
	job_options_default(&f.options);
	if (j->options != NULL && job_options_from_string(j->options, &f.options) < 0)
		rc = err_set(&f.err, -EINVAL, "internal", "the job's stored options are invalid");
	else if (j->attempt > j->max_attempts)
		/*
		 * Only a recovered job gets here: a worker died (or stopped)
		 * during each of its attempts. Stop the crash loop.
		 */
		rc = err_set(&f.err, -ELOOP, "attempts_exhausted",
			     "attempt %d of %d: the worker stopped during every earlier attempt",
			     j->attempt, j->max_attempts);
	else
		rc = workflow_for(j->kind)(&f);
	job_finish(r, sl, &f, rc);
	frame_release(&f);
}

static void *slot_main(void *arg)
{
	struct slot *sl = arg;
	struct runner *r = sl->runner;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (sl->state != SLOT_ASSIGNED && !r->quit)
			pthread_cond_wait(&sl->cond, &r->lock);
		if (sl->state != SLOT_ASSIGNED)
			break;
		pthread_mutex_unlock(&r->lock);

		job_run(r, sl);

		pthread_mutex_lock(&r->lock);
		job_release(&sl->job);
		sl->state = SLOT_IDLE;
		(void)eventfd_write(r->efd, 1);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* --- the main thread's side ---------------------------------------------- */

int runner_new(const struct conf *conf, const char *owner, struct runner **ret, struct err *e)
{
	struct runner *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	r->conf = conf;
	r->lease_ms = (int64_t)conf->lease_s * 1000;
	r->n = conf->worker_threads;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->owner = strdup(owner);
	r->slots = calloc((size_t)r->n, sizeof(*r->slots));
	pthread_mutex_init(&r->lock, NULL);
	atomic_init(&r->stopping, false);
	if (r->efd < 0 || r->owner == NULL || r->slots == NULL) {
		rc = r->efd < 0 ? err_set(e, -errno, "internal", "eventfd: %m")
				: err_set(e, -ENOMEM, "internal", "out of memory");
		runner_free(r);
		return rc;
	}
	for (int i = 0; i < r->n; i++) {
		struct slot *sl = &r->slots[i];

		sl->runner = r;
		pthread_cond_init(&sl->cond, NULL);
		atomic_init(&sl->lease_lost, false);
		rc = store_open(conf->database, conf->busy_timeout_ms, 0, &sl->store, e);
		if (rc < 0) {
			runner_free(r);
			return rc;
		}
		rc = pthread_create(&sl->thread, NULL, slot_main, sl);
		if (rc != 0) {
			runner_free(r);
			return err_set(e, -rc, "internal", "pthread_create: %s", strerror(rc));
		}
		sl->started = true;
	}
	*ret = r;
	return 0;
}

void runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	if (r->slots != NULL) {
		pthread_mutex_lock(&r->lock);
		r->quit = true;
		for (int i = 0; i < r->n; i++)
			pthread_cond_signal(&r->slots[i].cond);
		pthread_mutex_unlock(&r->lock);
		for (int i = 0; i < r->n; i++) {
			struct slot *sl = &r->slots[i];

			if (sl->started)
				pthread_join(sl->thread, NULL);
			if (sl->store != NULL)
				store_close(sl->store);
			pthread_cond_destroy(&sl->cond);
			job_release(&sl->lease);
			job_release(&sl->job);
		}
		free(r->slots);
	}
	pthread_mutex_destroy(&r->lock);
	if (r->efd >= 0)
		close(r->efd);
	free(r->owner);
	free(r);
}

int runner_fd(const struct runner *r)
{
	return r->efd;
}

int runner_reap(struct runner *r)
{
	eventfd_t v;
	int n = 0;

	(void)eventfd_read(r->efd, &v);
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n; i++) {
		struct slot *sl = &r->slots[i];

		if (sl->lease.id != 0 && sl->state == SLOT_IDLE) {
			job_release(&sl->lease);
			memset(&sl->lease, 0, sizeof(sl->lease));
			n++;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

int runner_running(const struct runner *r)
{
	int n = 0;

	for (int i = 0; i < r->n; i++)
		n += r->slots[i].lease.id != 0;
	return n;
}

static struct slot *free_slot(struct runner *r)
{
	for (int i = 0; i < r->n; i++)
		if (r->slots[i].lease.id == 0)
			return &r->slots[i];
	return NULL;
}

int runner_claim(struct runner *r, struct store *s, struct err *e)
{
	struct slot *sl;
	int started = 0;

	while (!atomic_load(&r->stopping) && (sl = free_slot(r)) != NULL) {
		struct job j = {0};
		int rc = store_job_claim(s, r->owner, r->lease_ms, &j, e);

		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		lease_copy(&sl->lease, &j);
		sl->next_renew = mono_ms() + r->lease_ms / 3;

		pthread_mutex_lock(&r->lock);
		sl->job = j; /* the thread owns it now */
		atomic_store(&sl->lease_lost, false);
		sl->state = SLOT_ASSIGNED;
		pthread_cond_signal(&sl->cond);
		pthread_mutex_unlock(&r->lock);
		started++;
	}
	return started;
}

int64_t runner_renew(struct runner *r, struct store *s)
{
	int64_t now = mono_ms(), next = 0;

	for (int i = 0; i < r->n; i++) {
		struct slot *sl = &r->slots[i];
		struct err e = {{0}, {0}};
		int rc;

		if (sl->lease.id == 0)
			continue;
		if (now >= sl->next_renew) {
			rc = store_job_renew(s, &sl->lease, r->lease_ms, &e);
			if (rc == 0) {
				sl->next_renew = now + r->lease_ms / 3;
			} else if (rc == -ESTALE) {
				bool running;

				/* The job may simply have finished since the last reap. */
				pthread_mutex_lock(&r->lock);
				running = sl->state == SLOT_ASSIGNED;
				if (running)
					atomic_store(&sl->lease_lost, true);
				pthread_mutex_unlock(&r->lock);
				if (running)
					log_job(&sl->lease, LOG_WARNING, NULL,
						"The lease is gone; the job stops at its next step "
						"boundary without finishing");
				sl->next_renew = now + r->lease_ms;
			} else {
				log_job(&sl->lease, LOG_WARNING, NULL,
					"Renewing the lease failed (%s); trying again in 1 s",
					e.msg);
				sl->next_renew = now + 1000;
			}
		}
		if (next == 0 || sl->next_renew < next)
			next = sl->next_renew;
	}
	return next;
}

void runner_stop(struct runner *r)
{
	atomic_store(&r->stopping, true);
}

void runner_status(const struct runner *r, char *buf, size_t size)
{
	size_t len = 0;
	int n = runner_running(r);

	if (n == 0) {
		snprintf(buf, size, atomic_load(&r->stopping) ? "stopping" : "idle");
		return;
	}
	len = (size_t)snprintf(buf, size, "%s%s", atomic_load(&r->stopping) ? "stopping, " : "",
			       n == 1 ? "running job " : "running jobs ");
	for (int i = 0; i < r->n && len < size; i++) {
		const struct job *l = &r->slots[i].lease;

		if (l->id == 0)
			continue;
		len +=
		    (size_t)snprintf(buf + len, size - len, "%s%lld %s on %s%s%s",
				     len > 0 && buf[len - 1] != ' ' ? ", " : "", (long long)l->id,
				     job_kinds[l->kind].name, l->repo, l->branch != NULL ? " " : "",
				     l->branch != NULL ? l->branch : "");
	}
}

int runner_recover(struct store *s, const char *owner, struct err *e)
{
	struct job_filter filter = {.status_mask = 1u << JOB_RUNNING, .limit = 500};
	struct job *jobs = NULL;
	size_t n = 0;
	int count, r;

	/*
	 * store_job_recover only counts; list the orphans first so each gets
	 * its own log line. This worker holds the database's worker lock, so
	 * no other worker can claim between the list and the requeue.
	 */
	r = store_job_list(s, &filter, &jobs, &n, e);
	if (r < 0)
		return r;
	count = store_job_recover(s, owner, e);
	if (count < 0) {
		job_array_free(jobs, n);
		return count;
	}
	for (size_t i = 0; i < n; i++)
		if (jobs[i].lease_owner == NULL || strcmp(jobs[i].lease_owner, owner) != 0)
			log_job(&jobs[i], LOG_WARNING, LOG_MID_JOB_ORPHAN,
				"Orphan of worker %s (attempt %d of %d); requeued",
				jobs[i].lease_owner != NULL ? jobs[i].lease_owner : "(unknown)",
				jobs[i].attempt, jobs[i].max_attempts);
	if ((size_t)count > n)
		log_msg(LOG_WARNING, "Requeued %d orphaned jobs (%zu logged one by one)", count, n);
	job_array_free(jobs, n);
	return count;
}
