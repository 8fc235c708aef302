/*
 * route.h - the API's resources and the one entry point that dispatches a
 * request to them. The table itself lives in route.c; each resource file
 * (repos.c, actions.c, jobs.c, events.c, tasks.c, health.c, branches.c) implements
 * the handlers declared here.
 *
 * A handler runs only after the router has authenticated the request,
 * checked the token's scope, loaded the {repo} of the path (r->repo) and
 * parsed {id} (r->id) and the query. It sets the response through the
 * respond_* helpers and returns 0, or returns a negative errno (with the
 * response unset) to have the router answer it with respond_errno().
 */
#ifndef REPOFLOW_API_ROUTE_H
#define REPOFLOW_API_ROUTE_H

#include "request.h"

/* Route, authenticate, validate and handle one request; the response is in r. */
void route_request(struct request *r);

/* Whether the request's token may see repo `name` (an admin sees all). */
bool route_token_may_see(const struct request *r, const char *name);

/* health.c */
int health_get(struct request *r);
/* repos.c */
int repos_list(struct request *r);
int repos_create(struct request *r);
int repos_get(struct request *r);
int repos_delete(struct request *r);
/* branches.c */
int branches_list(struct request *r);
/* actions.c */
int actions_create(struct request *r);
/* jobs.c */
int jobs_list(struct request *r);
int jobs_get(struct request *r);
int jobs_cancel(struct request *r);
/* joblog.c */
int joblog_get(struct request *r);
/* events.c */
int events_list(struct request *r);
int events_stream(struct request *r);
/* tasks.c */
int tasks_create(struct request *r);
int tasks_get(struct request *r);
int tasks_list(struct request *r);

#endif
