/*
 * ctl.h - what the files of repoflowctl share: the per-run context, the
 * parsed command line a verb handler receives, the exit codes, and the
 * small output helpers (errors, JSON, aligned tables, times).
 *
 * repoflowctl is shaped like cgit: repoflowctl.c holds one static table of
 * verbs and does all argument parsing, help and store opening; each verb
 * group (repo.c, token.c, job.c) and each larger verb (logs.c, doctor.c)
 * holds only handlers, and output.c holds
 * how everything is printed. A handler receives an open store and its
 * positional arguments, prints its result, and returns an exit code.
 * Library calls return negative errno values; the handlers turn them into
 * one sentence on stderr and CTL_FAILURE.
 */
#ifndef REPOFLOW_CTL_H
#define REPOFLOW_CTL_H

#include <stdio.h>

#include <json-c/json.h>

#include "conf.h"
#include "store.h"
#include "util.h"

/* Exit codes: the contract with scripts and tests. */
enum {
	CTL_OK = 0,
	CTL_FAILURE = 1,
	CTL_USAGE = 2,
};

/* Options a verb may take; the verb table says which ones each verb accepts. */
enum ctl_opt {
	CTL_OPT_TRUNK = 1 << 0,
	CTL_OPT_ADMIN = 1 << 1,
	CTL_OPT_REPO = 1 << 2,
	CTL_OPT_STATUS = 1 << 3,
	CTL_OPT_KIND = 1 << 4,
	CTL_OPT_LIMIT = 1 << 5,
	CTL_OPT_FOLLOW = 1 << 6,
};

/* The command line after parsing. Strings are borrowed from argv. */
struct ctl_args {
	unsigned seen; /* enum ctl_opt bits given */
	const char *trunk;
	const char *repo;
	const char *status;
	const char *kind;
	const char *limit;
	bool follow;
	char **pos; /* positional arguments after the verb words */
	int npos;
};

#define PROG "repoflowctl"

struct ctl;

enum verb_flags {
	VERB_NO_MIGRATE = 1 << 0, /* open the store without applying migrations */
	VERB_NO_STORE = 1 << 1,	  /* the handler reads the configuration and the store itself */
};

/*
 * One verb of the table in repoflowctl.c. `sub` is NULL for one-word
 * verbs; verbs sharing a `name` form a group ("repo add", "repo list").
 * `usage` follows the program name, `help` is the one-line summary,
 * `detail` the rest of VERB --help.
 */
struct verb {
	const char *name;
	const char *sub;
	int (*handler)(struct ctl *c, const struct ctl_args *a);
	const char *usage;
	const char *help;
	const char *detail;
	int min_args, max_args;
	unsigned opts;	/* enum ctl_opt bits the verb accepts */
	unsigned flags; /* enum verb_flags */
};

/* One run of repoflowctl. */
struct ctl {
	const struct verb *verb;
	bool json;
	struct conf conf;
	struct store *store;
	const char *config; /* --config, NULL when not given (for VERB_NO_STORE verbs) */
};

/* --- output helpers (output.c) ----------------------------------------- */

/* Print "repoflowctl: <sentence>" to stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Print "repoflowctl: <what>: <detail>" where the detail comes from `e`
 * (or strerror of r when e holds none), and return CTL_FAILURE.
 */
int ctl_fail(const struct err *e, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "Try 'repoflowctl VERB --help'." on stderr; v may be NULL for the main help. */
void ctl_print_try(const struct verb *v);
/* Print a usage error for the current verb and return CTL_USAGE. */
int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print o on stdout as one JSON document; takes ownership of o (NULL means ENOMEM). */
int ctl_print_json(struct json_object *o);
/*
 * Add key: v to o and return o. Takes ownership of both: on failure (or
 * when o is NULL) both are put and NULL is returned, so calls chain:
 * ctl_json_add(ctl_json_add(json_object_new_object(), "a", x), "b", y).
 */
struct json_object *ctl_json_add(struct json_object *o, const char *key, struct json_object *v);
/* A time for people: RFC 3339, or "-" when unset. buf must hold RFC3339_LEN bytes. */
const char *ctl_time(int64_t ms, char buf[static RFC3339_LEN]);
/* A string or "-" when NULL or empty. */
const char *ctl_str(const char *s);
/* One "label  value" line of a detail view. */
void ctl_field(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse a positive id; prints the usage error itself. 0 or CTL_USAGE. */
int ctl_parse_id(const struct ctl *c, const char *s, int64_t *ret);

/*
 * BEGIN IMMEDIATE, for verbs that write. On failure it has printed the
 * error and returns CTL_FAILURE; ctl_commit likewise (and rolls back).
 */
int ctl_begin(struct ctl *c);
int ctl_commit(struct ctl *c);

/*
 * An aligned text table: cells are copied; the last column is not padded.
 * Errors (ENOMEM) are remembered and reported by table_print.
 */
struct table {
	size_t ncol, nrow, cap;
	char **cells;
	bool failed;
};
void table_init(struct table *t, size_t ncol);
/* Add a row of exactly t->ncol strings; NULL prints as "-". */
void table_add(struct table *t, ...);
/* Print to stdout; CTL_OK, or CTL_FAILURE after reporting ENOMEM. */
int table_print(const struct table *t);
void table_release(struct table *t);

/* --- verb handlers ----------------------------------------------------- */

int ctl_repo_add(struct ctl *c, const struct ctl_args *a);
int ctl_repo_list(struct ctl *c, const struct ctl_args *a);
int ctl_repo_show(struct ctl *c, const struct ctl_args *a);
int ctl_repo_remove(struct ctl *c, const struct ctl_args *a);

int ctl_token_create(struct ctl *c, const struct ctl_args *a);
int ctl_token_list(struct ctl *c, const struct ctl_args *a);
int ctl_token_revoke(struct ctl *c, const struct ctl_args *a);

int ctl_job_list(struct ctl *c, const struct ctl_args *a);
int ctl_job_show(struct ctl *c, const struct ctl_args *a);
int ctl_job_cancel(struct ctl *c, const struct ctl_args *a);
int ctl_job_retry(struct ctl *c, const struct ctl_args *a);

int ctl_logs(struct ctl *c, const struct ctl_args *a);
int ctl_doctor(struct ctl *c, const struct ctl_args *a);

#endif
