/*
 * logs.c - `repoflowctl logs JOB [--follow] [--limit N]`: a job's lines
 * from the journal, through the same reader and the same two forms as the
 * API's GET /v1/repos/{repo}/jobs/{id}/log (journal.h): text for people,
 * and with --json one JSON object per line (the API's ndjson), so a
 * script can read the lines as they come.
 *
 * --follow keeps reading as the journal grows (sd_journal_wait) and stops
 * by itself once the job has finished and its last line is in: the line
 * with the "completed" or "failed" message id, or, for a job that ends
 * without one (canceled while queued), a short grace period after the
 * database says it finished, so lines still on their way to journald are
 * not cut off.
 */
#include "ctl.h"

#include <string.h>

#include "journal.h"
#include "log.h"

/* How often --follow looks at the job's status, and how long it waits for a last line. */
#define FOLLOW_POLL_US	500000
#define FOLLOW_GRACE_MS 3000
#define LOGS_LIMIT_MAX	100000000

struct logs_out {
	bool json;
	bool saw_last; /* the job's final lifecycle line went by */
	struct buf text;
};

static int logs_line(const struct journal_line *l, void *ctx)
{
	struct logs_out *o = ctx;
	struct json_object *j;
	const char *s;

	if (l->message_id != NULL && (strcmp(l->message_id, LOG_MID_JOB_DONE) == 0 ||
				      strcmp(l->message_id, LOG_MID_JOB_FAILED) == 0))
		o->saw_last = true;
	if (o->json) {
		j = journal_line_to_json(l);
		if (j == NULL)
			return -ENOMEM;
		s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s != NULL)
			puts(s);
		json_object_put(j);
		return s != NULL ? 0 : -ENOMEM;
	}
	buf_reset(&o->text);
	if (journal_line_append_text(&o->text, l) < 0)
		return -ENOMEM;
	fwrite(o->text.data, 1, o->text.len, stdout);
	return 0;
}

/* Whether job id has finished, read from the database. */
static int job_finished(struct ctl *c, int64_t id, bool *ret, struct err *e)
{
	_cleanup_(job_release) struct job j = {0};
	int r;

	r = store_job_get(c->store, 0, id, &j, e);
	if (r < 0)
		return r;
	*ret = job_status_finished(j.status);
	return 0;
}

/* Read, wait, read again until the job is over (see the top of the file). */
static int follow(struct ctl *c, struct journal_reader *reader, int64_t id, struct logs_out *out)
{
	int64_t finished_at = 0;
	struct err e = {0};
	bool finished;
	int r;

	for (;;) {
		r = journal_reader_read(reader, 0, logs_line, out, NULL, &e);
		if (r < 0)
			return ctl_fail(&e, r, "cannot read the journal");
		if (fflush(stdout) != 0)
			return CTL_FAILURE; /* main reports it */
		if (finished_at == 0) {
			r = job_finished(c, id, &finished, &e);
			if (r < 0)
				return ctl_fail(&e, r, "cannot read job %lld", (long long)id);
			if (finished)
				finished_at = mono_ms();
		}
		if (finished_at != 0 &&
		    (out->saw_last || mono_ms() - finished_at >= FOLLOW_GRACE_MS))
			return CTL_OK;
		r = journal_reader_wait(reader, FOLLOW_POLL_US);
		if (r < 0)
			return ctl_fail(NULL, r, "cannot wait for the journal");
	}
}

int ctl_logs(struct ctl *c, const struct ctl_args *a)
{
	_cleanup_journal_reader_ struct journal_reader *reader = NULL;
	_cleanup_(job_release) struct job j = {0};
	struct logs_out out = {.json = c->json, .text = BUF_INIT};
	struct err e = {0};
	int64_t id, limit = 0;
	bool more = false;
	int r, code;

	code = ctl_parse_id(c, a->pos[0], &id);
	if (code != CTL_OK)
		return code;
	if (a->limit != NULL && parse_int64(a->limit, 1, LOGS_LIMIT_MAX, &limit) < 0)
		return ctl_usage_error(c, "--limit must be a number from 1 to %d", LOGS_LIMIT_MAX);
	if (a->follow && a->limit != NULL)
		return ctl_usage_error(c, "--follow and --limit do not go together");
	r = store_job_get(c->store, 0, id, &j, &e);
	if (r == -ENOENT) {
		ctl_error("no job %lld", (long long)id);
		return CTL_FAILURE;
	}
	if (r < 0)
		return ctl_fail(&e, r, "cannot read job %lld", (long long)id);

	r = journal_reader_open(id, j.repo, NULL, &reader, &e);
	if (r == -EACCES)
		return ctl_fail(&e, r,
				"cannot read the journal (run as root, or as a member of the "
				"systemd-journal group)");
	if (r == -ENOENT)
		return ctl_fail(&e, r,
				"no job logs here (outside systemd the daemons log to their "
				"stderr)");
	if (r < 0)
		return ctl_fail(&e, r, "cannot open the journal");

	if (a->follow)
		code = follow(c, reader, id, &out);
	else {
		r = journal_reader_read(reader, (size_t)limit, logs_line, &out, &more, &e);
		code = r < 0 ? ctl_fail(&e, r, "cannot read the journal") : CTL_OK;
		if (code == CTL_OK && r == 0 && !c->json)
			fprintf(stderr, PROG ": job %lld has no lines in the journal\n",
				(long long)id);
		if (code == CTL_OK && more)
			fprintf(stderr, PROG ": more lines follow; raise --limit to see them\n");
	}
	buf_release(&out.text);
	return code;
}
