#!/bin/bash
# Scenario 1 of WORKFLOWS.md: the trunk gained commits under a linear stack
# main <- feat-1 <- feat-2 <- feat-3; restack_repo replays each branch as
# `git rebase --onto` does (the oracle: a scratch clone where the git CLI
# rebases the same stack), pushes exactly those branches, and a second run
# changes nothing.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

test_expect_success 'setup: a remote with a stack of three, tracked with explicit parents' '
	make_stack_remote s1 &&
	add_repo s1 &&
	snap_remote s1 registered &&
	register_stack s1 $STACK &&
	expect_remote_unchanged s1 registered &&
	expect_projection_settled s1 $STACK
'

test_expect_success 'the trunk gains three commits; the oracle restacks with git rebase --onto' '
	trunk_gains s1 &&
	snap_remote s1 before &&
	oracle_init s1 &&
	oracle_restack s1 $STACK
'

test_expect_success 'restack_repo pushes the three branches and nothing else' '
	run_job s1 "{\"kind\": \"restack_repo\"}" completed &&
	expect_job .error null &&
	expect_job .attempt 1 &&
	expect_remote_moved s1 before job.json feat-1 feat-2 feat-3 &&
	expect_list .result.unchanged &&
	expect_list .result.conflicts &&
	expect_list .result.skipped
'

test_expect_success 'every branch holds what git rebase --onto gives (trees, messages, authors)' '
	check_stack s1 $STACK
'

test_expect_success 'the new commits are committed by the service identity, at the job time' '
	git --git-dir="$(remote_of s1)" log --format="%cn <%ce>" main..feat-3 | sort -u >committers &&
	echo "repoflow <repoflow@localhost>" >expect &&
	test_cmp expect committers &&
	started=$(jq_job ".started_at | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate") &&
	finished=$(jq_job ".finished_at | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate") &&
	for t in $(git --git-dir="$(remote_of s1)" log --format=%ct main..feat-3); do
		test_ge "$t" "$started" "committer time" && test_le "$t" "$((finished + 1))" "committer time" || return 1
	done
'

test_expect_success 'the projection: each branch on its parent'"'"'s new tip, nothing needs restack' '
	expect_projection_settled s1 $STACK
'

test_expect_success 'a second restack_repo changes nothing and pushes nothing' '
	snap_remote s1 second &&
	projection_digest s1 >proj.before &&
	run_job s1 "{\"kind\": \"restack_repo\"}" completed &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_list .result.unchanged feat-1 feat-2 feat-3 &&
	expect_remote_unchanged s1 second &&
	projection_digest s1 >proj.after &&
	test_cmp proj.before proj.after
'

test_done
