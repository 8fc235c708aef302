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
#define LOG_MID_JOB_ACCEPTED "4b0f1f3f1c2a4f4f9a1d6a3b8e2c7d11"
#define LOG_MID_JOB_STARTED  "9e6a3c1b5d7f4e2a8b0c1d2e3f405162"
#define LOG_MID_JOB_PROGRESS "2c4e6a8b0d1f4a3c9e5b7d9f1a3c5e70"
#define LOG_MID_JOB_DONE     "7a1b3c5d7e9f4b1d8c2e4f6a8b0c2d43"
#define LOG_MID_JOB_FAILED   "c3e5a7b9d1f34c5e8a0b2d4f6a8c0e21"
#define LOG_MID_JOB_RETRIED  "5f7a9c1e3b5d4f7a9c1e3b5d7f9a1c32"
#define LOG_MID_JOB_ORPHAN   "e1d3c5b7a9f14e3d8c5b7a9f1e3d5c64"
#define LOG_MID_IDLE_EXIT    "8b9c0d1e2f3a4b5c9d6e7f8091a2b3c4"

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
