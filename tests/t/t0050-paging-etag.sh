#!/bin/bash
# Listing jobs (filters, newest first, paging by `before`), paging the
# event feed (`after`), and conditional GET of a job (ETag, 304).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=none

# path_of URL: the path and query of a `next` link (absolute or not).
path_of() { printf '%s\n' "$1" | sed -E 's|^https?://[^/]*||'; }

test_expect_success 'setup: seven queued jobs on alpha, one on beta' '
	make_remote alpha &&
	make_remote beta &&
	add_repo alpha &&
	add_repo beta &&
	IDS= &&
	for i in 1 2 3 4 5 6 7; do
		post_action alpha "{\"kind\": \"rebase_branch\", \"branch\": \"topic-$i\"}" &&
		expect_status 202 || return 1
		IDS="$JOB_ID $IDS"
	done &&
	post_action beta "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	BETA_JOB=$JOB_ID &&
	echo $IDS | tr " " "\n" >ids.expect &&
	test_eq 7 "$(wc -l <ids.expect)" "jobs made"
'

test_expect_success 'GET .../jobs lists the repo'\''s jobs, newest first' '
	api GET /v1/repos/alpha/jobs &&
	expect_status 200 &&
	expect_header Content-Type "^application/json" &&
	json ".jobs[].id" >ids.actual &&
	test_cmp ids.expect ids.actual &&
	expect_json .next null &&
	expect_json "[.jobs[].repo] | unique | join(\",\")" alpha &&
	expect_json ".jobs[0].links.self" "/v1/repos/alpha/jobs/$(head -n 1 ids.expect)"
'

test_expect_success 'paging by 3 walks every job once, in order' '
	path="/v1/repos/alpha/jobs?limit=3" &&
	pages=0 &&
	: >paged &&
	while [ -n "$path" ]; do
		api GET "$path" && expect_status 200 || return 1
		n=$(json ".jobs | length") &&
		test_le "$n" 3 "page size" || return 1
		json ".jobs[].id" >>paged &&
		pages=$((pages + 1)) &&
		next=$(json ".next // empty") &&
		path=$(path_of "$next") || return 1
		test_le "$pages" 5 "pages" || return 1
	done &&
	test_cmp ids.expect paged &&
	test_eq 3 "$pages" "pages"
'

test_expect_success 'a page that is not full has no next link; a full one has' '
	api GET "/v1/repos/alpha/jobs?limit=7" &&
	test_eq 7 "$(json ".jobs | length")" "page size" &&
	api GET "/v1/repos/alpha/jobs?limit=8" &&
	test_eq 7 "$(json ".jobs | length")" "page size" &&
	expect_json .next null &&
	api GET "/v1/repos/alpha/jobs?limit=2" &&
	test_eq 2 "$(json ".jobs | length")" "page size" &&
	next=$(json .next) &&
	test_match "before=$(sed -n 2p ids.expect)(&|\$)" "$next" "next link"
'

test_expect_success 'before=<id> lists older jobs only' '
	mid=$(sed -n 4p ids.expect) &&
	api GET "/v1/repos/alpha/jobs?before=$mid&limit=50" &&
	expect_status 200 &&
	json ".jobs[].id" >older &&
	sed -n "5,\$p" ids.expect >older.expect &&
	test_cmp older.expect older
'

test_expect_success 'status and kind filters' '
	victim=$(sed -n 3p ids.expect) &&
	api POST "/v1/repos/alpha/jobs/$victim/cancel" &&
	expect_status 200 &&
	post_action alpha "{\"kind\": \"sync_repo\"}" &&
	expect_status 202 &&
	SYNC_JOB=$JOB_ID &&
	api GET "/v1/repos/alpha/jobs?status=canceled" &&
	expect_json "[.jobs[].id] | join(\" \")" "$victim" &&
	api GET "/v1/repos/alpha/jobs?status=queued,running" &&
	expect_json ".jobs | length" 7 &&
	expect_json "[.jobs[].status] | unique | join(\",\")" queued &&
	api GET "/v1/repos/alpha/jobs?status=completed" &&
	expect_json ".jobs | length" 0 &&
	api GET "/v1/repos/alpha/jobs?kind=sync_repo" &&
	expect_json "[.jobs[].id] | join(\" \")" "$SYNC_JOB" &&
	api GET "/v1/repos/alpha/jobs?kind=rebase_branch&status=queued&limit=2" &&
	expect_json ".jobs | length" 2 &&
	expect_json "[.jobs[].kind] | unique | join(\",\")" rebase_branch &&
	next=$(json ".next // empty") &&
	test -n "$next" &&
	api GET "$(path_of "$next")" &&
	expect_json "[.jobs[].kind] | unique | join(\",\")" rebase_branch &&
	expect_json "[.jobs[].status] | unique | join(\",\")" queued
'

test_expect_success 'bad list parameters are problems and change nothing' '
	for q in "status=bogus" "kind=bogus" "limit=abc" "limit=0" "limit=-1" "before=abc"; do
		snapshot q &&
		api GET "/v1/repos/alpha/jobs?$q" &&
		case "$RESP_STATUS" in 400 | 422) ;; *) echo "?$q" >&2; expect_status 422 ;; esac &&
		expect_problem "$RESP_STATUS" &&
		expect_unchanged q || return 1
	done
'

test_expect_success 'the event feed pages by after=<seq> without gaps or repeats' '
	api GET "/v1/repos/alpha/events?after=0&limit=1000" &&
	expect_status 200 &&
	json ".events[].seq" >seq.all &&
	test_ge "$(wc -l <seq.all)" 9 "events of alpha" &&
	sort -n -u seq.all | cmp - seq.all &&
	expect_json ".last_seq" "$(tail -n 1 seq.all)" &&
	after=0 && : >seq.paged && pages=0 &&
	while :; do
		api GET "/v1/repos/alpha/events?after=$after&limit=4" && expect_status 200 || return 1
		n=$(json ".events | length") &&
		test_le "$n" 4 "page size" || return 1
		[ "$n" -gt 0 ] || break
		json ".events[].seq" >>seq.paged &&
		after=$(json .last_seq) &&
		pages=$((pages + 1)) &&
		test_le "$pages" 50 pages || return 1
	done &&
	test_cmp seq.all seq.paged &&
	expect_json .last_seq "$after"
'

test_expect_success 'events carry the data, and only their own repo'\''s' '
	api GET "/v1/repos/alpha/events?after=0&limit=1000" &&
	expect_json "[.events[] | select(.type == \"job.updated\") | .data.repo] | unique | join(\",\")" alpha &&
	expect_json "[.events[] | select(.type == \"job.updated\") | .id] | index($BETA_JOB)" null &&
	expect_json "[.events[] | select(.type == \"job.updated\" and .id == $SYNC_JOB)][0].data.kind" sync_repo &&
	expect_json "[.events[] | select(.type == \"job.updated\" and .id == $SYNC_JOB)][0].data.links.self" \
		"/v1/repos/alpha/jobs/$SYNC_JOB" &&
	expect_json "[.events[].type] - [\"job.updated\", \"task.updated\", \"branch.updated\", \"branch.removed\", \"repo.updated\"] | length" 0 &&
	api GET "/v1/repos/beta/events?after=0&limit=1000" &&
	expect_json "[.events[] | select(.type == \"job.updated\") | .id] | unique | join(\" \")" "$BETA_JOB"
'

test_expect_success 'the job has an ETag; If-None-Match with it gives 304' '
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" &&
	expect_status 200 &&
	expect_header ETag "^\"$SYNC_JOB-[0-9]+\"\$" &&
	expect_header Cache-Control "no-cache" &&
	expect_header Retry-After "^[0-9]+\$" &&
	TAG=$(header ETag) &&
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" -H "If-None-Match: $TAG" &&
	expect_status 304 &&
	test_eq 0 "$(wc -c <"$RESP_BODY")" "304 body size" &&
	expect_header ETag "^$TAG\$" &&
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" -H "If-None-Match: \"$SYNC_JOB-999999\", $TAG" &&
	expect_status 304 &&
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" -H "If-None-Match: \"$SYNC_JOB-999999\"" &&
	expect_status 200 &&
	expect_json .id "$SYNC_JOB"
'

test_expect_success 'a change gives a new ETag; the old one no longer matches' '
	start_worker foreground &&
	wait_job alpha "$SYNC_JOB" completed 60 &&
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" -H "If-None-Match: $TAG" &&
	expect_status 200 &&
	expect_json .status completed &&
	NEWTAG=$(header ETag) &&
	test "$NEWTAG" != "$TAG" &&
	old=$(echo "$TAG" | sed -E "s/^\"[0-9]+-([0-9]+)\"\$/\1/") &&
	new=$(echo "$NEWTAG" | sed -E "s/^\"[0-9]+-([0-9]+)\"\$/\1/") &&
	test_gt "$new" "$old" "version" &&
	! header Retry-After >/dev/null &&
	api GET "/v1/repos/alpha/jobs/$SYNC_JOB" -H "If-None-Match: $NEWTAG" &&
	expect_status 304
'

test_done
