#!/bin/bash
# Scenario 9 of WORKFLOWS.md: dry_run reports the same new trees, in the
# same order, that a real run then produces, and moves nothing: not the
# remote, not the mirror's branches, not the projection. Checked for
# restack_repo, restack_subtree and reparent_branch.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/t/lib.sh"
. "$top_srcdir/tests/t/lib-stack.sh"

start_stack

STACK="feat-1:main feat-2:feat-1 feat-3:feat-2"

# mirror_heads NAME: the mirror's branches.
mirror_heads() { git --git-dir="$(mirror_of "$1")" for-each-ref --format='%(objectname) %(refname)' refs/heads/; }

# dry_then_real NAME JSON: run JSON with dry_run, check it moved nothing and
# reported new commits that the mirror holds; then run JSON for real and
# check the same branches moved, in the same order, to the same sequences
# of trees, messages and authors. Leaves the real job in job.json.
dry_then_real()
{
	local n=$1 body=$2 dry br i
	dry=$(printf '%s' "$body" | jq -c '.options = ((.options // {}) + {dry_run: true})') &&
	snap_remote "$n" dry &&
	projection_digest "$n" >proj.before &&
	run_job "$n" "$dry" completed &&
	cp job.json dry.json &&
	expect_job .options.dry_run true dry.json &&
	expect_job "[.result.updated[]?] | length > 0" true dry.json &&
	expect_job "[.result.updated[] | select(.pushed != false)] | length" 0 dry.json &&
	expect_remote_unchanged "$n" dry &&
	projection_digest "$n" >proj.after &&
	test_cmp proj.before proj.after &&
	mirror_heads "$n" >mirror.after-dry &&
	git ls-remote --heads "$(remote_of "$n")" | awk "{ print \$1 \" \" \$2 }" | sort -k 2 >remote.heads &&
	sort -k 2 mirror.after-dry >mirror.sorted &&
	test_cmp remote.heads mirror.sorted &&
	jq -r ".result.updated[] | \"\(.branch) \(.old) \(.new)\"" dry.json >dry.moves &&
	while read -r br old new; do
		git --git-dir="$(mirror_of "$n")" cat-file -e "$new^{commit}" || {
			echo "dry run reported $br -> $new, which the mirror does not hold" >&2; return 1; }
		test_eq "$old" "$(rev "$n" "$br")" "old head of $br in the dry run" || return 1
	done <dry.moves &&
	run_job "$n" "$body" completed &&
	jq -r ".result.updated[] | .branch" dry.json >order.dry &&
	jq -r ".result.updated[] | .branch" job.json >order.real &&
	test_cmp order.dry order.real &&
	paste -d " " dry.moves <(jq -r ".result.updated[] | .new" job.json) >pairs &&
	while read -r br old dnew rnew; do
		test_eq "$(git --git-dir="$(mirror_of "$n")" rev-parse "$dnew^{tree}")" \
			"$(git --git-dir="$(remote_of "$n")" rev-parse "refs/heads/$br^{tree}")" "tree of $br: dry run vs real run" || return 1
		test_eq "$rnew" "$(rev "$n" "$br")" "remote $br after the real run" || return 1
		git --git-dir="$(mirror_of "$n")" log --reverse --date=raw --format="%T %an <%ae> %ad %s" "$old..$dnew" >"dry.$br" &&
		git --git-dir="$(remote_of "$n")" log --reverse --date=raw --format="%T %an <%ae> %ad %s" "$old..$rnew" >"real.$br" &&
		test_cmp "dry.$br" "real.$br" || return 1
	done <pairs
}

test_expect_success 'setup: a tracked stack of four and another branch; the trunk moves' '
	make_stack_remote s9 &&
	new_branch s9 feat-4 feat-3 &&
	commit_on s9 feat-4 f4.txt "feature 4\n" "Add feature 4" &&
	new_branch s9 other main &&
	commit_on s9 other other.txt "other\n" "Add other" &&
	push_branches s9 feat-4 other &&
	add_repo s9 &&
	register_stack s9 $STACK feat-4:feat-3 other:main &&
	B2=$(rev s9 feat-2) && B3=$(rev s9 feat-3) &&
	trunk_gains s9
'

test_expect_success 'reparent_branch feat-3 main: the dry run is the real run, moving nothing' '
	oracle_init s9 &&
	oracle_rebase s9 main "$B2" feat-3 &&
	oracle_rebase s9 feat-3 "$B3" feat-4 &&
	dry_then_real s9 "{\"kind\": \"reparent_branch\", \"branch\": \"feat-3\", \"parent\": \"main\"}" &&
	check_stack s9 feat-3:main feat-4:feat-3 &&
	expect_branch s9 feat-3 parent main
'

test_expect_success 'restack_subtree feat-1 (feat-1, feat-2): the dry run is the real run' '
	oracle_init s9 &&
	oracle_restack s9 feat-1:main feat-2:feat-1 &&
	dry_then_real s9 "{\"kind\": \"restack_subtree\", \"branch\": \"feat-1\"}" &&
	check_stack s9 feat-1:main feat-2:feat-1
'

test_expect_success 'restack_repo after the trunk moves again: the dry run is the real run' '
	commit_on s9 main t2.txt "again\n" "Trunk: again" &&
	push_branches s9 main &&
	ALL="feat-1:main other:main feat-3:main feat-2:feat-1 feat-4:feat-3" &&
	oracle_init s9 &&
	oracle_restack s9 $ALL &&
	dry_then_real s9 "{\"kind\": \"restack_repo\"}" &&
	check_stack s9 $ALL &&
	expect_projection_settled s9 $ALL
'

test_expect_success 'a dry run with nothing to do reports every branch unchanged' '
	snap_remote s9 nothing &&
	run_job s9 "{\"kind\": \"restack_repo\", \"options\": {\"dry_run\": true}}" completed &&
	expect_job "[.result.updated[]?] | length" 0 &&
	expect_list .result.unchanged feat-1 feat-2 feat-3 feat-4 other &&
	expect_remote_unchanged s9 nothing
'

test_done
