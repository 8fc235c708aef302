#!/bin/bash
# Tasks on branches (API.md, "Branches and tasks"), with a real worker: a
# task is ready at once for a branch the projection has fresh and active;
# otherwise it waits in pending_branch_attach on a register_existing_branch
# job and becomes ready (the branch exists on the remote) or
# attach_failed (it does not); one live task per branch; the branch rows
# carry task_id; get, list, paging, ETag.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

# A branch row is fresh for 3 s here, so a test can also see a stale one.
start_stack --conf=branch_fresh_s=3

# post_task REPO BRANCH TITLE: POST a task; TASK_ID is its id.
post_task()
{
	TASK_ID=
	api_json POST "/v1/repos/$1/tasks" "$(jq -cn --arg b "$2" --arg t "$3" '{branch: $b, title: $t}')" &&
	TASK_ID=$(json '.id // empty' 2>/dev/null)
}

# task_field REPO ID FILTER: a field of the task as GET returns it.
task_field()
{
	curl -sS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" \
		"$BASE/v1/repos/$1/tasks/$2" | jq -r "$3"
}

# wait_task REPO ID STATE [TIMEOUT_S]: wait until the task is in STATE.
wait_task()
{
	local deadline=$((SECONDS + ${4:-60})) st
	while :; do
		st=$(task_field "$1" "$2" .state) || st=
		[ "$st" = "$3" ] && return 0
		if [ "$st" != pending_branch_attach ] || [ $SECONDS -ge $deadline ]; then
			echo "task $2 is '$st', not $3:" >&2
			task_field "$1" "$2" . >&2
			return 1
		fi
		sleep 0.05
	done
}

test_expect_success 'setup: a stack on the remote, feat-1 and feat-2 tracked, the projection synced' '
	make_stack_remote tk &&
	add_repo tk &&
	register tk feat-1 &&
	register tk feat-2
'

test_expect_success 'a fresh, tracked branch: 201 with a ready task at the branch head, no job' '
	jobs_before=$(count jobs) &&
	post_task tk feat-1 "Write the docs" &&
	expect_status 201 &&
	expect_header Location "^/v1/repos/tk/tasks/$TASK_ID\$" &&
	expect_json .state ready &&
	expect_json .branch feat-1 &&
	expect_json .title "Write the docs" &&
	expect_json .repo tk &&
	expect_json .head "$(rev tk feat-1)" &&
	expect_json .job_id null &&
	expect_json .job null &&
	expect_json .reason null &&
	expect_json .version 1 &&
	expect_json .links.self "/v1/repos/tk/tasks/$TASK_ID" &&
	test_eq "$jobs_before" "$(count jobs)" "jobs (no job for a known branch)" &&
	READY_TASK=$TASK_ID
'

test_expect_success 'GET the task: the same task, with an ETag; If-None-Match gives 304' '
	api GET "/v1/repos/tk/tasks/$READY_TASK" &&
	expect_status 200 &&
	expect_json .state ready &&
	expect_header ETag "^\"$READY_TASK-1\"\$" &&
	expect_header Cache-Control no-cache &&
	api GET "/v1/repos/tk/tasks/$READY_TASK" -H "If-None-Match: \"$READY_TASK-1\"" &&
	expect_status 304
'

test_expect_success 'the branch row carries the task id; other rows carry null' '
	expect_branch tk feat-1 task_id "$READY_TASK" &&
	expect_branch tk feat-2 task_id null &&
	expect_branch tk main task_id null
'

test_expect_success 'a second live task for the same branch is 409, and nothing changes' '
	snapshot second &&
	post_task tk feat-1 "Another one" &&
	expect_problem 409 task_exists &&
	test_match "/v1/repos/tk/tasks/$READY_TASK" "$(json .detail)" "detail names the live task" &&
	expect_unchanged second
'

test_expect_success 'a branch only on the remote: 202, pending_branch_attach, with the register job that attaches it' '
	new_branch tk feat-new feat-2 &&
	commit_on tk feat-new fn.txt "new\n" "Add a new feature" &&
	push_branches tk feat-new &&
	post_task tk feat-new "Review feat-new" &&
	expect_status 202 &&
	expect_header Location "^/v1/repos/tk/tasks/$TASK_ID\$" &&
	expect_header Retry-After "^1\$" &&
	expect_json .state pending_branch_attach &&
	expect_json .head null &&
	expect_json .job.kind register_existing_branch &&
	expect_json .job.branch feat-new &&
	expect_json .job.deduplicated false &&
	expect_json ".job_id == .job.id" true &&
	expect_json .links.job "/v1/repos/tk/jobs/$(json .job.id)" &&
	PENDING_TASK=$TASK_ID &&
	ATTACH_JOB=$(json .job.id)
'

test_expect_success 'when the job completes the task is ready with the branch head, and the branch is tracked' '
	wait_job tk "$ATTACH_JOB" completed &&
	wait_task tk "$PENDING_TASK" ready &&
	test_eq "$(rev tk feat-new)" "$(task_field tk "$PENDING_TASK" .head)" "head" &&
	test_eq 2 "$(task_field tk "$PENDING_TASK" .version)" "version" &&
	expect_branch tk feat-new task_id "$PENDING_TASK" &&
	expect_branch tk feat-new tracked true &&
	expect_branch tk feat-new parent feat-2
'

test_expect_success 'the task went pending then ready in task.updated events, beside its job'"'"'s' '
	all_events tk >events.json &&
	jq -r "select(.type == \"task.updated\" and .id == $PENDING_TASK) | .data.state" events.json >states &&
	printf "pending_branch_attach\nready\n" >states.expect &&
	test_cmp states.expect states &&
	# The pending task and its job were written together: job first, then the task.
	jq -s -r "[.[] | select((.type == \"job.updated\" and .id == $ATTACH_JOB) or (.type == \"task.updated\" and .id == $PENDING_TASK))] | .[0:2] | map(.type) | join(\",\")" events.json >first2 &&
	test_eq "job.updated,task.updated" "$(cat first2)" &&
	# ... and the job finished in the transaction that made the task ready.
	jq -s -r "[.[] | select(.type == \"job.updated\" and .id == $ATTACH_JOB and .data.status == \"completed\")][0].seq" events.json >done_seq &&
	jq -s -r "[.[] | select(.type == \"task.updated\" and .id == $PENDING_TASK and .data.state == \"ready\")][0].seq" events.json >ready_seq &&
	test_eq "$(($(cat done_seq) + 1))" "$(cat ready_seq)" "the ready event follows the job'"'"'s completion"
'

test_expect_success 'a branch that does not exist: pending, then attach_failed with the reason' '
	post_task tk no-such-branch "Ghost work" &&
	expect_status 202 &&
	expect_json .state pending_branch_attach &&
	FAIL_TASK=$TASK_ID &&
	FAIL_JOB=$(json .job.id) &&
	wait_job tk "$FAIL_JOB" error &&
	wait_task tk "$FAIL_TASK" attach_failed &&
	task_field tk "$FAIL_TASK" . >failed.json &&
	test_match "not on the remote" "$(jq -r .reason failed.json)" "reason" &&
	test_eq null "$(jq -r .head failed.json)" "head" &&
	test_eq "$FAIL_JOB" "$(jq -r .job_id failed.json)" "job_id"
'

test_expect_success 'an attach_failed task is not live: the branch may get a new task' '
	post_task tk no-such-branch "Ghost work, again" &&
	expect_status 202 &&
	test "$TASK_ID" != "$FAIL_TASK" &&
	wait_job tk "$(json .job.id)" error &&
	wait_task tk "$TASK_ID" attach_failed
'

test_expect_success 'a branch row that is no longer fresh is attached by a job, which makes it ready' '
	# feat-2 was synced by the last job; after branch_fresh_s it is stale.
	sleep 3.2 &&
	post_task tk feat-2 "Stale projection" &&
	expect_status 202 &&
	expect_json .job.kind register_existing_branch &&
	wait_job tk "$(json .job.id)" completed &&
	wait_task tk "$TASK_ID" ready &&
	test_eq "$(rev tk feat-2)" "$(task_field tk "$TASK_ID" .head)" "head"
'

test_expect_success 'a tracked branch gone from the remote (missing) is not active: the attach fails' '
	register tk feat-3 &&
	pgit tk push -q origin --delete feat-3 &&
	run_job tk "{\"kind\": \"sync_repo\"}" completed &&
	expect_branch tk feat-3 state missing &&
	post_task tk feat-3 "Gone" &&
	expect_status 202 &&
	expect_json .state pending_branch_attach &&
	wait_job tk "$(json .job.id)" error &&
	wait_task tk "$TASK_ID" attach_failed
'

test_expect_success 'GET .../tasks lists them newest first; filters by state and branch; pages by before' '
	api GET /v1/repos/tk/tasks &&
	expect_status 200 &&
	json ".tasks[].id" >ids &&
	sort -rn ids >ids.sorted &&
	test_cmp ids.sorted ids &&
	test_eq 6 "$(wc -l <ids)" "tasks" &&
	expect_json .next null &&
	api GET "/v1/repos/tk/tasks?state=ready" &&
	expect_json "[.tasks[].state] | unique | join(\",\")" ready &&
	expect_json ".tasks | length" 3 &&
	api GET "/v1/repos/tk/tasks?state=attach_failed,pending_branch_attach&branch=no-such-branch" &&
	expect_json ".tasks | length" 2 &&
	api GET "/v1/repos/tk/tasks?limit=4" &&
	expect_json ".tasks | length" 4 &&
	next=$(json .next) &&
	test_match "^/v1/repos/tk/tasks\\?limit=4&before=[0-9]+\$" "$next" &&
	api GET "$next" &&
	expect_json ".tasks | length" 2 &&
	expect_json .next null &&
	json ".tasks[].id" >page2 &&
	tail -n 2 ids >page2.expect &&
	test_cmp page2.expect page2
'

test_expect_success 'bad list queries are 422; an unknown task is 404' '
	api GET "/v1/repos/tk/tasks?state=done" &&
	expect_problem 422 validation_failed &&
	expect_error_field state &&
	api GET "/v1/repos/tk/tasks?limit=0" &&
	expect_problem 422 &&
	expect_error_field limit &&
	api GET "/v1/repos/tk/tasks?branch=..bad" &&
	expect_problem 422 &&
	expect_error_field branch &&
	api GET /v1/repos/tk/tasks/999999 &&
	expect_problem 404 not_found &&
	api GET /v1/repos/tk/tasks/abc &&
	expect_problem 404
'

test_expect_success 'the repo overview and the branch list read from SQLite: trunk first, then by stack depth' '
	api GET /v1/repos/tk/branches &&
	expect_status 200 &&
	json ".branches[0].name" >first &&
	test_eq main "$(cat first)" "the trunk comes first" &&
	json -r ".branches[] | select(.tracked) | .name" >tracked &&
	printf "feat-1\nfeat-2\nfeat-3\nfeat-new\n" >tracked.expect &&
	test_cmp tracked.expect tracked &&
	api GET /v1/repos/tk &&
	expect_status 200 &&
	expect_json .sync.status ok &&
	expect_json ".branches >= 4" true &&
	expect_json ".active_jobs" "[]"
'

test_done
