/*
 * store_schema.c - the numbered migrations. Migration i takes the schema
 * from PRAGMA user_version i to i + 1; never edit one that has shipped,
 * add the next. Times are integer milliseconds since the epoch (UTC).
 *
 * The partial index jobs_active covers only queued and running jobs, so
 * claiming, deduplicating and counting the queue touch a handful of rows
 * however many finished jobs the table holds; queries that want it say
 * `status IN ('queued','running')` literally, which is how SQLite matches
 * a partial index.
 */
#include "store_internal.h"

const char *const store_migrations[] = {
	/* 1: the foundation */
	"CREATE TABLE repos ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  remote_url TEXT NOT NULL,"
	"  trunk TEXT NOT NULL,"
	"  sync_status TEXT NOT NULL DEFAULT 'never'"
	"    CHECK (sync_status IN ('never','running','ok','error')),"
	"  last_synced_at INTEGER,"
	"  last_error TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL,"
	"  branch TEXT,"
	"  parent TEXT,"
	"  options TEXT NOT NULL,"
	"  fingerprint TEXT NOT NULL,"
	"  status TEXT NOT NULL"
	"    CHECK (status IN ('queued','running','completed','error','canceled')),"
	"  message TEXT NOT NULL,"
	"  progress_step INTEGER NOT NULL DEFAULT 0,"
	"  progress_total INTEGER NOT NULL DEFAULT 0,"
	"  progress_detail TEXT,"
	"  attempt INTEGER NOT NULL DEFAULT 0,"
	"  max_attempts INTEGER NOT NULL,"
	"  cancel_requested INTEGER NOT NULL DEFAULT 0,"
	"  run_at INTEGER NOT NULL,"
	"  lease_owner TEXT,"
	"  lease_expires_at INTEGER,"
	"  result TEXT,"
	"  error TEXT,"
	"  version INTEGER NOT NULL DEFAULT 1,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  finished_at INTEGER"
	");"
	"CREATE INDEX jobs_repo ON jobs(repo_id, id);"
	"CREATE INDEX jobs_active ON jobs(repo_id, fingerprint)"
	"  WHERE status IN ('queued','running');"
	"CREATE TABLE idempotency ("
	"  token_id INTEGER NOT NULL,"
	"  key TEXT NOT NULL,"
	"  fingerprint TEXT NOT NULL,"
	"  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  created_at INTEGER NOT NULL,"
	"  PRIMARY KEY (token_id, key)"
	") WITHOUT ROWID;"
	"CREATE TABLE branches ("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  tracked INTEGER NOT NULL DEFAULT 0,"
	"  parent TEXT,"
	"  base TEXT,"
	"  head TEXT,"
	"  remote_head TEXT,"
	"  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','merged','missing')),"
	"  needs_restack INTEGER NOT NULL DEFAULT 0,"
	"  synced_at INTEGER,"
	"  PRIMARY KEY (repo_id, name)"
	") WITHOUT ROWID;"
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  at INTEGER NOT NULL,"
	"  type TEXT NOT NULL,"
	"  object_id TEXT NOT NULL,"
	"  data TEXT NOT NULL"
	");"
	"CREATE INDEX events_repo ON events(repo_id, seq);"
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  admin INTEGER NOT NULL DEFAULT 0,"
	"  repo_id INTEGER REFERENCES repos(id) ON DELETE CASCADE,"
	"  created_at INTEGER NOT NULL,"
	"  revoked_at INTEGER,"
	"  CHECK ((admin = 1) = (repo_id IS NULL))"
	");"
	"CREATE UNIQUE INDEX tokens_live_name ON tokens(name) WHERE revoked_at IS NULL;"
	"CREATE TABLE worker_state ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  last_seen_at INTEGER NOT NULL"
	");",

	/*
	 * 2: tasks. At most one live task (pending or ready) per branch: the
	 * partial unique index tasks_live is both that rule and the lookup
	 * of a branch's task (queries say the live states literally, as for
	 * jobs_active). tasks_job finds the tasks a finishing job attaches.
	 */
	"CREATE TABLE tasks ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,"
	"  branch TEXT NOT NULL,"
	"  title TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('pending_branch_attach','ready','attach_failed')),"
	"  head TEXT,"
	"  reason TEXT,"
	"  job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,"
	"  version INTEGER NOT NULL DEFAULT 1,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL"
	");"
	"CREATE INDEX tasks_repo ON tasks(repo_id, id);"
	"CREATE INDEX tasks_job ON tasks(job_id);"
	"CREATE UNIQUE INDEX tasks_live ON tasks(repo_id, branch)"
	"  WHERE state IN ('pending_branch_attach','ready');",
};

const size_t store_migrations_count = ARRAY_SIZE(store_migrations);
