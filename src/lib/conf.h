/*
 * conf.h - the one configuration file (`key = value`, `#` comments).
 * Every key has a default here, and doc/repoflow.conf lists them all.
 * Programs read it once at start; nothing re-reads it at run time.
 */
#ifndef REPOFLOW_CONF_H
#define REPOFLOW_CONF_H

#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONF_DEFAULT_PATH SYSCONFDIR "/repoflow/repoflow.conf"

struct conf {
	char *database;        /* SQLite file */
	char *mirror_dir;      /* bare mirrors, one <repo>.git each */
	char *api_socket;      /* FastCGI socket the API binds without systemd */
	char *wake_socket;     /* datagram socket the worker listens on */
	int api_threads;       /* concurrent FastCGI requests per API process */
	int64_t body_limit;    /* request body limit, bytes */
	int worker_threads;    /* repos run in parallel by one worker */
	int idle_exit_s;       /* worker exits after this long with nothing to do */
	int lease_s;           /* a running job's lease; renewed every lease_s/3 */
	int max_attempts;      /* attempts before a transient failure is final */
	int64_t retry_base_ms; /* first retry delay; doubles per attempt */
	int64_t retry_max_ms;  /* cap on the retry delay */
	int busy_timeout_ms;   /* SQLite busy timeout */
	int watchdog_s;        /* unused when systemd gives WATCHDOG_USEC */
	char *committer_name;  /* identity of commits the service writes */
	char *committer_email;
	/*
	 * Remote credentials, files readable only by the worker: for a repo
	 * named R, `R.token` (https: the token, sent as the password; the
	 * user name is the URL's, else x-access-token) and `R.ssh` (ssh: a
	 * private key without passphrase, with `R.ssh.pub` beside it when
	 * the key type needs one), falling back to `default.token` and
	 * `default.ssh`. file:// and local paths use none. The worker never
	 * logs their contents.
	 */
	char *credentials_dir;
	int idempotency_ttl_s; /* how long an Idempotency-Key is remembered */
	int branch_fresh_s;    /* a projection row younger than this is fresh */
	int event_keep_days;   /* events older than this may be pruned */
	/*
	 * nginx's nchan publisher socket (publish.h): every committed event
	 * is POSTed there for the live stream. Empty: no live stream.
	 */
	char *events_publish_socket;
};

/* Fill with defaults. */
void conf_init(struct conf *c);
/*
 * Read `path` over the defaults. A missing file is not an error when
 * `optional` is true. Unknown keys and bad values are errors naming the
 * line. Returns 0 or a negative errno with detail in e.
 */
int conf_load(struct conf *c, const char *path, bool optional, struct err *e);
/* The path to use: an explicit one, else $REPOFLOW_CONFIG, else the default. */
const char *conf_path(const char *explicit_path);
void conf_release(struct conf *c);

#endif
