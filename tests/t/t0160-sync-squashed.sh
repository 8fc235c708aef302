#!/bin/bash
# Scenario 7 of WORKFLOWS.md: feat-1 (two commits) is squash-merged into the
# trunk; sync_repo finds it by patch-id, marks it merged, and feat-2 ends
# with only its own commits on top of the trunk (as `git rebase --onto main
# <old feat-1> feat-2` gives). A branch whose change is not on the trunk,
# and one that gained a commit after its squash, are not merged.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

# squash_merge NAME BRANCH MESSAGE: the person squash-merges BRANCH into main.
squash_merge()
{
	pgit "$1" checkout -q main &&
	pgit "$1" merge -q --squash "$2" >&2 &&
	tick &&
	pgit "$1" commit -q -m "$3"
}

test_expect_success 'setup: a tracked stack and two other branches; feat-1 is squash-merged' '
	make_stack_remote s7 &&
	new_branch s7 other main &&
	commit_on s7 other other.txt "other\n" "Add other" &&
	new_branch s7 grown main &&
	commit_on s7 grown grown.txt "grown\n" "Add grown" &&
	commit_on s7 grown grown2.txt "grown 2\n" "Add grown, part 2" &&
	push_branches s7 other grown &&
	add_repo s7 &&
	register_stack s7 $STACK other:main grown:main &&
	B1=$(rev s7 feat-1) && B2=$(rev s7 feat-2) && OTHER=$(rev s7 other) &&
	commit_on s7 main before.txt "before\n" "Trunk: before the squash" &&
	squash_merge s7 feat-1 "Feature 1 (#1)" &&
	squash_merge s7 grown "Grown (#2)" &&
	commit_on s7 grown grown3.txt "grown 3\n" "Add grown, part 3 (after the squash)" &&
	commit_on s7 main after.txt "after\n" "Trunk: after the squash" &&
	push_branches s7 main grown &&
	GROWN=$(rev s7 grown) &&
	! git --git-dir="$(remote_of s7)" merge-base --is-ancestor feat-1 main
'

test_expect_success 'sync_repo detects the squash merge of feat-1 and restacks what sat on it' '
	snap_remote s7 before &&
	oracle_init s7 &&
	oracle_rebase s7 main "$B1" feat-2 &&
	oracle_rebase s7 feat-2 "$B2" feat-3 &&
	run_job s7 "{\"kind\": \"sync_repo\"}" completed &&
	expect_job .error null &&
	expect_list .result.merged feat-1 &&
	expect_job "[.result.reparented[]] | length" 1 &&
	expect_job ".result.reparented[0] | \"\(.branch) \(.from) \(.to)\"" "feat-2 feat-1 main" &&
	expect_remote_moved s7 before job.json feat-2 feat-3
'

test_expect_success 'feat-2 has only its own commits, on top of the trunk, as git rebase --onto gives' '
	check_stack s7 feat-2:main feat-3:feat-2 &&
	git --git-dir="$(remote_of s7)" log --format=%s main..feat-2 >own &&
	printf "%s\n" "feat-2: reword line 9" "Add feature 2" >expect &&
	test_cmp expect own
'

test_expect_success 'the projection: feat-1 merged; other and grown (not merged) still tracked, unchanged' '
	expect_branch s7 feat-1 state merged &&
	expect_branch s7 feat-1 tracked false &&
	expect_projection_settled s7 feat-2:main feat-3:feat-2 &&
	expect_branch s7 other state active &&
	expect_branch s7 other tracked true &&
	expect_branch s7 grown state active &&
	expect_branch s7 grown tracked true &&
	test_eq "$OTHER" "$(rev s7 other)" "other on the remote" &&
	test_eq "$GROWN" "$(rev s7 grown)" "grown on the remote" &&
	test_eq "$B1" "$(rev s7 feat-1)" "feat-1 on the remote (left alone)"
'

test_expect_success 'sync_repo with restack false marks merged but leaves the children needing restack' '
	person_sync s7 &&
	squash_merge s7 feat-2 "Feature 2 (#3)" &&
	push_branches s7 main &&
	F2=$(rev s7 feat-2) && F3=$(rev s7 feat-3) &&
	snap_remote s7 norestack &&
	run_job s7 "{\"kind\": \"sync_repo\", \"options\": {\"restack\": false}}" completed &&
	expect_list .result.merged feat-2 &&
	expect_job ".result.reparented[0] | \"\(.branch) \(.from) \(.to)\"" "feat-3 feat-2 main" &&
	expect_remote_unchanged s7 norestack &&
	expect_branch s7 feat-3 parent main &&
	expect_branch s7 feat-3 base "$F2" &&
	expect_branch s7 feat-3 needs_restack true
'

test_expect_success 'a later rebase_branch feat-3 replays only feat-3'"'"'s own commits (the kept base)' '
	snap_remote s7 later &&
	oracle_init s7 &&
	oracle_rebase s7 main "$F2" feat-3 &&
	run_job s7 "{\"kind\": \"rebase_branch\", \"branch\": \"feat-3\"}" completed &&
	expect_remote_moved s7 later job.json feat-3 &&
	check_stack s7 feat-3:main
'

test_done
