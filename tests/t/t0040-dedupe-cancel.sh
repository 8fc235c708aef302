#!/bin/bash
# Dedupe of identical queued jobs, and cancel of queued, running and
# finished jobs. The worker is started only halfway, so that jobs stay
# queued for as long as the first tests need.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=none

SYNC='{"kind": "sync_repo"}'

test_expect_success 'setup: a small and a big remote' '
	make_remote alpha &&
	make_remote beta &&
	make_big_remote slow 24 &&
	add_repo alpha &&
	add_repo beta &&
	add_repo slow "file://$TRASH/remotes/slow.git"
'

test_expect_success 'an identical request returns the queued job, marked deduplicated' '
	jobs0=$(count jobs) &&
	post_action alpha "$SYNC" &&
	expect_status 202 &&
	expect_json .deduplicated false &&
	QUEUED=$JOB_ID &&
	post_action alpha "$SYNC" &&
	expect_status 202 &&
	test_eq "$QUEUED" "$JOB_ID" "job id" &&
	expect_json .deduplicated true &&
	expect_json .status queued &&
	expect_header Location "^/v1/repos/alpha/jobs/$QUEUED\$" &&
	test_eq $((jobs0 + 1)) "$(count jobs)" jobs
'

test_expect_success 'the same request with the defaults spelled out is identical' '
	post_action alpha "{\"kind\": \"sync_repo\", \"options\": {\"push\": true, \"dry_run\": false}}" &&
	expect_status 202 &&
	test_eq "$QUEUED" "$JOB_ID" "job id" &&
	expect_json .deduplicated true
'

test_expect_success 'GET of the job does not say deduplicated' '
	api GET "/v1/repos/alpha/jobs/$QUEUED" &&
	expect_status 200 &&
	expect_json .deduplicated false
'

test_expect_success 'other options, another branch, another repo: new jobs' '
	jobs0=$(count jobs) &&
	post_action alpha "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" &&
	expect_status 202 && expect_json .deduplicated false &&
	test "$JOB_ID" != "$QUEUED" &&
	post_action alpha "{\"kind\": \"rebase_branch\", \"branch\": \"gone-1\"}" &&
	expect_status 202 && expect_json .deduplicated false && R1=$JOB_ID &&
	post_action alpha "{\"kind\": \"rebase_branch\", \"branch\": \"gone-2\"}" &&
	expect_status 202 && expect_json .deduplicated false && R2=$JOB_ID &&
	test "$R1" != "$R2" &&
	post_action beta "$SYNC" &&
	expect_status 202 && expect_json .deduplicated false && BETA=$JOB_ID &&
	test_eq $((jobs0 + 4)) "$(count jobs)" jobs &&
	post_action alpha "{\"kind\": \"rebase_branch\", \"branch\": \"gone-1\"}" &&
	test_eq "$R1" "$JOB_ID" "job id of the repeated rebase_branch" &&
	test_eq $((jobs0 + 4)) "$(count jobs)" jobs
'

test_expect_success 'cancel of a queued job: 200, canceled, with its event' '
	events0=$(count events) &&
	api POST "/v1/repos/alpha/jobs/$QUEUED/cancel" &&
	expect_status 200 &&
	expect_json .id "$QUEUED" &&
	expect_json .status canceled &&
	test_match "^[0-9]{4}-" "$(json .finished_at)" finished_at &&
	test_gt "$(count events)" "$events0" events &&
	api GET "/v1/repos/alpha/jobs/$QUEUED" &&
	expect_json .status canceled &&
	api GET "/v1/repos/alpha/events?after=0&limit=1000" &&
	expect_json "[.events[] | select(.type == \"job.updated\" and .id == $QUEUED)][-1].data.status" canceled
'

test_expect_success 'a canceled job is not a dedupe target' '
	post_action alpha "$SYNC" &&
	expect_status 202 &&
	expect_json .deduplicated false &&
	test "$JOB_ID" != "$QUEUED" &&
	AGAIN=$JOB_ID
'

test_expect_success 'cancel of a canceled job: 409, nothing changed' '
	snapshot c2 &&
	api POST "/v1/repos/alpha/jobs/$QUEUED/cancel" &&
	expect_problem 409 &&
	expect_unchanged c2
'

test_expect_success 'a worker runs what is queued; canceled jobs stay canceled' '
	start_worker foreground &&
	wait_job alpha "$AGAIN" completed 60 &&
	wait_job beta "$BETA" completed 60 &&
	api GET "/v1/repos/alpha/jobs/$QUEUED" &&
	expect_json .status canceled &&
	expect_json .started_at null
'

test_expect_success 'cancel of a completed job: 409, nothing changed' '
	api GET "/v1/repos/alpha/jobs/$AGAIN" &&
	etag=$(header ETag) &&
	snapshot c3 &&
	api POST "/v1/repos/alpha/jobs/$AGAIN/cancel" &&
	expect_problem 409 &&
	expect_unchanged c3 &&
	api GET "/v1/repos/alpha/jobs/$AGAIN" &&
	expect_json .status completed &&
	test_eq "$etag" "$(header ETag)" "ETag after the refused cancel"
'

test_expect_success 'cancel of a job that ended in error (its branch does not exist): 409' '
	for id in $R1 $R2; do
		wait_job alpha "$id" error 60 || return 1
	done &&
	snapshot c4 &&
	api POST "/v1/repos/alpha/jobs/$R1/cancel" &&
	expect_problem 409 &&
	expect_unchanged c4
'

test_expect_success 'cancel of a running job: 202 cancel_requested, then canceled' '
	post_action slow "$SYNC" &&
	expect_status 202 &&
	SLOW=$JOB_ID &&
	wait_job slow "$SLOW" running 60 &&
	api DELETE /v1/repos/slow &&
	expect_problem 409 &&
	api POST "/v1/repos/slow/jobs/$SLOW/cancel" &&
	expect_status 202 &&
	expect_json .id "$SLOW" &&
	expect_json .cancel_requested true &&
	expect_json .status running &&
	wait_job slow "$SLOW" canceled 120 &&
	api GET "/v1/repos/slow/jobs/$SLOW" &&
	expect_json .attempt 1 &&
	test_match "^[0-9]{4}-" "$(json .finished_at)" finished_at
'

test_expect_success 'cancel of a job canceled while it ran: 409, nothing changed' '
	snapshot c5 &&
	api POST "/v1/repos/slow/jobs/$SLOW/cancel" &&
	expect_problem 409 &&
	expect_unchanged c5
'

test_expect_success 'after a canceled clone the next sync of that repo completes' '
	post_action slow "$SYNC" &&
	expect_status 202 &&
	wait_job slow "$JOB_ID" completed 120 &&
	api GET /v1/repos/slow/branches &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/slow.git" >expect &&
	test_cmp expect actual
'

test_expect_success 'DELETE of a repo without running jobs: 204, and it is gone' '
	repos0=$(count repos) &&
	api DELETE /v1/repos/beta &&
	expect_status 204 &&
	test_eq 0 "$(wc -c <"$RESP_BODY")" "204 body size" &&
	test_eq $((repos0 - 1)) "$(count repos)" repos &&
	api GET /v1/repos/beta &&
	expect_problem 404 &&
	api GET /v1/repos &&
	expect_json "[.repos[].name] | index(\"beta\")" null
'

test_done
