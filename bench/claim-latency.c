/*
 * claim-latency.c - how long the worker's claim transaction takes on a
 * given database, measured through the store itself: enqueue N jobs on
 * repo REPO, then time each store_job_claim (and finish the job, as the
 * worker would). bench/scale runs it at 1,000 and at 1,000,000 job rows.
 *
 *   claim-latency DB_PATH REPO N   → prints "claim_p50_us X claim_p99_us Y"
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct store *s;
	struct err e = {{0}, {0}};
	struct repo repo;
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	int64_t *lat;

	if (argc < 4 || n < 1) {
		fprintf(stderr, "usage: claim-latency DB_PATH REPO N\n");
		return 2;
	}
	if (store_open(argv[1], 5000, STORE_MIGRATE, &s, &e) < 0 ||
	    store_repo_get(s, argv[2], &repo, &e) < 0) {
		fprintf(stderr, "claim-latency: %s\n", e.msg);
		return 1;
	}
	lat = calloc((size_t)n, sizeof(*lat));
	for (int i = 0; i < n; i++) {
		char branch[64];
		struct job_request rq = {.repo_id = repo.id, .repo = repo.name, .kind = JOB_REBASE_BRANCH,
					 .branch = branch, .max_attempts = 1};
		struct job j;

		snprintf(branch, sizeof(branch), "claim-bench-%d-%lld", i, (long long)now_ms());
		job_options_default(&rq.options);
		if (store_begin(s, &e) < 0 || store_job_enqueue(s, &rq, &j, &e) < 0 ||
		    store_commit(s, &e) < 0) {
			fprintf(stderr, "claim-latency: enqueue: %s\n", e.msg);
			return 1;
		}
		job_release(&j);
	}
	for (int i = 0; i < n; i++) {
		struct job j;
		int64_t t0 = mono_us();
		int r = store_job_claim(s, "bench", 60000, &j, &e);

		lat[i] = mono_us() - t0;
		if (r != 1) {
			fprintf(stderr, "claim-latency: claim %d returned %d: %s\n", i, r, e.msg);
			return 1;
		}
		store_begin(s, &e);
		store_job_finish(s, &j, JOB_COMPLETED, "bench", NULL, NULL, &e);
		store_commit(s, &e);
		job_release(&j);
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("claim_p50_us %lld claim_p99_us %lld\n", (long long)lat[n / 2],
	       (long long)lat[(n * 99) / 100]);
	free(lat);
	repo_release(&repo);
	store_close(s);
	return 0;
}
