/*
 * journal.c - reading one job's lines back from the journal (journal.h).
 *
 * The filter is the journal's own field index: JOB_ID=<id> and REPO=<name>
 * are two matches on different fields, which sd-journal ANDs, so a query
 * touches only the entries of that job however large the journal is.
 * Entries come oldest first, merged across journal files by sd-journal.
 *
 * A reader keeps its position, so one reader serves a bounded page (the
 * API: at most `limit` lines, then a cursor to continue after) and a
 * follow loop (repoflowctl logs --follow: read, wait, read again). To stop
 * at a limit it has to look one entry ahead, and steps back when it did,
 * so the entry it looked at is the first of the next read.
 *
 * Each line's fields are copied into buffers the reader owns, cleaned on
 * the way: the journal stores bytes, and a message from git or from a
 * remote may hold anything; JSON needs UTF-8, so invalid sequences (and
 * NUL bytes) become U+FFFD here, once, for every output.
 */
#include "journal.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>

/* The fields a line copies out of an entry, and nothing else. */
enum jfield {
	JF_MESSAGE,
	JF_PRIORITY,
	JF_JOB_ID,
	JF_REPO,
	JF_JOB_KIND,
	JF_BRANCH,
	JF_ATTEMPT,
	JF_MESSAGE_ID,
	JF_SOURCE,
	JF_MAX,
};

static const char *const jfield_names[JF_MAX] = {
    [JF_MESSAGE] = "MESSAGE",	  [JF_PRIORITY] = "PRIORITY",	  [JF_JOB_ID] = "JOB_ID",
    [JF_REPO] = "REPO",		  [JF_JOB_KIND] = "JOB_KIND",	  [JF_BRANCH] = "BRANCH",
    [JF_ATTEMPT] = "JOB_ATTEMPT", [JF_MESSAGE_ID] = "MESSAGE_ID", [JF_SOURCE] = "SYSLOG_IDENTIFIER",
};

struct journal_reader {
	sd_journal *j;
	char *after;  /* the cursor to skip on the first read; NULL when none */
	char *cursor; /* the last line taken */
	struct buf field[JF_MAX];
	bool present[JF_MAX];
};

const char *journal_priority_name(int priority)
{
	static const char *const words[] = {"emerg",   "alert",	 "crit", "err",
					    "warning", "notice", "info", "debug"};

	return priority >= 0 && priority < (int)ARRAY_SIZE(words) ? words[priority] : "info";
}

/*
 * The length of the valid UTF-8 sequence at s (of n bytes), 0 when it is
 * not one: no overlong forms, no surrogates, nothing above U+10FFFF, and
 * no NUL byte.
 */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Copy n bytes of s into b as valid UTF-8 without NUL bytes. 0 or -ENOMEM. */
static int buf_put_utf8(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	int ret = 0;

	while (i < n && ret == 0) {
		size_t len = utf8_valid_len(p + i, n - i);

		if (len > 0) {
			i += len;
			run += len;
			continue;
		}
		/* Flush the valid run before this byte, then the replacement. */
		ret = buf_append(b, p + i - run, run);
		if (ret == 0)
			ret = buf_puts(b, "\xef\xbf\xbd");
		run = 0;
		i++;
	}
	if (ret == 0)
		ret = buf_append(b, p + i - run, run);
	return ret;
}

/* Load the fields of the current entry into the reader's buffers and *l. */
static int load_line(struct journal_reader *r, struct journal_line *l, struct err *e)
{
	uint64_t usec = 0;
	int64_t v;
	int ret;

	memset(l, 0, sizeof(*l));
	ret = sd_journal_get_realtime_usec(r->j, &usec);
	if (ret < 0)
		return err_set(e, ret, "journal_error", "reading an entry's time: %s",
			       strerror(-ret));
	l->at_us = (int64_t)usec;
	for (int f = 0; f < JF_MAX; f++) {
		size_t flen = strlen(jfield_names[f]), len = 0;
		const void *data = NULL;

		buf_reset(&r->field[f]);
		r->present[f] = false;
		ret = sd_journal_get_data(r->j, jfield_names[f], &data, &len);
		if (ret == -ENOENT)
			continue;
		/* A field too large or compressed with what we cannot read: leave it out. */
		if (ret == -E2BIG || ret == -EPROTONOSUPPORT || ret == -EBADMSG)
			continue;
		if (ret < 0)
			return err_set(e, ret, "journal_error", "reading %s: %s", jfield_names[f],
				       strerror(-ret));
		/* data is "NAME=value". */
		if (len <= flen || ((const char *)data)[flen] != '=')
			continue;
		if (buf_put_utf8(&r->field[f], (const char *)data + flen + 1, len - flen - 1) < 0 ||
		    buf_puts(&r->field[f], "") < 0)
			return err_set(e, -ENOMEM, "internal", "out of memory");
		r->present[f] = true;
	}
#define FIELD(f) (r->present[f] ? r->field[f].data : NULL)
	l->message = FIELD(JF_MESSAGE) != NULL ? FIELD(JF_MESSAGE) : "";
	l->priority = 6;
	if (FIELD(JF_PRIORITY) != NULL && parse_int64(FIELD(JF_PRIORITY), 0, 7, &v) == 0)
		l->priority = (int)v;
	if (FIELD(JF_JOB_ID) != NULL && parse_int64(FIELD(JF_JOB_ID), 1, INT64_MAX, &v) == 0)
		l->job_id = v;
	if (FIELD(JF_ATTEMPT) != NULL && parse_int64(FIELD(JF_ATTEMPT), 0, INT32_MAX, &v) == 0)
		l->attempt = (int)v;
	l->repo = FIELD(JF_REPO);
	l->job_kind = FIELD(JF_JOB_KIND);
	/* log_job writes BRANCH= empty for a job without a branch. */
	l->branch = FIELD(JF_BRANCH) != NULL && *FIELD(JF_BRANCH) != '\0' ? FIELD(JF_BRANCH) : NULL;
	l->message_id = FIELD(JF_MESSAGE_ID);
	l->source = FIELD(JF_SOURCE);
#undef FIELD
	return 0;
}

/*
 * Whether some journal directory has anything in it: then files exist
 * that sd_journal_open could not read, which means permissions.
 */
static bool journal_dirs_populated(void)
{
	static const char *const dirs[] = {"/run/log/journal", "/var/log/journal"};

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		bool found = false;

		if (d == NULL) {
			if (errno == EACCES)
				return true;
			continue;
		}
		while (!found && (de = readdir(d)) != NULL)
			found = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
		closedir(d);
		if (found)
			return true;
	}
	return false;
}

static int add_match(sd_journal *j, const char *field, const char *value, struct err *e)
{
	_cleanup_free_ char *m = NULL;
	int ret;

	if (asprintf(&m, "%s=%s", field, value) < 0)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	ret = sd_journal_add_match(j, m, 0);
	if (ret < 0)
		return err_set(e, ret, "journal_error", "adding the match %s: %s", field,
			       strerror(-ret));
	return 0;
}

int journal_reader_open(int64_t job_id, const char *repo, const char *after,
			struct journal_reader **ret, struct err *e)
{
	struct journal_reader *r;
	char id[24];
	int k;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return err_set(e, -ENOMEM, "internal", "out of memory");
	k = sd_journal_open(&r->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (k < 0) {
		journal_reader_free(r);
		return err_set(e, k, "journal_error", "opening the journal: %s", strerror(-k));
	}
	if (sd_journal_has_runtime_files(r->j) <= 0 && sd_journal_has_persistent_files(r->j) <= 0) {
		journal_reader_free(r);
		if (journal_dirs_populated())
			return err_set(e, -EACCES, "journal_denied",
				       "this user may read none of the journal's files (it "
				       "needs the systemd-journal group)");
		return err_set(e, -ENOENT, "no_journal", "this machine keeps no journal");
	}

	snprintf(id, sizeof(id), "%lld", (long long)job_id);
	k = add_match(r->j, "JOB_ID", id, e);
	if (k == 0 && repo != NULL)
		k = add_match(r->j, "REPO", repo, e);
	if (k < 0) {
		journal_reader_free(r);
		return k;
	}

	if (after != NULL) {
		r->after = strdup(after);
		if (r->after == NULL) {
			journal_reader_free(r);
			return err_set(e, -ENOMEM, "internal", "out of memory");
		}
		k = sd_journal_seek_cursor(r->j, after);
		if (k < 0) {
			journal_reader_free(r);
			return err_set(e, -EINVAL, "bad_cursor", "the cursor is not valid");
		}
	} else {
		k = sd_journal_seek_head(r->j);
		if (k < 0) {
			journal_reader_free(r);
			return err_set(e, k, "journal_error", "seeking the journal: %s",
				       strerror(-k));
		}
	}
	*ret = r;
	return 0;
}

void journal_reader_free(struct journal_reader *r)
{
	if (r == NULL)
		return;
	if (r->j != NULL)
		sd_journal_close(r->j);
	for (int f = 0; f < JF_MAX; f++)
		buf_release(&r->field[f]);
	free(r->after);
	free(r->cursor);
	free(r);
}

/* Step back onto the last line taken, so the next read starts with the one looked at. */
static int step_back(struct journal_reader *r, struct err *e)
{
	int k = sd_journal_previous(r->j);

	if (k < 0)
		return err_set(e, k, "journal_error", "reading the journal: %s", strerror(-k));
	return 0;
}

int journal_reader_read(struct journal_reader *r, size_t limit, journal_line_fn fn, void *ctx,
			bool *ret_more, struct err *e)
{
	struct journal_line l;
	bool more = false;
	size_t n = 0;
	int k;

	for (;;) {
		k = sd_journal_next(r->j);
		if (k < 0)
			return err_set(e, k, "journal_error", "reading the journal: %s",
				       strerror(-k));
		if (k == 0)
			break;
		if (r->after != NULL) {
			/* A seek lands on the cursor's own entry when it is still there. */
			bool same = sd_journal_test_cursor(r->j, r->after) > 0;

			free(r->after);
			r->after = NULL;
			if (same)
				continue;
		}
		if (limit > 0 && n == limit) {
			more = true;
			k = step_back(r, e);
			if (k < 0)
				return k;
			break;
		}
		k = load_line(r, &l, e);
		if (k < 0)
			return k;
		k = fn(&l, ctx);
		if (k < 0)
			return err_set(e, k, "output", "%s", strerror(-k));
		if (k > 0) {
			more = true;
			k = step_back(r, e);
			if (k < 0)
				return k;
			break;
		}
		n++;
		free(r->cursor);
		r->cursor = NULL;
		k = sd_journal_get_cursor(r->j, &r->cursor);
		if (k < 0)
			return err_set(e, k, "journal_error", "reading a cursor: %s", strerror(-k));
	}
	if (ret_more != NULL)
		*ret_more = more;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

int journal_reader_wait(struct journal_reader *r, uint64_t timeout_us)
{
	int k = sd_journal_wait(r->j, timeout_us);

	if (k < 0)
		return k;
	return k == SD_JOURNAL_NOP ? 0 : 1;
}

const char *journal_reader_cursor(const struct journal_reader *r)
{
	return r->cursor;
}

/* --- the two forms of a line --------------------------------------------- */

static int add_string(struct json_object *o, const char *key, const char *s)
{
	struct json_object *v;

	if (s == NULL)
		return 0;
	v = json_object_new_string(s);
	if (v == NULL || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_int(struct json_object *o, const char *key, int64_t n)
{
	struct json_object *v = json_object_new_int64(n);

	if (v == NULL || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *journal_line_to_json(const struct journal_line *l)
{
	struct json_object *o = json_object_new_object();
	char at[RFC3339_LEN];
	int ret = 0;

	if (o == NULL)
		return NULL;
	ret |= add_string(o, "at", ms_to_rfc3339(l->at_us / 1000, at));
	ret |= add_string(o, "priority", journal_priority_name(l->priority));
	ret |= add_string(o, "message", l->message);
	if (l->job_id > 0)
		ret |= add_int(o, "job_id", l->job_id);
	ret |= add_string(o, "repo", l->repo);
	ret |= add_string(o, "job_kind", l->job_kind);
	ret |= add_string(o, "branch", l->branch);
	if (l->attempt > 0)
		ret |= add_int(o, "attempt", l->attempt);
	ret |= add_string(o, "message_id", l->message_id);
	ret |= add_string(o, "source", l->source);
	if (ret != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int journal_line_append_text(struct buf *b, const struct journal_line *l)
{
	char at[RFC3339_LEN];
	int ret;

	ret = buf_printf(b, "%s %s %s: ", ms_to_rfc3339(l->at_us / 1000, at),
			 journal_priority_name(l->priority),
			 l->source != NULL ? l->source : "repoflow");
	/*
	 * Control characters could move a terminal's cursor or fake a line
	 * of their own: a newline continues the message on an indented line,
	 * a tab stays, any other C0 or C1 control (U+0080 to U+009F, which
	 * some terminals take as escapes) and DEL become U+FFFD.
	 */
	for (const char *p = l->message; *p != '\0' && ret == 0; p++) {
		unsigned char c = (unsigned char)*p, next = (unsigned char)p[1];

		if (c == '\n') {
			ret = buf_puts(b, next != '\0' ? "\n\t" : "");
		} else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
			ret = buf_puts(b, "\xef\xbf\xbd");
			p++;
		} else if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
			ret = buf_append(b, p, 1);
		} else {
			ret = buf_puts(b, "\xef\xbf\xbd");
		}
	}
	if (ret == 0)
		ret = buf_puts(b, "\n");
	return ret < 0 ? -ENOMEM : 0;
}
