/*
 * sqlite-insert.c - the second ceiling for bench/accept: how many
 * single-row transactions per second one thread commits on this disk with
 * the store's pragmas (WAL, synchronous=FULL). An API that commits each
 * request alone cannot accept faster than this; group commit can.
 *
 *   sqlite-insert DB_PATH SECONDS   → prints "commits_per_s N"
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	sqlite3 *db;
	sqlite3_stmt *ins, *begin, *commit;
	double secs = argc > 2 ? atof(argv[2]) : 5, start, t;
	long n = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: sqlite-insert DB_PATH [SECONDS]\n");
		return 2;
	}
	unlink(argv[1]);
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db,
		     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
		     "CREATE TABLE t (id INTEGER PRIMARY KEY, repo_id INTEGER, kind TEXT,"
		     " branch TEXT, options TEXT, status TEXT, created_at INTEGER);",
		     NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL);
	sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
	sqlite3_prepare_v2(db,
			   "INSERT INTO t (repo_id, kind, branch, options, status, created_at)"
			   " VALUES (1, 'restack_subtree', 'feat-a', '{}', 'queued', ?1)",
			   -1, &ins, NULL);
	start = now_s();
	do {
		sqlite3_step(begin);
		sqlite3_reset(begin);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)n);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		if (sqlite3_step(commit) != SQLITE_DONE)
			return 1;
		sqlite3_reset(commit);
		n++;
		t = now_s();
	} while (t - start < secs);
	printf("commits_per_s %.0f\n", (double)n / (t - start));
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	return 0;
}
