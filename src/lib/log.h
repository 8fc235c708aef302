/*
 * log.h - logging for the daemons. Under journald (JOURNAL_STREAM names
 * our stderr) lines go through sd_journal_send with structured fields;
 * otherwise to stderr as `key=value` text. Job lines always carry JOB_ID=,
 * REPO=, JOB_KIND= and BRANCH= (empty when the job names no branch), and
 * lifecycle lines a MESSAGE_ID= from the list below (the catalog explains
 * each). Library code never logs; the programs do, once, at the edge.
 */
#ifndef REPOFLOW_LOG_H
#define REPOFLOW_LOG_H

#include <syslog.h>

#include "job.h"

/* Lifecycle message ids (made with systemd-id128 new). */
#define LOG_MID_JOB_ACCEPTED "d6e1efae2b3644da91cf773e278bff46"
#define LOG_MID_JOB_STARTED  "ccbb7cc763c34b9bb0eb69db2442ae98"
#define LOG_MID_JOB_PROGRESS "7ed5d742b02847ef9fd0b103960c13e4"
#define LOG_MID_JOB_DONE     "4c970983a18e4981968b7fd4f1d7f451"
#define LOG_MID_JOB_FAILED   "0c03fa8a5d694f8188c2a3ee56afe17d"
#define LOG_MID_JOB_RETRIED  "f2947a7c8cd44dc089a7c1002ff1c9c4"
#define LOG_MID_JOB_ORPHAN   "c98798f15dc04d638ad4884e8687d20e"
#define LOG_MID_IDLE_EXIT    "fa592814e01043c683de15ca2c89b43d"

/* Call once at start: the program's name, and whether to use journald (decided from JOURNAL_STREAM). */
void log_init(const char *ident);
/* A line not about a job. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line not about a job with a lifecycle message id (the worker's idle exit). */
void log_msg_id(int priority, const char *message_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A line about a job; message_id may be NULL. */
void log_job(const struct job *j, int priority, const char *message_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
