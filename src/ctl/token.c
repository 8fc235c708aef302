/*
 * token.c - the `token` verbs of repoflowctl: create, list, revoke.
 *
 * A token's secret exists in clear only between store_token_create and
 * the moment we print it: the store keeps its SHA-256, so `token create`
 * is the one chance to see it. The secret goes to stdout alone (a script
 * does TOKEN=$(repoflowctl token create ci --repo web)) and the reminder
 * that it is shown once goes to stderr, where it cannot end up in the
 * variable. The memory holding the secret is wiped before it is freed.
 */
#include "ctl.h"

#include <string.h>

#define TOKEN_NAME_MAX 64

static void secret_freep(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
	}
}

/*
 * A token name is a label for operators: 1 to 64 bytes of printable
 * ASCII without spaces, so it prints on one line and needs no quoting.
 */
static const char *check_token_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > TOKEN_NAME_MAX)
		return "must be 1 to 64 bytes";
	if (s[0] == '-')
		return "must not start with '-'";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return "may contain only printable ASCII without spaces";
	return NULL;
}

/* Turn a failed store_token_create into one sentence. */
static int create_failed(const struct err *e, int r, const char *name, const char *repo)
{
	if (r == -EEXIST)
		ctl_error("a token named '%s' already exists", name);
	else if (r == -ENOENT && repo != NULL)
		ctl_error("no repo named '%s'", repo);
	else
		return ctl_fail(e, r, "cannot create token '%s'", name);
	return CTL_FAILURE;
}

int ctl_token_create(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0], *why;
	bool admin = a->seen & CTL_OPT_ADMIN;
	const char *repo = a->seen & CTL_OPT_REPO ? a->repo : NULL;
	_cleanup_(secret_freep) char *secret = NULL;
	struct json_object *o;
	struct err e = {0};
	int r, code;

	if (admin == (repo != NULL))
		return ctl_usage_error(c, "give exactly one of --admin and --repo REPO");
	why = check_token_name(name);
	if (why != NULL)
		return ctl_usage_error(c, "invalid token name '%s': it %s", name, why);

	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_token_create(c->store, name, admin, repo, &secret, &e);
	if (r < 0) {
		store_rollback(c->store);
		return create_failed(&e, r, name, repo);
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;

	ctl_error("the secret of token '%s' is shown this once; store it now", name);
	if (c->json) {
		o = ctl_json_add(json_object_new_object(), "name", json_object_new_string(name));
		o = ctl_json_add(o, "admin", json_object_new_boolean(admin));
		o = ctl_json_add(o, "repo", repo != NULL ? json_object_new_string(repo) : NULL);
		o = ctl_json_add(o, "secret", json_object_new_string(secret));
		return ctl_print_json(o);
	}
	puts(secret);
	return CTL_OK;
}

static struct json_object *time_json(int64_t ms)
{
	char buf[RFC3339_LEN];

	return ms > 0 ? json_object_new_string(ms_to_rfc3339(ms, buf)) : NULL;
}

static struct json_object *token_to_json(const struct token *t)
{
	struct json_object *o;

	o = ctl_json_add(json_object_new_object(), "id", json_object_new_int64(t->id));
	o = ctl_json_add(o, "name", json_object_new_string(t->name));
	o = ctl_json_add(o, "admin", json_object_new_boolean(t->admin));
	o = ctl_json_add(o, "repo", t->repo != NULL ? json_object_new_string(t->repo) : NULL);
	o = ctl_json_add(o, "created_at", time_json(t->created_at));
	o = ctl_json_add(o, "revoked_at", time_json(t->revoked_at));
	return o;
}

static int print_tokens_json(const struct token *tokens, size_t n)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n && arr != NULL; i++) {
		struct json_object *o = token_to_json(&tokens[i]);

		if (o == NULL || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			arr = NULL;
		}
	}
	if (arr == NULL)
		return ctl_print_json(NULL);
	return ctl_print_json(ctl_json_add(json_object_new_object(), "tokens", arr));
}

static int print_tokens_table(const struct token *tokens, size_t n)
{
	struct table t;
	int code;

	table_init(&t, 5);
	table_add(&t, "ID", "NAME", "SCOPE", "CREATED", "REVOKED");
	for (size_t i = 0; i < n; i++) {
		char id[24], scope[80], created[RFC3339_LEN], revoked[RFC3339_LEN];

		snprintf(id, sizeof(id), "%lld", (long long)tokens[i].id);
		if (tokens[i].admin)
			snprintf(scope, sizeof(scope), "admin");
		else
			snprintf(scope, sizeof(scope), "repo %s", ctl_str(tokens[i].repo));
		table_add(&t, id, tokens[i].name, scope, ctl_time(tokens[i].created_at, created),
			  ctl_time(tokens[i].revoked_at, revoked));
	}
	code = table_print(&t);
	table_release(&t);
	return code;
}

int ctl_token_list(struct ctl *c, const struct ctl_args *a)
{
	struct token *tokens = NULL;
	struct err e = {0};
	size_t n = 0;
	int r, code;

	r = store_token_list(c->store, &tokens, &n, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot list tokens");
	code = c->json ? print_tokens_json(tokens, n) : print_tokens_table(tokens, n);
	token_array_free(tokens, n);
	return code;
}

int ctl_token_revoke(struct ctl *c, const struct ctl_args *a)
{
	const char *name = a->pos[0];
	struct err e = {0};
	int r, code;

	code = ctl_begin(c);
	if (code != CTL_OK)
		return code;
	r = store_token_revoke(c->store, name, &e);
	if (r < 0) {
		store_rollback(c->store);
		if (r != -ENOENT)
			return ctl_fail(&e, r, "cannot revoke token '%s'", name);
		ctl_error("no live token named '%s'", name);
		return CTL_FAILURE;
	}
	code = ctl_commit(c);
	if (code != CTL_OK)
		return code;
	if (c->json)
		return ctl_print_json(ctl_json_add(json_object_new_object(), "revoked",
						   json_object_new_string(name)));
	printf("Revoked token %s.\n", name);
	return CTL_OK;
}
