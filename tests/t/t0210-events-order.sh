#!/bin/bash
# The event feed against the state it reports (API.md, "Events"): after a
# run of real work (register, tasks ready, attached and failed, a
# restack, syncs, a dry run), every job, task, branch and repo change has exactly one
# event, in order - a job's or a task's job.updated/task.updated events
# carry versions 1, 2, ... up to the version GET shows (one per change,
# none twice, none missing); a branch's events each change something a
# client sees, and the last one is the row GET .../branches shows; the
# last repo.updated is the repo's sync state.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

test_expect_success 'setup: a repo, a synced and tracked stack, tasks, a restack after the trunk moved' '
	make_stack_remote ev &&
	add_repo ev &&
	register_stack ev feat-1:main feat-2:feat-1 feat-3:feat-2 &&
	api_json POST /v1/repos/ev/tasks "{\"branch\": \"feat-2\", \"title\": \"ready at once\"}" &&
	expect_status 201 &&
	new_branch ev side main &&
	commit_on ev side s.txt "s\n" "Side work" &&
	push_branches ev side &&
	api_json POST /v1/repos/ev/tasks "{\"branch\": \"side\", \"title\": \"attached by a job\"}" &&
	expect_status 202 &&
	wait_job ev "$(json .job.id)" completed &&
	api_json POST /v1/repos/ev/tasks "{\"branch\": \"ghost\", \"title\": \"never attached\"}" &&
	expect_status 202 &&
	wait_job ev "$(json .job.id)" error &&
	trunk_gains ev &&
	run_job ev "{\"kind\": \"restack_repo\"}" completed &&
	run_job ev "{\"kind\": \"sync_repo\"}" completed &&
	post_action ev "{\"kind\": \"rebase_branch\", \"branch\": \"feat-1\", \"options\": {\"dry_run\": true}}" &&
	wait_job ev "$JOB_ID" completed &&
	all_events ev >events.json &&
	test_gt "$(wc -l <events.json)" 30 events
'

test_expect_success 'seq strictly grows and at never goes back' '
	jq -s -e "[.[].seq] as \$s | [range(1; \$s | length) | select(\$s[.] <= \$s[. - 1])] | length == 0" events.json >/dev/null &&
	jq -s -e "[.[].at] as \$a | [range(1; \$a | length) | select(\$a[.] < \$a[. - 1])] | length == 0" events.json >/dev/null
'

test_expect_success 'every job: one job.updated per change, versions 1..N in order, the last one is GET'"'"'s' '
	api GET "/v1/repos/ev/jobs?limit=200" &&
	json ".jobs[].id" >job.ids &&
	test_ge "$(wc -l <job.ids)" 8 jobs &&
	while read -r id; do
		api GET "/v1/repos/ev/jobs/$id" &&
		jq -c "del(.deduplicated)" "$RESP_BODY" >get.json &&
		v=$(header ETag | sed -E "s/^\"[0-9]+-([0-9]+)\"\$/\\1/") &&
		jq -r "select(.type == \"job.updated\" and .id == $id) | .seq" events.json >seqs &&
		test_eq "$v" "$(wc -l <seqs)" "events of job $id (its version)" &&
		jq -s -c "map(select(.type == \"job.updated\" and .id == $id)) | last | .data | del(.deduplicated)" events.json >last.json &&
		test_cmp get.json last.json || return 1
	done <job.ids
'

test_expect_success 'every task: task.updated versions 1..N in order, the last one is GET'"'"'s' '
	api GET /v1/repos/ev/tasks &&
	json ".tasks[].id" >task.ids &&
	test_eq 3 "$(wc -l <task.ids)" tasks &&
	while read -r id; do
		api GET "/v1/repos/ev/tasks/$id" &&
		jq -c . "$RESP_BODY" >get.json &&
		v=$(jq -r .version get.json) &&
		jq -r "select(.type == \"task.updated\" and .id == $id) | .data.version" events.json >vers &&
		seq 1 "$v" >vers.expect &&
		test_cmp vers.expect vers &&
		jq -s -c "map(select(.type == \"task.updated\" and .id == $id)) | last | .data" events.json >last.json &&
		test_cmp get.json last.json || return 1
	done <task.ids
'

test_expect_success 'every branch: each event changes what a client sees; the last is the row (but synced_at)' '
	api GET /v1/repos/ev/branches &&
	json -c ".branches[]" >rows.json &&
	fields="[.name, .tracked, .parent, .base, .head, .remote_head, .state, .needs_restack]" &&
	while read -r row; do
		name=$(printf "%s" "$row" | jq -r .name) &&
		jq -c "select(.type == \"branch.updated\" and .id == \"$name\") | .data | $fields" events.json >b.events &&
		test_gt "$(wc -l <b.events)" 0 "events of $name" &&
		test_eq "$(wc -l <b.events)" "$(uniq b.events | wc -l)" "events of $name that change nothing" &&
		test_eq "$(printf "%s" "$row" | jq -c "$fields")" "$(tail -n 1 b.events)" "last event of $name" || return 1
	done <rows.json
'

test_expect_success 'branches that leave the remote: an untracked one ends with branch.removed, a tracked one is missing' '
	new_branch ev loose main &&
	commit_on ev loose l.txt "l\n" "Loose work" &&
	push_branches ev loose &&
	run_job ev "{\"kind\": \"sync_repo\"}" completed &&
	expect_branch ev loose tracked false &&
	pgit ev push -q origin --delete side loose &&
	run_job ev "{\"kind\": \"sync_repo\"}" completed &&
	all_events ev >events2.json &&
	jq -s -r "map(select(.id == \"loose\")) | map(.type) | join(\",\")" events2.json >loose.types &&
	test_eq "branch.updated,branch.removed" "$(cat loose.types)" "events of loose" &&
	api GET /v1/repos/ev/branches &&
	expect_json "[.branches[] | select(.name == \"loose\")] | length" 0 &&
	jq -s -r "map(select(.id == \"side\" and (.type | startswith(\"branch.\")))) | last | .data.state" events2.json >side.state &&
	test_eq missing "$(cat side.state)" "side, tracked, stays as missing" &&
	expect_branch ev side state missing
'

test_expect_success 'the repo: repo.updated at creation and at each sync status change; the last is GET'"'"'s sync' '
	api GET /v1/repos/ev &&
	jq -c .sync "$RESP_BODY" >sync.get &&
	jq -s -c "map(select(.type == \"repo.updated\")) | last | .data.sync" events2.json >sync.last &&
	test_cmp sync.get sync.last &&
	jq -s -r "map(select(.type == \"repo.updated\")) | .[0].data.sync.status" events2.json >first.status &&
	test_eq never "$(cat first.status)" &&
	jq -s -c "map(select(.type == \"repo.updated\") | .data.sync) | . as \$s | [range(1; length) | select(\$s[.] == \$s[. - 1])] | length" events2.json >dups &&
	test_eq 0 "$(cat dups)" "repo.updated events that change nothing"
'

test_done
