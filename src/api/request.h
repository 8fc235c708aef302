/*
 * request.h - one HTTP request as repoflow-api sees it, from the moment the
 * FastCGI (or CGI) layer hands it over until its response is written.
 *
 * The request owns its parsed inputs (path, query, body) and the response
 * it builds in memory: status, headers and body are assembled in buffers
 * and emitted in one write by request_finish(), so a handler can change
 * its mind (an error after a header was set) without anything having left
 * the process. The transport is abstracted by struct request_io, so the
 * FastCGI loop and the one-shot CGI mode share every line below it.
 */
#ifndef REPOFLOW_API_REQUEST_H
#define REPOFLOW_API_REQUEST_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"
#include "conf.h"
#include "store.h"
#include "util.h"

/* The transport under a request: FastCGI streams or CGI's environment and stdio. */
struct request_io {
	/* A CGI parameter (REQUEST_METHOD, HTTP_AUTHORIZATION, ...); NULL when absent. */
	const char *(*param)(void *cookie, const char *name);
	/* Up to n body bytes into buf; 0 at the end of the body, negative errno on failure. */
	ssize_t (*read)(void *cookie, char *buf, size_t n);
	/* Write all n bytes of buf; 0 or a negative errno. */
	int (*write)(void *cookie, const char *buf, size_t n);
	void *cookie;
	/*
	 * Whether the body stream has a reliable end (FastCGI's empty STDIN
	 * record). CGI's stdin does not: there only CONTENT_LENGTH bytes are read.
	 */
	bool body_has_eof;
};

struct query_param {
	char *name;
	char *value;
};

struct request {
	const struct conf *conf;
	struct store *store; /* this thread's connection; NULL when it cannot be opened */
	const struct request_io *io;

	/* From the environment; the strings are borrowed from io. */
	const char *method;
	const char *authorization;
	const char *content_type;
	const char *if_none_match;
	const char *idempotency_key;
	int64_t content_length; /* -1 when absent */

	char *path;		    /* the request path without the query, still encoded */
	char *query;		    /* the raw query string, "" when none */
	struct query_param *params; /* the decoded query */
	size_t nparams;
	bool query_parsed;

	/* Filled by the router before the handler runs. */
	struct token token;
	bool authenticated;
	struct repo repo; /* the {repo} of the path, when the route has one */
	bool have_repo;
	int64_t id; /* the {id} of the path, 0 when none */

	struct buf body;
	uint64_t body_consumed; /* bytes taken from io so far, read or discarded */
	bool body_read;

	/* The response. */
	int status;
	const char *out_type; /* Content-Type of out, NULL for no body */
	struct buf headers;   /* "Name: value\r\n" lines, without Status and Content-Length */
	struct buf out;	      /* the body */
	bool responded;
};

/* Set up r for one request read from io; 0 or a negative errno. */
int request_init(struct request *r, const struct conf *conf, struct store *store,
		 const struct request_io *io);
/*
 * Drain what is left of the request body (up to a bound, so the web server
 * sees a clean exchange) and write the response in one piece. A request
 * nobody responded to becomes a 500.
 */
int request_finish(struct request *r);
void request_release(struct request *r);

/* The value of a decoded query parameter (the last one wins), NULL when absent. */
const char *request_query(const struct request *r, const char *name);
/*
 * The integer query parameter `name` in [min, max] into *ret, def when
 * absent. When it is not, records "must be an integer from min to max"
 * under the parameter's name in errors.
 */
void request_query_int64(const struct request *r, const char *name, int64_t min, int64_t max,
			 int64_t def, struct json_object *errors, int64_t *ret);
/* Decode the raw query into r->params (once; later calls do nothing). -EINVAL when malformed. */
int request_parse_query(struct request *r);
/*
 * A comma-separated list of words into a bit mask through from_name (the
 * parser of those words, returning an index or a negative errno). -EINVAL
 * on an empty or unknown word.
 */
int query_words_mask(const char *list, int (*from_name)(const char *), unsigned *ret);
/* Append the words of mask (name(i) for bit i) to b, comma-separated, in index order. */
int query_mask_words(struct buf *b, unsigned mask, const char *(*name)(int), int max);
/*
 * Whether an If-None-Match header matches etag: `*`, or a comma-separated
 * list of entity tags compared weakly (a W/ prefix is ignored), as RFC
 * 9110 asks of GET.
 */
bool request_etag_matches(const char *header, const char *etag);
/* Percent-decode [s, s+len) (and '+' as space when plus is true) into a new string. */
int url_decode(const char *s, size_t len, bool plus, char **ret);

/*
 * Read the body into r->body, bounded by conf->body_limit. On failure the
 * response (413, 400) is already set and a negative errno is returned.
 */
int request_read_body(struct request *r);
/*
 * The body as a JSON object: checks Content-Type (415), size (413), NUL
 * bytes, syntax and that it is an object (400). On failure the response is
 * set and a negative errno returned; on success *ret is a new object.
 */
int request_json_body(struct request *r, struct json_object **ret);
/* Whether the request's Content-Type is application/json (parameters allowed). */
bool request_content_is_json(const struct request *r);

/* --- the response -------------------------------------------------------- */

/* Add a response header. The value must not contain CR or LF. */
int response_header(struct request *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON body (borrowed) with this status. */
int respond_json(struct request *r, int status, struct json_object *body);
/*
 * A JSON body the handler wrote into r->out itself, piece by piece with
 * json_append(): long lists are serialized one element at a time, so a
 * response never holds more than one element's json-c tree in memory.
 */
int respond_json_out(struct request *r, int status);
/* Append the JSON text of o (borrowed) to b. 0 or -ENOMEM. */
int json_append(struct buf *b, struct json_object *o);
/*
 * One page of a list into r->out, one element at a time:
 * {"<key>":[item(arr, 0), …],"next":<next>}. `n` elements were fetched,
 * one more than `limit` when there is a next page (that one is not
 * shown); item(arr, i) makes element i's JSON (a new object); next is
 * the next page's URL (borrowed), or NULL for JSON null. 0 or -ENOMEM.
 * The caller answers with respond_json_out().
 */
typedef struct json_object *(*page_item_fn)(const void *arr, size_t i);
int page_write(struct request *r, const char *key, const void *arr, size_t n, int64_t limit,
	       page_item_fn item, struct json_object *next);
/* A status without a body (204, 304). */
int respond_empty(struct request *r, int status);
/*
 * An application/problem+json response. `errors` (a JSON array of
 * {field, message}, may be NULL) is taken. Headers set before are dropped
 * (a Location set on the success path must not leak into an error); add
 * problem-specific headers (Allow, WWW-Authenticate, Retry-After) after.
 */
int respond_problem(struct request *r, int status, const char *slug, struct json_object *errors,
		    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/*
 * The response for a negative errno from the store: -EBUSY is 503 with
 * Retry-After, -ENOENT 404, anything else a logged 500 that shows no
 * internals.
 */
int respond_errno(struct request *r, int err, const struct err *e);

/* The errors[] of a problem: a new array, and one {field, message} added to it. */
struct json_object *problem_errors_new(void);
int problem_error_add(struct json_object *errors, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A field table, in the manner of kcgi: one validator per top-level member
 * of a JSON object. `check` sees the member's value (NULL when absent),
 * stores what it accepts into `form` and adds what it rejects to `errors`
 * under `field` (the member's name, with the table's prefix).
 */
struct field {
	const char *name;
	void (*check)(void *form, const char *field, struct json_object *value,
		      struct json_object *errors);
};
/*
 * Run every validator of table over obj in table order, and reject members
 * the table does not name. Returns -ENOMEM when an error cannot even be
 * recorded; otherwise 0 (errors, if any, are in `errors`).
 */
int fields_check(const struct field *table, size_t n, const char *prefix, struct json_object *obj,
		 void *form, struct json_object *errors);
/*
 * For validators: whether value is a JSON string, with its text (borrowed
 * from value) and length, which may include a NUL from a \u0000 escape.
 * Records "must be a string" under field when it is not.
 */
bool field_string(struct json_object *value, const char *field, struct json_object *errors,
		  const char **ret, size_t *ret_len);

#endif
