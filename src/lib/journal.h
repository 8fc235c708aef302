/*
 * journal.h - one job's log lines, read back from the systemd journal.
 *
 * The daemons write every line about a job with JOB_ID=, REPO=, JOB_KIND=
 * and BRANCH= (log.h); this module finds those lines again with the
 * sd-journal API, for the API's GET /v1/repos/{repo}/jobs/{id}/log and for
 * `repoflowctl logs`. It is the one reader and the one writer of a line's
 * JSON and text forms, so both show the same thing.
 *
 * Only a fixed list of fields leaves the journal (the message, its time
 * and priority, and repoflow's own job fields): nothing the journal
 * records about the process (command lines, environment, cgroups) is ever
 * copied out.
 *
 * A reader is not thread-safe; open one per request or per command.
 * Library code: it never logs.
 */
#ifndef REPOFLOW_JOURNAL_H
#define REPOFLOW_JOURNAL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The most lines the API returns in one response, and its default. */
#define JOURNAL_LIMIT_MAX 10000
/* The longest cursor accepted from a client (systemd's are about 150 bytes). */
#define JOURNAL_CURSOR_MAX 512

/*
 * One line. Strings are borrowed from the reader and valid only during
 * the callback that receives the line; they are valid UTF-8 (a byte that
 * is not becomes U+FFFD) without NUL bytes. NULL means the field is absent.
 */
struct journal_line {
	int64_t at_us; /* the journal's realtime stamp, microseconds since the epoch */
	int priority;  /* 0 (emerg) to 7 (debug); 6 (info) when absent */
	const char *message;
	int64_t job_id;
	const char *repo;
	const char *job_kind;
	const char *branch; /* NULL also when the job names no branch */
	int attempt;	    /* 0 when absent */
	const char *message_id;
	const char *source; /* SYSLOG_IDENTIFIER: repoflow-api, repoflow-worker */
};

/* The syslog word of a priority ("err", "info", ...). */
const char *journal_priority_name(int priority);

/*
 * The line as one JSON object, the form of application/x-ndjson:
 * {"at", "priority", "message", "job_id", "repo", "job_kind", "branch",
 * "attempt", "message_id", "source"}, the last five only when present.
 * NULL on ENOMEM.
 */
struct json_object *journal_line_to_json(const struct journal_line *l);
/*
 * Append the line's text form to b: "<at> <priority> <source>: <message>\n",
 * a multi-line message's later lines indented by a tab. 0 or -ENOMEM.
 */
int journal_line_append_text(struct buf *b, const struct journal_line *l);

struct journal_reader;

/*
 * Open the local system journal (the files journald writes for system
 * services) filtered on JOB_ID=job_id and, when repo is not NULL,
 * REPO=repo; `after` (may be NULL) is a cursor from journal_reader_cursor
 * to start after. Errors: -EACCES with code "journal_denied" when journal
 * files exist but this user may read none of them (it needs the
 * systemd-journal group), -ENOENT "no_journal" when this machine keeps no
 * journal, -EINVAL "bad_cursor" for a malformed cursor, -ENOMEM.
 */
int journal_reader_open(int64_t job_id, const char *repo, const char *after,
			struct journal_reader **ret, struct err *e);
void journal_reader_free(struct journal_reader *r);
static inline void journal_reader_freep(struct journal_reader **r)
{
	if (*r != NULL)
		journal_reader_free(*r);
}
#define _cleanup_journal_reader_ _cleanup_(journal_reader_freep)

/*
 * The callback of journal_reader_read: 0 to take the line, 1 to stop
 * before it (the output is full: the line is left for the next read), or a
 * negative errno to stop with that error.
 */
typedef int (*journal_line_fn)(const struct journal_line *l, void *ctx);

/*
 * Pass the next lines, oldest first, to fn: at most `limit` of them (0:
 * no limit), until the journal has no more or fn says stop. Returns how
 * many fn took; *ret_more (may be NULL) says whether a line was left
 * unread because of the limit or fn. A later call continues after the
 * last line taken, including lines written since.
 */
int journal_reader_read(struct journal_reader *r, size_t limit, journal_line_fn fn, void *ctx,
			bool *ret_more, struct err *e);
/*
 * Wait up to timeout_us for the journal to change (new lines, rotation).
 * 1 when it did, 0 on timeout, negative errno on failure.
 */
int journal_reader_wait(struct journal_reader *r, uint64_t timeout_us);
/* The cursor of the last line taken (borrowed), NULL when none was. */
const char *journal_reader_cursor(const struct journal_reader *r);

#endif
