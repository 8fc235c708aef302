#!/bin/bash
# Scenario 5 of WORKFLOWS.md: someone pushes a branch on top of feat-2;
# register_existing_branch infers feat-2 as its parent (the nearest tracked
# ancestor), records the merge-base as its base and pushes nothing; an
# unknown branch ends in branch_not_found. The inferred stack then restacks
# as `git rebase --onto` does.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

# expect_tracked BRANCH PARENT BASE: the job's result.tracked and the
# projection agree on the new branch.
expect_tracked()
{
	expect_job ".result.tracked[] | select(.branch == \"$1\") | .parent" "$2" &&
	expect_job ".result.tracked[] | select(.branch == \"$1\") | .base" "$3" &&
	expect_branch s5 "$1" tracked true &&
	expect_branch s5 "$1" parent "$2" &&
	expect_branch s5 "$1" base "$3" &&
	expect_branch s5 "$1" head "$(rev s5 "$1")" &&
	expect_branch s5 "$1" state active
}

test_expect_success 'setup: a tracked stack; someone pushes branches made elsewhere' '
	make_stack_remote s5 &&
	add_repo s5 &&
	register_stack s5 $STACK &&
	new_branch s5 feat-x feat-2 &&
	commit_on s5 feat-x fx.txt "x\n" "Add x on feat-2" "Xavier" "x@example.com" &&
	new_branch s5 feat-y feat-3 &&
	commit_on s5 feat-y fy.txt "y\n" "Add y on feat-3" &&
	new_branch s5 loose-1 feat-1 &&
	commit_on s5 loose-1 l1.txt "l1\n" "Add l1 (never tracked)" &&
	new_branch s5 loose-2 loose-1 &&
	commit_on s5 loose-2 l2.txt "l2\n" "Add l2" &&
	new_branch s5 old-main "$(rev s5 main)~1" &&
	commit_on s5 old-main om.txt "om\n" "On an older trunk commit" &&
	push_branches s5 feat-x feat-y loose-1 loose-2 old-main
'

test_expect_success 'a branch on top of feat-2 is registered with parent feat-2 inferred, nothing pushed' '
	snap_remote s5 before &&
	register s5 feat-x &&
	expect_tracked feat-x feat-2 "$(rev s5 feat-2)" &&
	expect_branch s5 feat-x needs_restack false &&
	expect_remote_unchanged s5 before
'

test_expect_success 'the nearest tracked ancestor wins: a branch on feat-3 gets feat-3, not feat-1 or feat-2' '
	register s5 feat-y &&
	expect_tracked feat-y feat-3 "$(rev s5 feat-3)"
'

test_expect_success 'untracked branches in between are skipped: loose-2 (on loose-1 on feat-1) gets feat-1' '
	register s5 loose-2 &&
	expect_tracked loose-2 feat-1 "$(rev s5 feat-1)" &&
	expect_branch s5 loose-1 tracked false
'

test_expect_success 'a branch on an older trunk commit gets main, with the merge-base as its base' '
	register s5 old-main &&
	expect_tracked old-main main "$(rev s5 main~1)" &&
	expect_remote_unchanged s5 before
'

test_expect_success 'an unknown branch ends in branch_not_found, not retryable, and is not tracked' '
	projection_digest s5 >proj.before &&
	run_job s5 "{\"kind\": \"register_existing_branch\", \"branch\": \"no-such-branch\"}" error &&
	expect_job_error branch_not_found false &&
	expect_job .attempt 1 &&
	projection_digest s5 >proj.after &&
	test_cmp proj.before proj.after &&
	expect_remote_unchanged s5 before
'

test_expect_success 'registering an already tracked branch refreshes it and changes nothing' '
	projection_digest s5 >proj.before &&
	run_job s5 "{\"kind\": \"register_existing_branch\", \"branch\": \"feat-x\"}" completed &&
	expect_job .error null &&
	projection_digest s5 >proj.after &&
	test_cmp proj.before proj.after &&
	expect_remote_unchanged s5 before
'

test_expect_success 'an explicit parent that is not an ancestor is taken, with the merge-base as base' '
	new_branch s5 side main &&
	commit_on s5 side side.txt "side\n" "Add side" &&
	push_branches s5 side &&
	register s5 side feat-1 &&
	expect_tracked side feat-1 "$(rev s5 main)" &&
	expect_branch s5 side needs_restack true
'

test_expect_success 'the trunk moves: restack_repo restacks the inferred branches as git does' '
	ALL="feat-1:main old-main:main side:feat-1 feat-2:feat-1 loose-2:feat-1 feat-3:feat-2 feat-x:feat-2 feat-y:feat-3" &&
	trunk_gains s5 &&
	snap_remote s5 before-restack &&
	oracle_init s5 &&
	MB_OLD=$(ogit s5 rev-parse main~4) &&
	oracle_rebase s5 main "$MB_OLD" old-main &&
	OB1=$(ogit s5 rev-parse feat-1) && OB2=$(ogit s5 rev-parse feat-2) && OB3=$(ogit s5 rev-parse feat-3) &&
	oracle_rebase s5 main "$(rev s5 main~3)" feat-1 &&
	oracle_rebase s5 feat-1 "$(rev s5 main~3)" side &&
	oracle_rebase s5 feat-1 "$OB1" feat-2 &&
	oracle_rebase s5 feat-1 "$OB1" loose-2 &&
	oracle_rebase s5 feat-2 "$OB2" feat-3 &&
	oracle_rebase s5 feat-2 "$OB2" feat-x &&
	oracle_rebase s5 feat-3 "$OB3" feat-y &&
	run_job s5 "{\"kind\": \"restack_repo\"}" completed &&
	expect_remote_moved s5 before-restack job.json feat-1 old-main side feat-2 loose-2 feat-3 feat-x feat-y &&
	check_stack s5 $ALL &&
	expect_projection_settled s5 $ALL &&
	expect_branch s5 loose-1 tracked false
'

test_done
