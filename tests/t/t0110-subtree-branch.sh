#!/bin/bash
# Scenario 2 of WORKFLOWS.md: restack_subtree feat-2 moves feat-2 and
# feat-3 only (onto feat-1's tip, which gained a commit); rebase_branch
# feat-1 then moves feat-1 alone onto the trunk, and feat-2 needs restack;
# a last restack_subtree feat-2 replays only feat-2's own commits. Each
# result is compared with `git rebase --onto` in a scratch clone.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

test_expect_success 'setup: a tracked stack; then the trunk and feat-1 each gain commits' '
	make_stack_remote s2 &&
	add_repo s2 &&
	register_stack s2 $STACK &&
	M0=$(rev s2 main) && B1=$(rev s2 feat-1) && B2=$(rev s2 feat-2) && B3=$(rev s2 feat-3) &&
	trunk_gains s2 &&
	commit_on s2 feat-1 f1-more.txt "more of feature 1\n" "feat-1: one more commit" "Ann Other" "ann@example.org" &&
	push_branches s2 feat-1 &&
	B1b=$(rev s2 feat-1)
'

test_expect_success 'restack_subtree feat-2 moves feat-2 and feat-3 only' '
	snap_remote s2 before-subtree &&
	oracle_init s2 &&
	oracle_rebase s2 feat-1 "$B1" feat-2 &&
	oracle_rebase s2 feat-2 "$B2" feat-3 &&
	run_job s2 "{\"kind\": \"restack_subtree\", \"branch\": \"feat-2\"}" completed &&
	expect_remote_moved s2 before-subtree job.json feat-2 feat-3 &&
	test_eq "$B1b" "$(rev s2 feat-1)" "feat-1 (not in the subtree)" &&
	test_eq "$(ogit s2 rev-parse main)" "$(rev s2 main)" "main"
'

test_expect_success 'feat-2 and feat-3 hold what git rebase --onto gives' '
	check_branch s2 feat-2 feat-1 &&
	check_branch s2 feat-3 feat-2
'

test_expect_success 'the projection: feat-2 and feat-3 settled, feat-1 left as it was' '
	expect_projection_settled s2 feat-2:feat-1 feat-3:feat-2 &&
	expect_branch s2 feat-1 head "$B1b" &&
	expect_branch s2 feat-1 base "$M0" &&
	expect_branch s2 feat-1 parent main
'

test_expect_success 'rebase_branch feat-1 moves feat-1 alone onto the trunk' '
	snap_remote s2 before-rebase &&
	F2=$(rev s2 feat-2) && F3=$(rev s2 feat-3) &&
	oracle_rebase s2 main "$M0" feat-1 &&
	run_job s2 "{\"kind\": \"rebase_branch\", \"branch\": \"feat-1\"}" completed &&
	expect_remote_moved s2 before-rebase job.json feat-1 &&
	check_branch s2 feat-1 main
'

test_expect_success 'after rebase_branch, feat-2 needs restack and keeps its base; feat-3 does not' '
	expect_projection_settled s2 feat-1:main &&
	expect_branch s2 feat-2 needs_restack true &&
	expect_branch s2 feat-2 base "$B1b" &&
	expect_branch s2 feat-2 head "$F2" &&
	expect_branch s2 feat-3 needs_restack false &&
	expect_branch s2 feat-3 head "$F3" &&
	api GET /v1/repos/s2 && expect_status 200 &&
	expect_json .needs_restack 1
'

test_expect_success 'restack_subtree feat-2 again replays only feat-2'"'"'s own commits' '
	snap_remote s2 before-again &&
	OF2=$(ogit s2 rev-parse feat-2) &&
	oracle_rebase s2 feat-1 "$B1b" feat-2 &&
	oracle_rebase s2 feat-2 "$OF2" feat-3 &&
	run_job s2 "{\"kind\": \"restack_subtree\", \"branch\": \"feat-2\"}" completed &&
	expect_remote_moved s2 before-again job.json feat-2 feat-3 &&
	check_stack s2 $STACK &&
	expect_projection_settled s2 $STACK
'

test_expect_success 'rebase_branch of a branch already on its parent'"'"'s tip changes nothing' '
	snap_remote s2 noop &&
	run_job s2 "{\"kind\": \"rebase_branch\", \"branch\": \"feat-2\"}" completed &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_list .result.unchanged feat-2 &&
	expect_remote_unchanged s2 noop
'

test_done
