#!/bin/bash
# Scenario 4 of WORKFLOWS.md: reparent_branch feat-3 main leaves feat-3
# with only its own commits, on main, and moves what is stacked above it
# (feat-4) along; moves that would make a cycle, and parents or branches
# that are not tracked, are refused with the remote untouched.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2 feat-4:feat-3"

# refused BODY SLUG-REGEX: the job ends in error, not retryable, with a
# problem type matching SLUG-REGEX; the remote and the projection are as
# they were.
refused()
{
	snap_remote s4 refused &&
	projection_digest s4 >proj.before &&
	run_job s4 "$1" error &&
	expect_job .error.retryable false &&
	test_match "^urn:repoflow:problem:($2)\$" "$(jq_job .error.type)" "error type" &&
	expect_remote_unchanged s4 refused &&
	projection_digest s4 >proj.after &&
	test_cmp proj.before proj.after
}

test_expect_success 'setup: a tracked stack of four, an untracked branch; the trunk moves' '
	make_stack_remote s4 &&
	new_branch s4 feat-4 feat-3 &&
	commit_on s4 feat-4 f4.txt "feature 4\n" "Add feature 4" &&
	new_branch s4 loose main &&
	commit_on s4 loose loose.txt "loose\n" "Add loose" &&
	push_branches s4 feat-4 loose &&
	add_repo s4 &&
	register_stack s4 $STACK &&
	B2=$(rev s4 feat-2) && B3=$(rev s4 feat-3) &&
	trunk_gains s4
'

test_expect_success 'reparent_branch feat-1 feat-3 is refused as a cycle' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-1\", \"parent\": \"feat-3\"}" cycle
'

test_expect_success 'reparent_branch onto a branch stacked right above is refused as a cycle' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-3\", \"parent\": \"feat-4\"}" cycle
'

test_expect_success 'reparent_branch onto an unknown parent is refused' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\", \"parent\": \"nowhere\"}" "not_tracked|branch_not_found|not_found"
'

test_expect_success 'reparent_branch onto an untracked parent is refused' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\", \"parent\": \"loose\"}" "not_tracked|branch_not_found|not_found"
'

test_expect_success 'reparent_branch of an untracked branch is refused (not_tracked)' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"loose\", \"parent\": \"feat-1\"}" not_tracked
'

test_expect_success 'reparent_branch with parent equal to branch is rejected at the door (422)' '
	snapshot same &&
	post_action s4 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-2\", \"parent\": \"feat-2\"}" &&
	expect_status 422 &&
	expect_header Content-Type "^application/problem\+json" &&
	expect_error_field parent &&
	expect_unchanged same
'

test_expect_success 'reparent_branch feat-3 main: feat-3 holds only its own commits, on main; feat-4 moves along' '
	snap_remote s4 before &&
	oracle_init s4 &&
	oracle_rebase s4 main "$B2" feat-3 &&
	oracle_rebase s4 feat-3 "$B3" feat-4 &&
	run_job s4 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-3\", \"parent\": \"main\"}" completed &&
	expect_remote_moved s4 before job.json feat-3 feat-4 &&
	check_stack s4 feat-3:main feat-4:feat-3 &&
	git --git-dir="$(remote_of s4)" log --format=%s main..feat-3 >own &&
	printf "%s\n" "Add feature 3, part two" "Add feature 3" >expect &&
	test_cmp expect own
'

test_expect_success 'the projection: feat-3 on main, feat-4 on feat-3; feat-1 and feat-2 untouched' '
	expect_projection_settled s4 feat-3:main feat-4:feat-3 &&
	expect_branch s4 feat-2 parent feat-1 &&
	expect_branch s4 feat-2 head "$B2"
'

test_expect_success 'after the move, feat-1 onto feat-2 is still a cycle; feat-3 onto feat-4 too' '
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-1\", \"parent\": \"feat-2\"}" cycle &&
	refused "{\"kind\": \"reparent_branch\", \"branch\": \"feat-3\", \"parent\": \"feat-4\"}" cycle
'

test_expect_success 'a second identical reparent changes nothing' '
	snap_remote s4 again &&
	run_job s4 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-3\", \"parent\": \"main\"}" completed &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_remote_unchanged s4 again
'

test_done
