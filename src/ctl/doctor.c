/*
 * doctor.c - `repoflowctl doctor`: is this installation able to work?
 *
 * One line per check, "ok" or "FAIL", and under each failure what to do;
 * the exit status is 1 when any check failed. The checks follow a request
 * through the machine: the configuration, the database (readable, schema
 * current, writable by both services), nginx (running, the snippet there
 * and included), the API socket (something listens; nginx's user may
 * connect, other users may not), the wake socket (the API's user may send
 * to it, and it is the one the worker listens on), the units (sockets and
 * timer enabled and active, no service failed), the journal (readable by
 * the API's user, or the job log endpoint shows nothing), and each repo's
 * remote (an ls-remote with the worker's credentials, as the worker's
 * user).
 *
 * "Nginx's user may connect" is asked of the kernel, not computed from
 * mode bits: a child process takes that user's uid and groups (those of
 * the system database plus the unit's Group= and SupplementaryGroups=)
 * and calls access(2), which sees ACLs and every directory on the way.
 * The same child trick runs the journal check as the API's user and the
 * ls-remote as the worker's user, with a deadline; so the doctor must run
 * as root to check for other users, and says so when it is not.
 *
 * The units' state and their users come from `systemctl show`, which also
 * works where the system bus is not running. Nothing here changes the
 * system, with one exception an operator should know of: connecting to
 * the API socket starts repoflow-api.service if it is not running, as any
 * request would.
 */
#include "ctl.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>

#include "gitops.h"
#include "journal.h"

extern char **environ;

#define API_UNIT	   "repoflow-api.service"
#define API_SOCKET_UNIT	   "repoflow-api.socket"
#define WORKER_UNIT	   "repoflow-worker.service"
#define WORKER_SOCKET_UNIT "repoflow-worker.socket"
#define WORKER_TIMER_UNIT  "repoflow-worker.timer"
#define NGINX_UNIT	   "nginx.service"
#define NGINX_CONF	   "/etc/nginx/nginx.conf"
#define NGINX_DEFAULT_USER "www-data"
#define AS_USER_TIMEOUT_MS 10000
#define REMOTE_TIMEOUT_MS  20000
#define DOCTOR_LINE_MAX	   1024

/* Where the package puts the nginx snippet; the first that exists counts. */
static const char *const snippet_paths[] = {
    "/etc/nginx/snippets/repoflow.conf",
    SYSCONFDIR "/nginx/snippets/repoflow.conf",
};

/* --- reporting --------------------------------------------------------- */

struct doctor {
	struct ctl *c;
	struct json_object *checks; /* --json: the array of checks */
	int failed;
};

/*
 * Report one check. `fix` (may be NULL) says what to do when it failed;
 * the detail is a printf format.
 */
static void report(struct doctor *d, const char *name, bool ok, const char *fix, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));
static void report(struct doctor *d, const char *name, bool ok, const char *fix, const char *fmt,
		   ...)
{
	char detail[DOCTOR_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (!ok)
		d->failed++;
	if (d->c->json) {
		struct json_object *o = json_object_new_object();

		o = ctl_json_add(o, "name", json_object_new_string(name));
		o = ctl_json_add(o, "ok", json_object_new_boolean(ok));
		o = ctl_json_add(o, "detail", json_object_new_string(detail));
		if (!ok && fix != NULL)
			o = ctl_json_add(o, "fix", json_object_new_string(fix));
		if (o != NULL && json_object_array_add(d->checks, o) < 0)
			json_object_put(o);
		return;
	}
	printf("%-4s  %s: %s\n", ok ? "ok" : "FAIL", name, detail);
	if (!ok && fix != NULL)
		printf("      -> %s\n", fix);
	fflush(stdout);
}

/* --- users ------------------------------------------------------------- */

/* A user as a service runs: uid, primary group, every supplementary group. */
struct principal {
	char name[64];
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
	char home[256];
	bool known;
	char why[320]; /* when !known: why not */
};

static void principal_add_group(struct principal *p, gid_t g)
{
	for (int i = 0; i < p->ngroups; i++)
		if (p->groups[i] == g)
			return;
	if (p->ngroups < (int)ARRAY_SIZE(p->groups))
		p->groups[p->ngroups++] = g;
}

/*
 * Fill p for user `name` (root when empty), with primary group `group`
 * when not empty and the space-separated `extra` groups added.
 */
static void principal_lookup(struct principal *p, const char *name, const char *group,
			     const char *extra)
{
	_cleanup_free_ char *copy = NULL;
	gid_t list[64];
	int n = (int)ARRAY_SIZE(list);
	struct passwd *pw;
	struct group *gr;
	char *save = NULL, *w;

	memset(p, 0, sizeof(*p));
	if (name == NULL || *name == '\0')
		name = "root";
	snprintf(p->name, sizeof(p->name), "%s", name);
	pw = getpwnam(name);
	if (pw == NULL) {
		snprintf(p->why, sizeof(p->why), "there is no user '%s'", name);
		return;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->home, sizeof(p->home), "%s", pw->pw_dir);
	if (group != NULL && *group != '\0') {
		gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(p->why, sizeof(p->why), "there is no group '%s'", group);
			return;
		}
		p->gid = gr->gr_gid;
	}
	principal_add_group(p, p->gid);
	if (getgrouplist(name, pw->pw_gid, list, &n) >= 0)
		for (int i = 0; i < n; i++)
			principal_add_group(p, list[i]);
	if (extra != NULL && (copy = strdup(extra)) != NULL)
		for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
			gr = getgrnam(w);
			if (gr != NULL)
				principal_add_group(p, gr->gr_gid);
		}
	p->known = true;
}

static bool principal_in_group(const struct principal *p, const char *group)
{
	struct group *gr = getgrnam(group);

	if (gr == NULL)
		return false;
	for (int i = 0; i < p->ngroups; i++)
		if (p->groups[i] == gr->gr_gid)
			return true;
	return false;
}

/* The `user` directive of nginx.conf, else Debian's default. */
static void nginx_user(char *buf, size_t size)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(buf, size, "%s", NGINX_DEFAULT_USER);
	f = fopen(NGINX_CONF, "re");
	if (f == NULL)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *p = line + strspn(line, " \t");

		if (strncmp(p, "user", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
			p += 4;
			p += strspn(p, " \t");
			p[strcspn(p, " \t;\n")] = '\0';
			if (*p != '\0')
				snprintf(buf, size, "%s", p);
			break;
		}
	}
	fclose(f);
}

/* --- running a check as another user ----------------------------------- */

/*
 * What a child answers: one line per sub-check, "ok\t<detail>" or
 * "FAIL\t<detail>", written to fd.
 */
static void child_say(int fd, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void child_say(int fd, bool ok, const char *fmt, ...)
{
	char line[DOCTOR_LINE_MAX];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s\t", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* One line per answer: a newline inside the detail would split it. */
	for (char *p = line; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	n = (int)strlen(line);
	line[n++] = '\n';
	(void)!write(fd, line, (size_t)n);
}

typedef void (*as_user_fn)(void *ctx, int fd);

/*
 * Run fn(ctx, fd) in a child that has become p (when we are root; a
 * non-root doctor can only run as itself) and collect what it wrote, up to
 * timeout_ms. Returns the answer lines in *ret (caller frees), or a
 * negative errno: -EPERM when p is someone else and we are not root,
 * -ETIMEDOUT (with what came so far in *ret), -ECHILD when the child
 * failed before answering.
 */
static int as_user(const struct principal *p, as_user_fn fn, void *ctx, int timeout_ms, char **ret)
{
	struct buf out = BUF_INIT;
	int64_t deadline = mono_ms() + timeout_ms;
	int fds[2], status = 0, r = 0;
	pid_t pid;

	*ret = NULL;
	if (geteuid() != 0 && geteuid() != p->uid)
		return -EPERM;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (pid == 0) {
		close(fds[0]);
		if (geteuid() == 0 && (setgroups((size_t)p->ngroups, p->groups) < 0 ||
				       setgid(p->gid) < 0 || setuid(p->uid) < 0)) {
			child_say(fds[1], false, "cannot become %s: %s", p->name, strerror(errno));
			_exit(1);
		}
		if (p->home[0] != '\0')
			setenv("HOME", p->home, 1);
		fn(ctx, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int64_t left = deadline - mono_ms();
		char chunk[1024];
		ssize_t n;

		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n == 0 ? -ETIMEDOUT : -errno;
			break;
		}
		n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_append(&out, chunk, (size_t)n) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	close(fds[0]);
	if (r < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && out.len == 0)
		r = -ECHILD;
	*ret = out.data != NULL ? out.data : strdup("");
	return r;
}

/*
 * The next answer line of a child: *ok and the detail (pointing into the
 * buffer, which is cut at the line's end). NULL when there is none.
 */
static const char *next_answer(char **cursor, bool *ok)
{
	char *line = *cursor, *tab, *nl;

	if (line == NULL || *line == '\0')
		return NULL;
	nl = strchr(line, '\n');
	if (nl == NULL)
		return NULL; /* a line cut short by a timeout is no answer */
	*nl = '\0';
	*cursor = nl + 1;
	tab = strchr(line, '\t');
	if (tab == NULL)
		return NULL;
	*tab = '\0';
	*ok = strcmp(line, "ok") == 0;
	return tab + 1;
}

/* Why an as_user check gave no answer, as a sentence. */
static void as_user_failure(struct doctor *d, const char *name, const struct principal *p, int r,
			    int timeout_ms)
{
	if (r == -EPERM)
		report(d, name, false, "run repoflowctl doctor as root",
		       "cannot check as user %s without being root", p->name);
	else if (r == -ETIMEDOUT)
		report(d, name, false, NULL, "no answer within %d s", timeout_ms / 1000);
	else if (r == -ECHILD)
		report(d, name, false, NULL, "the check as user %s gave no answer", p->name);
	else
		report(d, name, false, NULL, "the check as user %s failed: %s", p->name,
		       strerror(-r));
}

/* --- systemctl show ------------------------------------------------------ */

enum unit_idx {
	U_API_SOCKET,
	U_API,
	U_WORKER_SOCKET,
	U_WORKER,
	U_WORKER_TIMER,
	U_NGINX,
	U_MAX,
};

static const char *const unit_names[U_MAX] = {
    [U_API_SOCKET] = API_SOCKET_UNIT,	    [U_API] = API_UNIT,
    [U_WORKER_SOCKET] = WORKER_SOCKET_UNIT, [U_WORKER] = WORKER_UNIT,
    [U_WORKER_TIMER] = WORKER_TIMER_UNIT,   [U_NGINX] = NGINX_UNIT,
};

struct unit_state {
	char load[32], active[32], sub[32], file[32];
	char user[64], group[64], supplementary[256];
	char listen[256]; /* the first Listen= path of a socket unit */
	bool dynamic_user;
};

struct units {
	bool ok; /* systemctl answered */
	char why[256];
	struct unit_state u[U_MAX];
};

static void copy_value(char *dst, size_t size, const char *v)
{
	snprintf(dst, size, "%s", v);
}

/* One KEY=value line of `systemctl show` into u. */
static void unit_set(struct unit_state *u, const char *key, char *v)
{
	if (strcmp(key, "LoadState") == 0)
		copy_value(u->load, sizeof(u->load), v);
	else if (strcmp(key, "ActiveState") == 0)
		copy_value(u->active, sizeof(u->active), v);
	else if (strcmp(key, "SubState") == 0)
		copy_value(u->sub, sizeof(u->sub), v);
	else if (strcmp(key, "UnitFileState") == 0)
		copy_value(u->file, sizeof(u->file), v);
	else if (strcmp(key, "User") == 0)
		copy_value(u->user, sizeof(u->user), v);
	else if (strcmp(key, "Group") == 0)
		copy_value(u->group, sizeof(u->group), v);
	else if (strcmp(key, "SupplementaryGroups") == 0)
		copy_value(u->supplementary, sizeof(u->supplementary), v);
	else if (strcmp(key, "DynamicUser") == 0)
		u->dynamic_user = strcmp(v, "yes") == 0;
	else if (strcmp(key, "Listen") == 0 && u->listen[0] == '\0') {
		/* "/run/repoflow/api.sock (Stream)" */
		v[strcspn(v, " ")] = '\0';
		copy_value(u->listen, sizeof(u->listen), v);
	}
}

/*
 * Parse `systemctl show`'s output: one block of KEY=value lines per unit,
 * blocks separated by an empty line, each naming its unit with Id= (in
 * systemctl's order of properties, not ours: Id= may come last).
 */
static void units_parse(struct units *us, char *text)
{
	char *block = text;

	while (block != NULL && *block != '\0') {
		char *end = strstr(block, "\n\n"), *id, *save = NULL;
		struct unit_state *cur = NULL;

		if (end != NULL)
			*end = '\0';
		id = strncmp(block, "Id=", 3) == 0 ? block : strstr(block, "\nId=");
		if (id != NULL) {
			id += id == block ? 3 : 4;
			for (int i = 0; i < U_MAX; i++) {
				size_t n = strlen(unit_names[i]);

				if (strncmp(id, unit_names[i], n) == 0 &&
				    (id[n] == '\n' || id[n] == '\0'))
					cur = &us->u[i];
			}
		}
		for (char *line = strtok_r(block, "\n", &save); cur != NULL && line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *v = strchr(line, '=');

			if (v == NULL)
				continue;
			*v++ = '\0';
			unit_set(cur, line, v);
		}
		block = end != NULL ? end + 2 : NULL;
	}
}

/* Ask systemctl about every unit at once. */
static void units_read(struct units *us)
{
	const char *argv[32];
	struct buf out = BUF_INIT;
	posix_spawn_file_actions_t fa;
	int fds[2], status = 0, n = 0, r;
	pid_t pid;

	memset(us, 0, sizeof(*us));
	argv[n++] = "systemctl";
	argv[n++] = "show";
	argv[n++] = "--property=Id,LoadState,ActiveState,SubState,UnitFileState,User,Group,"
		    "SupplementaryGroups,DynamicUser,Listen";
	argv[n++] = "--";
	for (int i = 0; i < U_MAX; i++)
		argv[n++] = unit_names[i];
	argv[n] = NULL;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(us->why, sizeof(us->why), "pipe: %s", strerror(errno));
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	r = posix_spawnp(&pid, "systemctl", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		snprintf(us->why, sizeof(us->why), "cannot run systemctl: %s", strerror(r));
		return;
	}
	for (;;) {
		char chunk[4096];
		ssize_t got = read(fds[0], chunk, sizeof(chunk));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || buf_append(&out, chunk, (size_t)got) < 0)
			break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.data == NULL) {
		snprintf(us->why, sizeof(us->why),
			 "systemctl show failed (is systemd running this machine?)");
		buf_release(&out);
		return;
	}
	units_parse(us, out.data);
	buf_release(&out);
	us->ok = true;
}

/* --- the checks ---------------------------------------------------------- */

static void check_units(struct doctor *d, const struct units *us)
{
	/* Installed and started: the two sockets and the timer, enabled and active. */
	static const enum unit_idx started[] = {U_API_SOCKET, U_WORKER_SOCKET, U_WORKER_TIMER};
	/* Started on demand: may be inactive, must not have failed. */
	static const enum unit_idx on_demand[] = {U_API, U_WORKER};

	if (!us->ok) {
		report(d, "units", false, "run doctor on the machine systemd runs, as root", "%s",
		       us->why);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(started); i++) {
		const struct unit_state *u = &us->u[started[i]];
		const char *name = unit_names[started[i]];
		char fix[256];

		if (strcmp(u->load, "loaded") != 0) {
			report(d, name, false, "reinstall the repoflow package",
			       "not installed (load state %s)", u->load[0] ? u->load : "unknown");
			continue;
		}
		snprintf(fix, sizeof(fix), "systemctl enable --now %s", name);
		if (strcmp(u->file, "enabled") != 0 && strcmp(u->file, "static") != 0 &&
		    strcmp(u->file, "enabled-runtime") != 0) {
			report(d, name, false, fix, "%s, not enabled (%s)", u->active, u->file);
			continue;
		}
		if (strcmp(u->active, "active") != 0) {
			if (strcmp(u->active, "failed") == 0)
				snprintf(fix, sizeof(fix),
					 "journalctl -u %s; then systemctl reset-failed %s && "
					 "systemctl start %s",
					 name, name, name);
			else
				snprintf(fix, sizeof(fix), "systemctl start %s", name);
			report(d, name, false, fix, "enabled but %s (%s)", u->active, u->sub);
			continue;
		}
		report(d, name, true, NULL, "enabled, %s (%s)", u->active, u->sub);
	}
	for (size_t i = 0; i < ARRAY_SIZE(on_demand); i++) {
		const struct unit_state *u = &us->u[on_demand[i]];
		const char *name = unit_names[on_demand[i]];
		char fix[256];

		if (strcmp(u->load, "loaded") != 0) {
			report(d, name, false, "reinstall the repoflow package",
			       "not installed (load state %s)", u->load[0] ? u->load : "unknown");
			continue;
		}
		if (strcmp(u->active, "failed") == 0) {
			snprintf(fix, sizeof(fix),
				 "journalctl -u %s -e to see why; then systemctl reset-failed %s",
				 name, name);
			report(d, name, false, fix, "failed (%s)", u->sub);
			continue;
		}
		report(d, name, true, NULL, "%s (%s; started on demand by its socket)", u->active,
		       u->sub);
	}
}

/* The user a unit runs as, for the checks made as that user. */
static void unit_principal(const struct units *us, enum unit_idx i, const char *fallback,
			   struct principal *p)
{
	const struct unit_state *u = &us->u[i];

	if (!us->ok) {
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", fallback);
		snprintf(p->why, sizeof(p->why), "the unit's user is unknown (%s)", us->why);
		return;
	}
	principal_lookup(p, u->user, u->group, u->supplementary);
	if (!p->known && u->dynamic_user)
		snprintf(p->why, sizeof(p->why),
			 "%s uses DynamicUser=, whose user exists only "
			 "while it runs",
			 unit_names[i]);
}

static void check_config(struct doctor *d, const char *path, bool optional, bool *ret_ok)
{
	struct err e = {0};
	int r;

	r = conf_load(&d->c->conf, path, optional, &e);
	*ret_ok = r == 0;
	if (r < 0)
		report(d, "config", false, "fix the file: repoflow.conf(5) lists every key", "%s",
		       e.msg[0] ? e.msg : strerror(-r));
	else if (access(path, F_OK) != 0)
		report(d, "config", true, NULL, "%s is absent: every default applies", path);
	else
		report(d, "config", true, NULL, "%s", path);
}

static void check_database(struct doctor *d)
{
	const char *db = d->c->conf.database;
	struct repo *repos = NULL;
	struct err e = {0};
	struct stat st;
	size_t n = 0;
	int r, v;

	/* store_open would create a missing database; the doctor only looks. */
	if (stat(db, &st) < 0) {
		report(d, "database", false,
		       "install the package (it creates it), or run repoflowctl migrate", "%s: %s",
		       db, strerror(errno));
		return;
	}
	r = store_open(db, d->c->conf.busy_timeout_ms, 0, &d->c->store, &e);
	if (r < 0) {
		report(d, "database", false, NULL, "%s", e.msg[0] ? e.msg : strerror(-r));
		return;
	}
	v = store_schema_version(d->c->store);
	if (v < STORE_SCHEMA_VERSION) {
		report(d, "database", false, "repoflowctl migrate",
		       "%s: schema version %d, this version of repoflow needs %d", db, v,
		       STORE_SCHEMA_VERSION);
		return;
	}
	r = store_repo_list(d->c->store, &repos, &n, &e);
	repo_array_free(repos, n);
	if (r < 0) {
		report(d, "database", false, NULL, "%s: cannot read: %s", db,
		       e.msg[0] ? e.msg : strerror(-r));
		return;
	}
	report(d, "database", true, NULL, "%s: schema version %d, %zu repo%s", db, v, n,
	       n == 1 ? "" : "s");
}

/* --- access as another user: sockets, database, journal ---------------- */

struct access_req {
	const char *path;
	int mode;
	bool dir_too; /* also write and search on the directory (SQLite's -wal, -shm) */
};

struct access_list {
	const struct access_req *reqs;
	size_t n;
};

static void child_access(void *ctx, int fd)
{
	const struct access_list *l = ctx;

	for (size_t i = 0; i < l->n; i++) {
		const struct access_req *a = &l->reqs[i];
		_cleanup_free_ char *dir = strdup(a->path);
		char *slash = dir != NULL ? strrchr(dir, '/') : NULL;

		if (access(a->path, a->mode) < 0) {
			child_say(fd, false, "%s", strerror(errno));
			continue;
		}
		if (a->dir_too && slash != NULL) {
			*slash = '\0';
			if (access(dir[0] != '\0' ? dir : "/", W_OK | X_OK) < 0) {
				child_say(fd, false, "directory %s: %s", dir, strerror(errno));
				continue;
			}
		}
		child_say(fd, true, "may");
	}
}

/* Mode and owner of a path as "0660 repoflow-api:www-data". */
static void describe_owner(const struct stat *st, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(st->st_uid);
	struct group *gr = getgrgid(st->st_gid);
	char u[32], g[32];

	if (pw != NULL)
		snprintf(u, sizeof(u), "%s", pw->pw_name);
	else
		snprintf(u, sizeof(u), "%u", (unsigned)st->st_uid);
	if (gr != NULL)
		snprintf(g, sizeof(g), "%s", gr->gr_name);
	else
		snprintf(g, sizeof(g), "%u", (unsigned)st->st_gid);
	snprintf(buf, size, "%04o %s:%s", (unsigned)(st->st_mode & 07777), u, g);
}

/*
 * Whether `who` may do `mode` on each of reqs, asked as that user. Reports
 * one check per request, named names[i]; `fix` is the advice on failure.
 */
static void check_access_as(struct doctor *d, const struct principal *who,
			    const struct access_req *reqs, const char *const *names,
			    const char *const *fixes, size_t n)
{
	struct access_list l = {reqs, n};
	_cleanup_free_ char *answers = NULL;
	char *cur;
	int r;

	if (!who->known) {
		for (size_t i = 0; i < n; i++)
			report(d, names[i], false, fixes[i], "cannot check as %s: %s", who->name,
			       who->why);
		return;
	}
	r = as_user(who, child_access, &l, AS_USER_TIMEOUT_MS, &answers);
	cur = answers;
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		const char *detail = r == 0 || r == -ETIMEDOUT ? next_answer(&cur, &ok) : NULL;
		struct stat st;
		char owner[128] = "";

		if (detail == NULL) {
			as_user_failure(d, names[i], who, r < 0 ? r : -ECHILD, AS_USER_TIMEOUT_MS);
			continue;
		}
		if (stat(reqs[i].path, &st) == 0)
			describe_owner(&st, owner, sizeof(owner));
		if (ok)
			report(d, names[i], true, NULL, "%s (%s): %s may %s", reqs[i].path, owner,
			       who->name, reqs[i].mode & W_OK ? "write" : "read");
		else
			report(d, names[i], false, fixes[i], "%s (%s): %s may not %s: %s",
			       reqs[i].path, owner, who->name,
			       reqs[i].mode & W_OK ? "write" : "read", detail);
	}
}

/* Whether a unix stream socket at path accepts a connection (from us). */
static int socket_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* The socket exists, is a socket, and no other user may write to it. */
static bool check_socket_file(struct doctor *d, const char *name, const char *path,
			      const char *unit)
{
	char owner[128], fix[256];
	struct stat st;

	snprintf(fix, sizeof(fix), "systemctl restart %s", unit);
	if (stat(path, &st) < 0) {
		report(d, name, false, fix, "%s: %s", path, strerror(errno));
		return false;
	}
	describe_owner(&st, owner, sizeof(owner));
	if (!S_ISSOCK(st.st_mode)) {
		report(d, name, false, fix, "%s (%s) is not a socket", path, owner);
		return false;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(fix, sizeof(fix),
			 "set SocketMode=0660 (or stricter) in %s and restart it; no "
			 "drop-in may widen it",
			 unit);
		report(d, name, false, fix, "%s (%s): every user of the machine may write to it",
		       path, owner);
		return false;
	}
	return true;
}

static void check_api_socket(struct doctor *d, const struct units *us, const char *ngx_user)
{
	const char *path = us->ok && us->u[U_API_SOCKET].listen[0] != '\0'
			       ? us->u[U_API_SOCKET].listen
			       : d->c->conf.api_socket;
	static const char *const names[] = {"api socket (nginx)"};
	static const char *const fixes[] = {"the socket's group must be one nginx's user is in, "
					    "with SocketMode=0660 in " API_SOCKET_UNIT
					    "; then systemctl restart " API_SOCKET_UNIT};
	struct access_req req = {path, W_OK, false};
	struct principal ngx;
	int r;

	if (!check_socket_file(d, "api socket", path, API_SOCKET_UNIT))
		return;
	r = socket_connect(path);
	if (r < 0) {
		report(d, "api socket", false, "systemctl restart " API_SOCKET_UNIT,
		       "%s: nothing accepts connections: %s", path, strerror(-r));
		return;
	}
	report(d, "api socket", true, NULL, "%s accepts connections", path);
	principal_lookup(&ngx, ngx_user, NULL, NULL);
	check_access_as(d, &ngx, &req, names, fixes, 1);
}

static void check_wake_socket(struct doctor *d, const struct units *us, const struct principal *api)
{
	const char *listen = us->ok ? us->u[U_WORKER_SOCKET].listen : "";
	const char *path = d->c->conf.wake_socket;
	static const char *const names[] = {"wake socket (api)"};
	static const char *const fixes[] = {"the socket's owner or group must be the API's, with "
					    "SocketMode=0620 or 0660 in " WORKER_SOCKET_UNIT
					    "; then systemctl restart " WORKER_SOCKET_UNIT};
	struct access_req req = {path, W_OK, false};

	if (listen[0] != '\0' && strcmp(listen, path) != 0) {
		report(
		    d, "wake socket", false,
		    "make wake_socket in repoflow.conf and ListenDatagram= of " WORKER_SOCKET_UNIT
		    " the same path",
		    "the API sends wake-ups to %s, but " WORKER_SOCKET_UNIT " listens on %s", path,
		    listen);
		return;
	}
	if (!check_socket_file(d, "wake socket", path, WORKER_SOCKET_UNIT))
		return;
	if (listen[0] != '\0')
		report(d, "wake socket", true, NULL,
		       "%s is the one " WORKER_SOCKET_UNIT " listens on", path);
	else
		report(d, "wake socket", true, NULL, "%s is a socket", path);
	check_access_as(d, api, &req, names, fixes, 1);
}

static void check_database_access(struct doctor *d, const struct principal *api,
				  const struct principal *worker)
{
	struct access_req req = {d->c->conf.database, R_OK | W_OK, true};
	static const char *const api_names[] = {"database (api)"};
	static const char *const worker_names[] = {"database (worker)"};
	static const char *const fixes[] = {
	    "the database, its directory and its -wal and -shm files must be writable by both "
	    "services' users (the package's tmpfiles.d entry sets them; systemd-tmpfiles "
	    "--create)"};

	check_access_as(d, api, &req, api_names, fixes, 1);
	check_access_as(d, worker, &req, worker_names, fixes, 1);
}

/* Whether this process can read the system journal (journal.c says why not, in e). */
static int journal_readable(struct err *e)
{
	struct journal_reader *r = NULL;
	int ret;

	ret = journal_reader_open(1, NULL, NULL, &r, e);
	journal_reader_free(r);
	return ret;
}

static void child_journal(void *ctx, int fd)
{
	struct err e = {0};
	int r = journal_readable(&e);

	if (r < 0)
		child_say(fd, false, "%s", e.msg[0] ? e.msg : strerror(-r));
	else
		child_say(fd, true, "may read it");
}

static void check_journal(struct doctor *d, const struct principal *api)
{
	_cleanup_free_ char *answers = NULL;
	struct err e = {0};
	const char *detail;
	char *cur;
	bool ok = false;
	int r;

	r = journal_readable(&e);
	if (r < 0) {
		report(d, "journal", false,
		       "run doctor as root; check that systemd-journald runs "
		       "(systemctl status systemd-journald)",
		       "cannot read the system journal: %s", e.msg[0] ? e.msg : strerror(-r));
		return;
	}
	report(d, "journal", true, NULL, "the system journal is readable");
	if (!api->known) {
		report(d, "journal (api)", false, NULL, "cannot check as %s: %s", api->name,
		       api->why);
		return;
	}
	r = as_user(api, child_journal, NULL, AS_USER_TIMEOUT_MS, &answers);
	cur = answers;
	detail = r == 0 ? next_answer(&cur, &ok) : NULL;
	if (detail == NULL)
		as_user_failure(d, "journal (api)", api, r < 0 ? r : -ECHILD, AS_USER_TIMEOUT_MS);
	else if (ok)
		report(d, "journal (api)", true, NULL, "%s %s: GET .../jobs/ID/log can show lines",
		       api->name, detail);
	else
		report(d, "journal (api)", false,
		       "add SupplementaryGroups=systemd-journal to " API_UNIT
		       " (a drop-in), then systemctl restart " API_UNIT,
		       "%s cannot read the journal (%s%s): GET .../jobs/ID/log shows nothing",
		       api->name, detail,
		       principal_in_group(api, "systemd-journal") ? ""
								  : "; not in systemd-journal");
}

/* --- nginx --------------------------------------------------------------- */

/* Whether the file has a non-comment `include` line naming repoflow.conf. */
static bool file_includes_snippet(const char *path)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *p = line + strspn(line, " \t");
		char *hash = strchr(p, '#');

		if (hash != NULL)
			*hash = '\0';
		found = strncmp(p, "include", 7) == 0 && strstr(p, "repoflow.conf") != NULL;
	}
	fclose(f);
	return found;
}

static void check_nginx(struct doctor *d, const struct units *us)
{
	static const char *const patterns[] = {NGINX_CONF, "/etc/nginx/conf.d/*.conf",
					       "/etc/nginx/sites-enabled/*"};
	const char *snippet = NULL, *includer = NULL;
	char found_in[512] = "";
	glob_t g;

	if (us->ok) {
		const struct unit_state *u = &us->u[U_NGINX];

		if (strcmp(u->active, "active") != 0)
			report(d, "nginx", false, "systemctl enable --now nginx",
			       NGINX_UNIT " is %s (load state %s)",
			       u->active[0] ? u->active : "unknown",
			       u->load[0] ? u->load : "unknown");
		else
			report(d, "nginx", true, NULL, NGINX_UNIT " is active");
	}
	for (size_t i = 0; i < ARRAY_SIZE(snippet_paths) && snippet == NULL; i++)
		if (access(snippet_paths[i], R_OK) == 0)
			snippet = snippet_paths[i];
	if (snippet == NULL) {
		report(d, "nginx snippet", false, "reinstall the repoflow package",
		       "%s is not there", snippet_paths[0]);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(patterns) && includer == NULL; i++) {
		if (glob(patterns[i], 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc && includer == NULL; k++)
			if (file_includes_snippet(g.gl_pathv[k])) {
				snprintf(found_in, sizeof(found_in), "%s", g.gl_pathv[k]);
				includer = found_in;
			}
		globfree(&g);
	}
	if (includer == NULL)
		report(d, "nginx snippet", false,
		       "add `include snippets/repoflow.conf;` to a server block of an enabled site "
		       "(/etc/nginx/sites-enabled/), then systemctl reload nginx",
		       "%s is there, but no enabled nginx configuration includes it", snippet);
	else
		report(d, "nginx snippet", true, NULL, "%s, included by %s", snippet, includer);
}

/* --- remotes ------------------------------------------------------------- */

struct remote_ctx {
	const struct conf *conf;
	const struct repo *repos;
	size_t n;
};

/*
 * ls-remote of url offering the credentials the worker would, in the
 * child that has become the worker's user. One answer line.
 */
static void child_ls_remote(const struct conf *conf, const struct repo *repo, int fd)
{
	struct gitops_cred cred = {0};
	struct gitops_cred_state cs = {0};
	git_remote_callbacks cb;
	const git_remote_head **heads = NULL;
	git_remote *remote = NULL;
	const git_error *ge;
	size_t n = 0;
	bool local = repo->remote_url[0] == '/' || strncmp(repo->remote_url, "file://", 7) == 0;
	int r;

	if (gitops_cred_find(conf->credentials_dir, repo->name, &cred) < 0) {
		child_say(fd, false, "out of memory");
		return;
	}
	cs.cred = &cred;
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	if (!local) {
		cb.credentials = gitops_cred_acquire;
		cb.payload = &cs;
	}
	r = git_remote_create_detached(&remote, repo->remote_url);
	if (r == 0)
		r = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
	if (r == 0)
		r = git_remote_ls(&heads, &n, remote);
	if (r < 0) {
		ge = git_error_last();
		child_say(fd, false, "%s%s", cs.refused ? "authentication failed: " : "",
			  ge != NULL && ge->message != NULL ? ge->message : "unknown error");
	} else {
		size_t branches = 0;

		for (size_t i = 0; i < n; i++)
			branches += strncmp(heads[i]->name, "refs/heads/", 11) == 0;
		child_say(fd, true, "%zu branch%s%s", branches, branches == 1 ? "" : "es",
			  local			      ? ""
			  : cred.token_file != NULL   ? ", token"
			  : cred.ssh_key_file != NULL ? ", ssh key"
						      : ", no credentials");
	}
	if (remote != NULL) {
		git_remote_disconnect(remote);
		git_remote_free(remote);
	}
	gitops_cred_release(&cred);
}

static void child_remotes(void *ctx, int fd)
{
	const struct remote_ctx *rc = ctx;

	if (gitops_init() < 0) {
		for (size_t i = 0; i < rc->n; i++)
			child_say(fd, false, "libgit2 did not initialise");
		return;
	}
	for (size_t i = 0; i < rc->n; i++)
		child_ls_remote(rc->conf, &rc->repos[i], fd);
	gitops_shutdown();
}

static void check_remotes(struct doctor *d, const struct principal *worker)
{
	struct repo *repos = NULL;
	_cleanup_free_ char *answers = NULL;
	struct err e = {0};
	struct remote_ctx rc;
	size_t n = 0;
	char *cur;
	int r, timeout;

	if (d->c->store == NULL)
		return; /* the database check failed and said why */
	r = store_repo_list(d->c->store, &repos, &n, &e);
	if (r < 0) {
		report(d, "remotes", false, NULL, "cannot list the repos: %s",
		       e.msg[0] ? e.msg : strerror(-r));
		return;
	}
	if (n == 0) {
		report(d, "remotes", true, NULL, "no repo is registered yet");
		return;
	}
	if (!worker->known) {
		for (size_t i = 0; i < n; i++) {
			char name[128];

			snprintf(name, sizeof(name), "remote %s", repos[i].name);
			report(d, name, false, NULL, "cannot check as %s: %s", worker->name,
			       worker->why);
		}
		repo_array_free(repos, n);
		return;
	}
	rc = (struct remote_ctx){&d->c->conf, repos, n};
	timeout = REMOTE_TIMEOUT_MS * (int)(n < 30 ? n : 30);
	r = as_user(worker, child_remotes, &rc, timeout, &answers);
	cur = answers;
	for (size_t i = 0; i < n; i++) {
		char name[128], fix[512];
		bool ok = false;
		const char *detail = r == 0 || r == -ETIMEDOUT ? next_answer(&cur, &ok) : NULL;

		snprintf(name, sizeof(name), "remote %s", repos[i].name);
		snprintf(fix, sizeof(fix),
			 "check the URL (repoflowctl repo show %s) and the credentials in %s "
			 "(%s.token or %s.ssh, else default.*), readable by %s",
			 repos[i].name, d->c->conf.credentials_dir, repos[i].name, repos[i].name,
			 worker->name);
		if (detail == NULL)
			as_user_failure(d, name, worker, r < 0 ? r : -ECHILD, timeout);
		else if (ok)
			report(d, name, true, NULL, "%s answers as %s: %s", repos[i].remote_url,
			       worker->name, detail);
		else
			report(d, name, false, fix, "%s, as %s: %s", repos[i].remote_url,
			       worker->name, detail);
	}
	repo_array_free(repos, n);
}

/* --- the verb ------------------------------------------------------------ */

int ctl_doctor(struct ctl *c, const struct ctl_args *a)
{
	struct doctor d = {.c = c};
	const char *path = conf_path(c->config), *env = getenv("REPOFLOW_CONFIG");
	bool optional = c->config == NULL && (env == NULL || *env == '\0');
	struct principal api, worker;
	char ngx_user[64];
	struct units us;
	struct json_object *o;
	bool conf_ok;

	if (c->json && (d.checks = json_object_new_array()) == NULL)
		return ctl_fail(NULL, -ENOMEM, "cannot build the output");

	check_config(&d, path, optional, &conf_ok);
	if (conf_ok) {
		units_read(&us);
		unit_principal(&us, U_API, "the API's user", &api);
		unit_principal(&us, U_WORKER, "the worker's user", &worker);
		nginx_user(ngx_user, sizeof(ngx_user));

		check_database(&d);
		check_database_access(&d, &api, &worker);
		check_units(&d, &us);
		check_nginx(&d, &us);
		check_api_socket(&d, &us, ngx_user);
		check_wake_socket(&d, &us, &api);
		check_journal(&d, &api);
		check_remotes(&d, &worker);
	}

	if (c->json) {
		o = ctl_json_add(json_object_new_object(), "ok",
				 json_object_new_boolean(d.failed == 0));
		o = ctl_json_add(o, "failed", json_object_new_int(d.failed));
		o = ctl_json_add(o, "checks", d.checks);
		if (ctl_print_json(o) != CTL_OK)
			return CTL_FAILURE;
	} else if (d.failed == 0) {
		printf("\nEvery check passed.\n");
	} else {
		printf("\n%d check%s failed.\n", d.failed, d.failed == 1 ? "" : "s");
	}
	return d.failed == 0 ? CTL_OK : CTL_FAILURE;
}
