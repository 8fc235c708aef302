#!/bin/bash
# Scenario 6 of WORKFLOWS.md: feat-1 is merged into the trunk with a merge
# commit; sync_repo marks it merged (no longer tracked, the remote branch
# left alone), reparents feat-2 to main keeping its base, and restacks feat-2
# and feat-3 as `git rebase --onto main <old feat-1> feat-2` does.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

test_expect_success 'setup: a tracked stack; feat-1 is merged with a merge commit, the trunk moves on' '
	make_stack_remote s6 &&
	new_branch s6 other main &&
	commit_on s6 other other.txt "other\n" "Add other" &&
	push_branches s6 other &&
	add_repo s6 &&
	register_stack s6 $STACK other:main &&
	B1=$(rev s6 feat-1) && B2=$(rev s6 feat-2) && OTHER=$(rev s6 other) &&
	edit_line s6 main lines.txt 5 "line 5, changed on the trunk" "Trunk: line 5" &&
	pgit s6 checkout -q main &&
	tick &&
	pgit s6 merge -q --no-ff -m "Merge branch feat-1" feat-1 &&
	commit_on s6 main after.txt "after the merge\n" "Trunk: after the merge" &&
	push_branches s6 main &&
	git --git-dir="$(remote_of s6)" merge-base --is-ancestor feat-1 main
'

test_expect_success 'sync_repo: feat-1 merged, feat-2 reparented to main, feat-2 and feat-3 restacked' '
	snap_remote s6 before &&
	oracle_init s6 &&
	oracle_rebase s6 main "$B1" feat-2 &&
	oracle_rebase s6 feat-2 "$B2" feat-3 &&
	run_job s6 "{\"kind\": \"sync_repo\"}" completed &&
	expect_job .error null &&
	expect_list .result.merged feat-1 &&
	expect_job "[.result.reparented[]] | length" 1 &&
	expect_job ".result.reparented[0] | \"\(.branch) \(.from) \(.to)\"" "feat-2 feat-1 main" &&
	expect_remote_moved s6 before job.json feat-2 feat-3
'

test_expect_success 'feat-2 and feat-3 hold what git rebase --onto gives; feat-1 and other left alone' '
	check_stack s6 feat-2:main feat-3:feat-2 &&
	test_eq "$B1" "$(rev s6 feat-1)" "feat-1 on the remote" &&
	test_eq "$OTHER" "$(rev s6 other)" "other (not above a merged branch)"
'

test_expect_success 'the projection: feat-1 merged and untracked; feat-2 on main; other needs restack' '
	expect_branch s6 feat-1 state merged &&
	expect_branch s6 feat-1 tracked false &&
	expect_projection_settled s6 feat-2:main feat-3:feat-2 &&
	expect_branch s6 other needs_restack true &&
	expect_branch s6 other parent main
'

test_expect_success 'a second sync_repo merges nothing more and changes nothing' '
	snap_remote s6 again &&
	projection_digest s6 >proj.before &&
	run_job s6 "{\"kind\": \"sync_repo\"}" completed &&
	expect_list .result.merged &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_remote_unchanged s6 again &&
	projection_digest s6 >proj.after &&
	test_cmp proj.before proj.after
'

test_done
