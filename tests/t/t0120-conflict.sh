#!/bin/bash
# Scenario 3 of WORKFLOWS.md: the trunk and feat-2 edit the same line.
# on_conflict abort (the default) leaves the remote and the projection
# untouched and names feat-2, the commit, the commit it was picked onto and
# the path, as `git rebase --onto` stops on them; on_conflict skip restacks
# feat-1 and an independent stack and leaves feat-2 and feat-3 alone.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2 other-1:main other-2:other-1"

test_expect_success 'setup: two tracked stacks; the trunk edits line 9, as feat-2 does' '
	make_stack_remote s3 &&
	new_branch s3 other-1 main &&
	commit_on s3 other-1 o1.txt "other 1\n" "Add other 1" &&
	new_branch s3 other-2 other-1 &&
	commit_on s3 other-2 o2.txt "other 2\n" "Add other 2" &&
	push_branches s3 other-1 other-2 &&
	add_repo s3 &&
	register_stack s3 $STACK &&
	B1=$(rev s3 feat-1) && B2=$(rev s3 feat-2) &&
	trunk_gains s3 &&
	edit_line s3 main lines.txt 9 "line 9, as the trunk wants it" "Trunk: line 9" &&
	push_branches s3 main
'

test_expect_success 'the oracle: git rebase --onto stops on feat-2'"'"'s second commit, in lines.txt' '
	oracle_init s3 &&
	oracle_rebase s3 main "$(ogit s3 merge-base main feat-1)" feat-1 &&
	test_must_fail_rebase() { ! ogit s3 rebase -q --onto feat-1 "$B1" feat-2 >&2; } &&
	test_must_fail_rebase &&
	CONFLICT_COMMIT=$(ogit s3 rev-parse REBASE_HEAD) &&
	ONTO_TREE=$(ogit s3 rev-parse HEAD^{tree}) &&
	ONTO_MSG=$(ogit s3 log -1 --format=%s HEAD) &&
	ogit s3 diff --name-only --diff-filter=U >conflict.paths &&
	ogit s3 rebase --abort &&
	test_eq "$(ogit s3 rev-parse feat-2~0)" "$CONFLICT_COMMIT" "the conflicting commit (feat-2 tip)" &&
	test_eq "Add feature 2" "$ONTO_MSG" "what it was picked onto" &&
	echo lines.txt >expect && test_cmp expect conflict.paths
'

test_expect_success 'on_conflict abort: error conflict, not retryable, naming branch, commit, onto, paths' '
	snap_remote s3 before &&
	projection_digest s3 >proj.before &&
	run_job s3 "{\"kind\": \"restack_repo\"}" error &&
	expect_job_error conflict false &&
	expect_job "[.result.conflicts[]] | length" 1 &&
	expect_job .result.conflicts[0].branch feat-2 &&
	expect_job .result.conflicts[0].commit "$CONFLICT_COMMIT" &&
	expect_job ".result.conflicts[0].paths | join(\" \")" lines.txt &&
	ONTO=$(jq_job .result.conflicts[0].onto) &&
	test_match "^[0-9a-f]{40}$" "$ONTO" "conflicts[0].onto" &&
	! grep -q "^$ONTO" s3.before.refs &&
	if git --git-dir="$(mirror_of s3)" cat-file -e "$ONTO^{commit}" 2>/dev/null; then
		test_eq "$ONTO_TREE" "$(git --git-dir="$(mirror_of s3)" rev-parse "$ONTO^{tree}")" "tree of onto (the replayed first commit of feat-2)"
	else
		say "onto $ONTO is not in the mirror; its tree is not compared" >&2
	fi
'

test_expect_success 'on_conflict abort: the remote and the projection did not change' '
	expect_remote_unchanged s3 before &&
	projection_digest s3 >proj.after &&
	test_cmp proj.before proj.after
'

test_expect_success 'on_conflict skip: feat-1 and the other stack restacked, feat-2 and feat-3 skipped' '
	oracle_init s3 &&
	oracle_restack s3 feat-1:main other-1:main other-2:other-1 &&
	run_job s3 "{\"kind\": \"restack_repo\", \"options\": {\"on_conflict\": \"skip\"}}" completed &&
	expect_job .error null &&
	expect_list .result.skipped feat-2 feat-3 &&
	expect_job "[.result.conflicts[]] | length" 1 &&
	expect_job .result.conflicts[0].branch feat-2 &&
	expect_job .result.conflicts[0].commit "$CONFLICT_COMMIT" &&
	expect_job ".result.conflicts[0].paths | join(\" \")" lines.txt &&
	expect_remote_moved s3 before job.json feat-1 other-1 other-2 &&
	check_stack s3 feat-1:main other-1:main other-2:other-1
'

test_expect_success 'on_conflict skip: the projection says feat-2 still needs restack, on its old base' '
	expect_projection_settled s3 feat-1:main other-1:main other-2:other-1 &&
	expect_branch s3 feat-2 head "$B2" &&
	expect_branch s3 feat-2 base "$B1" &&
	expect_branch s3 feat-2 needs_restack true &&
	expect_branch s3 feat-3 base "$B2" &&
	expect_branch s3 feat-3 needs_restack false
'

test_done
