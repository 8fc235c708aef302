#!/bin/bash
# One repo, several independent stacks (one of them a tree: a branch with
# two children), restacked in one restack_repo job: every moved branch as
# `git rebase --onto` gives it, parents first, siblings independent; a
# stack already on the trunk's tip is left unchanged.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

MOVED="a-1:main a-2:a-1 a-3:a-2 b-1:main b-2a:b-1 b-2b:b-1 b-3:b-2b c-1:main feat-1:main feat-2:feat-1 feat-3:feat-2"
FRESH="d-1:main d-2:d-1"

test_expect_success 'setup: four stacks and a lone branch, all tracked; the trunk moves' '
	make_stack_remote ms &&
	new_branch ms a-1 main && commit_on ms a-1 a/1.txt "a1\n" "Add a-1" &&
	new_branch ms a-2 a-1 && commit_on ms a-2 a/2.txt "a2\n" "Add a-2" &&
	commit_on ms a-2 a/1.txt "a1, amended on a-2\n" "a-2: amend a/1.txt" "Ann Other" "ann@example.org" &&
	new_branch ms a-3 a-2 && commit_on ms a-3 a/3.txt "a3\n" "Add a-3" &&
	new_branch ms b-1 main && commit_on ms b-1 b/1.txt "b1\n" "Add b-1" &&
	new_branch ms b-2a b-1 && commit_on ms b-2a b/2a.txt "b2a\n" "Add b-2a" &&
	new_branch ms b-2b b-1 && commit_on ms b-2b b/2b.txt "b2b\n" "Add b-2b" &&
	new_branch ms b-3 b-2b && commit_on ms b-3 b/3.txt "b3\n" "Add b-3" &&
	new_branch ms c-1 main && commit_on ms c-1 "" "" "c-1: an empty commit, kept as git keeps it" &&
	commit_on ms c-1 c/1.txt "c1\n" "Add c-1" &&
	push_branches ms a-1 a-2 a-3 b-1 b-2a b-2b b-3 c-1 &&
	add_repo ms &&
	register_stack ms $MOVED &&
	trunk_gains ms &&
	new_branch ms d-1 main && commit_on ms d-1 d/1.txt "d1\n" "Add d-1" &&
	new_branch ms d-2 d-1 && commit_on ms d-2 d/2.txt "d2\n" "Add d-2" &&
	push_branches ms d-1 d-2 &&
	register_stack ms $FRESH
'

test_expect_success 'one restack_repo restacks every stack that needs it, as git does' '
	snap_remote ms before &&
	oracle_init ms &&
	oracle_restack ms $MOVED &&
	run_job ms "{\"kind\": \"restack_repo\"}" completed &&
	expect_remote_moved ms before job.json $(for p in $MOVED; do echo "${p%%:*}"; done) &&
	expect_list .result.unchanged d-1 d-2 &&
	check_stack ms $MOVED &&
	expect_projection_settled ms $MOVED $FRESH
'

test_expect_success 'parents were restacked before their children (the job'"'"'s progress, from its events)' '
	all_events ms >events &&
	jq -r "select(.type == \"job.updated\" and .id == $JOB_ID) | .data.progress.detail // empty" events >details &&
	cat details >&2 &&
	for pair in $MOVED; do
		br=${pair%%:*} p=${pair#*:} &&
		lb=$(grep -n -E "(^|[^a-z0-9-])$br([^a-z0-9-]|\$)" details | head -n 1 | cut -d: -f1) &&
		test -n "$lb" || { echo "no progress step names $br" >&2; return 1; }
		[ "$p" = main ] && continue
		lp=$(grep -n -E "(^|[^a-z0-9-])$p([^a-z0-9-]|\$)" details | head -n 1 | cut -d: -f1) &&
		test_gt "$lb" "$lp" "progress step of $br after its parent $p" || return 1
	done
'

test_done
