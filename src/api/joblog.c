/*
 * joblog.c - GET /v1/repos/{repo}/jobs/{id}/log: the job's lines from the
 * journal, as application/x-ndjson (one JSON object per line, the form
 * journal.c writes) or, when the client's Accept prefers it, text/plain.
 *
 * The job must exist in this repo (404 otherwise, as for GET of the job),
 * and the journal is asked for JOB_ID=<id> and REPO=<repo> together, so a
 * repo token never sees another repo's lines. A response is bounded by
 * `limit` lines (at most JOURNAL_LIMIT_MAX, the default) and by
 * JOBLOG_BYTES_MAX bytes of body, since the API builds each response in
 * memory; when lines are left, a `Link: <...?after=<cursor>>; rel="next"`
 * header names the page that continues after the last line shown.
 *
 * The lines are there only when the daemons run under journald (the
 * shipped units). A machine that keeps no journal at all (a developer's
 * stack) answers 200 with no lines; a journal the API's user may not read
 * is a misconfiguration the operator must fix, so it is a 503 that says so.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "journal.h"
#include "route.h"

/* The most body bytes one response builds before it stops and links to the rest. */
#define JOBLOG_BYTES_MAX (8u << 20)

/* --- content negotiation ------------------------------------------------- */

enum joblog_format {
	JOBLOG_NDJSON,
	JOBLOG_TEXT,
};

/*
 * The q value an Accept header gives `type` ("application/x-ndjson"): the q
 * of the most specific media range that matches it (the exact type, then
 * the type with any subtype, then any type at all), 0 when none does. An
 * absent header accepts everything.
 */
static double accept_q(const char *accept, const char *type)
{
	size_t tlen = strcspn(type, "/");
	int best = 0; /* the best match: 3 the exact type, 2 any subtype, 1 any type */
	double q = 0;

	if (accept == NULL)
		return 1;
	for (const char *p = accept; *p != '\0';) {
		size_t len = strcspn(p, ","), rlen;
		const char *range, *params, *qp;
		double rq = 1;
		int spec = 0;

		range = p;
		while (range < p + len && (*range == ' ' || *range == '\t'))
			range++;
		params = memchr(range, ';', (size_t)(p + len - range));
		if (params == NULL)
			params = p + len;
		rlen = (size_t)(params - range);
		while (rlen > 0 && (range[rlen - 1] == ' ' || range[rlen - 1] == '\t'))
			rlen--;
		if (rlen == strlen(type) && strncasecmp(range, type, rlen) == 0)
			spec = 3;
		else if (rlen == tlen + 2 && strncasecmp(range, type, tlen + 1) == 0 &&
			 range[tlen + 1] == '*')
			spec = 2;
		else if (rlen == 3 && strncmp(range, "*/*", 3) == 0)
			spec = 1;
		for (qp = params; qp < p + len; qp++) {
			if (*qp != ';')
				continue;
			qp++;
			while (qp < p + len && (*qp == ' ' || *qp == '\t'))
				qp++;
			if (qp + 1 < p + len && (qp[0] == 'q' || qp[0] == 'Q') && qp[1] == '=') {
				rq = strtod(qp + 2, NULL);
				if (!(rq >= 0 && rq <= 1))
					rq = 0;
			}
		}
		if (spec > best) {
			best = spec;
			q = rq;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return q;
}

/* Which form the client asked for; -1 when it accepts neither (406). */
static int joblog_negotiate(const char *accept)
{
	double json = accept_q(accept, "application/x-ndjson");
	double text = accept_q(accept, "text/plain");

	if (json <= 0 && text <= 0)
		return -1;
	return text > json ? JOBLOG_TEXT : JOBLOG_NDJSON;
}

/* --- the body ------------------------------------------------------------ */

struct joblog_out {
	struct buf *b;
	enum joblog_format format;
	size_t lines;
};

static int joblog_line(const struct journal_line *l, void *ctx)
{
	struct joblog_out *o = ctx;
	struct json_object *j;
	int ret;

	/* Full: leave the line for the next page (one line always fits). */
	if (o->lines > 0 && o->b->len >= JOBLOG_BYTES_MAX)
		return 1;
	if (o->format == JOBLOG_TEXT) {
		ret = journal_line_append_text(o->b, l);
	} else {
		j = journal_line_to_json(l);
		if (j == NULL)
			return -ENOMEM;
		ret = json_append(o->b, j);
		json_object_put(j);
		if (ret == 0)
			ret = buf_puts(o->b, "\n");
	}
	if (ret < 0)
		return -ENOMEM;
	o->lines++;
	return 0;
}

/* Percent-encode s (all but RFC 3986's unreserved characters) onto b. */
static int buf_put_pct(struct buf *b, const char *s)
{
	int ret = 0;

	for (; *s != '\0' && ret == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			ret = buf_append(b, s, 1);
		else
			ret = buf_printf(b, "%%%02X", c);
	}
	return ret;
}

/* Link: </v1/repos/R/jobs/ID/log?limit=N&after=CURSOR>; rel="next" */
static int joblog_link_next(struct request *r, int64_t limit, const char *cursor)
{
	struct buf b = BUF_INIT;
	int ret;

	ret = buf_printf(&b, "/v1/repos/%s/jobs/%lld/log?limit=%lld&after=", r->repo.name,
			 (long long)r->id, (long long)limit);
	if (ret == 0)
		ret = buf_put_pct(&b, cursor);
	if (ret == 0)
		ret = response_header(r, "Link", "<%s>; rel=\"next\"", b.data);
	buf_release(&b);
	return ret;
}

/* A cursor from a client: printable ASCII, bounded. NULL when acceptable. */
static const char *joblog_check_cursor(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > JOURNAL_CURSOR_MAX)
		return "must be a cursor from a Link header of this endpoint";
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return "must be a cursor from a Link header of this endpoint";
	return NULL;
}

int joblog_get(struct request *r)
{
	_cleanup_journal_reader_ struct journal_reader *reader = NULL;
	struct joblog_out out = {.b = &r->out};
	struct json_object *errors;
	struct err e = {{0}, {0}};
	struct job job = {0};
	const char *after, *msg;
	int64_t limit;
	bool more = false;
	int ret, format;

	ret = store_job_get(r->store, r->repo.id, r->id, &job, &e);
	job_release(&job);
	if (ret == -ENOENT)
		return respond_problem(r, 404, "not_found", NULL, "Repo '%s' has no job %lld.",
				       r->repo.name, (long long)r->id);
	if (ret < 0)
		return respond_errno(r, ret, &e);

	errors = problem_errors_new();
	if (errors == NULL)
		return -ENOMEM;
	request_query_int64(r, "limit", 1, JOURNAL_LIMIT_MAX, JOURNAL_LIMIT_MAX, errors, &limit);
	after = request_query(r, "after");
	if (after != NULL && (msg = joblog_check_cursor(after)) != NULL)
		problem_error_add(errors, "after", "%s", msg);
	if (json_object_array_length(errors) > 0)
		return respond_problem(r, 422, "validation_failed", errors,
				       "The query is not valid.");
	json_object_put(errors);

	format = joblog_negotiate(r->io->param(r->io->cookie, "HTTP_ACCEPT"));
	if (format < 0)
		return respond_problem(r, 406, "not_acceptable", NULL,
				       "The job log is served as application/x-ndjson or "
				       "text/plain.");
	out.format = (enum joblog_format)format;

	ret = journal_reader_open(r->id, r->repo.name, after, &reader, &e);
	if (ret == -EINVAL) {
		errors = problem_errors_new();
		if (errors != NULL)
			problem_error_add(errors, "after",
					  "must be a cursor from a Link header of this endpoint");
		return respond_problem(r, 422, "validation_failed", errors,
				       "The query is not valid.");
	}
	if (ret == -EACCES) {
		respond_problem(r, 503, "journal_unavailable", NULL,
				"The API cannot read the system journal, so it cannot show job "
				"logs; on the server, run repoflowctl doctor.");
		return response_header(r, "Retry-After", "60");
	}
	buf_reset(&r->out);
	if (ret == 0) {
		ret = journal_reader_read(reader, (size_t)limit, joblog_line, &out, &more, &e);
		if (ret < 0) {
			buf_reset(&r->out);
			return ret == -ENOMEM ? -ENOMEM : respond_errno(r, -EIO, &e);
		}
	} else if (ret != -ENOENT) {
		/* -ENOENT: no journal on this machine, so no lines. Anything else is ours. */
		return respond_errno(r, ret, &e);
	}

	r->status = 200;
	r->out_type =
	    out.format == JOBLOG_TEXT ? "text/plain; charset=utf-8" : "application/x-ndjson";
	r->responded = true;
	response_header(r, "Cache-Control", "no-cache");
	response_header(r, "Vary", "Accept");
	if (more && journal_reader_cursor(reader) != NULL)
		return joblog_link_next(r, limit, journal_reader_cursor(reader));
	return 0;
}
