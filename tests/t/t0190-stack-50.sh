#!/bin/bash
# A linear stack of 50 branches (each 1-2 commits, one of them editing a
# file the trunk edits too, in another place), restacked in one
# restack_repo job after the trunk moves: every branch as `git rebase
# --onto` gives it, all 50 pushed, a second run a no-op.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

N=50
STACK="s-1:main"
for i in $(seq 2 $N); do STACK="$STACK s-$i:s-$((i - 1))"; done
ALL=$(for i in $(seq 1 $N); do echo "s-$i"; done)

test_expect_success "setup: a stack of $N branches, registered with explicit parents" '
	mkdir -p remotes work &&
	git init -q --bare -b main remotes/big.git &&
	git init -q -b main work/big &&
	pgit big remote add origin "$TRASH/remotes/big.git" &&
	commit_on big main README "demo\n" "Initial commit" &&
	commit_on big main lines.txt "$(for i in $(seq 1 120); do printf "line %d\\\\n" $i; done)" "Add lines.txt" &&
	prev=main &&
	for i in $(seq 1 $N); do
		new_branch big "s-$i" "$prev" &&
		commit_on big "s-$i" "s/$i.txt" "branch $i\n" "Add s-$i" &&
		if [ $((i % 5)) = 0 ]; then
			edit_line big "s-$i" lines.txt $((i * 2)) "line $((i * 2)), by s-$i" "s-$i: edit line $((i * 2))" "Ann Other" "ann@example.org"
		fi &&
		prev="s-$i" || return 1
	done &&
	push_branches big main $ALL &&
	add_repo big &&
	ids= &&
	for pair in $STACK; do
		post_action big "{\"kind\": \"register_existing_branch\", \"branch\": \"${pair%%:*}\", \"parent\": \"${pair#*:}\"}" &&
		expect_status 202 && ids="$ids $JOB_ID" || return 1
	done &&
	for id in $ids; do wait_job big "$id" completed 120 || return 1; done &&
	expect_projection_settled big $STACK
'

test_expect_success 'the trunk moves; one restack_repo restacks all 50 as git does' '
	edit_line big main lines.txt 1 "line 1, on the trunk" "Trunk: line 1" &&
	edit_line big main lines.txt 111 "line 111, on the trunk" "Trunk: line 111" &&
	commit_on big main s/trunk.txt "trunk\n" "Trunk: s/trunk.txt" &&
	push_branches big main &&
	snap_remote big before &&
	oracle_init big &&
	oracle_restack big $STACK &&
	run_job big "{\"kind\": \"restack_repo\"}" completed 300 &&
	expect_remote_moved big before job.json $ALL &&
	check_stack big $STACK &&
	expect_projection_settled big $STACK
'

test_expect_success 'the job reported its progress branch by branch' '
	expect_job ".progress.total >= $N" true
'

test_expect_success 'a second restack_repo reports all 50 unchanged and pushes nothing' '
	snap_remote big again &&
	run_job big "{\"kind\": \"restack_repo\"}" completed 300 &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_list .result.unchanged $ALL &&
	expect_remote_unchanged big again
'

test_done
