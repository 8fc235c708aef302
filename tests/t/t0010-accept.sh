#!/bin/bash
# The accept path end to end: a repo is registered, POST .../actions
# answers 202 with the job at once, the socket-activated worker runs the
# sync against a real remote, and the projection matches `git ls-remote`.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=activate
TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

test_expect_success 'POST /v1/repos registers a repo (201) without cloning it' '
	make_remote alpha &&
	add_repo alpha "$TRASH/remotes/alpha.git" main &&
	expect_header Content-Type "^application/json" &&
	expect_json .name alpha &&
	expect_json .remote_url "$TRASH/remotes/alpha.git" &&
	expect_json .trunk main &&
	test_eq 1 "$(count repos)" "repos" &&
	test_eq 0 "$(count jobs)" "jobs" &&
	test ! -e "$TRASH/repos/alpha.git"
'

test_expect_success 'GET /v1/repos/alpha before any sync' '
	api GET /v1/repos/alpha &&
	expect_status 200 &&
	expect_json .name alpha &&
	expect_json .sync.status never &&
	expect_json .branches 0 &&
	expect_json ".active_jobs | length" 0
'

test_expect_success 'POST .../actions sync_repo answers 202 with Location and the job' '
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	expect_header Content-Type "^application/json" &&
	expect_header Location "^/v1/repos/alpha/jobs/$JOB_ID\$" &&
	expect_header Retry-After "^1\$" &&
	test_match "^[1-9][0-9]*\$" "$JOB_ID" "job id" &&
	expect_json .repo alpha &&
	expect_json .kind sync_repo &&
	expect_json .branch null &&
	expect_json .parent null &&
	expect_json .status queued &&
	expect_json .attempt 0 &&
	expect_json .max_attempts 5 &&
	expect_json .deduplicated false &&
	expect_json .options.dry_run false &&
	expect_json .options.push true &&
	expect_json .started_at null &&
	expect_json .finished_at null &&
	expect_json .result null &&
	expect_json .error null &&
	expect_json ".progress | keys | sort | join(\",\")" "detail,step,total" &&
	test_match "$TS_RE" "$(json .created_at)" created_at &&
	test_match "$TS_RE" "$(json .run_at)" run_at &&
	expect_json .links.self "/v1/repos/alpha/jobs/$JOB_ID" &&
	expect_json .links.cancel "/v1/repos/alpha/jobs/$JOB_ID/cancel" &&
	SYNC1=$JOB_ID
'

test_expect_success 'the job row and its first event are on disk' '
	test_eq 1 "$(count jobs)" jobs &&
	api GET "/v1/repos/alpha/events?after=0&limit=100" &&
	expect_status 200 &&
	expect_json "[.events[] | select(.type == \"job.updated\" and .id == $SYNC1)][0].data.status" queued
'

test_expect_success 'the job reaches completed' '
	wait_job alpha "$SYNC1" completed 60 &&
	api GET "/v1/repos/alpha/jobs/$SYNC1" &&
	expect_status 200 &&
	expect_json .status completed &&
	expect_json .attempt 1 &&
	expect_json .error null &&
	test_match "$TS_RE" "$(json .started_at)" started_at &&
	test_match "$TS_RE" "$(json .finished_at)" finished_at &&
	expect_json ".started_at <= .finished_at" true &&
	expect_json ".created_at <= .started_at" true
'

test_expect_success 'its events go queued, running, completed' '
	api GET "/v1/repos/alpha/events?after=0&limit=1000" &&
	json "[.events[] | select(.type == \"job.updated\" and .id == $SYNC1) | .data.status]
		| reduce .[] as \$s ([]; if (.[-1] // \"\") == \$s then . else . + [\$s] end) | join(\" \")" >seq &&
	test_eq "queued running completed" "$(cat seq)" "status sequence"
'

test_expect_success 'the mirror holds the remote objects' '
	test -d "$TRASH/repos/alpha.git" &&
	for sha in $(git ls-remote --heads "$TRASH/remotes/alpha.git" | cut -f1); do
		git --git-dir="$TRASH/repos/alpha.git" cat-file -e "$sha^{commit}" || return 1
	done
'

test_expect_success 'the branch projection matches git ls-remote' '
	api GET /v1/repos/alpha/branches &&
	expect_status 200 &&
	test_match "$TS_RE" "$(json .synced_at)" synced_at &&
	json ".branches[] | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/alpha.git" >expect &&
	test_eq 4 "$(wc -l <expect)" "remote branches" &&
	test_cmp expect actual &&
	json ".branches[] | \"\(.head) \(.name)\"" | sort -k 2 >actual.head &&
	test_cmp expect actual.head &&
	expect_json ".branches[0].name" main &&
	expect_json "[.branches[].state] | unique | join(\",\")" active
'

test_expect_success 'the repo overview says the sync went well' '
	api GET /v1/repos/alpha &&
	expect_status 200 &&
	expect_json .sync.status ok &&
	test_match "$TS_RE" "$(json .sync.last_synced_at)" last_synced_at &&
	expect_json .sync.last_error null &&
	expect_json .branches 4 &&
	expect_json ".active_jobs | length" 0
'

test_expect_success 'a second sync fetches what changed on the remote (prune too)' '
	(
		cd work/alpha &&
		git checkout -q feat-2 &&
		echo more >>feat-2.txt &&
		git commit -q -a -m "More feature 2" &&
		git push -q origin feat-2 &&
		git push -q origin :feat-3
	) &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	test_eq false "$(json .deduplicated)" deduplicated &&
	test "$SYNC1" != "$JOB_ID" &&
	wait_job alpha "$JOB_ID" completed 60 &&
	api GET /v1/repos/alpha/branches &&
	json ".branches[] | select(.state == \"active\") | \"\(.remote_head) \(.name)\"" | sort -k 2 >actual &&
	ls_remote_heads "$TRASH/remotes/alpha.git" >expect &&
	test_eq 3 "$(wc -l <expect)" "remote branches" &&
	test_cmp expect actual
'

test_expect_success 'a repo token may act on its repo, and sees only it' '
	make_remote beta &&
	add_repo beta &&
	ALPHA_TOKEN=$(ctl token create alpha-bot --repo alpha) &&
	test -n "$ALPHA_TOKEN" &&
	TOKEN=$ALPHA_TOKEN post_action alpha "{\"kind\": \"sync_repo\", \"options\": {\"dry_run\": true}}" &&
	expect_status 202 &&
	wait_job alpha "$JOB_ID" completed 60 &&
	TOKEN=$ALPHA_TOKEN api GET /v1/repos &&
	expect_status 200 &&
	expect_json "[.repos[].name] | join(\",\")" alpha &&
	api GET /v1/repos &&
	expect_json "[.repos[].name] | sort | join(\",\")" alpha,beta
'

test_done
