#!/bin/bash
# How one branch is replayed (WORKFLOWS.md, "Restacking one branch"),
# end to end against the git CLI: a commit whose change the trunk already
# has is dropped, a commit that was empty to begin with is kept, a merge
# commit inside a branch is not replayed but its commits are (linearised, in
# git's order), and a branch rewritten outside the service (its base no
# longer an ancestor) is replayed from the healed base merge-base(B, P).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

TRACKED="picked:main empty:main merged:main feat-1:main feat-2:feat-1"

test_expect_success 'setup: branches with a cherry-picked commit, an empty commit, a merge; all tracked' '
	make_stack_remote sem &&
	new_branch sem picked main &&
	commit_on sem picked p/1.txt "p1\n" "picked: a change the trunk will also get" &&
	commit_on sem picked p/2.txt "p2\n" "picked: its own change" &&
	new_branch sem empty main &&
	commit_on sem empty "" "" "empty: nothing but a message" &&
	commit_on sem empty e/1.txt "e1\n" "empty: then a change" &&
	new_branch sem merged main &&
	commit_on sem merged m/1.txt "m1\n" "merged: first" &&
	new_branch sem side main &&
	commit_on sem side m/side.txt "side\n" "side: one" &&
	commit_on sem side m/side2.txt "side 2\n" "side: two" &&
	pgit sem checkout -q merged && tick &&
	pgit sem merge -q --no-ff -m "Merge side into merged" side &&
	commit_on sem merged m/2.txt "m2\n" "merged: after the merge" &&
	push_branches sem picked empty merged &&
	add_repo sem &&
	register_stack sem $TRACKED &&
	B1=$(rev sem feat-1) &&
	pgit sem checkout -q main && tick &&
	pgit sem cherry-pick "$(pgit sem rev-parse picked~1)" >&2 &&
	trunk_gains sem
'

test_expect_success 'someone rewrites feat-2 outside the service: rebased onto main, without feat-1' '
	pgit sem checkout -q feat-2 && tick &&
	pgit sem rebase -q --onto "$(rev sem main~4)" "$B1" feat-2 &&
	push_branches sem +feat-2 &&
	! git --git-dir="$(remote_of sem)" merge-base --is-ancestor "$B1" feat-2
'

test_expect_success 'restack_repo: each branch as git rebase --onto gives it' '
	snap_remote sem before &&
	oracle_init sem &&
	oracle_restack sem picked:main empty:main merged:main feat-1:main &&
	oracle_rebase sem feat-1 "$(ogit sem merge-base feat-2 "$B1")" feat-2 &&
	run_job sem "{\"kind\": \"restack_repo\"}" completed &&
	expect_remote_moved sem before job.json picked empty merged feat-1 feat-2 &&
	check_stack sem $TRACKED &&
	expect_projection_settled sem $TRACKED
'

test_expect_success 'the commit already on the trunk was dropped, the empty one kept, the merge linearised' '
	git --git-dir="$(remote_of sem)" log --format=%s main..picked >picked.log &&
	echo "picked: its own change" >expect && test_cmp expect picked.log &&
	git --git-dir="$(remote_of sem)" log --format=%s main..empty >empty.log &&
	grep -qx "empty: nothing but a message" empty.log &&
	test_eq 0 "$(git --git-dir="$(remote_of sem)" rev-list --merges --count main..merged)" "merge commits in merged" &&
	test_eq 4 "$(git --git-dir="$(remote_of sem)" rev-list --count main..merged)" "commits in merged"
'

test_done
