/*
 * branches.c - GET /v1/repos/{repo}/branches: the branch projection as the
 * worker last wrote it, trunk first, then by stack depth. It is read from
 * SQLite only; the request never looks at git, so what it shows is as
 * fresh as the last sync (`synced_at`), which is said with every answer.
 */
#include "route.h"

int branches_list(struct request *r)
{
	struct json_object *body, *list;
	struct branch *branches = NULL;
	struct err e = {{0}, {0}};
	char at[RFC3339_LEN];
	size_t n = 0;
	int ret;

	ret = store_branch_list(r->store, r->repo.id, r->repo.trunk, &branches, &n, &e);
	if (ret < 0)
		return respond_errno(r, ret, &e);
	body = json_object_new_object();
	list = json_object_new_array();
	ret = body != NULL && list != NULL ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct json_object *o = branch_to_json(&branches[i]);

		if (o == NULL || json_object_array_add(list, o) < 0) {
			json_object_put(o);
			ret = -ENOMEM;
		}
	}
	branch_array_free(branches, n);
	if (ret == 0)
		ret =
		    json_add(body, "synced_at",
			     r->repo.last_synced_at > 0
				 ? json_object_new_string(ms_to_rfc3339(r->repo.last_synced_at, at))
				 : NULL);
	if (ret == 0) {
		ret = json_add(body, "branches", list);
		list = NULL;
	}
	if (ret == 0)
		respond_json(r, 200, body);
	json_object_put(list);
	json_object_put(body);
	return ret;
}
