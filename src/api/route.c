/*
 * route.c - the route table of the API (in the manner of cgit's cmd.c: a
 * static table of {method, path pattern, handler, flags}) and the checks
 * every request passes before a handler sees it, in this order:
 *
 *   1. the path must name a resource (404) and allow the method (405 with
 *      Allow); both only reveal the public shape of the API, so they come
 *      before authentication;
 *   2. a bearer token (401 with WWW-Authenticate), except for the health
 *      check; the event stream also takes it as the access_token query
 *      parameter, because a browser's EventSource cannot send headers
 *      (the token then shows in URLs: doc/api.md says what that costs);
 *   3. the token's scope: admin-only routes refuse repo tokens (403), and
 *      a repo token naming any other repo gets 403 whether or not that
 *      repo exists, so a repo token never learns which other repos exist;
 *   4. the {repo} must exist (404), the {id} must be a positive integer
 *      (else 404: no such job), and the query string must decode (400).
 */
#include "route.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "validate.h"

#define ROUTE_PUBLIC      (1u << 0) /* no token needed */
#define ROUTE_ADMIN       (1u << 1) /* admin tokens only */
#define ROUTE_QUERY_TOKEN (1u << 2) /* the token may also come as ?access_token= */

/* The largest bearer secret worth looking up; ours are AUTH_SECRET_LEN - 1 bytes. */
#define ROUTE_SECRET_MAX 512

struct route {
	const char *method;
	const char *pattern;
	int (*handler)(struct request *r);
	unsigned flags;
};

static const struct route routes[] = {
    {"GET", "/v1/health", health_get, ROUTE_PUBLIC},
    {"GET", "/v1/repos", repos_list, 0},
    {"POST", "/v1/repos", repos_create, ROUTE_ADMIN},
    {"GET", "/v1/repos/{repo}", repos_get, 0},
    {"DELETE", "/v1/repos/{repo}", repos_delete, ROUTE_ADMIN},
    {"GET", "/v1/repos/{repo}/branches", branches_list, 0},
    {"POST", "/v1/repos/{repo}/actions", actions_create, 0},
    {"GET", "/v1/repos/{repo}/jobs", jobs_list, 0},
    {"GET", "/v1/repos/{repo}/jobs/{id}", jobs_get, 0},
    {"POST", "/v1/repos/{repo}/jobs/{id}/cancel", jobs_cancel, 0},
    {"GET", "/v1/repos/{repo}/jobs/{id}/log", joblog_get, 0},
    {"GET", "/v1/repos/{repo}/events", events_list, 0},
    {"GET", "/v1/repos/{repo}/events/stream", events_stream, ROUTE_QUERY_TOKEN},
    {"GET", "/v1/repos/{repo}/tasks", tasks_list, 0},
    {"POST", "/v1/repos/{repo}/tasks", tasks_create, 0},
    {"GET", "/v1/repos/{repo}/tasks/{id}", tasks_get, 0},
};

/* The still-encoded path segments a pattern captured. */
struct captures {
	const char *repo, *id;
	size_t repo_len, id_len;
};

/*
 * Match the encoded path against a pattern segment by segment. Captures
 * take one whole non-empty segment; an encoded '/' stays inside its
 * segment and is caught later by the validators.
 */
static bool route_match(const char *pattern, const char *path, struct captures *c)
{
	const char *p = pattern, *q = path;

	memset(c, 0, sizeof(*c));
	while (*p != '\0' && *q != '\0') {
		size_t plen, qlen;

		if (*p != '/' || *q != '/')
			return false;
		p++;
		q++;
		plen = strcspn(p, "/");
		qlen = strcspn(q, "/");
		if (qlen == 0)
			return false;
		if (plen == 6 && strncmp(p, "{repo}", 6) == 0) {
			c->repo = q;
			c->repo_len = qlen;
		} else if (plen == 4 && strncmp(p, "{id}", 4) == 0) {
			c->id = q;
			c->id_len = qlen;
		} else if (plen != qlen || strncmp(p, q, plen) != 0) {
			return false;
		}
		p += plen;
		q += qlen;
	}
	return *p == '\0' && *q == '\0';
}

bool route_token_may_see(const struct request *r, const char *name)
{
	if (r->token.admin)
		return true;
	return r->token.repo != NULL && strcmp(r->token.repo, name) == 0;
}

static int respond_unauthorized(struct request *r, bool invalid, const char *detail)
{
	respond_problem(r, 401, "unauthorized", NULL, "%s", detail);
	if (invalid)
		return response_header(r, "WWW-Authenticate",
				       "Bearer realm=\"repoflow\", error=\"invalid_token\"");
	return response_header(r, "WWW-Authenticate", "Bearer realm=\"repoflow\"");
}

/* Look up the token whose secret is [s, s+len); on failure the response is set. */
static int route_lookup_secret(struct request *r, const char *s, size_t len)
{
	char secret[ROUTE_SECRET_MAX + 1];
	struct err e = {{0}, {0}};
	int ret;

	if (len == 0 || len > ROUTE_SECRET_MAX) {
		respond_unauthorized(r, true, "The bearer token is not valid.");
		return -EACCES;
	}
	memcpy(secret, s, len);
	secret[len] = '\0';

	ret = store_token_lookup(r->store, secret, &r->token, &e);
	explicit_bzero(secret, sizeof(secret));
	if (ret == -ENOENT) {
		respond_unauthorized(r, true, "The bearer token is unknown or revoked.");
		return -EACCES;
	}
	if (ret < 0) {
		respond_errno(r, ret, &e);
		return ret;
	}
	r->authenticated = true;
	return 0;
}

/*
 * Find the token of `Authorization: Bearer <secret>`, or (query_token)
 * of ?access_token=<secret> when there is no such header; on failure the
 * response is set.
 */
static int route_authenticate(struct request *r, bool query_token)
{
	const char *h = r->authorization, *q;
	size_t len;

	if (h == NULL && query_token) {
		if (request_parse_query(r) < 0) {
			respond_problem(r, 400, "malformed_request", NULL,
					"The query string is not validly percent-encoded.");
			return -EINVAL;
		}
		q = request_query(r, "access_token");
		if (q != NULL)
			return route_lookup_secret(r, q, strlen(q));
	}
	if (h == NULL) {
		respond_unauthorized(r, false,
				     query_token ? "This endpoint needs an Authorization: "
						   "Bearer <token> header or an access_token "
						   "parameter."
						 : "This endpoint needs an Authorization: "
						   "Bearer <token> header.");
		return -EACCES;
	}
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
		respond_unauthorized(r, true, "Only Bearer tokens are accepted.");
		return -EACCES;
	}
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	len = strlen(h);
	while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
		len--;
	return route_lookup_secret(r, h, len);
}

/* Decode, scope-check and load the {repo} of the path into r->repo. */
static int route_load_repo(struct request *r, const struct captures *c)
{
	_cleanup_free_ char *name = NULL;
	struct err e = {{0}, {0}};
	int ret;

	if (url_decode(c->repo, c->repo_len, false, &name) < 0 ||
	    validate_repo_name(name, strlen(name)) != NULL) {
		/* No repo can have this name; a repo token is still told only about its own. */
		if (!r->token.admin) {
			respond_problem(r, 403, "forbidden", NULL,
					"This token may only use repo '%s'.",
					r->token.repo != NULL ? r->token.repo : "");
			return -EPERM;
		}
		respond_problem(r, 404, "not_found", NULL, "There is no such repo.");
		return -ENOENT;
	}
	if (!route_token_may_see(r, name)) {
		respond_problem(r, 403, "forbidden", NULL, "This token may only use repo '%s'.",
				r->token.repo != NULL ? r->token.repo : "");
		return -EPERM;
	}
	ret = store_repo_get(r->store, name, &r->repo, &e);
	if (ret == -ENOENT) {
		respond_problem(r, 404, "not_found", NULL, "There is no repo named '%s'.", name);
		return ret;
	}
	if (ret < 0) {
		respond_errno(r, ret, &e);
		return ret;
	}
	r->have_repo = true;
	return 0;
}

static int route_parse_id(struct request *r, const struct captures *c)
{
	char digits[24];

	if (c->id_len >= sizeof(digits)) {
		respond_problem(r, 404, "not_found", NULL, "There is no such job.");
		return -ENOENT;
	}
	memcpy(digits, c->id, c->id_len);
	digits[c->id_len] = '\0';
	if (parse_int64(digits, 1, INT64_MAX, &r->id) < 0) {
		respond_problem(r, 404, "not_found", NULL, "There is no such job.");
		return -ENOENT;
	}
	return 0;
}

/* "GET, HEAD, POST": the methods of every route whose pattern matches the path. */
static void route_allow(const char *path, char *out, size_t size)
{
	struct captures c;
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		const char *m = routes[i].method;

		if (!route_match(routes[i].pattern, path, &c))
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s%s%s", len > 0 ? ", " : "", m,
					strcmp(m, "GET") == 0 ? ", HEAD" : "");
		if (len >= size)
			break;
	}
}

void route_request(struct request *r)
{
	const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
	const struct route *found = NULL;
	struct captures cap = {0}, c;
	bool path_known = false;
	char allow[128];
	int ret;

	if (r->responded) /* the request could not even be read */
		return;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (!route_match(routes[i].pattern, r->path, &c))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, method) == 0) {
			found = &routes[i];
			cap = c;
			break;
		}
	}
	if (!path_known) {
		respond_problem(r, 404, "not_found", NULL, "There is no resource at this path.");
		return;
	}
	if (found == NULL) {
		route_allow(r->path, allow, sizeof(allow));
		respond_problem(r, 405, "method_not_allowed", NULL,
				"This resource allows %s, not %s.", allow, r->method);
		response_header(r, "Allow", "%s", allow);
		return;
	}
	if (!(found->flags & ROUTE_PUBLIC)) {
		if (r->store == NULL) {
			respond_problem(r, 503, "unavailable", NULL,
					"The database cannot be opened; try again later.");
			response_header(r, "Retry-After", "5");
			return;
		}
		if (route_authenticate(r, (found->flags & ROUTE_QUERY_TOKEN) != 0) < 0)
			return;
	}
	if ((found->flags & ROUTE_ADMIN) && !r->token.admin) {
		respond_problem(r, 403, "forbidden", NULL, "This needs an admin token.");
		return;
	}
	if (cap.repo != NULL && route_load_repo(r, &cap) < 0)
		return;
	if (cap.id != NULL && route_parse_id(r, &cap) < 0)
		return;
	if (request_parse_query(r) < 0) {
		respond_problem(r, 400, "malformed_request", NULL,
				"The query string is not validly percent-encoded.");
		return;
	}
	ret = found->handler(r);
	if (ret < 0 && !r->responded)
		respond_errno(r, ret, NULL);
}
