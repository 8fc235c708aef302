/*
 * log.c - journald or stderr, decided once at start. Under systemd our
 * stderr is a journal stream and JOURNAL_STREAM names its device and
 * inode; only then do we use sd_journal_send, so a developer running a
 * program in a terminal sees readable `key=value` lines instead.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

static const char *log_ident = "repoflow";
static bool log_journal;

void log_init(const char *ident)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	log_ident = ident;
	log_journal = false;
	if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		log_journal = true;
	if (getenv("REPOFLOW_LOG_JOURNAL") != NULL)
		log_journal = true;
}

static const char *prio_word(int priority)
{
	static const char *const words[] = {"emerg", "alert", "crit",	"err",
					    "warning", "notice", "info", "debug"};

	return priority >= 0 && priority < 8 ? words[priority] : "info";
}

void log_msg(int priority, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal) {
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
				"SYSLOG_IDENTIFIER=%s", log_ident, NULL);
		return;
	}
	fprintf(stderr, "%s: priority=%s message=\"%s\"\n", log_ident, prio_word(priority), msg);
}

void log_msg_id(int priority, const char *message_id, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal) {
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
				"SYSLOG_IDENTIFIER=%s", log_ident, "MESSAGE_ID=%s", message_id, NULL);
		return;
	}
	fprintf(stderr, "%s: priority=%s message_id=%s message=\"%s\"\n", log_ident,
		prio_word(priority), message_id, msg);
}

void log_job(const struct job *j, int priority, const char *message_id, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	const char *branch = j->branch != NULL ? j->branch : "";

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal) {
		if (message_id != NULL)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
					"SYSLOG_IDENTIFIER=%s", log_ident, "MESSAGE_ID=%s",
					message_id, "JOB_ID=%lld", (long long)j->id, "REPO=%s",
					j->repo, "JOB_KIND=%s", job_kinds[j->kind].name,
					"BRANCH=%s", branch, "JOB_ATTEMPT=%d", j->attempt, NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
					"SYSLOG_IDENTIFIER=%s", log_ident, "JOB_ID=%lld",
					(long long)j->id, "REPO=%s", j->repo, "JOB_KIND=%s",
					job_kinds[j->kind].name, "BRANCH=%s", branch,
					"JOB_ATTEMPT=%d", j->attempt, NULL);
		return;
	}
	fprintf(stderr,
		"%s: priority=%s job_id=%lld repo=%s job_kind=%s branch=%s attempt=%d%s%s "
		"message=\"%s\"\n",
		log_ident, prio_word(priority), (long long)j->id, j->repo,
		job_kinds[j->kind].name, branch, j->attempt, message_id != NULL ? " message_id=" : "",
		message_id != NULL ? message_id : "", msg);
}
