#!/bin/bash
# Creating tasks without a worker running (a wake-up sink in its place):
# every rejection (422, 409, 415, 400, 401, 403, 404) changes nothing - the
# row counts of jobs, tasks and events and the wake-ups stay the same; a
# pending task shares a queued register_existing_branch job of its branch
# (and then wakes nobody); canceling that queued job fails the task.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"

start_stack --worker=sink

# post_task REPO JSON [curl args]: POST a task body; TASK_ID is its id.
post_task()
{
	local repo=$1 body=$2
	shift 2
	TASK_ID=
	api_json POST "/v1/repos/$repo/tasks" "$body" "$@" &&
	TASK_ID=$(json '.id // empty' 2>/dev/null)
}

# reject NAME STATUS SLUG JSON [curl args]: a POST that must be refused
# with STATUS and change nothing.
reject()
{
	local name=$1 status=$2 slug=$3 body=$4
	shift 4
	snapshot "$name" &&
	post_task rj "$body" "$@" &&
	expect_problem "$status" "$slug" &&
	expect_unchanged "$name"
}

test_expect_success 'setup: a repo (never synced: its projection is empty)' '
	make_remote rj &&
	add_repo rj
'

test_expect_success 'validation: each bad body is 422 with its field in errors[], and changes nothing' '
	reject missing-branch 422 validation_failed "{\"title\": \"t\"}" &&
	expect_error_field branch &&
	reject missing-title 422 validation_failed "{\"branch\": \"feat-1\"}" &&
	expect_error_field title &&
	reject bad-branch 422 validation_failed "{\"branch\": \"a..b\", \"title\": \"t\"}" &&
	expect_error_field branch &&
	reject dash-branch 422 validation_failed "{\"branch\": \"-x\", \"title\": \"t\"}" &&
	expect_error_field branch &&
	reject trunk 422 validation_failed "{\"branch\": \"main\", \"title\": \"t\"}" &&
	expect_error_field branch &&
	reject empty-title 422 validation_failed "{\"branch\": \"feat-1\", \"title\": \"\"}" &&
	expect_error_field title &&
	reject long-title 422 validation_failed "$(jq -cn --arg t "$(printf "%0257d" 0)" "{branch: \"feat-1\", title: \$t}")" &&
	expect_error_field title &&
	reject ctl-title 422 validation_failed "{\"branch\": \"feat-1\", \"title\": \"a\\nb\"}" &&
	expect_error_field title &&
	reject nul-title 422 validation_failed "{\"branch\": \"feat-1\", \"title\": \"a\\u0000b\"}" &&
	expect_error_field title &&
	reject types 422 validation_failed "{\"branch\": 7, \"title\": [\"t\"]}" &&
	expect_error_field branch &&
	expect_error_field title &&
	reject unknown 422 validation_failed "{\"branch\": \"feat-1\", \"title\": \"t\", \"parent\": \"main\"}" &&
	expect_error_field parent
'

test_expect_success 'a title of 256 bytes, UTF-8 included, is fine' '
	title=$(printf "%0254dé" 0) &&
	test_eq 256 "$(printf %s "$title" | wc -c)" "title bytes" &&
	post_task rj "$(jq -cn --arg t "$title" "{branch: \"long-title\", title: \$t}")" &&
	expect_status 202 &&
	expect_json .title "$title"
'

test_expect_success 'bodies that are not a JSON object: 400, 415; nothing changes' '
	reject not-json 400 malformed_request "{branch" &&
	reject array 400 malformed_request "[]" &&
	snapshot ctype &&
	api POST /v1/repos/rj/tasks -H "Content-Type: text/plain" --data-binary "{}" &&
	expect_problem 415 &&
	expect_unchanged ctype
'

test_expect_success 'no token 401, a token of another repo 403, an unknown repo 404: nothing changes' '
	make_remote other &&
	add_repo other &&
	OTHER_TOKEN=$(ctl token create other-only --repo other 2>>"$TRASH/log/ctl.log") &&
	snapshot auth &&
	TOKEN= post_task rj "{\"branch\": \"feat-1\", \"title\": \"t\"}" &&
	expect_problem 401 &&
	expect_header WWW-Authenticate "^Bearer" &&
	TOKEN=$OTHER_TOKEN post_task rj "{\"branch\": \"feat-1\", \"title\": \"t\"}" &&
	expect_problem 403 &&
	post_task nosuch "{\"branch\": \"feat-1\", \"title\": \"t\"}" &&
	expect_problem 404 &&
	TOKEN=$OTHER_TOKEN api GET /v1/repos/rj/tasks &&
	expect_problem 403 &&
	expect_unchanged auth
'

test_expect_success 'an unknown branch: 202 pending with a new job, one job, one task, two events, one wake-up' '
	snapshot first &&
	post_task rj "{\"branch\": \"feat-1\", \"title\": \"First\"}" &&
	expect_status 202 &&
	expect_json .state pending_branch_attach &&
	expect_json .job.status queued &&
	expect_json .job.deduplicated false &&
	FIRST_JOB=$(json .job.id) &&
	FIRST_TASK=$TASK_ID &&
	snapshot first.after &&
	test_eq $(($(snap_get first jobs) + 1)) "$(snap_get first.after jobs)" jobs &&
	test_eq $(($(snap_get first tasks) + 1)) "$(snap_get first.after tasks)" tasks &&
	test_eq $(($(snap_get first events) + 2)) "$(snap_get first.after events)" events &&
	test_eq $(($(snap_get first wakeups) + 1)) "$(snap_get first.after wakeups)" wakeups
'

test_expect_success 'the same branch again: 409 while that task is live; nothing changes' '
	reject live 409 task_exists "{\"branch\": \"feat-1\", \"title\": \"Second\"}"
'

test_expect_success 'a task shares a queued register job of its branch (any parent, not a dry run); no wake-up' '
	post_action rj "{\"kind\": \"register_existing_branch\", \"branch\": \"feat-2\", \"options\": {\"dry_run\": true}}" &&
	expect_status 202 &&
	post_action rj "{\"kind\": \"register_existing_branch\", \"branch\": \"feat-2\", \"parent\": \"feat-1\"}" &&
	expect_status 202 &&
	QUEUED_JOB=$JOB_ID &&
	snapshot shared &&
	post_task rj "{\"branch\": \"feat-2\", \"title\": \"Shared\"}" &&
	expect_status 202 &&
	expect_json .job.id "$QUEUED_JOB" &&
	expect_json .job_id "$QUEUED_JOB" &&
	expect_json .job.deduplicated true &&
	expect_json .job.parent feat-1 &&
	SHARED_TASK=$TASK_ID &&
	snapshot shared.after &&
	test_eq "$(snap_get shared jobs)" "$(snap_get shared.after jobs)" jobs &&
	test_eq $(($(snap_get shared tasks) + 1)) "$(snap_get shared.after tasks)" tasks &&
	test_eq $(($(snap_get shared events) + 1)) "$(snap_get shared.after events)" events &&
	test_eq "$(snap_get shared wakeups)" "$(snap_get shared.after wakeups)" wakeups
'

test_expect_success 'canceling the queued job a task waits for fails the task, in the same change' '
	events_before=$(count events) &&
	api POST "/v1/repos/rj/jobs/$FIRST_JOB/cancel" &&
	expect_status 200 &&
	expect_json .status canceled &&
	api GET "/v1/repos/rj/tasks/$FIRST_TASK" &&
	expect_json .state attach_failed &&
	test_match "canceled" "$(json .reason)" reason &&
	expect_json .version 2 &&
	test_eq $((events_before + 2)) "$(count events)" "events: the job'"'"'s and the task'"'"'s" &&
	# The other pending task (on another job) is untouched.
	api GET "/v1/repos/rj/tasks/$SHARED_TASK" &&
	expect_json .state pending_branch_attach
'

test_expect_success 'once its task failed, the branch takes a new one (and a new job)' '
	post_task rj "{\"branch\": \"feat-1\", \"title\": \"Retry\"}" &&
	expect_status 202 &&
	expect_json .job.deduplicated false &&
	test "$(json .job.id)" != "$FIRST_JOB"
'

test_expect_success 'the event of a pending task carries the task as GET returns it' '
	api GET "/v1/repos/rj/events?after=0&limit=1000" &&
	json -c "[.events[] | select(.type == \"task.updated\" and .id == $SHARED_TASK)][-1].data" >ev.json &&
	api GET "/v1/repos/rj/tasks/$SHARED_TASK" &&
	jq -c . "$RESP_BODY" >get.json &&
	test_cmp get.json ev.json
'

test_done
