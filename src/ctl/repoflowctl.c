/*
 * repoflowctl.c - the operator's command line: the verb table, argument
 * parsing, help, and opening the configuration and the store. The verbs
 * of one group live in their own file (repo.c, token.c, job.c), as do the
 * larger one-word verbs (logs.c, doctor.c), the output
 * helpers they share in output.c; the two small one-word verbs, migrate and
 * count, are small enough to live here.
 *
 * Every verb answers --help without touching the configuration or the
 * database. Options are parsed once for the whole command line (GNU
 * getopt permutes, so options may come before or after the verb's words);
 * the table then says which options a verb accepts and how many
 * positional arguments it takes, so handlers never see a malformed call.
 *
 * Exit codes: 0 success, 1 failure (the store said no, the database is
 * busy, ...), 2 usage. Errors go to stderr as "repoflowctl: <sentence>";
 * results go to stdout, as aligned text or, with --json, as one JSON
 * document.
 */
#include "ctl.h"

#include <getopt.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static int ctl_migrate(struct ctl *c, const struct ctl_args *a);
static int ctl_count(struct ctl *c, const struct ctl_args *a);

static const struct verb verbs[] = {
    {"migrate", NULL, ctl_migrate, "migrate", "Apply pending database migrations.",
     "Applies every numbered schema migration the database does not have yet\n"
     "and reports how many ran. Every other verb (and every daemon) also\n"
     "migrates on start; this verb makes it an explicit step.\n",
     0, 0, 0, VERB_NO_MIGRATE},
    {"repo", "add", ctl_repo_add, "repo add NAME URL [--trunk BRANCH]", "Register a repository.",
     "Registers repository NAME with remote URL. NAME matches\n"
     "^[a-z0-9][a-z0-9._-]{0,63}$; the trunk defaults to main. Nothing is\n"
     "cloned now: the repo's first job clones the mirror.\n"
     "\n"
     "  --trunk BRANCH  the branch every stack is rooted on (default main)\n",
     2, 2, CTL_OPT_TRUNK, 0},
    {"repo", "list", ctl_repo_list, "repo list", "List repositories.",
     "Lists every repository with its trunk, sync status and remote.\n", 0, 0, 0, 0},
    {"repo", "show", ctl_repo_show, "repo show NAME", "Show one repository.",
     "Shows repository NAME as the API's GET /v1/repos/NAME does: remote, trunk,\n"
     "sync status, branch counts and active jobs, read from the database only.\n",
     1, 1, 0, 0},
    {"repo", "remove", ctl_repo_remove, "repo remove NAME", "Remove a repository.",
     "Removes repository NAME with its jobs, branches, events and tokens.\n"
     "Refused while a job of the repo is running. The mirror on disk is left\n"
     "in place.\n",
     1, 1, 0, 0},
    {"token", "create", ctl_token_create, "token create NAME (--admin | --repo REPO)",
     "Create an API token.",
     "Creates API token NAME and prints its secret alone on stdout. The secret\n"
     "is shown this once: only its hash is stored.\n"
     "\n"
     "  --admin      the token may do everything, on every repo\n"
     "  --repo REPO  the token may act on REPO only\n",
     1, 1, CTL_OPT_ADMIN | CTL_OPT_REPO, 0},
    {"token", "list", ctl_token_list, "token list", "List API tokens.",
     "Lists every token with its scope, creation and revocation times.\n", 0, 0, 0, 0},
    {"token", "revoke", ctl_token_revoke, "token revoke NAME", "Revoke an API token.",
     "Revokes the live token NAME; requests that present it get 401 from then on.\n", 1, 1, 0, 0},
    {"job", "list", ctl_job_list,
     "job list [--repo REPO] [--status S[,S]] [--kind K[,K]] [--limit N]", "List jobs.",
     "Lists jobs, newest first.\n"
     "\n"
     "  --repo REPO        only the jobs of REPO\n"
     "  --status S[,S...]  only these statuses: queued, running, completed, error,\n"
     "                     canceled\n"
     "  --kind K[,K...]    only these kinds: sync_repo, restack_repo,\n"
     "                     restack_subtree, rebase_branch, reparent_branch,\n"
     "                     register_existing_branch\n"
     "  --limit N          at most N jobs, 1 to 1000 (default 50)\n",
     0, 0, CTL_OPT_REPO | CTL_OPT_STATUS | CTL_OPT_KIND | CTL_OPT_LIMIT, 0},
    {"job", "show", ctl_job_show, "job show ID", "Show one job.",
     "Shows job ID with its status, progress, attempts, result and error.\n", 1, 1, 0, 0},
    {"job", "cancel", ctl_job_cancel, "job cancel ID", "Cancel a job.",
     "Cancels job ID. A queued job is canceled at once; a running job stops at\n"
     "its next step boundary and changes nothing on the remote after it. A\n"
     "finished job cannot be canceled (exit status 1).\n",
     1, 1, 0, 0},
    {"job", "retry", ctl_job_retry, "job retry ID", "Queue a finished job again.",
     "Queues a new job with the kind, branch, parent and options of job ID,\n"
     "which must have finished (completed, error or canceled), and wakes the\n"
     "worker. Prints the new job (with --json, as GET returns it). When an\n"
     "identical job is still queued, that job is returned instead.\n",
     1, 1, 0, 0},
    {"logs", NULL, ctl_logs, "logs ID [--follow | --limit N]", "Show a job's log lines.",
     "Prints the journal lines of job ID, oldest first: time, priority, the\n"
     "program that wrote it, and the message. With --json, one JSON object a\n"
     "line, as GET /v1/repos/REPO/jobs/ID/log returns them. Reading the\n"
     "journal needs root or the systemd-journal group.\n"
     "\n"
     "  --follow   keep printing new lines as they come; stops by itself once the\n"
     "             job has finished and its last line is in\n"
     "  --limit N  at most N lines\n",
     1, 1, CTL_OPT_FOLLOW | CTL_OPT_LIMIT, 0},
    {"doctor", NULL, ctl_doctor, "doctor", "Check that the installation can work.",
     "Checks, one line each, 'ok' or 'FAIL' followed by what to do:\n"
     "  config         the configuration file reads\n"
     "  database       it exists, opens, and its schema is current; both services'\n"
     "                 users may write it\n"
     "  units          the sockets and the timer are enabled and active; no\n"
     "                 repoflow service has failed\n"
     "  nginx          nginx runs; the snippet is installed and an enabled site\n"
     "                 includes it\n"
     "  api socket     something accepts connections; nginx's user may connect\n"
     "                 and no other user may\n"
     "  wake socket    it is the worker socket's; the API's user may send to it\n"
     "  journal        it is readable, also by the API's user (for the log endpoint)\n"
     "  remote REPO    each repo's remote answers an ls-remote made as the\n"
     "                 worker's user with the worker's credentials\n"
     "Checks made as another user need root. With --json: {\"ok\", \"failed\",\n"
     "\"checks\": [{\"name\", \"ok\", \"detail\", \"fix\"}]}. Exit status 1 when any\n"
     "check failed.\n",
     0, 0, 0, VERB_NO_STORE},
    {"count", NULL, ctl_count, "count TABLE", "Count the rows of a table.",
     "Prints the number of rows of TABLE: jobs, events, repos, branches, tokens\n"
     "or idempotency. Tests use it to prove that a rejected request changed\n"
     "nothing.\n",
     1, 1, 0, 0},
};

/* --- migrate and count ------------------------------------------------------ */

/* The store was opened without migrating, so this run is the one that applies them. */
static int ctl_migrate(struct ctl *c, const struct ctl_args *a)
{
	struct err e = {0};
	struct json_object *o;
	int n, version;

	n = store_migrate(c->store, &e);
	if (n < 0)
		return ctl_fail(&e, n, "migration failed");
	version = store_schema_version(c->store);
	if (c->json) {
		o = ctl_json_add(json_object_new_object(), "applied", json_object_new_int(n));
		o = ctl_json_add(o, "schema_version", json_object_new_int(version));
		return ctl_print_json(o);
	}
	if (n == 0)
		printf("The schema is up to date (version %d).\n", version);
	else
		printf("Applied %d migration%s; the schema is at version %d.\n", n,
		       n == 1 ? "" : "s", version);
	return CTL_OK;
}

static int ctl_count(struct ctl *c, const struct ctl_args *a)
{
	const char *table = a->pos[0];
	struct err e = {0};
	struct json_object *o;
	int64_t n;
	int r;

	r = store_count(c->store, table, &n, &e);
	if (r == -EINVAL)
		return ctl_usage_error(c,
				       "unknown table '%s'; one of jobs, events, repos, "
				       "branches, tokens, idempotency",
				       table);
	if (r < 0)
		return ctl_fail(&e, r, "cannot count the rows of %s", table);
	if (c->json) {
		o = ctl_json_add(json_object_new_object(), "table", json_object_new_string(table));
		o = ctl_json_add(o, "count", json_object_new_int64(n));
		return ctl_print_json(o);
	}
	printf("%lld\n", (long long)n);
	return CTL_OK;
}

/* --- help ------------------------------------------------------------------ */

static void print_verb_list(FILE *f, const char *group)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (group == NULL || strcmp(verbs[i].name, group) == 0)
			fprintf(f, "  %s\n      %s\n", verbs[i].usage, verbs[i].help);
}

static void print_main_help(FILE *f)
{
	fputs("usage: " PROG " [--config FILE] [--json] VERB [ARGS]\n"
	      "\n"
	      "Operate a repoflow installation: its database, repositories, API tokens,\n"
	      "jobs and their logs, and check that it can work (doctor).\n"
	      "\n"
	      "Verbs:\n",
	      f);
	print_verb_list(f, NULL);
	fputs("\n"
	      "Options (anywhere on the line):\n"
	      "  --config FILE  the configuration file (default: $REPOFLOW_CONFIG, else\n"
	      "                 " CONF_DEFAULT_PATH ")\n"
	      "  --json         print JSON instead of aligned text\n"
	      "  --help         show help; '" PROG " VERB --help' shows one verb\n"
	      "  --version      show the version\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n",
	      f);
}

static void print_group_help(FILE *f, const char *group)
{
	fprintf(f, "usage: " PROG " %s VERB [ARGS]\n\nVerbs:\n", group);
	print_verb_list(f, group);
	fprintf(f, "\nRun '" PROG " %s VERB --help' for one verb.\n", group);
}

static void print_verb_help(const struct verb *v)
{
	printf("usage: " PROG " [--config FILE] [--json] %s\n\n%s\n\n%s", v->usage, v->help,
	       v->detail);
}

/* --- the command line -------------------------------------------------------- */

enum {
	OPT_VAL_CONFIG = 256,
	OPT_VAL_JSON,
	OPT_VAL_VERSION,
	OPT_VAL_TRUNK,
	OPT_VAL_ADMIN,
	OPT_VAL_REPO,
	OPT_VAL_STATUS,
	OPT_VAL_KIND,
	OPT_VAL_LIMIT,
	OPT_VAL_FOLLOW,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, OPT_VAL_CONFIG},
    {"json", no_argument, NULL, OPT_VAL_JSON},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VAL_VERSION},
    {"trunk", required_argument, NULL, OPT_VAL_TRUNK},
    {"admin", no_argument, NULL, OPT_VAL_ADMIN},
    {"repo", required_argument, NULL, OPT_VAL_REPO},
    {"status", required_argument, NULL, OPT_VAL_STATUS},
    {"kind", required_argument, NULL, OPT_VAL_KIND},
    {"limit", required_argument, NULL, OPT_VAL_LIMIT},
    {"follow", no_argument, NULL, OPT_VAL_FOLLOW},
    {},
};

/* The verb options by bit, for "--x is not an option of ..." messages. */
static const struct {
	unsigned bit;
	const char *name;
} opt_names[] = {
    {CTL_OPT_TRUNK, "--trunk"},	  {CTL_OPT_ADMIN, "--admin"}, {CTL_OPT_REPO, "--repo"},
    {CTL_OPT_STATUS, "--status"}, {CTL_OPT_KIND, "--kind"},   {CTL_OPT_LIMIT, "--limit"},
    {CTL_OPT_FOLLOW, "--follow"},
};

struct cmdline {
	const char *config;
	bool json, help, version;
	struct ctl_args args;
};

static int parse_options(int argc, char **argv, struct cmdline *cl)
{
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (o) {
		case OPT_VAL_CONFIG:
			cl->config = optarg;
			break;
		case OPT_VAL_JSON:
			cl->json = true;
			break;
		case 'h':
			cl->help = true;
			break;
		case OPT_VAL_VERSION:
			cl->version = true;
			break;
		case OPT_VAL_TRUNK:
			cl->args.seen |= CTL_OPT_TRUNK;
			cl->args.trunk = optarg;
			break;
		case OPT_VAL_ADMIN:
			cl->args.seen |= CTL_OPT_ADMIN;
			break;
		case OPT_VAL_REPO:
			cl->args.seen |= CTL_OPT_REPO;
			cl->args.repo = optarg;
			break;
		case OPT_VAL_STATUS:
			cl->args.seen |= CTL_OPT_STATUS;
			cl->args.status = optarg;
			break;
		case OPT_VAL_KIND:
			cl->args.seen |= CTL_OPT_KIND;
			cl->args.kind = optarg;
			break;
		case OPT_VAL_LIMIT:
			cl->args.seen |= CTL_OPT_LIMIT;
			cl->args.limit = optarg;
			break;
		case OPT_VAL_FOLLOW:
			cl->args.seen |= CTL_OPT_FOLLOW;
			cl->args.follow = true;
			break;
		case ':':
			ctl_error("option '%s' needs a value", argv[optind - 1]);
			ctl_print_try(NULL);
			return CTL_USAGE;
		default:
			ctl_error("unknown option '%s'", argv[optind - 1]);
			ctl_print_try(NULL);
			return CTL_USAGE;
		}
	}
	cl->args.pos = argv + optind;
	cl->args.npos = argc - optind;
	return CTL_OK;
}

static bool is_group(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (verbs[i].sub != NULL && strcmp(verbs[i].name, name) == 0)
			return true;
	return false;
}

/*
 * Find the verb named by the leading positional words and consume them.
 * Prints help or a usage error itself when the words name no verb, and
 * then returns NULL with *ret_code set.
 */
static const struct verb *find_verb(struct cmdline *cl, int *ret_code)
{
	struct ctl_args *a = &cl->args;
	const char *name = a->pos[0], *sub = a->npos > 1 ? a->pos[1] : NULL;

	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		const struct verb *v = &verbs[i];

		if (strcmp(v->name, name) != 0)
			continue;
		if (v->sub == NULL) {
			a->pos += 1;
			a->npos -= 1;
			return v;
		}
		if (sub != NULL && strcmp(v->sub, sub) == 0) {
			a->pos += 2;
			a->npos -= 2;
			return v;
		}
	}
	if (!is_group(name)) {
		ctl_error("unknown verb '%s'", name);
		ctl_print_try(NULL);
		*ret_code = CTL_USAGE;
	} else if (cl->help) {
		print_group_help(stdout, name);
		*ret_code = CTL_OK;
	} else {
		if (sub == NULL)
			ctl_error("'%s' needs a verb", name);
		else
			ctl_error("unknown verb '%s %s'", name, sub);
		print_group_help(stderr, name);
		*ret_code = CTL_USAGE;
	}
	return NULL;
}

/* The table's promises to the handler: only its options, the right number of words. */
static int check_args(const struct ctl *c, const struct ctl_args *a)
{
	unsigned extra = a->seen & ~c->verb->opts;

	for (size_t i = 0; i < ARRAY_SIZE(opt_names); i++)
		if (extra & opt_names[i].bit)
			return ctl_usage_error(c, "%s is not an option of '%s%s%s'",
					       opt_names[i].name, c->verb->name,
					       c->verb->sub != NULL ? " " : "",
					       c->verb->sub != NULL ? c->verb->sub : "");
	if (a->npos < c->verb->min_args)
		return ctl_usage_error(c, "missing argument");
	if (a->npos > c->verb->max_args)
		return ctl_usage_error(c, "unexpected argument '%s'", a->pos[c->verb->max_args]);
	return CTL_OK;
}

/* --- running a verb ---------------------------------------------------------- */

static int open_store(struct ctl *c, const char *config)
{
	const char *path = conf_path(config), *env = getenv("REPOFLOW_CONFIG");
	/* Only the built-in default path may be absent: then the defaults apply. */
	bool optional = config == NULL && (env == NULL || *env == '\0');
	unsigned flags = c->verb->flags & VERB_NO_MIGRATE ? 0 : STORE_MIGRATE;
	struct err e = {0};
	int r;

	r = conf_load(&c->conf, path, optional, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot read the configuration");
	r = store_open(c->conf.database, c->conf.busy_timeout_ms, flags, &c->store, &e);
	if (r < 0)
		return ctl_fail(&e, r, "cannot open the database %s", c->conf.database);
	return CTL_OK;
}

static int run(struct cmdline *cl)
{
	struct ctl c = {.json = cl->json, .config = cl->config};
	int code = CTL_OK;

	if (cl->version) {
		puts(PROG " " PACKAGE_VERSION);
		return CTL_OK;
	}
	if (cl->args.npos > 0 && strcmp(cl->args.pos[0], "help") == 0) {
		cl->help = true;
		cl->args.pos++;
		cl->args.npos--;
	}
	if (cl->args.npos == 0) {
		print_main_help(cl->help ? stdout : stderr);
		return cl->help ? CTL_OK : CTL_USAGE;
	}
	c.verb = find_verb(cl, &code);
	if (c.verb == NULL)
		return code;
	if (cl->help) {
		print_verb_help(c.verb);
		return CTL_OK;
	}
	code = check_args(&c, &cl->args);
	if (code != CTL_OK)
		return code;

	conf_init(&c.conf);
	if (!(c.verb->flags & VERB_NO_STORE))
		code = open_store(&c, cl->config);
	if (code == CTL_OK)
		code = c.verb->handler(&c, &cl->args);
	if (c.store != NULL)
		store_close(c.store);
	conf_release(&c.conf);
	return code;
}

int main(int argc, char **argv)
{
	struct cmdline cl = {0};
	int code;

	code = parse_options(argc, argv, &cl);
	if (code == CTL_OK)
		code = run(&cl);
	/* A result that did not reach stdout (a full disk, a closed pipe) is a failure. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_error("cannot write the output: %s", strerror(errno));
		if (code == CTL_OK)
			code = CTL_FAILURE;
	}
	return code;
}
